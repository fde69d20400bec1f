/*
 * fuzz-dicomweb.c - libFuzzer target for the QIDO-RS answer parsing of
 * source/dicomweb-qido.c: the input is one answer's body, given to dw_qido_page
 * as the first page and then again as the next (a server that ignored the
 * offset).  Each object is read as the query reads it, as a study row
 * and as a series row (dw_attr into buffers of the sizes dicomweb.c uses,
 * each its own allocation so a byte too far is caught; dw_attr_dup for
 * the number and description).  An object with a member "x-stop" makes
 * the callback fail.
 * What must hold: dw_attr gives the string values and integers of the
 * attribute's Value, backslash-joined, when they fit in the buffer with
 * their NUL, else "", and dw_attr_dup the same whole, malloc'd (NULL for
 * ""); a failed parse (also of an array with an element nested deeper
 * than QIDO_DEPTH_MAX) is one line "GET url: not a DICOM JSON array: ...";
 * the callback is called once for each object of the array, until it
 * fails, and the result is that failure; the same page again is
 * recognised and none of its objects is read twice; nothing leaks.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dicom.h"
#include "dicomweb-src.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz-dicomweb.c:%d: %s\n", __LINE__, #c); abort(); } } while (0)

static const char url[] = "http://127.0.0.1:8042/dicom-web/studies?PatientID=TH-*&limit=100&offset=0";

/* The attributes dicomweb.c reads, with its buffer sizes: the study row
 * (on_study), then the series row (on_series). */
static const struct { const char *tag; size_t len; } attrs[] = {
	{ "00100020", DCM_ID_MAX }, { "0020000D", DCM_UID_MAX }, { "00080020", 9 },
	{ "00080062", 1024 },
	{ "0020000E", DCM_UID_MAX }, { "00080060", 17 }, { "00201209", 16 },
};

/* The attributes it reads whole, with dw_attr_dup (SeriesNumber,
 * SeriesDescription). */
static const char *const dups[] = { "00200011", "0008103E" };

struct rows {
	size_t calls;             /* objects handed to the callback */
	int stopped;              /* the callback said -1 */
};

/* What dw_attr must give: the Value's strings and integers joined by '\',
 * malloc'd. */
static char *
joined(json_t *obj, const char *tag)
{
	json_t *v = json_object_get(json_object_get(obj, tag), "Value"), *x;
	size_t i, n = 0;
	char *s = calloc(1, 1), num[32];

	CHECK(s);
	json_array_foreach(v, i, x) {
		const char *p = json_is_string(x) ? json_string_value(x) : NULL;
		size_t k;

		if (json_is_integer(x)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(x));
			p = num;
		}
		if (!p)
			continue;
		k = strlen(p);
		s = realloc(s, n + k + 2);
		CHECK(s);
		if (n)
			s[n++] = '\\';
		memcpy(s + n, p, k + 1);
		n += k;
	}
	return s;
}

static int
on_row(void *arg, json_t *obj)
{
	struct rows *r = arg;

	CHECK(!r->stopped && json_is_object(obj));
	r->calls++;
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		char *out = malloc(attrs[i].len), *want = joined(obj, attrs[i].tag);

		CHECK(out);
		memset(out, 'X', attrs[i].len);
		dw_attr(obj, attrs[i].tag, out, attrs[i].len);
		CHECK(memchr(out, '\0', attrs[i].len) != NULL);
		if (strlen(want) < attrs[i].len ? strcmp(out, want) != 0 : out[0] != '\0') {
			fprintf(stderr, "fuzz-dicomweb.c: dw_attr(%s, %zu bytes) gave \"%s\" for a "
			    "value of %zu bytes \"%.80s\"\n", attrs[i].tag, attrs[i].len, out,
			    strlen(want), want);
			abort();
		}
		free(want);
		free(out);
	}
	for (size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
		char *got = dw_attr_dup(obj, dups[i]), *want = joined(obj, dups[i]);

		if (want[0] ? !got || strcmp(got, want) != 0 : got != NULL) {
			fprintf(stderr, "fuzz-dicomweb.c: dw_attr_dup(%s) gave \"%.80s\" for a "
			    "value of %zu bytes \"%.80s\"\n", dups[i], got ? got : "(null)",
			    strlen(want), want);
			abort();
		}
		free(want);
		free(got);
	}
	if (json_object_get(obj, "x-stop")) {
		r->stopped = 1;
		return -1;
	}
	return 0;
}

/* The deepest bracket nesting of a valid JSON text. */
static int
depth(const uint8_t *s, size_t size)
{
	int d = 0, max = 0, str = 0;

	for (size_t i = 0; i < size; i++) {
		if (str && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			str = !str;
		else if (!str && (s[i] == '{' || s[i] == '['))
			max = ++d > max ? d : max;
		else if (!str && (s[i] == '}' || s[i] == ']'))
			d--;
	}
	return max;
}

/* How many objects the array of body holds, and the index of the first
 * with "x-stop" (or the count); -1 if it is not an array, or one of its
 * elements is nested deeper than dw_qido_page takes (the inputs are far
 * smaller than QIDO_VALUE_MAX). */
static long
objects(const uint8_t *data, size_t size, long *stop_at)
{
	json_t *a = json_loadb((const char *)data, size, 0, NULL), *x;
	long n = 0;
	size_t i;

	if (a && depth(data, size) > QIDO_DEPTH_MAX + 1) {
		json_decref(a);
		a = NULL;
	}

	*stop_at = -1;
	if (!json_is_array(a)) {
		json_decref(a);
		return -1;
	}
	json_array_foreach(a, i, x) {
		if (!json_is_object(x))
			continue;
		n++;
		if (*stop_at < 0 && json_object_get(x, "x-stop"))
			*stop_at = n;
	}
	json_decref(a);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rows r = { 0 }, again = { 0 };
	json_t *first = NULL;
	char err[256] = "", err2[256] = "";
	long nobj, stop_at;
	int rc, rc2;

	rc = dw_qido_page(url, (const char *)data, size, &first, on_row, &r, err, sizeof(err));
	nobj = size ? objects(data, size, &stop_at) : 0;
	if (size == 0) {
		CHECK(rc == 0 && r.calls == 0 && first == NULL);
		return 0;
	}
	if (nobj < 0) {
		/* Not an array: one line naming the request. */
		CHECK(rc == -1 && r.calls == 0 && first == NULL);
		CHECK(strncmp(err, "GET ", 4) == 0 && strstr(err, url) &&
		    strstr(err, ": not a DICOM JSON array: "));
		CHECK(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL);
	} else if (stop_at > 0) {
		CHECK(rc == -1 && r.stopped && (long)r.calls == stop_at);
	} else {
		CHECK(rc >= 0 && (long)r.calls == nobj && rc >= nobj && !r.stopped);
		CHECK((rc > 0) == (first != NULL));
	}

	/* The same page again, as the next: seen already, read no more. */
	rc2 = dw_qido_page(url, (const char *)data, size, &first, on_row, &again, err2,
	    sizeof(err2));
	if (nobj < 0) {
		CHECK(rc2 == -1 && strcmp(err, err2) == 0 && first == NULL);
	} else if (first) {
		CHECK(rc2 == 0 && again.calls == 0);
	}
	json_decref(first);
	return 0;
}
