/*
 * zaes.h - WinZip AES-256 encryption of one archive entry's compressed
 * bytes, the same every time for the same input.
 *
 * libzip encrypts with a random salt, so two builds of one archive differ
 * and an archive cannot be extended by copying entries from an older one
 * and still equal a fresh build.  Here the salt is derived instead: the
 * first 16 bytes of HMAC-SHA256, keyed with the password, of the entry's
 * name, a zero byte and its compressed bytes.  Two entries get the same
 * key stream only when name and bytes are the same, so the one thing this
 * gives away is that an entry of one archive equals the entry of the same
 * name in another made with the same password.
 *
 * The output is what libzip reads back as ZIP_EM_AES_256 (and 7-Zip as
 * AES-256): salt (16), password verifier (2), the bytes in AES-256-CTR
 * with WinZip's little-endian counter from 1, then HMAC-SHA1 of the
 * ciphertext cut to 10 bytes; keys from PBKDF2-HMAC-SHA1, 1000 rounds,
 * 66 bytes (encryption key, authentication key, verifier).  The caller
 * hands it to libzip as the entry's raw data (the source's stat says
 * ZIP_EM_AES_256 and the entry's method, deflate or bzip2; its encryption is set with
 * no password), and libzip writes the headers and the 0x9901 field.  Not
 * ZIP_CM_STORE: libzip 1.7.3 takes a stored source's bytes for the plain
 * data and writes the ciphertext's length and CRC.  Reading back, libzip
 * checks the HMAC only when the entry is read to its end with
 * ZIP_FL_COMPRESSED; an inflating read stops at the deflate stream's end.
 */
#ifndef THLHP_ZAES_H
#define THLHP_ZAES_H

#include <stddef.h>

enum { ZAES_OVERHEAD = 16 + 2 + 10 };

/* Encrypt in[0..n) of the entry called name into out, which has room for
 * n + ZAES_OVERHEAD bytes.  0, or -1 when OpenSSL fails (out undefined).
 * Thread-safe: several entries may be encrypted at once. */
int zaes_encrypt(const char *password, const char *name, const unsigned char *in, size_t n,
    unsigned char *out);

#endif
