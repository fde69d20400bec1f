/*
 * test-zdeflate.c - archive entries deflated by libdeflate (rules/zdeflate.c)
 * through real libzip archives in a temporary folder: what libzip writes
 * from them reads back whole through libzip's own inflate and CRC check;
 * zdeflate_check accepts them and finds a flipped byte; entries it cannot
 * check are left to zip_fread; a file that changed since it was looked at
 * fails the archive.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include <cmocka.h>
#include "util.h"
#include "zdeflate.h"

#define ENTRY_TIME ((time_t)315662400)

struct fx {
	char dir[64];
	char *file[3], *zip;
	size_t size[3];
	unsigned char *data[3];
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
write_file(const char *path, const unsigned char *p, size_t n)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	static const size_t sizes[3] = { 1, 70000, 600000 };

	strcpy(f->dir, "/tmp/test-zdeflate.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	for (int i = 0; i < 3; i++) {
		f->size[i] = sizes[i];
		f->data[i] = slice(sizes[i], (unsigned)i + 1);
		f->file[i] = xasprintf("%s/in%d.dcm", f->dir, i);
		write_file(f->file[i], f->data[i], f->size[i]);
	}
	f->zip = xasprintf("%s/out.zip", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 3; i++) {
		unlink(f->file[i]);
		free(f->file[i]);
		free(f->data[i]);
	}
	unlink(f->zip);
	free(f->zip);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Write the three files as deflated entries e0, e1, e2; zip_close's result. */
static int
write_zip(struct fx *f, struct zdeflate *zd, int64_t size_of_2)
{
	zip_t *za;
	int zerr;

	unlink(f->zip);
	za = zip_open(f->zip, ZIP_CREATE | ZIP_EXCL, &zerr);
	assert_non_null(za);
	for (int i = 0; i < 3; i++) {
		char name[8];
		int64_t size = i == 2 ? size_of_2 : (int64_t)f->size[i];
		zip_source_t *src = zdeflate_source(za, zd, f->file[i], size, ENTRY_TIME);
		zip_int64_t idx;

		assert_non_null(src);
		snprintf(name, sizeof(name), "e%d", i);
		idx = zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8);
		assert_true(idx >= 0);
		assert_int_equal(zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 1), 0);
		assert_int_equal(zip_file_set_mtime(za, (zip_uint64_t)idx, ENTRY_TIME, 0), 0);
	}
	if (zip_close(za) < 0) {
		zip_discard(za);
		return -1;
	}
	return 0;
}

/* Read entry i back with libzip's own inflate (it checks the CRC). */
static void
assert_entry(zip_t *za, struct fx *f, int i)
{
	unsigned char *buf = xmalloc(f->size[i] + 1);
	zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)i, 0);
	zip_int64_t n, got = 0;
	zip_stat_t st;

	assert_non_null(zf);
	while ((n = zip_fread(zf, buf + got, f->size[i] + 1 - (size_t)got)) > 0)
		got += n;
	assert_true(n == 0);
	assert_int_equal(got, f->size[i]);
	assert_memory_equal(buf, f->data[i], f->size[i]);
	zip_fclose(zf);
	assert_int_equal(zip_stat_index(za, (zip_uint64_t)i, 0, &st), 0);
	assert_int_equal(st.comp_method, ZIP_CM_DEFLATE);
	assert_true(st.comp_size < st.size || st.size < 16);
	free(buf);
}

static void
test_roundtrip(void **state)
{
	struct fx *f = *state;
	struct zdeflate *zd = zdeflate_new(1);
	char err[256];
	zip_t *za;
	int zerr;

	assert_non_null(zd);
	assert_int_equal(write_zip(f, zd, (int64_t)f->size[2]), 0);
	za = zip_open(f->zip, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
	assert_non_null(za);
	assert_int_equal(zip_get_num_entries(za, 0), 3);
	for (int i = 0; i < 3; i++) {
		assert_entry(za, f, i);
		assert_int_equal(zdeflate_check(za, zd, (zip_uint64_t)i, err, sizeof(err)), 1);
	}
	zip_discard(za);
	zdeflate_free(zd);
}

/* The whole of file path; *n its size. */
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

/* The same input gives the same archive, byte for byte. */
static void
test_deterministic(void **state)
{
	struct fx *f = *state;
	struct zdeflate *zd = zdeflate_new(6);
	unsigned char *a, *b;
	size_t na, nb;

	assert_non_null(zd);
	assert_int_equal(write_zip(f, zd, (int64_t)f->size[2]), 0);
	a = slurp(f->zip, &na);
	assert_int_equal(write_zip(f, zd, (int64_t)f->size[2]), 0);
	b = slurp(f->zip, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	free(a);
	free(b);
	zdeflate_free(zd);
}

/* A byte flipped inside an entry's compressed data is found. */
static void
test_corrupt(void **state)
{
	struct fx *f = *state;
	struct zdeflate *zd = zdeflate_new(1);
	char err[256] = "";
	zip_t *za;
	zip_stat_t st;
	unsigned char c;
	int zerr, fd, r;
	off_t at;

	assert_non_null(zd);
	assert_int_equal(write_zip(f, zd, (int64_t)f->size[2]), 0);
	/* e2 is the last entry: its data ends where the central directory
	 * begins; flip a byte in its middle. */
	za = zip_open(f->zip, ZIP_RDONLY, &zerr);
	assert_non_null(za);
	assert_int_equal(zip_stat_index(za, 2, 0, &st), 0);
	zip_discard(za);
	{
		struct stat fst;

		assert_int_equal(stat(f->zip, &fst), 0);
		/* cdir: 3 entries x (46 + 2) bytes, end record 22 */
		at = fst.st_size - 22 - 3 * 48 - (off_t)st.comp_size / 2;
	}
	fd = open(f->zip, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
	za = zip_open(f->zip, ZIP_RDONLY, &zerr);
	assert_non_null(za);
	assert_int_equal(zdeflate_check(za, zd, 0, err, sizeof(err)), 1);
	r = zdeflate_check(za, zd, 2, err, sizeof(err));
	assert_int_equal(r, -1);
	assert_non_null(strstr(err, "e2: "));
	zip_discard(za);
	zdeflate_free(zd);
}

/* A stored entry is not for zdeflate_check: it says so (0). */
static void
test_not_deflated(void **state)
{
	struct fx *f = *state;
	struct zdeflate *zd = zdeflate_new(1);
	char err[256];
	zip_t *za;
	int zerr;

	assert_non_null(zd);
	unlink(f->zip);
	za = zip_open(f->zip, ZIP_CREATE | ZIP_EXCL, &zerr);
	assert_non_null(za);
	assert_true(zip_file_add(za, "s", zip_source_file(za, f->file[1], 0, -1), 0) == 0);
	assert_int_equal(zip_set_file_compression(za, 0, ZIP_CM_STORE, 0), 0);
	assert_int_equal(zip_close(za), 0);
	za = zip_open(f->zip, ZIP_RDONLY, &zerr);
	assert_non_null(za);
	assert_int_equal(zdeflate_check(za, zd, 0, err, sizeof(err)), 0);
	zip_discard(za);
	zdeflate_free(zd);
}

/* A file whose size changed since the caller looked fails the archive:
 * an entry is never written from a file in the middle of changing. */
static void
test_changed(void **state)
{
	struct fx *f = *state;
	struct zdeflate *zd = zdeflate_new(1);

	assert_non_null(zd);
	assert_int_equal(write_zip(f, zd, (int64_t)f->size[2] - 1), -1);
	assert_int_equal(write_zip(f, zd, (int64_t)f->size[2] + 1), -1);
	zdeflate_free(zd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_deflated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
