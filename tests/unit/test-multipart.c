/*
 * test-multipart.c - the WADO-RS multipart parser (multipart_boundary and
 * the multipart_feed stream).  What callers rely on: each part's bytes
 * arrive exactly, in order, between one begin and one end, however the
 * body is cut into chunks; a part is complete only when its delimiter
 * line was seen whole; a body without its close delimiter fails; and the
 * parser holds back no more than a delimiter's length of data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "multipart.h"

#define LIT(s) s, sizeof(s) - 1
#define WANT(ct, data, complete) { ct, data, sizeof(data) - 1, complete }
#define OK(...) check_body(B, __VA_ARGS__)

static const char B[] = "gc0p4Jq0M2Yt08jU534c0p";

/* A part as the test expects it. */
struct want {
	const char *ct;    /* Content-Type, or NULL */
	const char *data;  /* its bytes */
	size_t n;
	int complete;      /* what end said */
};

/* A part as the callbacks saw it. */
struct got {
	char *ct;
	char *data;
	size_t n;
	int complete;
};

/* What the callbacks record; stop makes the nth call of a kind fail. */
struct rec {
	struct got parts[8];
	int nbegin, nend;
	int open;          /* between begin and end */
	size_t calls;      /* data calls */
	char stop;         /* 'b', 'd' or 'e': which callback fails */
	int stop_at;       /* on its stop_at-th call (from 1) */
	int nstop;
	int after_stop;    /* callbacks after one said -1, but the end(0) */
};

static int
stopping(struct rec *r, char kind)
{
	if (r->nstop > 0)
		r->after_stop++;
	if (r->stop != kind || --r->stop_at != 0)
		return 0;
	r->nstop++;
	return -1;
}

static int
on_begin(void *arg, const char *ct)
{
	struct rec *r = arg;

	assert_false(r->open);
	assert_true(r->nbegin < 8);
	if (stopping(r, 'b') < 0)
		return -1;
	r->parts[r->nbegin].ct = ct ? strdup(ct) : NULL;
	r->parts[r->nbegin].data = NULL;
	r->parts[r->nbegin].n = 0;
	r->parts[r->nbegin].complete = -1;
	r->nbegin++;
	r->open = 1;
	return 0;
}

static int
on_data(void *arg, const void *p, size_t n)
{
	struct rec *r = arg;
	struct got *g = &r->parts[r->nbegin - 1];

	assert_true(r->open);
	assert_true(n > 0);
	r->calls++;
	g->data = realloc(g->data, g->n + n);
	assert_non_null(g->data);
	memcpy(g->data + g->n, p, n);
	g->n += n;
	return stopping(r, 'd');
}

static int
on_end(void *arg, int complete)
{
	struct rec *r = arg;

	assert_true(r->open);
	assert_true(complete == 0 || complete == 1);
	if (r->nstop > 0 && !complete)
		r->after_stop--;   /* the end(0) after a stop is owed */
	r->open = 0;
	r->parts[r->nbegin - 1].complete = complete;
	r->nend++;
	return stopping(r, 'e');
}

static const struct multipart_cb cbs = { on_begin, on_data, on_end };

static void
rec_free(struct rec *r)
{
	for (int i = 0; i < r->nbegin; i++) {
		free(r->parts[i].ct);
		free(r->parts[i].data);
	}
}

/* Feed body cut before each of cuts[0..ncuts), then finish; feeds
 * after the first failure must fail too.  Returns finish's value and
 * leaves the message in err. */
static int
run(struct rec *r, const char *bnd, const char *body, size_t len,
    const size_t *cuts, size_t ncuts, char *err, size_t errlen)
{
	struct multipart *mp = multipart_new(bnd, &cbs, r);
	size_t at = 0;
	int failed = 0, rc;

	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		if (multipart_feed(mp, body + at, to - at) < 0)
			failed = 1;
		else
			assert_false(failed);
		at = to;
	}
	rc = multipart_finish(mp);
	if (failed)
		assert_int_equal(rc, -1);
	assert_false(r->open);
	assert_int_equal(r->nbegin, r->nend);
	snprintf(err, errlen, "%s", multipart_error(mp));
	if (rc == 0)
		assert_string_equal(err, "");
	/* Errors are sticky. */
	assert_int_equal(multipart_feed(mp, "x", 1), rc);
	assert_int_equal(multipart_finish(mp), rc);
	assert_string_equal(multipart_error(mp), err);
	rc = rc < 0 ? -1 : multipart_parts(mp);
	multipart_free(mp);
	return rc;
}

/* Compare what one chunking gave with what was wanted. */
static void
compare(struct rec *r, int rc, const char *err, int wantrc, const char *wanterr,
    const struct want *w, int nw, const char *how)
{
	int ncomplete = 0;

	if (rc != wantrc)
		fail_msg("%s: gave %d (%s), want %d", how, rc, err, wantrc);
	if (wanterr && strncmp(err, wanterr, strlen(wanterr)) != 0)
		fail_msg("%s: error \"%s\", want \"%s\"", how, err, wanterr);
	if (r->nbegin != nw)
		fail_msg("%s: %d parts, want %d", how, r->nbegin, nw);
	for (int i = 0; i < nw; i++) {
		struct got *g = &r->parts[i];

		if ((g->ct == NULL) != (w[i].ct == NULL) || (g->ct && strcmp(g->ct, w[i].ct) != 0))
			fail_msg("%s: part %d type \"%s\", want \"%s\"", how, i,
			    g->ct ? g->ct : "(none)", w[i].ct ? w[i].ct : "(none)");
		if (g->n != w[i].n || (g->n > 0 && memcmp(g->data, w[i].data, g->n) != 0))
			fail_msg("%s: part %d has %zu bytes \"%.*s\", want %zu \"%s\"", how, i,
			    g->n, (int)g->n, g->data ? g->data : "", w[i].n, w[i].data);
		if (g->complete != w[i].complete)
			fail_msg("%s: part %d complete %d", how, i, g->complete);
		ncomplete += g->complete;
	}
	if (wantrc >= 0 && rc != ncomplete)
		fail_msg("%s: multipart_parts %d, %d complete", how, rc, ncomplete);
}

/* The body in one chunk, in two at every cut, in three at every pair
 * of cuts (small bodies), and byte by byte must all give the same.
 * wantrc is the number of complete parts, or -1 with wanterr. */
static void
check_body(const char *bnd, const char *body, size_t len, int wantrc,
    const char *wanterr, const struct want *w, int nw)
{
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));
	char err[256], how[64];
	struct rec r;
	int rc;

	assert_non_null(cuts);
	for (size_t i = 0; i <= len; i++) {
		size_t c[2] = { i, 0 };

		/* Long bodies: every cut near the ends, a sample between. */
		if (len > 4096 && i > 300 && i < len - 300 && i % 61 != 0)
			continue;
		for (size_t j = i; j <= (len <= 200 ? len : i); j++) {
			c[1] = j;
			memset(&r, 0, sizeof(r));
			rc = run(&r, bnd, body, len, c, len <= 200 ? 2 : 1, err, sizeof(err));
			snprintf(how, sizeof(how), "cut at %zu,%zu", i, j);
			compare(&r, rc, err, wantrc, wanterr, w, nw, how);
			rec_free(&r);
		}
	}
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	memset(&r, 0, sizeof(r));
	rc = run(&r, bnd, body, len, cuts, len ? len - 1 : 0, err, sizeof(err));
	compare(&r, rc, err, wantrc, wanterr, w, nw, "byte by byte");
	rec_free(&r);
	free(cuts);
}

/* multipart_boundary(ct) gives want, or fails with a message holding why. */
static void
check_param(const char *ct, const char *want, const char *why)
{
	char err[512] = "";
	char *b = multipart_boundary(ct, err, sizeof(err));

	if (want) {
		if (!b)
			fail_msg("multipart_boundary(%s): %s", ct, err);
		assert_string_equal(b, want);
	} else {
		if (b)
			fail_msg("multipart_boundary(%s) accepted \"%s\"", ct, b);
		if (!strstr(err, why))
			fail_msg("multipart_boundary(%s): \"%s\", want \"%s\"", ct, err, why);
	}
	free(b);
}

static void
test_boundary_accepts(void **state)
{
	char ct[300], b[MULTIPART_BOUNDARY_MAX + 1];

	(void)state;
	check_param("multipart/related; type=\"application/dicom\"; boundary=abc", "abc", NULL);
	check_param("multipart/related; boundary=abc; type=\"application/dicom\"", "abc", NULL);
	/* Orthanc leaves type unquoted though '/' is a tspecial. */
	check_param("multipart/related; type=application/dicom; boundary=3b9e-41aa", "3b9e-41aa", NULL);
	check_param("multipart/related;type=\"application/dicom\";boundary=x", "x", NULL);
	check_param("Multipart/Related; BOUNDARY=xyz", "xyz", NULL);
	check_param("MULTIPART/mixed; Boundary=\"xyz\"", "xyz", NULL);
	check_param("multipart/related; boundary=\"a b\"", "a b", NULL);
	check_param("multipart/related; boundary=\"=_?:()+,./'\"", "=_?:()+,./'", NULL);
	check_param("multipart/related; boundary=\"\\a\\b\\=c\"", "ab=c", NULL);
	check_param("  multipart/related ; boundary = \"q\" ; ", "q", NULL);
	check_param("multipart/related;\tboundary=q;", "q", NULL);
	check_param("multipart/related; start=\"<1@x>\"; start-info=\"a;b\"; boundary=q", "q", NULL);
	/* A boundary= inside another parameter's quotes is not the boundary. */
	check_param("multipart/related; type=\"x; boundary=evil\"; boundary=good", "good", NULL);
	check_param("multipart/related; type=\"x\\\"; boundary=evil\"; boundary=good", "good", NULL);
	check_param("multipart/related; xboundary=1; boundary2=2; boundary=3", "3", NULL);
	/* RFC 2046's 70, Orthanc's 72, and the most taken. */
	for (size_t n = 70; n <= MULTIPART_BOUNDARY_MAX; n += n < 72 ? 1 : MULTIPART_BOUNDARY_MAX - 72) {
		memset(b, 'b', n);
		b[n] = '\0';
		snprintf(ct, sizeof(ct), "multipart/related; boundary=\"%s\"", b);
		check_param(ct, b, NULL);
	}
}

static void
test_boundary_rejects(void **state)
{
	char ct[300], b[MULTIPART_BOUNDARY_MAX + 2], why[64];

	(void)state;
	check_param("application/dicom; boundary=x", NULL, "not multipart");
	check_param("multipart; boundary=x", NULL, "not multipart");
	check_param("multipart/; boundary=x", NULL, "not multipart");
	check_param("multipartx/related; boundary=x", NULL, "not multipart");
	check_param("", NULL, "not multipart");
	check_param("multipart/related", NULL, "no boundary");
	check_param("multipart/related; type=\"application/dicom\"", NULL, "no boundary");
	check_param("multipart/related; boundary=", NULL, "malformed");
	check_param("multipart/related; boundary", NULL, "malformed");
	check_param("multipart/related; =x", NULL, "malformed");
	check_param("multipart/related boundary=x", NULL, "malformed");
	check_param("multipart/related; boundary=\"abc", NULL, "malformed");
	check_param("multipart/related; boundary=\"abc\\", NULL, "malformed");
	check_param("multipart/related; boundary=a\"b\"", NULL, "malformed");
	check_param("multipart/related; boundary=a b", NULL, "malformed");
	check_param("multipart/related; boundary=\"a\"b", NULL, "malformed");
	check_param("multipart/related; type=\"x; boundary=y", NULL, "malformed");
	check_param("multipart/related; boundary=a; boundary=b", NULL, "twice");
	check_param("multipart/related; boundary=a; BOUNDARY=\"a\"", NULL, "twice");
	check_param("multipart/related; boundary=\"\"", NULL, "is not 1 to");
	check_param("multipart/related; boundary=\"ab \"", NULL, "is not 1 to");
	check_param("multipart/related; boundary=\"a\\\"b\"", NULL, "is not 1 to");
	check_param("multipart/related; boundary=a@b", NULL, "is not 1 to");
	check_param("multipart/related; boundary=\"a\tb\"", NULL, "is not 1 to");
	memset(b, 'b', MULTIPART_BOUNDARY_MAX + 1);
	b[MULTIPART_BOUNDARY_MAX + 1] = '\0';
	snprintf(ct, sizeof(ct), "multipart/related; boundary=%s", b);
	snprintf(why, sizeof(why), "is not 1 to %d of RFC 2046's bchars", MULTIPART_BOUNDARY_MAX);
	check_param(ct, NULL, why);
}

static void
test_new_bad_boundary(void **state)
{
	static const char *const bad[] = { "", "a\r\nb", "ab ", "a\nb" };
	struct rec r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct multipart *mp;

		memset(&r, 0, sizeof(r));
		mp = multipart_new(bad[i], &cbs, &r);
		assert_int_equal(multipart_feed(mp, LIT("--\r\n\r\n")), -1);
		assert_int_equal(multipart_finish(mp), -1);
		assert_non_null(strstr(multipart_error(mp), "the boundary is not 1 to"));
		assert_int_equal(r.nbegin, 0);
		multipart_free(mp);
	}
	multipart_free(NULL);
}

static void
test_zero_parts(void **state)
{
	(void)state;
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p--"), 0, NULL, NULL, 0);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p--\r\n"), 0, NULL, NULL, 0);
	OK(LIT("preamble\r\n--gc0p4Jq0M2Yt08jU534c0p--\r\nepilogue"), 0, NULL, NULL, 0);
	OK(LIT("\r\n--gc0p4Jq0M2Yt08jU534c0p--"), 0, NULL, NULL, 0);
	OK(LIT(""), -1, "missing final boundary", NULL, 0);
	OK(LIT("just a preamble"), -1, "missing final boundary", NULL, 0);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p-"), -1, "missing final boundary", NULL, 0);
	/* "--boundary" not at a line start is preamble. */
	OK(LIT("x--gc0p4Jq0M2Yt08jU534c0p--"), -1, "missing final boundary", NULL, 0);
}

static void
test_one_part(void **state)
{
	static const struct want dcm[] = { WANT("application/dicom", "DICM\0\1", 1) };
	static const struct want bare[] = { WANT(NULL, "DATA", 1) };

	(void)state;
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n"
	    "Content-Type: application/dicom\r\n"
	    "\r\n"
	    "DICM\0\1\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--\r\n"), 1, NULL, dcm, 1);
	/* Orthanc's shape: Content-Length and MIME-Version too. */
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n"
	    "Content-Type: application/dicom\r\n"
	    "Content-Length: 6\r\n"
	    "MIME-Version: 1.0\r\n\r\n"
	    "DICM\0\1\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--\r\n"), 1, NULL, dcm, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\nX-Other: 1\r\n\r\nDATA\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--"), 1, NULL, bare, 1);
	/* Bare LF everywhere. */
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\n"
	    "Content-Type: application/dicom\n"
	    "\n"
	    "DICM\0\1\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--\n"), 1, NULL, dcm, 1);
}

static void
test_three_parts(void **state)
{
	static const struct want w[] = {
		WANT("application/dicom", "first", 1),
		WANT(NULL, "", 1),
		WANT("application/dicom; transfer-syntax=1.2.840.10008.1.2.1", "third\r\n", 1),
	};

	(void)state;
	OK(LIT("This is the preamble.  It is to be ignored.\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p\r\n"
	    "content-TYPE:   application/dicom  \r\n"
	    "\r\n"
	    "first\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p \t \r\n"
	    "\r\n"
	    "\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p\t\r\n"
	    "Content-Type: application/dicom;\r\n"
	    " transfer-syntax=1.2.840.10008.1.2.1\r\n"
	    "Content-Length: 7\r\n"
	    "\r\n"
	    "third\r\n\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--  \r\n"
	    "This is the epilogue.\r\n--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nignored"),
	    3, NULL, w, 3);
}

static void
test_empty_parts(void **state)
{
	static const struct want one[] = { WANT(NULL, "", 1) };
	static const struct want two[] = { WANT(NULL, "", 1), WANT("a/b", "", 1) };
	static const struct want crlf[] = { WANT("a/b", "\r\n", 1) };

	(void)state;
	/* No headers, no body: the delimiter's CRLF follows the boundary line. */
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\n--gc0p4Jq0M2Yt08jU534c0p--"), 1, NULL, one, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\n\r\n--gc0p4Jq0M2Yt08jU534c0p--"), 1, NULL, one, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\n\n--gc0p4Jq0M2Yt08jU534c0p--"), 1, NULL, one, 1);
	/* Headers and no body. */
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: a/b\r\n\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--"), 2, NULL, two, 2);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: a/b\r\n\r\n\r\n\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--"), 1, NULL, crlf, 1);
}

static void
test_binary_data(void **state)
{
	static const char data[] =
	    "\r\r\n\n\r--\r\n-\r\n--\r\n--g\r\n--gc0p4Jq0M2Yt08jU534c0\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0P\n--gc0p4Jq0M2Yt08jU534c\r"
	    "x--gc0p4Jq0M2Yt08jU534c0p\r\n\0--gc0p4Jq0M2Yt08jU534c0p\r--gc0p4Jq0M2Yt08jU534c0p"
	    "\r\n\r\n\r\n\r\r";
	static const struct want w[] = {
		{ "application/octet-stream", data, sizeof(data) - 1, 1 },
		WANT(NULL, "\n", 1),
		WANT(NULL, "----", 1),
	};
	char body[512];
	size_t n;

	(void)state;
	n = (size_t)snprintf(body, sizeof(body),
	    "--%s\r\nContent-Type: application/octet-stream\r\n\r\n", B);
	memcpy(body + n, data, sizeof(data) - 1);
	n += sizeof(data) - 1;
	n += (size_t)snprintf(body + n, sizeof(body) - n,
	    "\r\n--%s\r\n\r\n\n\n--%s\r\n\r\n----\r\n--%s--", B, B, B);
	assert_true(n < sizeof(body) - 1);
	check_body(B, body, n, 3, NULL, w, 3);
}

static void
test_short_boundary(void **state)
{
	static const struct want w[] = { WANT(NULL, "a\r\n-\r\n-b\n--", 1), WANT(NULL, "-", 1) };

	(void)state;
	check_body("-", LIT("---\r\n\r\na\r\n-\r\n-b\n--\r\n---\r\n\r\n-\r\n-----"), 2, NULL, w, 2);
	check_body("a b", LIT("--a b\r\n\r\nx\r\n--a b--"), 1, NULL,
	    (const struct want[]){ WANT(NULL, "x", 1) }, 1);
}

static void
test_missing_final_boundary(void **state)
{
	static const struct want cut[] = { WANT("a/b", "abc", 0) };
	static const struct want held[] = { WANT(NULL, "abc", 0) };
	static const struct want done[] = { WANT(NULL, "x", 1) };
	static const struct want two[] = { WANT(NULL, "x", 1), WANT(NULL, "y", 0) };

	(void)state;
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: a/b\r\n\r\nabc"),
	    -1, "missing final boundary", cut, 1);
	/* What might have been a delimiter is not given as data. */
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nabc\r\n--gc0p4J"),
	    -1, "missing final boundary", held, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nabc\r"), -1, "missing final boundary", held, 1);
	/* A delimiter whose line did not end does not complete its part. */
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nabc\r\n--gc0p4Jq0M2Yt08jU534c0p"),
	    -1, "missing final boundary", held, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nabc\r\n--gc0p4Jq0M2Yt08jU534c0p  \r"),
	    -1, "missing final boundary", held, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nx\r\n--gc0p4Jq0M2Yt08jU534c0p\r\n"),
	    -1, "missing final boundary", done, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nx\r\n--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: a"),
	    -1, "missing final boundary", done, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nx\r\n--gc0p4Jq0M2Yt08jU534c0p\r\n\r\ny"),
	    -1, "missing final boundary", two, 2);
}

static void
test_malformed(void **state)
{
	static const struct want cut[] = { WANT(NULL, "x", 0) };
	static const struct want first[] = { WANT(NULL, "x", 1) };

	(void)state;
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0px\r\n\r\n--gc0p4Jq0M2Yt08jU534c0p--"),
	    -1, "malformed boundary line at byte 24", NULL, 0);
	OK(LIT("pre\r\n--gc0p4Jq0M2Yt08jU534c0p-x"), -1, "malformed boundary line at byte 30", NULL, 0);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nx\r\n--gc0p4Jq0M2Yt08jU534c0p0\r\n--"),
	    -1, "malformed boundary line at byte 55", cut, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nx\r\n--gc0p4Jq0M2Yt08jU534c0p --\r\n"),
	    -1, "malformed boundary line", cut, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nx\r\n--gc0p4Jq0M2Yt08jU534c0p\r\r\n"),
	    -1, "malformed boundary line", cut, 1);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\nNo colon here\r\n\r\nx"),
	    -1, "malformed part header line", NULL, 0);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n: no name\r\n\r\nx"),
	    -1, "malformed part header line", NULL, 0);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n folded first: x\r\n\r\nx"),
	    -1, "malformed part header line", NULL, 0);
	/* A NUL would cut the type short, its trailing space left in. */
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: a\r\n \0b\r\n\r\nx"),
	    -1, "malformed part header line", NULL, 0);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\nX-A\0: 1\r\n\r\nx"),
	    -1, "malformed part header line", NULL, 0);
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n\r\nx\r\n--gc0p4Jq0M2Yt08jU534c0p\r\nbad\r\n\r\n"),
	    -1, "malformed part header line", first, 1);
}

static void
test_headers(void **state)
{
	static const struct want w[] = {
		WANT("a/b;\tc=d;  e=f", "1", 1),
		WANT("first", "2", 1),
		WANT("", "3", 1),
		WANT("x\ry", "4", 1),
	};

	(void)state;
	OK(LIT("--gc0p4Jq0M2Yt08jU534c0p\r\n"
	    "X-Before: 1\r\n"
	    " folded: not a header\r\n"
	    "CONTENT-type:  a/b;\r\n"
	    "\tc=d;\r\n"
	    "  e=f  \r\n"
	    "X-After: 2\r\n\r\n1\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p\n"
	    "Content-Type: first\n"
	    "Content-Type: second\r\n\n2\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p\r\n"
	    "Content-Type:\r\n\r\n3\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p\r\n"
	    "Content-Type: x\ry\r\n\r\n4\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--"), 4, NULL, w, 4);
}

/* A header block of exactly MULTIPART_HEADER_MAX bytes, and one more. */
static void
test_header_limit(void **state)
{
	static const struct want w[] = { WANT("a/b", "x", 1) };
	size_t cap = MULTIPART_HEADER_MAX + 200, n, fill, line = strlen(B) + 4;
	char *body = malloc(cap);

	(void)state;
	assert_non_null(body);
	for (int extra = 0; extra <= 1; extra++) {
		n = (size_t)snprintf(body, cap, "--%s\r\nContent-Type: a/b\r\nX-Pad: ", B);
		/* The block is what follows the boundary line, up to and
		 * with the empty line. */
		fill = MULTIPART_HEADER_MAX - (n - line) - 4 + (size_t)extra;
		memset(body + n, 'p', fill);
		n += fill;
		n += (size_t)snprintf(body + n, cap - n, "\r\n\r\nx\r\n--%s--", B);
		if (extra)
			check_body(B, body, n, -1, "part headers longer than 16384 bytes", NULL, 0);
		else
			check_body(B, body, n, 1, NULL, w, 1);
	}
	free(body);
}

/* Callbacks that say -1 stop the parse; a part begun ends once.  Each
 * part has one byte, so data calls are the same however it is cut. */
static void
test_callback_stops(void **state)
{
	static const char body[] =
	    "--gc0p4Jq0M2Yt08jU534c0p\r\n\r\n1\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p\r\n\r\n2\r\n"
	    "--gc0p4Jq0M2Yt08jU534c0p--";
	static const struct { char kind; int at, nbegin, nend, parts, complete2; } cases[] = {
		{ 'b', 1, 0, 0, 0, -1 },
		{ 'b', 2, 1, 1, 1, -1 },
		{ 'd', 1, 1, 1, 0, -1 },
		{ 'd', 2, 2, 2, 1, 0 },
		{ 'e', 1, 1, 1, 1, -1 },
		{ 'e', 2, 2, 2, 2, 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t cut = 0; cut <= sizeof(body) - 1; cut++) {
			struct rec r;
			struct multipart *mp;
			int rc;

			memset(&r, 0, sizeof(r));
			r.stop = cases[i].kind;
			r.stop_at = cases[i].at;
			mp = multipart_new(B, &cbs, &r);
			rc = multipart_feed(mp, body, cut);
			if (multipart_feed(mp, body + cut, sizeof(body) - 1 - cut) < 0)
				rc = -1;
			assert_int_equal(rc, -1);
			assert_int_equal(multipart_finish(mp), -1);
			assert_string_equal(multipart_error(mp), "stopped");
			assert_int_equal(multipart_parts(mp), cases[i].parts);
			assert_int_equal(r.nbegin, cases[i].nbegin);
			assert_int_equal(r.nend, cases[i].nend);
			assert_int_equal(r.nstop, 1);
			assert_int_equal(r.after_stop, 0);
			assert_false(r.open);
			if (cases[i].complete2 >= 0)
				assert_int_equal(r.parts[1].complete, cases[i].complete2);
			if (r.nbegin > 0)
				assert_int_equal(r.parts[0].complete, cases[i].kind == 'd' && cases[i].at == 1 ? 0 : 1);
			multipart_free(mp);
			rec_free(&r);
		}
	}
}

/* A large part fed in chunks of every size up to 130: all that cannot
 * begin a delimiter is handed on at once, and it arrives exactly. */
static void
test_streams(void **state)
{
	enum { N = 1 << 16 };
	char *body = malloc(N + 200), *data;
	size_t hdr, n, len;
	struct rec r;

	(void)state;
	assert_non_null(body);
	hdr = (size_t)snprintf(body, 200, "--%s\r\n\r\n", B);
	data = body + hdr;
	for (size_t i = 0; i < N; i++) {
		/* CR, LF and '-' often, so held bytes come and go. */
		static const char alpha[] = "\r\n-gc0p4Jq0M2Yt08jU534c0p\r\n--";

		data[i] = alpha[(i * 2654435761u >> 7) % (sizeof(alpha) - 1)];
	}
	len = hdr + N;
	len += (size_t)snprintf(body + len, 200, "\r\n--%s--", B);
	for (size_t step = 1; step <= 130; step += step < 8 ? 1 : 17) {
		struct multipart *mp;

		memset(&r, 0, sizeof(r));
		mp = multipart_new(B, &cbs, &r);
		for (size_t at = 0; at < len; at += n) {
			n = len - at < step ? len - at : step;
			assert_int_equal(multipart_feed(mp, body + at, n), 0);
			if (at + n > hdr && at + n < hdr + N && r.nbegin == 1) {
				size_t fed = at + n - hdr;

				assert_true(r.parts[0].n <= fed);
				assert_true(fed - r.parts[0].n <= strlen(B) + 4);
			}
		}
		assert_int_equal(multipart_finish(mp), 0);
		assert_int_equal(r.nbegin, 1);
		assert_int_equal(r.parts[0].complete, 1);
		assert_int_equal(r.parts[0].n, N);
		assert_memory_equal(r.parts[0].data, data, N);
		if (step >= 64)
			assert_true(r.calls <= 2 * (len / step + 1));
		multipart_free(mp);
		rec_free(&r);
	}
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundary_accepts),
		cmocka_unit_test(test_boundary_rejects),
		cmocka_unit_test(test_new_bad_boundary),
		cmocka_unit_test(test_zero_parts),
		cmocka_unit_test(test_one_part),
		cmocka_unit_test(test_three_parts),
		cmocka_unit_test(test_empty_parts),
		cmocka_unit_test(test_binary_data),
		cmocka_unit_test(test_short_boundary),
		cmocka_unit_test(test_missing_final_boundary),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
