/*
 * kobo.c - kobo.h over http.c (one connection pool; the token in an
 * "Authorization: Token" header, never in a URL or a message) and
 * jansson: the client's state, each GET with its token of the bucket and
 * its retries, and the listings (forms, submissions) page by page,
 * following next.  Reading one page is kobo-page.c.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config.h"
#include "htab.h"
#include "http.h"
#include "kobo-int.h"
#include "pace.h"
#include "util.h"

enum {
	ASSET_LIMIT = 100,        /* forms asked per page */
	DEADLINE = 10,            /* an answer takes at most this many [kobo] timeouts */
	UID_MAX = 64,             /* bytes of an asset uid (Kobo's are 22) */
	WAIT_MAX = 60,            /* seconds: backoff_delay's cap, Retry-After's too */
};

struct kobo {
	struct http *http;        /* the connection pool */
	struct bucket bucket;     /* [kobo] max_requests_per_minute */
	char *base;               /* [kobo] url without a trailing '/' */
	char *scheme, *host, *port; /* its server, which every next must be on */
	char *token;              /* kept only to keep it out of messages */
	char **forms;             /* [kobo] forms, sorted; NULL for "all" */
	int nforms;
	int retries;
	int timeout;              /* [kobo] timeout, seconds */
};

/* Whether s is an asset uid: safe in a URL path and in a target's name. */
static int
uid_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= UID_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The scheme, host and port of url (the scheme's port when none is
 * written), to curl_free; -1 when it is no absolute http(s) URL. */
static int
url_server(const char *url, char **scheme, char **host, char **port)
{
	CURLU *u = curl_url();
	int rc = -1;

	*scheme = *host = *port = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    (!strcasecmp(*scheme, "http") || !strcasecmp(*scheme, "https")))
		rc = 0;
	curl_url_cleanup(u);
	if (rc < 0) {
		curl_free(*scheme);
		curl_free(*host);
		curl_free(*port);
		*scheme = *host = *port = NULL;
	}
	return rc;
}

/* [kobo] forms: NULL for "all", else its uids sorted and unique. */
static int
parse_forms(struct kobo *k, const struct config *cfg, char *err, size_t errlen)
{
	const char *s = cfg->kobo.forms ? cfg->kobo.forms : "all", *blank = " \t";
	char *msg = NULL;
	int m = 0;

	for (s += strspn(s, blank); *s && !msg; s += strspn(s, blank)) {
		size_t n = strcspn(s, blank);
		char *w = xasprintf("%.*s", (int)n, s);

		s += n;
		k->forms = xreallocarray(k->forms, (size_t)k->nforms + 1, sizeof(*k->forms));
		k->forms[k->nforms++] = w;
		if (strcmp(w, "all") != 0 && !uid_ok(w))
			msg = config_err(cfg, "kobo", "forms", "\"%s\" is not an asset uid (letters, "
			    "digits, '_' and '-', as in the form's URL); or \"all\"", w);
	}
	for (int i = 0; i < k->nforms && !msg; i++)
		if (strcmp(k->forms[i], "all") == 0 && k->nforms > 1)
			msg = config_err(cfg, "kobo", "forms", "\"all\" or asset uids, not both");
	if (!msg && k->nforms == 0)
		msg = config_err(cfg, "kobo", "forms", "empty: \"all\", or asset uids");
	if (msg) {
		errf(err, errlen, "%s", msg);
		free(msg);
		return -1;
	}
	if (strcmp(k->forms[0], "all") == 0) {
		free(k->forms[0]);
		free(k->forms);
		k->forms = NULL;
		k->nforms = 0;
		return 0;
	}
	/* Sorted for bsearch, each once. */
	qsort(k->forms, (size_t)k->nforms, sizeof(*k->forms), cmp_str);
	for (int i = 0; i < k->nforms; i++) {
		if (m > 0 && strcmp(k->forms[m - 1], k->forms[i]) == 0)
			free(k->forms[i]);
		else
			k->forms[m++] = k->forms[i];
	}
	k->nforms = m;
	return 0;
}

/* A config_err message into err; -1. */
static int
bad_key(const struct config *cfg, const char *key, const char *what, char *err, size_t errlen)
{
	char *msg = config_err(cfg, "kobo", key, "%s", what);

	errf(err, errlen, "%s", msg);
	free(msg);
	return -1;
}

struct kobo *
kobo_new(const struct config *cfg, char *err, size_t errlen)
{
	const struct config_kobo *c = &cfg->kobo;
	struct kobo *k = xcalloc(1, sizeof(*k));
	char e[HTTP_ERR_MAX], *auth;
	size_t n;

	if (!c->url || !*c->url) {
		bad_key(cfg, "url", "not set: the KPI server, e.g. https://kf.kobotoolbox.org", err,
		    errlen);
		goto err;
	}
	k->base = xstrdup(c->url);
	n = strlen(k->base);
	while (n > 0 && k->base[n - 1] == '/')
		k->base[--n] = '\0';
	if (url_server(k->base, &k->scheme, &k->host, &k->port) < 0 || strchr(k->base, '?') ||
	    strchr(k->base, '#')) {
		bad_key(cfg, "url", "not an http:// or https:// URL without a query", err, errlen);
		goto err;
	}
	if (parse_forms(k, cfg, err, errlen) < 0)
		goto err;
	if (!c->token || !*c->token) {
		bad_key(cfg, "token", "not set: the API token of a Kobo account that may see "
		    "the forms' data", err, errlen);
		goto err;
	}
	k->token = xstrdup(c->token);
	auth = xasprintf("token %s", c->token);
	k->http = http_new(&(struct http_opts){ .auth = auth, .ca = c->tls_ca,
	    .timeout = c->timeout }, e, sizeof(e));
	explicit_bzero(auth, strlen(auth));
	free(auth);
	if (!k->http) {
		bad_key(cfg, "token", e, err, errlen);
		goto err;
	}
	bucket_init(&k->bucket, c->max_requests_per_minute > 0 ? c->max_requests_per_minute : 600);
	k->retries = c->retries;
	k->timeout = c->timeout;
	return k;
err:
	kobo_free(k);
	return NULL;
}

void
kobo_free(struct kobo *k)
{
	if (!k)
		return;
	if (k->http) {
		http_free(k->http);
		bucket_free(&k->bucket);
	}
	if (k->token)
		explicit_bzero(k->token, strlen(k->token));
	free(k->token);
	free(k->base);
	curl_free(k->scheme);
	curl_free(k->host);
	curl_free(k->port);
	for (int i = 0; i < k->nforms; i++)
		free(k->forms[i]);
	free(k->forms);
	free(k);
}

/* The token, wherever a server put it into err (echoed in an error
 * body, say), replaced: a message goes to logs and mail. */
static void
redact(const struct kobo *k, char *err, size_t errlen)
{
	size_t tn = strlen(k->token), n = 0;
	int full = strlen(err) + 1 >= errlen;
	char *out, *p;

	if (tn == 0 || errlen == 0)
		return;
	out = xmalloc(errlen);
	for (const char *s = err; n + 1 < errlen && *s;) {
		const char *put = s;
		size_t len = 1;

		if (strncmp(s, k->token, tn) == 0) {
			put = "(the token)";
			len = strlen(put);
			s += tn;
		} else {
			s++;
		}
		len = len < errlen - 1 - n ? len : errlen - 1 - n;
		memcpy(out + n, put, len);
		n += len;
	}
	out[n] = '\0';
	/* A message cut short inside the token: none of it shown. */
	for (p = out + (n > tn ? n - tn + 1 : 0); full && *p; p++)
		if (strncmp(p, k->token, strlen(p)) == 0) {
			*p = '\0';
			break;
		}
	memcpy(err, out, strlen(out) + 1);
	free(out);
}

/* ---- requests ------------------------------------------------------- */

/* What an error body says: DRF's {"detail": "..."}, or its start. */
static void
detail(const char *excerpt, char *out, size_t len)
{
	json_t *x = json_loads(excerpt, 0, NULL);
	const char *d = json_string_value(json_object_get(x, "detail"));

	snprintf(out, len, "%s", d ? d : excerpt);
	json_decref(x);
}

/* GET url into b, after a token of the bucket, retried as kobo.h says:
 * 0, or KOBO_AUTH or -1 with err. */
static int
kobo_get(struct kobo *k, const char *url, atomic_int *cancel, struct http_buf *b, char *err,
    size_t errlen)
{
	const struct http_limits lim = {
		.max_body = KOBO_PAGE_MAX, .deadline = DEADLINE * k->timeout,
	};
	char e[HTTP_ERR_MAX], d[HTTP_EXCERPT];
	struct http_resp r;

	for (int attempt = 1;; attempt++) {
		int64_t wait;

		if (bucket_take(&k->bucket, cancel) < 0)
			break;
		b->n = 0;
		if (http_get(k->http, url, "application/json", &lim, http_collect, b, &r, cancel, e,
		    sizeof(e)) == 0)
			return 0;
		if (atomic_load(cancel))
			break;
		if (r.status == 401 || r.status == 403) {
			detail(r.excerpt, d, sizeof(d));
			/* 403: the token is good but its account may not see this:
			 * what helps is sharing the form, not checking the token. */
			if (r.status == 403)
				errf(err, errlen, "GET %s: the account of [kobo] token may not see "
				    "this (HTTP 403%s%s); share the form with it, or use another "
				    "account's token", url, d[0] ? ": " : "", d);
			else
				errf(err, errlen, "GET %s: the server refused the token (HTTP 401%s%s); "
				    "check [kobo] token", url, d[0] ? ": " : "", d);
			return KOBO_AUTH;
		}
		/* The same request would get the same answer: too large, a
		 * certificate that does not verify, a redirect (not followed:
		 * the token would go along), a 4xx. */
		if (r.too_big || r.permanent || (r.status >= 300 && r.status < 500 &&
		    r.status != 408 && r.status != 429)) {
			errf(err, errlen, "%s", e);
			return -1;
		}
		if (attempt > k->retries) {
			errf(err, errlen, "%s (given up after %d attempt%s; [kobo] retries)", e,
			    attempt, attempt > 1 ? "s" : "");
			return -1;
		}
		wait = backoff_delay(attempt);
		if ((int64_t)r.retry_after * 1000000000 > wait)
			wait = (int64_t)(r.retry_after < WAIT_MAX ? r.retry_after : WAIT_MAX) *
			    1000000000;
		if (backoff_wait(wait, cancel) < 0)
			break;
	}
	errf(err, errlen, "interrupted");
	return -1;
}

/* ---- listings ------------------------------------------------------- */

/* The URLs a listing followed, to refuse one a second time. */
struct seen {
	struct htab tab;          /* keys: v's strings */
	char **v;                 /* malloc'd, the first URL first */
	size_t n;
};

static void
seen_add(struct seen *s, char *url)
{
	s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
	s->v[s->n++] = url;
	htab_put(&s->tab, url, url);
}

/* Whether next may be followed after url: on [kobo] url's server (the
 * token goes along), and not followed already (a server sending us round
 * in circles).  0, with next taken into seen; -1 with err. */
static int
next_ok(const struct kobo *k, struct seen *seen, const char *url, char *next, char *err,
    size_t errlen)
{
	char *scheme, *host, *port;
	int same = 0;

	if (url_server(next, &scheme, &host, &port) == 0) {
		same = !strcasecmp(scheme, k->scheme) && !strcasecmp(host, k->host) &&
		    !strcmp(port, k->port);
		curl_free(scheme);
		curl_free(host);
		curl_free(port);
	}
	if (!same) {
		errf(err, errlen, "GET %s: the next page is not on the server of [kobo] url "
		    "(\"%.200s\"); refused", url, next);
		return -1;
	}
	if (htab_get(&seen->tab, next)) {
		errf(err, errlen, "GET %s: the next page is one followed already (\"%.200s\"); "
		    "refused", url, next);
		return -1;
	}
	seen_add(seen, next);
	return 0;
}

/* Every page of a listing from url (limit elements a page asked), each
 * element to elem: 0, KOBO_AUTH or -1 with err (or as fn left it). */
static int
listing(struct kobo *k, char *url, int limit, const char *noun,
    int (*elem)(void *arg, const struct page *p, json_t *x, const char *what, int take,
    char *err, size_t errlen), void *arg, atomic_int *cancel, char *err, size_t errlen)
{
	struct seen seen = { 0 };
	struct http_buf b = { .max = KOBO_PAGE_MAX };
	int64_t count = -1, got = 0, max = 1;
	int rc = 0;

	htab_init(&seen.tab);
	seen_add(&seen, url);
	for (int64_t page = 0; url; page++) {
		struct page p = { .url = url, .noun = noun, .elem = elem, .arg = arg };
		int64_t c;
		char *next;
		int nr;

		if (atomic_load(cancel)) {
			errf(err, errlen, "interrupted");
			rc = -1;
			break;
		}
		if (page == max) {
			errf(err, errlen, "GET %s: yet another page after %lld (the first counted "
			    "%lld %ss, %d a page); refused", url, (long long)page, (long long)count,
			    noun, limit);
			rc = -1;
			break;
		}
		if ((rc = kobo_get(k, url, cancel, &b, err, errlen)) < 0)
			break;
		p.body = b.p ? b.p : "";
		p.n = b.n;
		if ((nr = kobo_page_read(&p, &c, &next, err, errlen)) < 0) {
			rc = -1;
			break;
		}
		/* Bounded by what the first page says, whatever the next ones do:
		 * its count, in pages as long as it (a server may give fewer
		 * than limit a page). */
		if (page == 0) {
			int64_t per = nr > 0 ? nr : 1;

			count = c;
			max = count / per + 2 < KOBO_PAGES_MAX ? count / per + 2 : KOBO_PAGES_MAX;
		}
		got += nr;
		if (next && next_ok(k, &seen, url, next, err, errlen) < 0) {
			free(next);
			rc = -1;
			break;
		}
		url = next;
	}
	/* Fewer than counted: some were never sent (or one deleted while
	 * it was read moved another to a page read already).  More: added
	 * while it was read, after the pages read; nothing is missing. */
	if (rc == 0 && got < count) {
		errf(err, errlen, "GET %s: the first page counted %lld %ss, but %lld came; "
		    "the listing is incomplete (or changed while it was read)", seen.v[0],
		    (long long)count, noun, (long long)got);
		rc = -1;
	}
	for (size_t i = 0; i < seen.n; i++)
		free(seen.v[i]);
	free(seen.v);
	htab_free(&seen.tab);
	free(b.p);
	return rc;
}

/* The forms a listing gave. */
struct forms {
	struct kobo_form *v;
	int n;
};

static int
on_asset(void *arg, const struct page *p, json_t *x, const char *what, int take, char *err,
    size_t errlen)
{
	struct forms *f = arg;
	const char *uid = json_string_value(json_object_get(x, "uid"));
	json_t *type = json_object_get(x, "asset_type"), *name = json_object_get(x, "name");
	json_t *count = json_object_get(x, "deployment__submission_count");
	struct kobo_form *fm;

	if (!json_is_object(x)) {
		errf(err, errlen, "GET %s: %s is not a JSON object", p->url, what);
		return -1;
	}
	if (!uid || !uid_ok(uid)) {
		errf(err, errlen, "GET %s: %s has no \"uid\" that is an asset uid (letters, "
		    "digits, '_' and '-', at most %d)", p->url, what, UID_MAX);
		return -1;
	}
	/* A server that ignored asset_type=survey: templates, blocks. */
	if (!take || (type && (!json_is_string(type) ||
	    strcmp(json_string_value(type), "survey") != 0)))
		return 0;
	f->v = xreallocarray(f->v, (size_t)f->n + 1, sizeof(*f->v));
	fm = &f->v[f->n++];
	fm->uid = xstrdup(uid);
	fm->name = xstrdup(json_is_string(name) ? json_string_value(name) : "");
	fm->count = json_is_integer(count) && json_integer_value(count) >= 0 ?
	    json_integer_value(count) : -1;
	return 0;
}

static int
cmp_form(const void *a, const void *b)
{
	return strcmp(((const struct kobo_form *)a)->uid, ((const struct kobo_form *)b)->uid);
}

static int
cmp_uid(const void *key, const void *elem)
{
	return strcmp(key, ((const struct kobo_form *)elem)->uid);
}

/* Only the forms [kobo] forms names, each of them there. */
static int
pick(const struct kobo *k, const char *url, struct forms *f, char *err, size_t errlen)
{
	int m = 0;

	for (int i = 0; i < k->nforms; i++)
		if (!bsearch(k->forms[i], f->v, (size_t)f->n, sizeof(*f->v), cmp_uid)) {
			errf(err, errlen, "GET %s: the server lists no survey form %s, which "
			    "[kobo] forms names", url, k->forms[i]);
			return -1;
		}
	for (int j = 0; j < f->n; j++) {
		if (bsearch(&f->v[j].uid, k->forms, (size_t)k->nforms, sizeof(*k->forms),
		    cmp_str)) {
			f->v[m++] = f->v[j];
			continue;
		}
		free(f->v[j].uid);
		free(f->v[j].name);
	}
	f->n = m;
	return 0;
}

int
kobo_forms(struct kobo *k, atomic_int *cancel, struct kobo_form **v, int *n, char *err,
    size_t errlen)
{
	atomic_int never = 0;
	struct forms f = { 0 };
	char *url = xasprintf("%s/api/v2/assets/?asset_type=survey&format=json&limit=%d",
	    k->base, ASSET_LIMIT);
	int rc;

	*v = NULL;
	*n = 0;
	rc = listing(k, xstrdup(url), ASSET_LIMIT, "form", on_asset, &f, cancel ? cancel : &never,
	    err, errlen);
	if (rc == 0) {
		qsort(f.v, (size_t)f.n, sizeof(*f.v), cmp_form);
		for (int i = 1; i < f.n && rc == 0; i++)
			if (strcmp(f.v[i - 1].uid, f.v[i].uid) == 0) {
				errf(err, errlen, "GET %s: the server lists form %s twice", url,
				    f.v[i].uid);
				rc = -1;
			}
	}
	if (rc == 0 && k->forms)
		rc = pick(k, url, &f, err, errlen);
	free(url);
	if (rc != 0) {
		kobo_forms_free(f.v, f.n);
		redact(k, err, errlen);
		return rc;
	}
	*v = f.v;
	*n = f.n;
	return 0;
}

void
kobo_forms_free(struct kobo_form *v, int n)
{
	for (int i = 0; i < n; i++) {
		free(v[i].uid);
		free(v[i].name);
	}
	free(v);
}

int
kobo_pull(struct kobo *k, const char *uid, const char *since, atomic_int *cancel,
    int (*fn)(void *arg, const struct kobo_sub *sub), void *arg, char *err, size_t errlen)
{
	atomic_int never = 0;
	struct subs s = { .fn = fn, .arg = arg };
	char *q = NULL;
	int rc;

	if (!uid_ok(uid)) {
		errf(err, errlen, "kobo: \"%.80s\" is not an asset uid", uid);
		return -1;
	}
	if (since) {
		json_t *j = json_pack("{s{s:s}}", "_submission_time", "$gt", since);
		char *js = j ? json_dumps(j, JSON_COMPACT) : NULL, *e;

		json_decref(j);
		if (!js) {
			errf(err, errlen, "kobo: form %s: the time to pull from is not UTF-8 text: "
			    "\"%.80s\"", uid, since);
			return -1;
		}
		if (!(e = curl_easy_escape(NULL, js, 0))) {
			errf(err, errlen, "kobo: form %s: out of memory", uid);
			free(js);
			return -1;
		}
		q = xasprintf("&query=%s", e);
		curl_free(e);
		free(js);
	}
	rc = listing(k, xasprintf("%s/api/v2/assets/%s/data/?format=json&limit=%d&start=0%s",
	    k->base, uid, KOBO_LIMIT, q ? q : ""), KOBO_LIMIT, "submission", kobo_on_sub, &s,
	    cancel ? cancel : &never, err, errlen);
	free(q);
	if (rc != 0 && !s.stopped)
		redact(k, err, errlen);
	return rc;
}
