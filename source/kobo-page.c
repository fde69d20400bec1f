/*
 * kobo-page.c - one page of a KPI listing: {"count": N, "next": URL or
 * null, "results": [...], ...}, read one value at a time, never as one
 * tree (jansson builds ~100 bytes of tree per "{}": a 64 MB page of them
 * would take GBs).  Each value is scanned before jansson sees it: its
 * brackets outside strings for KOBO_DEPTH_MAX and VALUES_MAX, its strings
 * for \u0000.  A page is read twice: checked whole first, so that a bad
 * page gives fn nothing, then again for fn.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kobo-int.h"
#include "util.h"

enum {
	VALUES_MAX = 1 << 18,     /* brackets and commas of one value: its tree
	                           * stays under ~100 MB however it is built */
};

static size_t
skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

enum scan { SCAN_OK, SCAN_DEEP, SCAN_BIG, SCAN_NUL };

/* What jansson is not asked to judge of the value at s (n bytes to the
 * end of the body): how deep, how many, and \u0000 (a NUL byte too).
 * Its length in *len when it is an object, array or string ending
 * within n; else n, and jansson finds its end or says why. */
static enum scan
scan(const char *s, size_t n, size_t *len)
{
	int depth = 0, str = 0;
	long values = 0;

	*len = n;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0')
			return SCAN_NUL;
		if (str) {
			if (s[i] == '\\' && n - i > 5 && memcmp(s + i + 1, "u0000", 5) == 0)
				return SCAN_NUL;
			if (s[i] == '\\') {
				i++;
			} else if (s[i] == '"') {
				str = 0;
				if (depth == 0) {
					*len = i + 1;
					return SCAN_OK;
				}
			}
			continue;
		}
		if (s[i] == '"') {
			str = 1;
		} else if (s[i] == '{' || s[i] == '[') {
			if (++depth > KOBO_DEPTH_MAX)
				return SCAN_DEEP;
			values++;
		} else if (s[i] == '}' || s[i] == ']') {
			if (--depth <= 0) {
				*len = i + 1;
				return SCAN_OK;
			}
		} else if (s[i] == ',') {
			values++;
		} else if (depth == 0) {
			return SCAN_OK;   /* a number, true, false or null */
		}
		if (values > VALUES_MAX)
			return SCAN_BIG;
	}
	return SCAN_OK;
}

/* The JSON value at byte i of the body (no white space before it), a new
 * reference, with *end just past it; NULL with err, what naming it. */
static json_t *
value(const struct page *p, size_t i, size_t *end, const char *what, char *err, size_t errlen)
{
	json_error_t je;
	json_t *x;
	size_t len;

	switch (scan(p->body + i, p->n - i, &len)) {
	case SCAN_DEEP:
		errf(err, errlen, "GET %s: %s is nested deeper than %d; refused", p->url, what,
		    KOBO_DEPTH_MAX);
		return NULL;
	case SCAN_BIG:
		errf(err, errlen, "GET %s: %s holds more than %d values; refused", p->url, what,
		    VALUES_MAX);
		return NULL;
	case SCAN_NUL:
		errf(err, errlen, "GET %s: %s holds \\u0000 (a NUL character); refused", p->url,
		    what);
		return NULL;
	case SCAN_OK:
		break;
	}
	/* Duplicate keys refused: the object handed on would lose one. */
	x = json_loadb(p->body + i, len, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY |
	    JSON_REJECT_DUPLICATES, &je);
	if (!x) {
		errf(err, errlen, "GET %s: not JSON: %s: %s at byte %zu", p->url, what, je.text,
		    i + (size_t)je.position);
		return NULL;
	}
	*end = i + (size_t)je.position;
	return x;
}

/* The elements of the results array at byte *pi, each to p->elem; *pi
 * just past its ']'.  0, -1 with err, or 1 (fn stopped). */
static int
results(struct page *p, size_t *pi, int take, char *err, size_t errlen)
{
	size_t i = skip_ws(p->body, *pi + 1, p->n);

	p->nres = 0;
	if (i < p->n && p->body[i] == ']') {
		*pi = i + 1;
		return 0;
	}
	for (;;) {
		char what[64];
		json_t *x;
		size_t at = i;
		int rc;

		snprintf(what, sizeof(what), "%s %d", p->noun, p->nres + 1);
		if (i == p->n) {
			errf(err, errlen, "GET %s: not JSON: it ends inside \"results\"", p->url);
			return -1;
		}
		if (!(x = value(p, i, &i, what, err, errlen)))
			return -1;
		p->raw = p->body + at;
		p->rawlen = i - at;
		rc = p->elem(p->arg, p, x, what, take, err, errlen);
		json_decref(x);
		if (rc != 0)
			return rc;
		p->nres++;
		i = skip_ws(p->body, i, p->n);
		if (i < p->n && p->body[i] == ',') {
			i = skip_ws(p->body, i + 1, p->n);
			continue;
		}
		if (i < p->n && p->body[i] == ']') {
			*pi = i + 1;
			return 0;
		}
		errf(err, errlen, "GET %s: not JSON: ',' or ']' expected after %s at byte %zu",
		    p->url, what, i);
		return -1;
	}
}

/* One member of the page object (its key read, the value at byte *pi):
 * count, next and results kept or walked, others only checked. */
static int
member(struct page *p, const char *key, size_t *pi, int take, char *err, size_t errlen)
{
	char what[80];
	json_t *x;

	if (strcmp(key, "results") == 0) {
		if (*pi < p->n && p->body[*pi] == '[')
			return results(p, pi, take, err, errlen);
		errf(err, errlen, "GET %s: \"results\" is not an array", p->url);
		return -1;
	}
	snprintf(what, sizeof(what), "\"%.40s\"", key);
	if (!(x = value(p, *pi, pi, what, err, errlen)))
		return -1;
	if (strcmp(key, "count") == 0) {
		if (!json_is_integer(x) || json_integer_value(x) < 0) {
			errf(err, errlen, "GET %s: \"count\" is not a whole number >= 0", p->url);
			json_decref(x);
			return -1;
		}
		p->count = json_integer_value(x);
	} else if (strcmp(key, "next") == 0) {
		if (!json_is_null(x) && !json_is_string(x)) {
			errf(err, errlen, "GET %s: \"next\" is neither a URL nor null", p->url);
			json_decref(x);
			return -1;
		}
		p->next = json_is_string(x) ? xstrdup(json_string_value(x)) : NULL;
	}
	json_decref(x);
	return 0;
}

/* Walk the page object once: 0, -1 with err, or 1 (fn stopped). */
static int
walk(struct page *p, int take, char *err, size_t errlen)
{
	const char *s = p->body;
	json_t *keys = json_object(), *k = NULL;
	size_t i = skip_ws(s, 0, p->n);
	int rc = -1;

	p->count = -1;
	p->nres = -1;
	free(p->next);
	p->next = NULL;
	if (i == p->n || s[i] != '{') {
		errf(err, errlen, "GET %s: not a JSON object: %s", p->url, i == p->n ?
		    "only white space" : "it does not start with '{'");
		goto out;
	}
	i = skip_ws(s, i + 1, p->n);
	if (i < p->n && s[i] == '}')
		i++;
	else for (;;) {
		const char *key;

		if (i == p->n || s[i] != '"') {
			errf(err, errlen, "GET %s: not JSON: a key expected at byte %zu", p->url, i);
			goto out;
		}
		if (!(k = value(p, i, &i, "a key", err, errlen)))
			goto out;
		key = json_string_value(k);
		if (json_object_get(keys, key)) {
			errf(err, errlen, "GET %s: the page names \"%.40s\" twice", p->url, key);
			goto out;
		}
		json_object_set_new(keys, key, json_true());
		i = skip_ws(s, i, p->n);
		if (i == p->n || s[i] != ':') {
			errf(err, errlen, "GET %s: not JSON: ':' expected at byte %zu", p->url, i);
			goto out;
		}
		i = skip_ws(s, i + 1, p->n);
		if ((rc = member(p, key, &i, take, err, errlen)) != 0)
			goto out;
		rc = -1;
		json_decref(k);
		k = NULL;
		i = skip_ws(s, i, p->n);
		if (i < p->n && s[i] == ',') {
			i = skip_ws(s, i + 1, p->n);
			continue;
		}
		if (i < p->n && s[i] == '}') {
			i++;
			break;
		}
		errf(err, errlen, "GET %s: not JSON: ',' or '}' expected at byte %zu", p->url, i);
		goto out;
	}
	if ((i = skip_ws(s, i, p->n)) != p->n)
		errf(err, errlen, "GET %s: not JSON: more after the page at byte %zu", p->url, i);
	else if (p->count < 0)
		errf(err, errlen, "GET %s: the page has no \"count\"", p->url);
	else if (p->nres < 0)
		errf(err, errlen, "GET %s: the page has no \"results\"", p->url);
	else
		rc = 0;
out:
	json_decref(k);
	json_decref(keys);
	return rc;
}

int
kobo_page_read(struct page *p, int64_t *count, char **next, char *err, size_t errlen)
{
	int rc;

	p->next = NULL;
	if ((rc = walk(p, 0, err, errlen)) == 0)
		rc = walk(p, 1, err, errlen);
	*count = p->count;
	*next = rc == 0 ? p->next : NULL;
	if (rc != 0)
		free(p->next);
	return rc == 0 ? p->nres : -1;
}


/* The JSON text raw (valid: it parsed) without the blanks between its
 * tokens: one line, every value's text as the server wrote it (jansson
 * would write 13.756331 as 13.756330999999999); malloc'd. */
static char *
compact(const char *raw, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t k = 0;
	int in_str = 0, esc = 0;

	for (size_t i = 0; i < n; i++) {
		char c = raw[i];

		if (in_str) {
			in_str = esc || c != '"';
			esc = !esc && c == '\\';
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			continue;
		} else {
			in_str = c == '"';
		}
		out[k++] = c;
	}
	out[k] = '\0';
	return out;
}

int
kobo_on_sub(void *arg, const struct page *p, json_t *x, const char *what, int take, char *err,
    size_t errlen)
{
	struct subs *s = arg;
	json_t *id = json_object_get(x, "_id"), *t = json_object_get(x, "_submission_time");
	struct kobo_sub sub;
	char *json;
	int rc;

	if (!json_is_object(x)) {
		errf(err, errlen, "GET %s: %s is not a JSON object", p->url, what);
		return -1;
	}
	if (!json_is_integer(id) || json_integer_value(id) < 0) {
		errf(err, errlen, "GET %s: %s has no \"_id\" that is a whole number >= 0", p->url,
		    what);
		return -1;
	}
	if (t && !json_is_string(t)) {
		errf(err, errlen, "GET %s: %s (_id %lld): \"_submission_time\" is not a string",
		    p->url, what, (long long)json_integer_value(id));
		return -1;
	}
	if (!take)
		return 0;
	json = compact(p->raw, p->rawlen);
	sub.id = json_integer_value(id);
	sub.submitted = t ? json_string_value(t) : NULL;
	sub.json = json;
	rc = s->fn(s->arg, &sub);
	free(json);
	s->stopped = rc != 0;
	return rc != 0;
}

int
kobo_page(const char *url, const char *body, size_t n, int64_t *count, char **next,
    int (*fn)(void *arg, const struct kobo_sub *sub), void *arg, char *err, size_t errlen)
{
	struct subs s = { .fn = fn, .arg = arg };
	struct page p = { .url = url, .body = body ? body : "", .n = body ? n : 0,
		.noun = "submission", .elem = kobo_on_sub, .arg = &s };

	return kobo_page_read(&p, count, next, err, errlen);
}

