/* zaes.c - WinZip AES-256 of one entry, its salt derived from the entry. */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include "zaes.h"

enum {
	SALT = 16,
	VERIFIER = 2,
	TAG = 10,                 /* HMAC-SHA1 cut to this by the format */
	KEY = 32,                 /* AES-256 key, and as long an HMAC key */
	ROUNDS = 1000,            /* PBKDF2 rounds, fixed by the format */
	CHUNK = 4096,             /* key stream made by one ECB call */
};

/* Start an HMAC with digest md.  1, or 0 when OpenSSL fails. */
static int
zaes_mac_init(EVP_MAC_CTX *c, const char *md, const unsigned char *key, size_t keylen)
{
	/* The cast: a parameter is a char * because it may also be written
	 * to; EVP_MAC_init only reads it. */
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0),
		OSSL_PARAM_construct_end(),
	};

	return EVP_MAC_init(c, key, keylen, p);
}

/* The salt: the same for the same entry, so the output is; different for
 * another name or other bytes, so two entries never share a key stream
 * (which would give away the XOR of their bytes).  The name's own
 * terminating NUL separates it from the bytes. */
static int
zaes_salt(EVP_MAC_CTX *c, const char *password, const char *name, const unsigned char *in,
    size_t n, unsigned char *salt)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t len;

	if (!zaes_mac_init(c, "SHA256", (const unsigned char *)password, strlen(password)) ||
	    !EVP_MAC_update(c, (const unsigned char *)name, strlen(name) + 1) ||
	    !EVP_MAC_update(c, in, n) || !EVP_MAC_final(c, md, &len, sizeof(md)))
		return -1;
	memcpy(salt, md, SALT);
	return 0;
}

static void
zaes_put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* out = a ^ b, eight bytes at a time where it can. */
static void
zaes_xor(unsigned char *out, const unsigned char *a, const unsigned char *b, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;

		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		x ^= y;
		memcpy(out + i, &x, 8);
	}
	for (; i < n; i++)
		out[i] = a[i] ^ b[i];
}

/* Encrypt in[0..n) into out and put the tag after it.  WinZip counts
 * little-endian from 1 where OpenSSL's CTR mode counts big-endian, so the
 * key stream is AES-ECB of counter blocks, CHUNK bytes a call (AES-NI
 * pipelines the blocks of one call); each chunk goes into the MAC while it
 * is still in cache.  Only the low 8 bytes count, as in libzip: 2^64
 * blocks is more than an entry can be. */
static int
zaes_ctr(EVP_CIPHER_CTX *aes, EVP_MAC_CTX *mac, const unsigned char *keys,
    const unsigned char *in, size_t n, unsigned char *out)
{
	unsigned char ctr[CHUNK] = { 0 }, ks[CHUNK], md[EVP_MAX_MD_SIZE];
	uint64_t blk = 1;
	size_t len, mdlen;
	int r = -1, got;

	if (!EVP_EncryptInit_ex(aes, EVP_aes_256_ecb(), NULL, keys, NULL) ||
	    !EVP_CIPHER_CTX_set_padding(aes, 0) ||
	    !zaes_mac_init(mac, "SHA1", keys + KEY, KEY))
		goto out;
	for (size_t off = 0; off < n; off += len) {
		size_t blocks;

		len = n - off < CHUNK ? n - off : CHUNK;
		blocks = (len + 15) / 16;
		for (size_t i = 0; i < blocks; i++)
			zaes_put_le64(ctr + 16 * i, blk++);
		if (!EVP_EncryptUpdate(aes, ks, &got, ctr, (int)(blocks * 16)))
			goto out;
		zaes_xor(out + off, in + off, ks, len);
		if (!EVP_MAC_update(mac, out + off, len))
			goto out;
	}
	if (!EVP_MAC_final(mac, md, &mdlen, sizeof(md)))
		goto out;
	memcpy(out + n, md, TAG);
	r = 0;
out:
	OPENSSL_cleanse(ks, sizeof(ks));
	return r;
}

int
zaes_encrypt(const char *password, const char *name, const unsigned char *in, size_t n,
    unsigned char *out)
{
	/* AES key, HMAC key, verifier, as PBKDF2 gives them in one run */
	unsigned char keys[2 * KEY + VERIFIER];
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	EVP_CIPHER_CTX *aes = EVP_CIPHER_CTX_new();
	size_t plen = strlen(password);
	int r = -1;

	if (!mac || !aes || plen > INT_MAX)
		goto out;
	if (zaes_salt(mac, password, name, in, n, out) < 0)
		goto out;
	if (!PKCS5_PBKDF2_HMAC_SHA1(password, (int)plen, out, SALT, ROUNDS, sizeof(keys), keys))
		goto out;
	memcpy(out + SALT, keys + 2 * KEY, VERIFIER);
	r = zaes_ctr(aes, mac, keys, in, n, out + SALT + VERIFIER);
out:
	OPENSSL_cleanse(keys, sizeof(keys));
	EVP_CIPHER_CTX_free(aes);
	EVP_MAC_CTX_free(mac);
	EVP_MAC_free(hmac);
	return r;
}
