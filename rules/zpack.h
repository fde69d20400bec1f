/*
 * zpack.h - the entries of one archive, made for libzip: each compressed
 * in memory (DEFLATE by libdeflate, bzip2 by libbz2, or stored) and, with
 * a password, encrypted (zaes.h), or copied as it is from the archive it
 * replaces.  libzip gets each one whole, as raw data with its CRC and
 * sizes, and only writes the headers and the bytes.  So an entry comes
 * out the same whether it was made now or copied, and an archive extended
 * by copying equals one made from scratch.
 *
 * Entries are made ahead of libzip, which reads them in name order, on
 * threads borrowed from the scheduler (sched_borrow) while -j has idle
 * slots, at most ZPACK_AHEAD bytes of files ahead; libzip's own thread
 * makes the entry it needs when nobody has.  A made entry is inflated
 * again and its CRC compared before it is handed over; a copied one is
 * read raw and its length and XXH3-64 compared with the record of what
 * was written.  After zip_close, zpack_check reads every entry's raw
 * bytes back from the new archive against the same hashes.
 */
#ifndef THLHP_ZPACK_H
#define THLHP_ZPACK_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <zip.h>

enum {
	ZPACK_MAX = 256 << 20,    /* larger files are left to libzip (zpack_raw) */
	ZPACK_AHEAD = 128 << 20,  /* bytes of files made ahead of libzip */
	ZPACK_THREADS = 16,       /* borrowed threads per archive, at most */
};

struct zpack_opts {
	zip_int32_t method;       /* ZIP_CM_STORE, ZIP_CM_DEFLATE or ZIP_CM_BZIP2 */
	int level;                /* 1-9 */
	const char *password;     /* AES-256 when not NULL */
	time_t mtime;             /* every entry's */
	atomic_int *cancel;       /* stop soon when set */
};

struct zpack_entry {
	char *name;               /* <study>/<series>/<sop>.dcm */
	char *path;               /* the file, for an entry to make */
	uint64_t src_hash;        /* the file's XXH3-64 (the state's) */
	zip_int64_t from;         /* its index in the older archive to copy it from, or -1 */
	/* A copy's from the record; a made entry's found as it is made: */
	int64_t size;             /* uncompressed (for one to make: its lstat size) */
	uint32_t crc;
	int64_t comp_size;        /* raw bytes in the archive */
	uint64_t comp_hash;       /* XXH3-64 of them; 0: not known (left to libzip) */
};

struct zpack;

/* Can a file of size bytes go through zpack?  Not when it is larger than
 * ZPACK_MAX, nor when it is stored and encrypted: libzip then computes
 * the CRC of what it is given, which would be the ciphertext's.  The
 * caller gives such files to libzip itself (zip_source_file). */
int zpack_raw(const struct zpack_opts *o, int64_t size);

/* For the n entries e (kept by the caller until zpack_free), those with
 * from >= 0 copied from old (opened by the caller, read on libzip's
 * thread only). */
struct zpack *zpack_new(const struct zpack_opts *o, struct zpack_entry *e, int n, zip_t *old);

/* The libzip source of entry i, to add with the entry's compression set
 * to o->method and, with a password, its encryption to ZIP_EM_AES_256
 * with a NULL password (libzip then copies what it is given).  NULL with
 * libzip's error in za. */
zip_source_t *zpack_source(zip_t *za, struct zpack *zp, int i);

/* Start making entries ahead (before zip_close). */
void zpack_start(struct zpack *zp);

/* Why the last entry failed, when one did: a copy whose bytes are not
 * what was recorded sets *copy (the caller may make them all afresh). */
const char *zpack_error(const struct zpack *zp, int *copy);

/* The archive's writer (zfd.h): each entry's data offset is noted as
 * libzip opens it, for zpack_check.  Before zip_close. */
struct zfd;
void zpack_out(struct zpack *zp, struct zfd *out);

/* Check the written archive at path, za that archive reopened: its
 * directory's names, sizes and CRCs are what was handed to libzip, and in
 * one sequential read of the file, the bytes at each entry's offset hash
 * to what was handed over (entries left to libzip: read through it, which
 * checks the CRC).  *hash is the XXH3-64 of the whole file.  0, or -1
 * with the message in err. */
int zpack_check(struct zpack *zp, zip_t *za, const char *path, uint64_t *hash, char *err,
    size_t errlen);

/* Stop and join the threads (their slots go back), free what is left. */
void zpack_free(struct zpack *zp);

#endif
