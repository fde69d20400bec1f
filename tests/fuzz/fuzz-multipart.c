/*
 * fuzz-multipart.c - libFuzzer target for source/dicomweb/multipart.c.  The first
 * byte picks the boundary ('0'-'7' one of bounds[], else 1-16 bytes of
 * the input made into bchars), the second how the body is cut ('0' whole,
 * '1' byte by byte, else pseudo-random chunks), the third which callback
 * says -1 and when; the rest is the body.  What must hold: the body cut
 * into chunks gives exactly what it gives whole; data comes only between
 * a begin and its one end, never more bytes than were fed; a parse that
 * succeeds ended every part complete; after a callback's -1 nothing is
 * called but the end(0) owed; and multipart_boundary only ever returns
 * a valid boundary.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz-multipart.c:%d: %s\n", __LINE__, #c); abort(); } } while (0)

static const char *const bounds[] = {
	"b", "gc0p4Jq0M2Yt08jU534c0p", "-", "a b", "=_?:()+,./'", "--", "bb",
	"0123456789012345678901234567890123456789012345678901234567890123456789-x",
};
static const char bchars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=? ";

/* What one parse gave, folded into hashes so two parses compare. */
struct run {
	uint64_t h;        /* begin and end events, with each part's data */
	uint64_t dh;       /* the current part's data */
	size_t dn;         /* its length */
	size_t total;      /* data bytes in all */
	size_t fed;        /* bytes fed so far */
	int open, nbegin, nend, ncomplete;
	char stop;         /* 'b', 'd', 'e' or 0: which callback says -1 */
	int stop_at;       /* on its how-manyth call */
	int stopped;       /* a callback said -1 */
	int owed;          /* an end(0) may still come after it */
};

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211u;
	return h;
}

static int
stop(struct run *r, char kind)
{
	CHECK(!r->stopped);
	if (r->stop != kind || --r->stop_at != 0)
		return 0;
	r->stopped = 1;
	return -1;
}

static int
on_begin(void *arg, const char *ct)
{
	struct run *r = arg;
	size_t n = ct ? strlen(ct) : 0;

	CHECK(!r->open);
	if (ct)
		CHECK(n == 0 || (ct[0] != ' ' && ct[0] != '\t' && ct[n - 1] != ' ' && ct[n - 1] != '\t'));
	CHECK(n < MULTIPART_HEADER_MAX);
	if (stop(r, 'b') < 0)
		return -1;
	r->h = mix(r->h, ct ? "B" : "N", 1);
	r->h = mix(r->h, ct ? ct : "", n + 1);
	r->dh = 14695981039346656037u;
	r->dn = 0;
	r->open = 1;
	r->nbegin++;
	return 0;
}

static int
on_data(void *arg, const void *p, size_t n)
{
	struct run *r = arg;

	CHECK(r->open && n > 0);
	r->dh = mix(r->dh, p, n);
	r->dn += n;
	r->total += n;
	CHECK(r->total <= r->fed);
	if (stop(r, 'd') < 0) {
		r->owed = 1;
		return -1;
	}
	return 0;
}

static int
on_end(void *arg, int complete)
{
	struct run *r = arg;
	unsigned char ev[1 + sizeof(r->dn) + sizeof(r->dh)];

	CHECK(r->open && (complete == 0 || complete == 1));
	r->open = 0;
	r->nend++;
	r->ncomplete += complete;
	ev[0] = (unsigned char)complete;
	memcpy(ev + 1, &r->dn, sizeof(r->dn));
	memcpy(ev + 1 + sizeof(r->dn), &r->dh, sizeof(r->dh));
	r->h = mix(r->h, ev, sizeof(ev));
	if (r->stopped) {
		/* The one call allowed after a -1 from data. */
		CHECK(r->owed && !complete);
		r->owed = 0;
		return 0;
	}
	/* An end(0) comes with a failure already, its -1 changes nothing. */
	return complete ? stop(r, 'e') : 0;
}

static const struct multipart_cb cbs = { on_begin, on_data, on_end };

/* Parse body cut as pattern says (0 whole, 1 byte by byte, else random
 * chunks); returns finish's value, the message in err. */
static int
parse(struct run *r, const char *bnd, const uint8_t *body, size_t n, unsigned pattern,
    char *err, size_t errlen)
{
	struct multipart *mp = multipart_new(bnd, &cbs, r);
	uint32_t x = pattern * 2654435761u + 1;
	int failed = 0, rc;

	r->h = 14695981039346656037u;
	for (size_t at = 0, k; at < n || at == 0; at += k) {
		k = n - at;
		if (pattern == 1 && k > 1)
			k = 1;
		if (pattern > 1) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			if (k > x % (pattern + 1))
				k = x % (pattern + 1);
		}
		r->fed += k;
		if (multipart_feed(mp, body + at, k) < 0)
			failed = 1;
		else
			CHECK(!failed);
		if (n == 0)
			break;
	}
	rc = multipart_finish(mp);
	CHECK(rc == 0 || rc == -1);
	CHECK(!failed || rc == -1);
	CHECK(!r->open && r->nbegin == r->nend);
	CHECK(multipart_parts(mp) == r->ncomplete);
	CHECK(rc < 0 || r->ncomplete == r->nbegin);
	CHECK((rc == 0) == (multipart_error(mp)[0] == '\0'));
	CHECK(!r->stopped || strcmp(multipart_error(mp), "stopped") == 0);
	CHECK(multipart_feed(mp, "--", 2) == rc && multipart_finish(mp) == rc);
	snprintf(err, errlen, "%s", multipart_error(mp));
	multipart_free(mp);
	return rc;
}

/* multipart_boundary on the input as text returns a valid boundary or none. */
static void
fuzz_param(const uint8_t *data, size_t size)
{
	char *ct = malloc(size + 1), err[64], *b;
	size_t n;

	CHECK(ct);
	memcpy(ct, data, size);
	ct[size] = '\0';
	if ((b = multipart_boundary(ct, err, sizeof(err)))) {
		n = strlen(b);
		CHECK(n >= 1 && n <= MULTIPART_BOUNDARY_MAX && b[n - 1] != ' ');
		CHECK(strspn(b, bchars) == n);
		free(b);
	} else {
		CHECK(err[0] != '\0');
	}
	free(ct);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char bnd[17], err1[128], err2[128];
	struct run whole = { 0 }, cut = { 0 }, stopping = { 0 };
	const uint8_t *body;
	const char *b = bnd;
	size_t n;
	unsigned pattern;
	int rc1, rc2;

	fuzz_param(data, size);
	if (size < 3)
		return 0;
	body = data + 3;
	n = size - 3;
	if (data[0] >= '0' && data[0] <= '7') {
		b = bounds[data[0] - '0'];
	} else {
		size_t bn = (size_t)(data[0] % 16) + 1;

		if (n < bn)
			return 0;
		for (size_t i = 0; i < bn; i++)
			bnd[i] = bchars[body[i] % (sizeof(bchars) - 1)];
		if (bnd[bn - 1] == ' ')
			bnd[bn - 1] = '_';
		bnd[bn] = '\0';
		body += bn;
		n -= bn;
	}
	pattern = data[1] == '0' ? 0 : data[1] == '1' ? 1 : data[1];
	stopping.stop = "\0bde"[data[2] % 4];
	stopping.stop_at = data[2] / 4 + 1;

	rc1 = parse(&whole, b, body, n, 0, err1, sizeof(err1));
	rc2 = parse(&cut, b, body, n, pattern, err2, sizeof(err2));
	CHECK(rc1 == rc2 && strcmp(err1, err2) == 0);
	CHECK(whole.h == cut.h && whole.total == cut.total && whole.ncomplete == cut.ncomplete);
	if (stopping.stop) {
		parse(&stopping, b, body, n, pattern, err2, sizeof(err2));
		if (!stopping.stopped)
			CHECK(stopping.h == cut.h);
	}
	return 0;
}
