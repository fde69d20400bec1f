/*
 * kobo.h - a KoboToolbox KPI server's API v2, as the forms stage reads it:
 * the survey forms (GET /api/v2/assets/?asset_type=survey), and a form's
 * submissions (GET /api/v2/assets/UID/data/?format=json), page by page
 * with limit and start, following next.  Authorization: Token TOKEN.
 *
 * Every request takes a token of the client's bucket
 * ([kobo] max_requests_per_minute) and is retried ([kobo] retries, with
 * backoff; Retry-After honoured up to the backoff's cap) after a network
 * failure, 408, 429 or 5xx; never after another 4xx.  Nothing the server
 * says is trusted: a page is at most KOBO_PAGE_MAX bytes, a pull at most
 * count / KOBO_LIMIT + 2 pages (count as the first page says), a next
 * URL must be on the server of [kobo] url and must not repeat one
 * followed already, each submission must be a JSON object with an integer
 * _id, no \u0000 anywhere, nested at most KOBO_DEPTH_MAX deep, and the
 * pull must end with as many submissions as the first page counted.
 * Every int function returns 0, or -1 with a one-line message in err
 * (naming the URL without the token); KOBO_AUTH when the server refused
 * the token (401 or 403), which no retry changes.
 */
#ifndef THLHP_KOBO_H
#define THLHP_KOBO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct config;

enum {
	KOBO_LIMIT = 1000,          /* submissions asked per page */
	KOBO_PAGE_MAX = 64 << 20,   /* bytes of one page */
	KOBO_PAGES_MAX = 100000,    /* pages of one listing, whatever count says */
	KOBO_DEPTH_MAX = 64,        /* nesting of one submission */
	KOBO_ERR_MAX = 512,
	KOBO_AUTH = -2,
};

struct kobo;

/* A survey form (asset). */
struct kobo_form {
	char *uid;                /* asset uid: what `forms:UID` names */
	char *name;               /* its title, as the server has it */
	int64_t count;            /* deployment__submission_count; -1 when not said */
};

/* Once per run, on the main thread, for cfg's [kobo]: NULL with err. */
struct kobo *kobo_new(const struct config *cfg, char *err, size_t errlen);
void kobo_free(struct kobo *k);

/* Every survey form of the server, in uid order; with [kobo] forms not
 * "all", only those it names (one named that the server lacks is an
 * error).  *v malloc'd (kobo_forms_free). */
int kobo_forms(struct kobo *k, atomic_int *cancel, struct kobo_form **v, int *n, char *err,
    size_t errlen);
void kobo_forms_free(struct kobo_form *v, int n);

/* One submission as it came. */
struct kobo_sub {
	int64_t id;               /* _id */
	const char *submitted;    /* _submission_time, or NULL when absent */
	const char *json;         /* the whole object, compact JSON, UTF-8 */
};

/* The submissions of form uid, in the server's order: those submitted
 * after since (a _submission_time as the server writes them; the query
 * {"_submission_time": {"$gt": since}}), or all when since is NULL.
 * fn(arg, sub) for each (strings valid during the call; non-zero stops
 * the pull, which then returns -1 with err as fn left it).  A pull that
 * fails part way has called fn for the pages before: the caller keeps
 * them or not. */
int kobo_pull(struct kobo *k, const char *uid, const char *since, atomic_int *cancel,
    int (*fn)(void *arg, const struct kobo_sub *sub), void *arg, char *err, size_t errlen);

/* One page of submissions, n bytes of body from url: fn for each element
 * of "results"; *count and *next (malloc'd, NULL at the last page) from
 * the page.  The number of results, or -1 with err.  What
 * tests/fuzz/fuzz-kobo.c fuzzes. */
int kobo_page(const char *url, const char *body, size_t n, int64_t *count, char **next,
    int (*fn)(void *arg, const struct kobo_sub *sub), void *arg, char *err, size_t errlen);

#endif
