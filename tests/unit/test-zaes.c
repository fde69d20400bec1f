/*
 * test-zaes.c - WinZip AES-256 entries made by rules/zaes.c, handed to real
 * libzip as raw data (it copies them as they are) and read back through
 * libzip's own decryption: the bytes come back, the HMAC and the password
 * verifier are checked and a wrong password or a changed byte refused;
 * the same entry gives the same output and the same archive, another name
 * or another byte another salt; 7-Zip, where installed, tests the archive
 * too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libdeflate.h>
#include <zip.h>
#include <cmocka.h>
#include "rmtree.h"
#include "util.h"
#include "zaes.h"

#define ENTRY_TIME ((time_t)315662400)
#define PASSWORD "correct horse"
#define WRONG "correct horsf"

enum { NENTRY = 3 };

/* One entry: its bytes, deflated, and encrypted as the archive holds them. */
struct entry {
	char name[16];
	unsigned char *data, *comp, *enc;
	size_t size, clen, elen;
	uint32_t crc;
};

struct fx {
	char dir[64];
	char *zip;
	struct entry e[NENTRY];
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

/* Deflate e->data and encrypt the result under e->name. */
static void
entry_seal(struct entry *e)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
	size_t bound;

	assert_non_null(c);
	bound = libdeflate_deflate_compress_bound(c, e->size);
	free(e->comp);
	e->comp = xmalloc(bound);
	e->clen = libdeflate_deflate_compress(c, e->data, e->size, e->comp, bound);
	assert_true(e->clen > 0);
	libdeflate_free_compressor(c);
	e->crc = libdeflate_crc32(0, e->data, e->size);
	e->elen = e->clen + ZAES_OVERHEAD;
	free(e->enc);
	e->enc = xmalloc(e->elen);
	assert_int_equal(zaes_encrypt(PASSWORD, e->name, e->comp, e->clen, e->enc), 0);
}

static int
setup(void **state)
{
	/* 1 byte: libzip writes an AES entry under 20 bytes with CRC 0 */
	static const size_t sizes[NENTRY] = { 1, 5000, 600000 };
	struct fx *f = xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/test-zaes.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->zip = xasprintf("%s/out.zip", f->dir);
	for (int i = 0; i < NENTRY; i++) {
		struct entry *e = &f->e[i];

		snprintf(e->name, sizeof(e->name), "e%d.dcm", i);
		e->size = sizes[i];
		e->data = slice(e->size, (unsigned)i + 1);
		entry_seal(e);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < NENTRY; i++) {
		free(f->e[i].data);
		free(f->e[i].comp);
		free(f->e[i].enc);
	}
	assert_int_equal(rmtree(f->dir), 0);
	free(f->zip);
	free(f);
	return 0;
}

/* A libzip source for an entry's encrypted bytes: its stat says they are
 * AES-256 of deflated data, so libzip copies them as they are. */
struct asrc {
	const struct entry *e;
	size_t pos;
	zip_error_t error;
};

static zip_int64_t
asrc_cb(void *arg, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
	struct asrc *s = arg;
	zip_stat_t *st;
	size_t n;

	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		s->pos = 0;
		return 0;
	case ZIP_SOURCE_READ:
		n = s->e->elen - s->pos < len ? s->e->elen - s->pos : (size_t)len;
		memcpy(data, s->e->enc + s->pos, n);
		s->pos += n;
		return (zip_int64_t)n;
	case ZIP_SOURCE_CLOSE:
		return 0;
	case ZIP_SOURCE_STAT:
		st = data;
		zip_stat_init(st);
		st->size = s->e->size;
		st->comp_size = s->e->elen;
		st->crc = s->e->crc;
		st->mtime = ENTRY_TIME;
		st->comp_method = ZIP_CM_DEFLATE;
		st->encryption_method = ZIP_EM_AES_256;
		st->valid = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_CRC | ZIP_STAT_MTIME |
		    ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
		return sizeof(*st);
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&s->error, data, len);
	case ZIP_SOURCE_FREE:
		zip_error_fini(&s->error);
		free(s);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ,
		    ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
	default:
		zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

/* Write the entries to f->zip, as the zip rule would. */
static void
write_zip(struct fx *f)
{
	zip_t *za;
	int zerr;

	unlink(f->zip);
	za = zip_open(f->zip, ZIP_CREATE | ZIP_EXCL, &zerr);
	assert_non_null(za);
	for (int i = 0; i < NENTRY; i++) {
		struct asrc *s = xcalloc(1, sizeof(*s));
		zip_source_t *src;
		zip_int64_t idx;

		s->e = &f->e[i];
		zip_error_init(&s->error);
		src = zip_source_function(za, asrc_cb, s);
		assert_non_null(src);
		idx = zip_file_add(za, f->e[i].name, src, ZIP_FL_ENC_UTF_8);
		assert_true(idx >= 0);
		assert_int_equal(zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 1), 0);
		/* No password: the source's method equals the entry's, so
		 * libzip copies the bytes rather than encrypting again. */
		assert_int_equal(zip_file_set_encryption(za, (zip_uint64_t)idx, ZIP_EM_AES_256, NULL), 0);
		assert_int_equal(zip_file_set_mtime(za, (zip_uint64_t)idx, ENTRY_TIME, 0), 0);
	}
	assert_int_equal(zip_close(za), 0);
}

/* Read entry i whole with password and compare it with want.  Flags 0:
 * decrypted and inflated, libzip checking the CRC (from 20 bytes); it
 * stops at the end of the deflate stream and so never reaches the HMAC
 * (libzip 1.7.3).  ZIP_FL_COMPRESSED: decrypted only, read to the end, where
 * libzip checks the HMAC.  ZIP_ER_OK when it came back, else libzip's
 * error. */
static int
read_entry(zip_t *za, int i, zip_flags_t flags, const char *password,
    const unsigned char *want, size_t n)
{
	unsigned char *buf = xmalloc(n + 1);
	zip_file_t *zf = zip_fopen_index_encrypted(za, (zip_uint64_t)i, flags, password);
	zip_int64_t r, got = 0;
	int err;

	if (!zf) {
		free(buf);
		return zip_error_code_zip(zip_get_error(za));
	}
	while ((r = zip_fread(zf, buf + got, n + 1 - (size_t)got)) > 0)
		got += r;
	err = r < 0 ? zip_error_code_zip(zip_file_get_error(zf)) : ZIP_ER_OK;
	zip_fclose(zf);
	if (err == ZIP_ER_OK) {
		assert_int_equal(got, n);
		assert_memory_equal(buf, want, n);
	}
	free(buf);
	return err;
}

static zip_t *
open_zip(struct fx *f)
{
	int zerr;
	zip_t *za = zip_open(f->zip, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);

	assert_non_null(za);
	assert_int_equal(zip_get_num_entries(za, 0), NENTRY);
	return za;
}

/* libzip reads every entry back with the password: the directory says
 * AES-256 over deflate, the bytes inflate to the original, the HMAC holds. */
static void
test_roundtrip(void **state)
{
	struct fx *f = *state;
	zip_t *za;

	write_zip(f);
	za = open_zip(f);
	for (int i = 0; i < NENTRY; i++) {
		struct entry *e = &f->e[i];
		zip_stat_t st;

		assert_int_equal(zip_stat_index(za, (zip_uint64_t)i, 0, &st), 0);
		assert_string_equal(st.name, e->name);
		assert_int_equal(st.encryption_method, ZIP_EM_AES_256);
		assert_int_equal(st.comp_method, ZIP_CM_DEFLATE);
		assert_int_equal(st.size, e->size);
		assert_int_equal(st.comp_size, e->elen);
		/* WinZip's AE-2, which libzip writes, has no CRC under 20
		 * bytes (the HMAC stands for it) */
		if (e->size < 20) {
			assert_false(st.valid & ZIP_STAT_CRC);
		} else {
			assert_true(st.valid & ZIP_STAT_CRC);
			assert_int_equal(st.crc, e->crc);
		}
		assert_int_equal(read_entry(za, i, 0, PASSWORD, e->data, e->size), ZIP_ER_OK);
		assert_int_equal(read_entry(za, i, ZIP_FL_COMPRESSED, PASSWORD, e->comp, e->clen),
		    ZIP_ER_OK);
	}
	zip_discard(za);
}

/* A wrong password, or none, is refused: the verifier differs (or, once
 * in 65536 passwords, the HMAC). */
static void
test_wrong_password(void **state)
{
	struct fx *f = *state;
	zip_t *za;

	write_zip(f);
	za = open_zip(f);
	for (int i = 0; i < NENTRY; i++) {
		struct entry *e = &f->e[i];

		assert_int_not_equal(read_entry(za, i, 0, WRONG, e->data, e->size), ZIP_ER_OK);
		assert_int_not_equal(read_entry(za, i, ZIP_FL_COMPRESSED, WRONG, e->comp, e->clen),
		    ZIP_ER_OK);
		assert_int_equal(read_entry(za, i, 0, NULL, e->data, e->size), ZIP_ER_NOPASSWD);
	}
	assert_int_equal(read_entry(za, 2, 0, WRONG, f->e[2].data, f->e[2].size),
	    ZIP_ER_WRONGPASSWD);
	zip_discard(za);
}

/* A byte changed in the ciphertext or in the HMAC is found by libzip. */
static void
test_tampered(void **state)
{
	struct fx *f = *state;
	struct entry *e = &f->e[2];
	zip_t *za;

	/* the middle of the ciphertext: inflate, the CRC and the HMAC
	 * all see it */
	e->enc[e->elen / 2] ^= 0x10;
	write_zip(f);
	za = open_zip(f);
	assert_int_not_equal(read_entry(za, 2, 0, PASSWORD, e->data, e->size), ZIP_ER_OK);
	assert_int_equal(read_entry(za, 2, ZIP_FL_COMPRESSED, PASSWORD, e->comp, e->clen),
	    ZIP_ER_CRC);
	assert_int_equal(read_entry(za, 1, 0, PASSWORD, f->e[1].data, f->e[1].size), ZIP_ER_OK);
	zip_discard(za);
	e->enc[e->elen / 2] ^= 0x10;

	/* the last byte of the HMAC: only the HMAC sees it */
	e->enc[e->elen - 1] ^= 0x01;
	write_zip(f);
	za = open_zip(f);
	assert_int_equal(read_entry(za, 2, ZIP_FL_COMPRESSED, PASSWORD, e->comp, e->clen),
	    ZIP_ER_CRC);
	zip_discard(za);
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

/* The same entry gives the same bytes, and the same entries the same
 * archive; another name or one other byte gives another salt (and so
 * another key stream). */
static void
test_deterministic(void **state)
{
	struct fx *f = *state;
	struct entry *e = &f->e[1];
	unsigned char *a = xmalloc(e->elen), *b = xmalloc(e->elen);
	unsigned char *za, *zb;
	size_t na, nb;

	assert_int_equal(zaes_encrypt(PASSWORD, e->name, e->comp, e->clen, a), 0);
	assert_memory_equal(a, e->enc, e->elen);
	assert_int_equal(zaes_encrypt(PASSWORD, "e1.dcn", e->comp, e->clen, b), 0);
	assert_memory_not_equal(a, b, 16);
	e->comp[e->clen - 1] ^= 1;
	assert_int_equal(zaes_encrypt(PASSWORD, e->name, e->comp, e->clen, b), 0);
	assert_memory_not_equal(a, b, 16);
	e->comp[e->clen - 1] ^= 1;
	/* "e1.dcm" || 0 || bytes: moving a byte between name and data
	 * changes the input */
	assert_int_equal(zaes_encrypt(PASSWORD, "e1.dc", e->comp, e->clen, b), 0);
	assert_memory_not_equal(a, b, 16);
	free(a);
	free(b);

	write_zip(f);
	za = slurp(f->zip, &na);
	for (int i = 0; i < NENTRY; i++)
		entry_seal(&f->e[i]);
	write_zip(f);
	zb = slurp(f->zip, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(za, zb, na);
	free(za);
	free(zb);
}

/* 7-Zip's name: 7z from p7zip-full, 7zz from Debian's 7zip; NULL when
 * neither is installed. */
static const char *
sevenzip(void)
{
	if (system("command -v 7z >/dev/null 2>&1") == 0)
		return "7z";
	if (system("command -v 7zz >/dev/null 2>&1") == 0)
		return "7zz";
	return NULL;
}

/* `7z t` of f->zip with password; its exit status, its output shown when
 * it is not the one expected. */
static int
sevenzip_test(struct fx *f, const char *cmd, const char *password, int want)
{
	char *line = xasprintf("%s t -p'%s' '%s' >'%s/7z.log' 2>&1", cmd, password, f->zip, f->dir);
	int st = system(line);

	free(line);
	assert_true(WIFEXITED(st));
	if ((WEXITSTATUS(st) == 0) != (want == 0)) {
		line = xasprintf("cat '%s/7z.log' >&2", f->dir);
		(void)system(line);
		free(line);
	}
	return WEXITSTATUS(st);
}

/* Another implementation agrees: 7-Zip tests the archive (it checks the
 * verifier, the HMAC and, above 20 bytes, the CRC) and refuses a wrong
 * password and a changed HMAC. */
static void
test_7zip(void **state)
{
	struct fx *f = *state;
	struct entry *e = &f->e[2];
	const char *cmd = sevenzip();

	if (!cmd) {
		print_message("note: neither 7z nor 7zz is installed (apt-get install 7zip); "
		    "the archive was checked with libzip alone\n");
		return;
	}
	write_zip(f);
	assert_int_equal(sevenzip_test(f, cmd, PASSWORD, 0), 0);
	assert_int_not_equal(sevenzip_test(f, cmd, WRONG, 1), 0);
	e->enc[e->elen - 1] ^= 0x01;
	write_zip(f);
	assert_int_not_equal(sevenzip_test(f, cmd, PASSWORD, 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_7zip, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
