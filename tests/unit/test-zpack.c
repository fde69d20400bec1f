/*
 * test-zpack.c - archives written through rules/zpack.c as the zip rule
 * writes them (zpack_source per entry, its method and level, the fixed
 * time, AES-256 with no password given to libzip), to real libzip 1.7.3
 * in a temp folder, from files that look like CT slices.  For deflate,
 * bzip2, stored and deflate with a password: the archive reads back whole
 * and zpack_check passes; each entry's record (size, CRC, raw length and
 * hash) is filled in and is what the archive holds.  An archive extended
 * by copying entries from the older one, with their records, has the same
 * bytes as one made from scratch.  What zpack must refuse it refuses, and
 * says which: a copy whose record is wrong, a file whose size is not the
 * one looked at, a FIFO where the file was (at once, without blocking),
 * a link put there, a byte changed in the written archive.
 *
 * Outside a scheduler run sched_borrow() gives no thread, so every entry
 * is made on the caller's thread (libzip's) here; the threads borrowed in
 * a real run are not exercised.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libdeflate.h>
#include <xxhash.h>
#include <zip.h>
#include <cmocka.h>
#include "rmtree.h"
#include "sched.h"
#include "util.h"
#include "zfd.h"
#include "zpack.h"

/* 1980-01-02 12:00 UTC, as the zip rule's: a DOS date in every time zone. */
#define ENTRY_TIME ((time_t)315662400)
#define PASSWORD "correct horse"

/* The files: A is made of a, b and d; c is the one added later, in the
 * middle of the name order.  a comes first and is large enough for a
 * byte changed a few bytes into its data to be inside it. */
enum { FA, FB, FC, FD, FE, NFILE };

static const struct {
	const char *name;
	size_t size;
} files[NFILE] = {
	{ "1.2.840.1/1.2.840.1.1/1.2.840.1.1.1.dcm", 70000 },
	/* libzip writes no CRC for an AES entry under 20 bytes */
	{ "1.2.840.1/1.2.840.1.1/1.2.840.1.1.2.dcm", 1 },
	{ "1.2.840.1/1.2.840.1.1/1.2.840.1.1.3.dcm", 5000 },
	{ "1.2.840.1/1.2.840.1.1/1.2.840.1.1.4.dcm", 600000 },
	/* more than zfd's window even compressed: libzip's going back to
	 * its header lands in the file, which is then read back */
	{ "1.2.840.1/1.2.840.1.1/1.2.840.1.1.0.dcm", 4000000 },
};

static const int in_a[] = { FA, FB, FD };
static const int in_c[] = { FA, FB, FC, FD };
static const int in_big[] = { FE, FA };

static const struct zpack_opts o_deflate = { .method = ZIP_CM_DEFLATE, .level = 6 };
static const struct zpack_opts o_bzip2 = { .method = ZIP_CM_BZIP2, .level = 9 };
static const struct zpack_opts o_store = { .method = ZIP_CM_STORE };
static const struct zpack_opts o_aes = { .method = ZIP_CM_DEFLATE, .level = 6,
	.password = PASSWORD };
static const struct zpack_opts o_bzip2_aes = { .method = ZIP_CM_BZIP2, .level = 9,
	.password = PASSWORD };
/* not zpack's: its files are given to libzip */
static const struct zpack_opts o_store_aes = { .method = ZIP_CM_STORE, .password = PASSWORD };

struct fx {
	char dir[64];
	struct zpack_opts o;      /* the test's, from its initial state */
	unsigned char *data[NFILE];
	char *path[NFILE];
	char *zip[3];             /* archives A, B and C */
};

/* Data that compresses like a CT slice: a smooth ramp plus noise. */
static unsigned char *
slice(size_t n, unsigned seed)
{
	unsigned char *p = xmalloc(n);

	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)((i / 512) % 200 + ((seed >> 16) & 7));
	}
	return p;
}

static void
put(const char *path, const unsigned char *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static unsigned char *
slurp(const char *path, size_t *n)
{
	struct stat st;
	unsigned char *p;
	FILE *fp = fopen(path, "rb");

	assert_non_null(fp);
	assert_int_equal(fstat(fileno(fp), &st), 0);
	*n = (size_t)st.st_size;
	p = xmalloc(*n + 1);
	assert_int_equal(fread(p, 1, *n, fp), *n);
	fclose(fp);
	return p;
}

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	if (*state)
		f->o = *(const struct zpack_opts *)*state;
	f->o.mtime = ENTRY_TIME;
	strcpy(f->dir, "/tmp/test-zpack.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	for (int i = 0; i < NFILE; i++) {
		f->data[i] = slice(files[i].size, (unsigned)i + 1);
		/* FE all noise: over the window whatever the method. */
		for (size_t j = 0; i == FE && j < files[i].size; j++)
			f->data[i][j] = (unsigned char)(f->data[i][j] * 131u + (j * 2654435761u >> 13));
		f->path[i] = xasprintf("%s/f%d", f->dir, i);
		put(f->path[i], f->data[i], files[i].size);
	}
	for (int i = 0; i < 3; i++)
		f->zip[i] = xasprintf("%s/%c.zip", f->dir, 'A' + i);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < NFILE; i++) {
		free(f->data[i]);
		free(f->path[i]);
	}
	for (int i = 0; i < 3; i++)
		free(f->zip[i]);
	assert_int_equal(rmtree(f->dir), 0);
	free(f);
	return 0;
}

/* The entries of the files which[0..n), to make, their sizes from lstat
 * as the zip rule takes them. */
static void
entries(struct fx *f, const int *which, int n, struct zpack_entry *e)
{
	for (int i = 0; i < n; i++) {
		struct stat st;

		memset(&e[i], 0, sizeof(e[i]));
		e[i].name = (char *)files[which[i]].name;
		e[i].path = f->path[which[i]];
		e[i].from = -1;
		assert_int_equal(lstat(e[i].path, &st), 0);
		e[i].size = st.st_size;
	}
}

/* Write e[0..n) to path as the zip rule's write_archive does, copying
 * those with from >= 0 out of old.  zip_close's result in *rc (the
 * archive discarded when it failed); the zpack, for zpack_error,
 * zpack_check and zpack_free. */
static struct zpack *
pack(const char *path, const struct zpack_opts *o, struct zpack_entry *e, int n, zip_t *old,
    int *rc)
{
	struct zpack *zp;
	struct zfd *out;
	char err[512];
	zip_t *za;

	unlink(path);
	za = zfd_open(path, ZIP_CREATE | ZIP_EXCL, &out, err, sizeof(err));
	assert_non_null(za);
	zp = zpack_new(o, e, n, old);
	zpack_out(zp, out);
	for (int i = 0; i < n; i++) {
		int raw = e[i].from >= 0 || zpack_raw(o, e[i].size);
		zip_source_t *src = raw ? zpack_source(za, zp, i) :
		    zip_source_file(za, e[i].path, 0, -1);
		zip_int64_t idx;

		assert_non_null(src);
		idx = zip_file_add(za, e[i].name, src, ZIP_FL_ENC_UTF_8);
		assert_int_equal(idx, i);
		assert_int_equal(zip_set_file_compression(za, (zip_uint64_t)idx, o->method,
		    o->method == ZIP_CM_STORE ? 0 : (zip_uint32_t)o->level), 0);
		assert_int_equal(zip_file_set_mtime(za, (zip_uint64_t)idx, ENTRY_TIME, 0), 0);
		if (o->password)
			assert_int_equal(zip_file_set_encryption(za, (zip_uint64_t)idx,
			    ZIP_EM_AES_256, raw ? NULL : o->password), 0);
	}
	zpack_start(zp);
	if ((*rc = zip_close(za)) < 0)
		zip_discard(za);
	zpack_out(zp, NULL);
	return zp;
}

static zip_t *
reopen(const char *path)
{
	int zerr;
	zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);

	assert_non_null(za);
	return za;
}

/* zpack_check of the archive at path: its result, the message in err. */
static int
check(struct zpack *zp, const char *path, char *err, size_t errlen)
{
	zip_t *za = reopen(path);
	uint64_t hash = 0;
	int rc;

	err[0] = '\0';
	rc = zpack_check(zp, za, path, &hash, err, errlen);
	zip_discard(za);
	/* The hash it gives is the whole file's. */
	if (rc == 0) {
		size_t n;
		unsigned char *p = slurp(path, &n);

		assert_true(hash == XXH3_64bits(p, n));
		free(p);
	}
	return rc;
}

/* Entry i of za read whole: decrypted and decompressed (flags 0), or as
 * it is stored (ZIP_FL_ENCRYPTED).  NULL when libzip refuses. */
static unsigned char *
read_entry(zip_t *za, int i, zip_flags_t flags, const char *password, size_t *n)
{
	zip_file_t *zf = zip_fopen_index_encrypted(za, (zip_uint64_t)i, flags, password);
	size_t cap = 1 << 16, got = 0;
	unsigned char *p;
	zip_int64_t r;

	if (!zf)
		return NULL;
	p = xmalloc(cap);
	while ((r = zip_fread(zf, p + got, cap - got)) > 0)
		if ((got += (size_t)r) == cap)
			p = xrealloc(p, cap *= 2);
	zip_fclose(zf);
	if (r < 0) {
		free(p);
		return NULL;
	}
	*n = got;
	return p;
}

/* The archive at path holds the files which[0..n) as e says, in order:
 * each reads back as the file (libzip checking its CRC), and its record
 * in e is what libzip reads: the file's size and CRC, the length and
 * XXH3-64 of the bytes stored. */
static void
assert_holds(struct fx *f, const char *path, const int *which, const struct zpack_entry *e, int n)
{
	zip_t *za = reopen(path);

	assert_int_equal(zip_get_num_entries(za, 0), n);
	for (int i = 0; i < n; i++) {
		const unsigned char *want = f->data[which[i]];
		size_t size = files[which[i]].size, got;
		unsigned char *p;
		zip_stat_t st;

		assert_int_equal(zip_stat_index(za, (zip_uint64_t)i, 0, &st), 0);
		assert_string_equal(st.name, files[which[i]].name);
		assert_int_equal(st.comp_method, f->o.method);
		assert_int_equal(st.encryption_method, f->o.password ? ZIP_EM_AES_256 : ZIP_EM_NONE);
		assert_int_equal(st.mtime, ENTRY_TIME);
		assert_int_equal(st.size, size);

		p = read_entry(za, i, 0, f->o.password, &got);
		assert_non_null(p);
		assert_int_equal(got, size);
		assert_memory_equal(p, want, size);
		free(p);

		assert_int_equal(e[i].size, size);
		assert_int_equal(e[i].crc, libdeflate_crc32(0, want, size));
		if (!f->o.password || size >= 20)
			assert_int_equal(st.crc, e[i].crc);
		assert_int_equal(e[i].comp_size, st.comp_size);
		if (f->o.method == ZIP_CM_STORE)
			assert_int_equal(e[i].comp_size, size);
		assert_int_not_equal(e[i].comp_hash, 0);
		p = read_entry(za, i, ZIP_FL_ENCRYPTED, NULL, &got);
		assert_non_null(p);
		assert_int_equal(got, st.comp_size);
		assert_int_equal(e[i].comp_hash, XXH3_64bits(p, got));
		free(p);
	}
	zip_discard(za);
}

/* Archive A of a, b and d; zpack_check passes.  Its records in e. */
static void
make_a(struct fx *f, struct zpack_entry *e)
{
	struct zpack *zp;
	char err[512];
	int rc;

	entries(f, in_a, 3, e);
	zp = pack(f->zip[0], &f->o, e, 3, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_null(zpack_error(zp, NULL));
	assert_int_equal(check(zp, f->zip[0], err, sizeof(err)), 0);
	zpack_free(zp);
}

/* Entries of a, b, c and d, where a, b and d are copied out of A by their
 * records ra; c is made. */
static void
copy_entries(struct fx *f, const struct zpack_entry *ra, struct zpack_entry *e)
{
	entries(f, in_c, 4, e);
	for (int i = 0, j = 0; i < 4; i++) {
		if (in_c[i] == FC)
			continue;
		e[i].from = j;
		e[i].size = ra[j].size;
		e[i].crc = ra[j].crc;
		e[i].comp_size = ra[j].comp_size;
		e[i].comp_hash = ra[j].comp_hash;
		j++;
	}
}

/* Each entry is made in the archive's method (and encrypted), reads back
 * as its file, zpack_check passes, and the records are filled in. */
static void
test_made(void **state)
{
	struct fx *f = *state;
	struct zpack_entry e[3];

	/* Outside sched_run: the entries are made on this thread. */
	assert_false(sched_borrow());
	make_a(f, e);
	assert_holds(f, f->zip[0], in_a, e, 3);
}

/* A, then B of A's three entries copied plus c made, and C of all four
 * made from the files: B is C, byte for byte.  The copies are read from
 * A only: their files are emptied before B is written. */
static void
test_copy(void **state)
{
	struct fx *f = *state;
	struct zpack_entry ra[3], e[4];
	struct zpack *zp;
	unsigned char *b, *c;
	size_t nb, nc;
	char err[512];
	zip_t *old;
	int rc;

	make_a(f, ra);

	entries(f, in_c, 4, e);
	zp = pack(f->zip[2], &f->o, e, 4, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(check(zp, f->zip[2], err, sizeof(err)), 0);
	zpack_free(zp);

	copy_entries(f, ra, e);
	for (int i = 0; i < 4; i++)
		if (e[i].from >= 0)
			assert_int_equal(truncate(e[i].path, 0), 0);
	old = reopen(f->zip[0]);
	zp = pack(f->zip[1], &f->o, e, 4, old, &rc);
	assert_int_equal(rc, 0);
	assert_null(zpack_error(zp, NULL));
	assert_int_equal(check(zp, f->zip[1], err, sizeof(err)), 0);
	zpack_free(zp);
	zip_discard(old);
	/* the copies' records stay those of A; c's is filled in */
	for (int i = 0, j = 0; i < 4; i++) {
		if (in_c[i] == FC) {
			assert_int_not_equal(e[i].comp_hash, 0);
			continue;
		}
		assert_int_equal(e[i].crc, ra[j].crc);
		assert_int_equal(e[i].comp_size, ra[j].comp_size);
		assert_int_equal(e[i].comp_hash, ra[j].comp_hash);
		j++;
	}
	assert_holds(f, f->zip[1], in_c, e, 4);

	b = slurp(f->zip[1], &nb);
	c = slurp(f->zip[2], &nc);
	assert_int_equal(nb, nc);
	assert_memory_equal(b, c, nb);
	free(b);
	free(c);
}

/* A copy whose bytes are not those recorded (the hash one bit off, or one
 * byte longer than recorded) fails the archive and is said to be a copy,
 * by its name; no archive is left. */
static void
test_bad_record(void **state)
{
	struct fx *f = *state;
	struct zpack_entry ra[3], e[4];
	struct zpack *zp;
	int copy, rc;
	const char *why;
	zip_t *old;

	make_a(f, ra);
	old = reopen(f->zip[0]);
	for (int bad = 0; bad < 2; bad++) {
		copy_entries(f, ra, e);
		if (bad == 0)
			e[3].comp_hash ^= 1u << 17;
		else
			e[3].comp_size--;
		zp = pack(f->zip[1], &f->o, e, 4, old, &rc);
		assert_int_equal(rc, -1);
		why = zpack_error(zp, &copy);
		assert_non_null(why);
		assert_int_equal(copy, 1);
		assert_non_null(strstr(why, files[FD].name));
		assert_int_equal(access(f->zip[1], F_OK), -1);
		zpack_free(zp);
	}
	zip_discard(old);
}

/* A file grown or shrunk after its lstat fails the archive, naming the
 * file, and is not a copy's failure. */
static void
test_changed(void **state)
{
	struct fx *f = *state;
	static const int delta[] = { 1, -1 };
	struct zpack_entry e[3];
	struct zpack *zp;
	int copy, rc;
	const char *why;

	/* room for the byte more */
	f->data[FD] = xrealloc(f->data[FD], files[FD].size + 1);
	for (int k = 0; k < 2; k++) {
		entries(f, in_a, 3, e);
		put(f->path[FD], f->data[FD], files[FD].size + (size_t)delta[k]);
		zp = pack(f->zip[0], &f->o, e, 3, NULL, &rc);
		assert_int_equal(rc, -1);
		why = zpack_error(zp, &copy);
		assert_non_null(why);
		assert_int_equal(copy, 0);
		assert_non_null(strstr(why, f->path[FD]));
		assert_int_equal(access(f->zip[0], F_OK), -1);
		zpack_free(zp);
		put(f->path[FD], f->data[FD], files[FD].size);
	}
}

/* A FIFO where a file was looked at, said to be empty or of 10 bytes:
 * the archive fails at once, no writer awaited, naming the path. */
static void
test_fifo(void **state)
{
	struct fx *f = *state;
	static const int64_t sizes[] = { 0, 10 };
	struct zpack_entry e[3];
	struct zpack *zp;
	int copy, rc;
	const char *why;

	assert_int_equal(unlink(f->path[FB]), 0);
	assert_int_equal(mkfifo(f->path[FB], 0600), 0);
	for (int k = 0; k < 2; k++) {
		entries(f, in_a, 3, e);
		e[1].size = sizes[k];
		/* a blocking open or read would wait for a writer forever:
		 * SIGALRM ends the test instead */
		alarm(30);
		zp = pack(f->zip[0], &f->o, e, 3, NULL, &rc);
		alarm(0);
		assert_int_equal(rc, -1);
		why = zpack_error(zp, &copy);
		assert_non_null(why);
		assert_int_equal(copy, 0);
		assert_non_null(strstr(why, f->path[FB]));
		zpack_free(zp);
	}
}

/* A link put where a file was looked at is not followed, though it leads
 * to a file of the size looked at: the archive fails, naming the path. */
static void
test_symlink(void **state)
{
	struct fx *f = *state;
	struct zpack_entry e[3];
	struct zpack *zp;
	char *other = xasprintf("%s/other", f->dir);
	int copy, rc;
	const char *why;

	entries(f, in_a, 3, e);
	put(other, f->data[FB], files[FB].size);
	assert_int_equal(unlink(f->path[FB]), 0);
	assert_int_equal(symlink(other, f->path[FB]), 0);
	zp = pack(f->zip[0], &f->o, e, 3, NULL, &rc);
	assert_int_equal(rc, -1);
	why = zpack_error(zp, &copy);
	assert_non_null(why);
	assert_int_equal(copy, 0);
	assert_non_null(strstr(why, f->path[FB]));
	zpack_free(zp);
	free(other);
}

/* Byte 5 of entry 0's data in the archive at path, flipped. */
static void
flip_first(const char *path)
{
	size_t n;
	unsigned char *p = slurp(path, &n);
	size_t off = 30 + (size_t)(p[26] | p[27] << 8) + (size_t)(p[28] | p[29] << 8) + 5;

	assert_memory_equal(p, "PK\3\4", 4);
	assert_true(off < n);
	p[off] ^= 0x04;
	put(path, p, n);
	free(p);
}

/* zpack_check checks the bytes as the writer sent them to the file, and
 * reads the file back when some were written again after (an entry over
 * zfd's window): then one byte changed in the file is found and its entry
 * named, though libzip's consistency check opens the archive. */
static void
test_check(void **state)
{
	struct fx *f = *state;
	struct zpack_entry e[3];
	struct zpack *zp;
	char err[512];
	int rc;

	entries(f, in_a, 3, e);
	zp = pack(f->zip[0], &f->o, e, 3, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(check(zp, f->zip[0], err, sizeof(err)), 0);
	zpack_free(zp);

	entries(f, in_big, 2, e);
	zp = pack(f->zip[0], &f->o, e, 2, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(check(zp, f->zip[0], err, sizeof(err)), 0);
	flip_first(f->zip[0]);
	assert_int_equal(check(zp, f->zip[0], err, sizeof(err)), -1);
	assert_non_null(strstr(err, files[FE].name));
	zpack_free(zp);
}

/* Stored with a password, the files go to libzip (zip_source_file, as the
 * zip rule does): no record is made, and zpack_check reads them through
 * libzip, which checks them, and so still finds a changed byte. */
static void
test_left_to_libzip(void **state)
{
	struct fx *f = *state;
	struct zpack_entry e[3];
	struct zpack *zp;
	char err[512];
	zip_t *za;
	int rc;

	entries(f, in_a, 3, e);
	zp = pack(f->zip[0], &f->o, e, 3, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(check(zp, f->zip[0], err, sizeof(err)), 0);
	za = reopen(f->zip[0]);
	for (int i = 0; i < 3; i++) {
		size_t size = files[in_a[i]].size, got;
		unsigned char *p = read_entry(za, i, 0, PASSWORD, &got);

		assert_int_equal(e[i].comp_hash, 0);
		assert_non_null(p);
		assert_int_equal(got, size);
		assert_memory_equal(p, f->data[in_a[i]], size);
		free(p);
	}
	zip_discard(za);
	flip_first(f->zip[0]);
	assert_int_equal(check(zp, f->zip[0], err, sizeof(err)), -1);
	assert_non_null(strstr(err, files[FA].name));
	zpack_free(zp);
}

/* Which files zpack takes: up to ZPACK_MAX bytes, and not stored ones
 * with a password (libzip would take the ciphertext's CRC). */
static void
test_raw(void **state)
{
	static const struct zpack_opts *opts[] = { &o_deflate, &o_bzip2, &o_store, &o_aes,
		&o_bzip2_aes };

	(void)state;
	for (int i = 0; i < 5; i++) {
		assert_true(zpack_raw(opts[i], 0));
		assert_true(zpack_raw(opts[i], 1));
		assert_true(zpack_raw(opts[i], ZPACK_MAX));
		assert_false(zpack_raw(opts[i], (int64_t)ZPACK_MAX + 1));
		assert_false(zpack_raw(opts[i], INT64_MAX));
	}
	assert_false(zpack_raw(&o_store_aes, 0));
	assert_false(zpack_raw(&o_store_aes, 600000));
}

#define WITH(f, o) { #f "(" #o ")", f, setup, teardown, (void *)&o }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		WITH(test_made, o_deflate),
		WITH(test_made, o_bzip2),
		WITH(test_made, o_store),
		WITH(test_made, o_aes),
		WITH(test_copy, o_deflate),
		WITH(test_copy, o_bzip2),
		WITH(test_copy, o_aes),
		WITH(test_bad_record, o_deflate),
		WITH(test_bad_record, o_aes),
		WITH(test_changed, o_deflate),
		WITH(test_changed, o_store),
		WITH(test_fifo, o_deflate),
		WITH(test_fifo, o_store),
		WITH(test_symlink, o_deflate),
		WITH(test_check, o_deflate),
		WITH(test_check, o_bzip2),
		WITH(test_check, o_store),
		WITH(test_check, o_aes),
		WITH(test_left_to_libzip, o_store_aes),
		cmocka_unit_test(test_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
