/*
 * fuzz-names.c - libFuzzer target for src/names.c.  The input (up to its
 * first NUL) is a PatientID, and also a file name found in a folder; its
 * first byte picks an [output] delimiter, its last the series count.
 * What must hold: name_encode gives one safe path component (never "",
 * "." or "..", no '/', only [A-Za-z0-9._%-], no leading '.') that
 * name_decode turns back into the ID; name_decode accepts only canonical
 * encodings; archive_parse reads back exactly what archive_name wrote,
 * for every delimiter the config accepts, and whatever it accepts in a
 * folder is the archive_name of what it returns; a name that name_fits
 * stays a file name (NAME_MAX) as an archive with its temp prefix; what
 * uid_is_safe accepts is 1-64 of [A-Za-z0-9._-], not "." or "..".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz-names.c:%d: %s\n", __LINE__, #c); abort(); } } while (0)

enum {
	NAME_MAX_ = 255,          /* a file name, on every filesystem we write */
	TMP_MAX_ = 28,            /* ".thlhp-tmp-<7-digit pid>@<8 hex>-" */
	COUNT_MAX = 999999999,    /* the most digits archive_parse reads */
};

/* Delimiters [output] delimiter accepts: letters, '.', '_' and '-'. */
static const char *const delims[] = {
	"__seriesCount", "_", "-", "__n", "x", ".", "..", "-.", "p", "zip", ".zip", "ip.", "_zi",
	"__seriesCount__seriesCount",
};
static const char dchars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-";

static int
safe_component(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || s[0] == '.')
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%-") == n;
}

/* archive_name(id, delim, n) must read back as (id, n). */
static void
archive_round_trip(const char *id, const char *delim, int n)
{
	char *file = archive_name(id, delim, n), *back;
	int m = -1;

	CHECK(strchr(file, '/') == NULL);
	back = archive_parse(file, delim, &m);
	if (!back || strcmp(back, id) != 0 || m != n) {
		fprintf(stderr, "fuzz-names.c: archive_parse(\"%s\", \"%s\") gave %s%s%s, %d "
		    "(wrote id of %zu bytes, %d)\n", file, delim, back ? "\"" : "",
		    back ? back : "NULL", back ? "\"" : "", m, strlen(id), n);
		abort();
	}
	free(back);
	free(file);
}

/* Whatever archive_parse accepts is the one name of what it returns. */
static void
archive_canonical(const char *file, const char *delim)
{
	int m = -1;
	char *id = archive_parse(file, delim, &m), *again;

	if (!id)
		return;
	CHECK(m >= 1 && m <= COUNT_MAX);
	again = archive_name(id, delim, m);
	if (strcmp(again, file) != 0) {
		fprintf(stderr, "fuzz-names.c: archive_parse(\"%s\", \"%s\") accepted it as %d, "
		    "but that archive is \"%s\"\n", file, delim, m, again);
		abort();
	}
	free(again);
	free(id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *enc, *dec, *file, delim[8];
	const char *d;
	size_t dn;
	int n;

	CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';

	/* The input as a PatientID. */
	enc = name_encode(s);
	CHECK(safe_component(enc));
	dec = name_decode(enc);
	CHECK(dec && strcmp(dec, s) == 0);
	free(dec);
	if (name_fits(s)) {
		file = archive_name(s, "__seriesCount", COUNT_MAX);
		CHECK(strlen(enc) <= NAME_MAX_ && TMP_MAX_ + strlen(file) <= NAME_MAX_);
		free(file);
	}

	/* The input as a UID: safe as it is. */
	if (uid_is_safe(s))
		CHECK(size >= 1 && strlen(s) <= 64 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
		    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
		    strlen(s));

	/* The input as a file name: one ID, one name. */
	if ((dec = name_decode(s))) {
		char *again = name_encode(dec);

		CHECK(strcmp(again, s) == 0);
		free(again);
		free(dec);
	}

	/* Archives, with a delimiter of the list or made of the input. */
	n = size > 0 && data[size - 1] & 1 ? 1 + (int)(data[size - 1] >> 1) % 20 :
	    1 + (int)(((uint32_t)size * 2654435761u) % COUNT_MAX);
	if (size > 0 && data[0] >= 0x80) {
		dn = 1 + (data[0] & 7) % (sizeof(delim) - 1);
		for (size_t i = 0; i < dn; i++)
			delim[i] = dchars[(i + 1 < size ? data[i + 1] : data[0]) % (sizeof(dchars) - 1)];
		delim[dn] = '\0';
		d = delim;
	} else {
		d = delims[(size > 0 ? data[0] : 0) % (sizeof(delims) / sizeof(delims[0]))];
	}
	archive_round_trip(s, d, n);
	archive_round_trip(s, d, 1);
	archive_round_trip(s, d, COUNT_MAX);
	archive_canonical(s, d);
	archive_canonical(s, "__seriesCount");
	free(enc);
	free(s);
	return 0;
}
