/*
 * dicomweb-qido.c - QIDO-RS answers: each request paged with
 * limit/offset (a page as long as the limit asks for the next, up to
 * QIDO_PAGES_MAX pages), a page at most QIDO_PAGE_MAX bytes, read one
 * array element at a time (jansson builds ~100 bytes of tree per "{}": a
 * whole 60 MB page took GBs), and the attributes of a DICOM JSON object.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dicomweb-src.h"
#include "http.h"
#include "util.h"

enum {
	PAGE = 100,               /* QIDO results asked per request (a common server cap) */
	QIDO_DEADLINE = 10,       /* a QIDO answer takes at most this many [pacs] timeouts */
};

/* One value of a DICOM JSON Value array as text: a string, or an integer
 * (IS, such as SeriesNumber, may come as a JSON number) written into num;
 * NULL for anything else. */
static const char *
value_text(json_t *x, char num[32])
{
	if (json_is_integer(x)) {
		snprintf(num, 32, "%lld", (long long)json_integer_value(x));
		return num;
	}
	return json_is_string(x) ? json_string_value(x) : NULL;
}

char *
dw_attr_dup(json_t *obj, const char *tag)
{
	json_t *v = json_object_get(json_object_get(obj, tag), "Value"), *x;
	size_t i, off = 0;
	char *out = NULL;

	json_array_foreach(v, i, x) {
		char num[32];
		const char *s = value_text(x, num);
		size_t n;

		if (!s)
			continue;
		n = strlen(s);
		out = xrealloc(out, off + n + 2);
		if (off)
			out[off++] = '\\';
		memcpy(out + off, s, n + 1);
		off += n;
	}
	if (out && !out[0]) {
		free(out);
		out = NULL;
	}
	return out;
}

void
dw_attr(json_t *obj, const char *tag, char *out, size_t len)
{
	char *v = dw_attr_dup(obj, tag);

	/* Too long for out: as good as absent. */
	if (v && strlen(v) < len)
		memcpy(out, v, strlen(v) + 1);
	else
		out[0] = '\0';
	free(v);
}

static size_t
skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* The length of the array or object at s, as far as brackets outside
 * strings tell (jansson checks the rest), or 0 when it is longer than
 * QIDO_VALUE_MAX or nested deeper than QIDO_DEPTH_MAX; n when it does not
 * end within n (then jansson says why). */
static size_t
value_len(const char *s, size_t n)
{
	int depth = 0, str = 0;

	for (size_t i = 0; i < n; i++) {
		if (i >= QIDO_VALUE_MAX)
			return 0;
		if (str && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			str = !str;
		else if (!str && (s[i] == '{' || s[i] == '['))
			depth++;
		else if (!str && (s[i] == '}' || s[i] == ']') && --depth == 0)
			return i + 1;
		if (depth > QIDO_DEPTH_MAX)
			return 0;
	}
	return n;
}

/* A page's state while its array is walked. */
struct page {
	json_t **first;
	int (*fn)(void *arg, json_t *obj);
	void *arg;
	int seen;                 /* the page is one seen already */
};

/* Walk the JSON array of body, one element parsed at a time: to p's fn
 * when p is not NULL, else only checked.  The count, or -1 with err. */
static long
walk(const char *url, const char *body, size_t n, struct page *p, char *err, size_t errlen)
{
	size_t i = skip_ws(body, 0, n);
	long len = 0;

	if (i == n || body[i] != '[') {
		errf(err, errlen, "GET %s: not a DICOM JSON array: %s", url, i == n ?
		    "only white space" : "it does not start with '['");
		return -1;
	}
	i = skip_ws(body, i + 1, n);
	if (i < n && body[i] == ']')
		i++;
	else for (;;) {
		size_t vlen = i < n && (body[i] == '{' || body[i] == '[') ?
		    value_len(body + i, n - i) : n - i;
		json_error_t je;
		json_t *x;

		if (i == n) {
			errf(err, errlen, "GET %s: not a DICOM JSON array: it ends before its ']'",
			    url);
			return -1;
		}
		if (vlen == 0) {
			errf(err, errlen, "GET %s: not a DICOM JSON array: element %ld is larger "
			    "than %d bytes or nested deeper than %d", url, len + 1,
			    QIDO_VALUE_MAX, QIDO_DEPTH_MAX);
			return -1;
		}
		x = json_loadb(body + i, vlen, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
		if (!x) {
			errf(err, errlen, "GET %s: not a DICOM JSON array: %s at byte %zu", url,
			    je.text, i + (size_t)je.position);
			return -1;
		}
		i = skip_ws(body, i + (size_t)je.position, n);
		if (p && len == 0 && *p->first && json_equal(*p->first, x))
			p->seen = 1;      /* the offset was not taken: seen already */
		if (p && len == 0 && !*p->first)
			*p->first = json_incref(x);
		if (p && !p->seen && json_is_object(x) && p->fn(p->arg, x) < 0) {
			json_decref(x);
			return -1;
		}
		json_decref(x);
		len++;
		if (i < n && body[i] == ',') {
			i = skip_ws(body, i + 1, n);
			continue;
		}
		if (i < n && body[i] == ']') {
			i++;
			break;
		}
		errf(err, errlen, "GET %s: not a DICOM JSON array: ',' or ']' expected at byte %zu",
		    url, i);
		return -1;
	}
	if (skip_ws(body, i, n) != n) {
		errf(err, errlen, "GET %s: not a DICOM JSON array: more after it at byte %zu", url,
		    skip_ws(body, i, n));
		return -1;
	}
	return p && p->seen ? 0 : len;
}

int
dw_qido_page(const char *url, const char *body, size_t n, json_t **first,
    int (*fn)(void *arg, json_t *obj), void *arg, char *err, size_t errlen)
{
	struct page p = { .first = first, .fn = fn, .arg = arg };
	long len;

	if (n == 0)
		return 0;
	/* Checked whole first: a bad page gives fn nothing. */
	if (walk(url, body, n, NULL, err, errlen) < 0)
		return -1;
	len = walk(url, body, n, &p, err, errlen);
	return len > INT_MAX ? INT_MAX : (int)len;
}

/* A server that does not page answers everything at once (more than the
 * limit), or the same first page whatever the offset: both end it. */
int
dw_qido(struct job *job, const char *url, int (*fn)(void *arg, json_t *obj), void *arg)
{
	const struct http_limits lim = {
		.max_body = QIDO_PAGE_MAX, .deadline = QIDO_DEADLINE * job->ctx->cfg->pacs.timeout,
	};
	json_t *first = NULL;

	for (int page = 0;; page++) {
		char *u = xasprintf("%s&limit=%d&offset=%d", url, PAGE, page * PAGE);
		struct http_buf b = { .max = QIDO_PAGE_MAX };
		int n = 0, rc = -2;

		if (page == QIDO_PAGES_MAX)
			errf(job->err, sizeof(job->err), "GET %s: more results after %d pages of %d, "
			    "given up (a server paging without end, or a query to narrow in "
			    "[select])", u, QIDO_PAGES_MAX, PAGE);
		else
			rc = dw_get(job, u, "application/dicom+json", &lim, http_collect, &b);
		if (rc == 0 && (n = dw_qido_page(u, b.p, b.n, &first, fn, arg, job->err,
		    sizeof(job->err))) < 0)
			rc = -1;
		free(u);
		free(b.p);
		if (rc < 0 || n != PAGE) {
			json_decref(first);
			return rc;
		}
	}
}
