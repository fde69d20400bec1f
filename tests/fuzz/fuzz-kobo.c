/*
 * fuzz-kobo.c - libFuzzer target for kobo_page (source/kobo-page.c): the
 * input is one page of a KPI data listing.  An object of results with a
 * member "x-stop" makes the callback stop.
 * What must hold, against jansson reading the whole input at once (with
 * duplicate keys refused): the page is taken exactly when it is a JSON
 * object with "count" a whole number >= 0, "next" absent, null or a
 * string, "results" an array of objects each with an integer "_id" >= 0
 * and "_submission_time" absent or a string, no value nested deeper than
 * KOBO_DEPTH_MAX, and no NUL byte (jansson refuses \u0000 itself).  Then
 * fn sees each object in order, its _id, time and compact JSON as they
 * are, and the result is their number with count and next as the page
 * says; else the result is -1 with one line "GET url: ..." and fn saw
 * nothing, or -1 with err untouched when fn stopped.  Nothing leaks.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kobo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz-kobo.c:%d: %s\n", __LINE__, #c); abort(); } } while (0)

static const char url[] = "https://kf.example.org/api/v2/assets/aBcD123/data/?format=json"
    "&limit=1000&start=0";

/* What the callback saw, against the page as jansson read it. */
struct seen {
	json_t *results;          /* the reference's array, or NULL */
	size_t calls;
	int stopped;
};

/* How deeply x nests: 0 for a scalar, 1 for [] or {}. */
static int
depth(json_t *x)
{
	const char *key;
	json_t *v;
	size_t i;
	int d = 0, e;

	if (json_is_object(x)) {
		json_object_foreach(x, key, v)
			if ((e = depth(v)) > d)
				d = e;
		return d + 1;
	}
	if (json_is_array(x)) {
		json_array_foreach(x, i, v)
			if ((e = depth(v)) > d)
				d = e;
		return d + 1;
	}
	return 0;
}

/* Whether page, as jansson read it, is one kobo_page must take; the
 * index (from 1) of the first object with "x-stop" in *stop_at, or 0. */
static int
acceptable(json_t *page, size_t *stop_at)
{
	json_t *count = json_object_get(page, "count"), *next = json_object_get(page, "next");
	json_t *res = json_object_get(page, "results"), *v;
	const char *key;
	size_t i;

	*stop_at = 0;
	if (!json_is_object(page) || !json_is_integer(count) || json_integer_value(count) < 0 ||
	    (next && !json_is_null(next) && !json_is_string(next)) || !json_is_array(res))
		return 0;
	json_object_foreach(page, key, v)
		if (v != res && depth(v) > KOBO_DEPTH_MAX)
			return 0;
	json_array_foreach(res, i, v) {
		json_t *id = json_object_get(v, "_id"), *t = json_object_get(v, "_submission_time");

		if (!json_is_object(v) || depth(v) > KOBO_DEPTH_MAX || !json_is_integer(id) ||
		    json_integer_value(id) < 0 || (t && !json_is_string(t)))
			return 0;
		if (!*stop_at && json_object_get(v, "x-stop"))
			*stop_at = i + 1;
	}
	return 1;
}

static int
on_sub(void *arg, const struct kobo_sub *s)
{
	struct seen *r = arg;
	json_t *want, *got, *t;

	CHECK(r->results && !r->stopped && r->calls < json_array_size(r->results));
	want = json_array_get(r->results, r->calls++);
	t = json_object_get(want, "_submission_time");
	CHECK(s->id == json_integer_value(json_object_get(want, "_id")));
	CHECK(t ? s->submitted && strcmp(s->submitted, json_string_value(t)) == 0 :
	    s->submitted == NULL);
	CHECK(s->json && !strchr(s->json, '\n'));
	got = json_loads(s->json, JSON_REJECT_DUPLICATES, NULL);
	CHECK(got && json_equal(got, want));
	json_decref(got);
	if (json_object_get(want, "x-stop")) {
		r->stopped = 1;
		return 1;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *page = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct seen r = { 0 };
	char err[KOBO_ERR_MAX] = "untouched", *next = (char *)"x";
	int64_t count = -7;
	size_t stop_at;
	int ok = acceptable(page, &stop_at), rc;

	/* Past kobo-page.c's VALUES_MAX it may refuse what jansson took;
	 * and jansson 2.14 takes a NUL byte between tokens, where JSON has
	 * none. */
	if (size > 256 * 1024 || memchr(data, '\0', size)) {
		r.results = NULL;
		ok = 0;
	}
	r.results = ok ? json_object_get(page, "results") : NULL;
	rc = kobo_page(url, (const char *)data, size, &count, &next, on_sub, &r, err, sizeof(err));
	if (!ok) {
		CHECK(rc == -1 && r.calls == 0 && next == NULL);
		CHECK(strncmp(err, "GET ", 4) == 0 && strstr(err, url) &&
		    strchr(err, '\n') == NULL && strchr(err, '\r') == NULL);
	} else if (stop_at) {
		CHECK(rc == -1 && r.stopped && r.calls == stop_at && next == NULL);
		CHECK(strcmp(err, "untouched") == 0);
	} else {
		json_t *n = json_object_get(page, "next");

		CHECK(rc >= 0 && (size_t)rc == json_array_size(r.results) && r.calls == (size_t)rc);
		CHECK(count == json_integer_value(json_object_get(page, "count")));
		CHECK(json_is_string(n) ? next && strcmp(next, json_string_value(n)) == 0 :
		    next == NULL);
		CHECK(strcmp(err, "untouched") == 0);
	}
	free(next);
	json_decref(page);
	return 0;
}
