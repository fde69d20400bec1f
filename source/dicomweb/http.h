/*
 * http.h - HTTP GETs over libcurl for the DICOMweb source: one connection
 * pool per run (a curl share: connections kept alive and reused by every
 * job's thread, DNS and TLS sessions too), HTTP/2 where the server offers
 * it over TLS, HTTP/1.1 otherwise.  Every int function returns 0, or -1
 * with a one-line message in err.
 */
#ifndef THLHP_HTTP_H
#define THLHP_HTTP_H

#include <stddef.h>
#include <stdatomic.h>

/* HTTP_LOW_SPEED: bytes a second an answer must keep up, averaged over
 * the timeout, or it is given up as stalled (a server trickling a few
 * bytes a second is never silent, yet never ends). */
enum { HTTP_ERR_MAX = 512, HTTP_EXCERPT = 160, HTTP_LOW_SPEED = 1024 };

/* How to reach the server. */
struct http_opts {
	const char *auth;         /* "bearer TOKEN", "basic USER:PASS", "token TOKEN"
	                           * (sent as "Authorization: Token TOKEN", as
	                           * Django REST framework asks) or NULL */
	const char *ca, *cert, *key; /* PEM files for HTTPS, or NULL */
	int timeout;              /* seconds: to connect, and of an answer slower
	                           * than HTTP_LOW_SPEED */
};

/* Bounds of one request, past which it fails. */
struct http_limits {
	long long max_body;       /* bytes of a 2xx body; 0: no bound */
	int deadline;             /* seconds for the whole request; 0: none */
};

struct http;

/* Called with the body as it arrives, after the status and headers are
 * known (only for a 2xx answer); non-zero stops the transfer. */
typedef int http_body_fn(void *arg, const char *content_type, const void *p, size_t n);

/* What came back. */
struct http_resp {
	long status;              /* HTTP status, 0 when none came */
	char excerpt[HTTP_EXCERPT]; /* the start of a non-2xx body, one line */
	int too_big;              /* the body passed lim->max_body */
	int permanent;            /* a failure no retry changes: the server's
	                           * certificate did not verify, a CA file that
	                           * does not load */
	long retry_after;         /* seconds a Retry-After header asked to wait; 0: none */
};

/* A body gathered whole (http_collect as fn, the struct as arg): room
 * for a NUL after it; grown to at most max + 1 bytes (make max the
 * limits' max_body, which http_get holds it to). */
struct http_buf {
	char *p;                  /* malloc'd; NULL until a byte came */
	size_t n, cap, max;
};
http_body_fn http_collect;

/* Once, on the main thread, before any job: NULL with err on failure. */
struct http *http_new(const struct http_opts *o, char *err, size_t errlen);
void http_free(struct http *h);
/* GET url with that Accept header, within lim (NULL: no bounds); a 2xx
 * body goes to fn.  0 for a 2xx, else -1 with err naming the URL and the
 * status and r->excerpt, the bound passed, or the network error
 * (r->status 0).  *cancel set stops it. */
int http_get(struct http *h, const char *url, const char *accept,
    const struct http_limits *lim, http_body_fn *fn, void *arg, struct http_resp *r,
    atomic_int *cancel, char *err, size_t errlen);
/* value percent-encoded for a URL query, but for the wildcards * and ?
 * (both legal in a query); malloc'd. */
char *http_escape(const char *value);

#endif
