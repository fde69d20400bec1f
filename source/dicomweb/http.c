/*
 * http.c - http.h over libcurl.  One easy handle per request, all on one
 * share (connection cache, DNS, TLS sessions), so a job's request reuses
 * the connection another job's request left open.  The share's locks are
 * one mutex per kind of data, as curl asks.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"
#include "util.h"

struct http {
	CURLSH *share;
	pthread_mutex_t mu[CURL_LOCK_DATA_LAST];
	struct http_opts o;
	char *user;               /* "USER:PASS" for basic */
	char *bearer;             /* TOKEN for bearer */
	char *token;              /* TOKEN for token */
};

static void
lock(CURL *c, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct http *h = arg;

	pthread_mutex_lock(&h->mu[data]);
}

static void
unlock(CURL *c, curl_lock_data data, void *arg)
{
	struct http *h = arg;

	pthread_mutex_unlock(&h->mu[data]);
}

static void
global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http *
http_new(const struct http_opts *o, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct http *h;
	const char *a = o->auth;

	pthread_once(&once, global_init);
	h = xcalloc(1, sizeof(*h));
	h->o = *o;
	if (a && !strncasecmp(a, "bearer ", 7)) {
		h->bearer = xstrdup(a + 7);
	} else if (a && !strncasecmp(a, "basic ", 6) && strchr(a + 6, ':')) {
		h->user = xstrdup(a + 6);
	} else if (a && !strncasecmp(a, "token ", 6)) {
		/* It goes into a header line of its own: no line breaks. */
		for (const char *p = a + 6; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				a = NULL;
		if (!a || !a[6]) {
			errf(err, errlen, "the token is empty or holds a control character");
			free(h);
			return NULL;
		}
		h->token = xstrdup(a + 6);
	} else if (a && *a) {
		errf(err, errlen, "[pacs] auth: \"bearer TOKEN\" or \"basic USER:PASSWORD\"");
		free(h);
		return NULL;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->mu[i], NULL);
	h->share = curl_share_init();
	if (!h->share) {
		errf(err, errlen, "libcurl: cannot make a connection pool");
		http_free(h);
		return NULL;
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return h;
}

void
http_free(struct http *h)
{
	if (!h)
		return;
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->mu[i]);
	if (h->user)
		explicit_bzero(h->user, strlen(h->user));
	if (h->bearer)
		explicit_bzero(h->bearer, strlen(h->bearer));
	if (h->token)
		explicit_bzero(h->token, strlen(h->token));
	free(h->user);
	free(h->bearer);
	free(h->token);
	free(h);
}

/* One transfer's state, for the callbacks. */
struct xfer {
	CURL *c;
	http_body_fn *fn;
	void *arg;
	atomic_int *cancel;
	long long max_body;       /* 0: no bound */
	long long got;            /* 2xx body bytes so far */
	int too_big;              /* it passed max_body */
	long status;              /* known once the body starts */
	char *ctype;
	char excerpt[HTTP_EXCERPT];
	size_t nex;
	int stopped;              /* fn said stop */
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;

	n *= size;
	if (!x->status) {
		char *ct = NULL;

		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->status);
		curl_easy_getinfo(x->c, CURLINFO_CONTENT_TYPE, &ct);
		x->ctype = xstrdup(ct ? ct : "");
	}
	if (x->max_body && x->status >= 200 && x->status <= 299) {
		curl_off_t len = -1;

		/* Refused unread when its length says so, else at the bound. */
		curl_easy_getinfo(x->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
		if (len > x->max_body || (long long)n > x->max_body - x->got) {
			x->too_big = 1;
			return CURL_WRITEFUNC_ERROR;
		}
		x->got += (long long)n;
	}
	if (x->status < 200 || x->status > 299) {
		/* Keep the start of an error body for the message. */
		for (size_t i = 0; i < n && x->nex + 1 < sizeof(x->excerpt); i++)
			x->excerpt[x->nex++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : ' ';
		return n;
	}
	if (x->fn(x->arg, x->ctype, p, n) != 0) {
		x->stopped = 1;
		return CURL_WRITEFUNC_ERROR;
	}
	return n;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer *x = arg;

	return atomic_load(x->cancel) ? 1 : 0;
}

/* A byte count for a message: "32 MiB" when it is whole MiB. */
static void
bytes_text(long long n, char *buf, size_t len)
{
	if (n > 0 && n % (1 << 20) == 0)
		snprintf(buf, len, "%lld MiB", n >> 20);
	else
		snprintf(buf, len, "%lld bytes", n);
}

/* The message for CURLE_OPERATION_TIMEDOUT: a connect that did not
 * happen, the deadline, or an answer too slow for too long. */
static void
timed_out(const struct xfer *x, const struct http *h, const struct http_limits *lim,
    const char *url, const char *cerr, char *err, size_t errlen)
{
	curl_off_t connect = 0, total = 0, got = 0;

	curl_easy_getinfo(x->c, CURLINFO_CONNECT_TIME_T, &connect);
	curl_easy_getinfo(x->c, CURLINFO_TOTAL_TIME_T, &total);
	curl_easy_getinfo(x->c, CURLINFO_SIZE_DOWNLOAD_T, &got);
	if (connect == 0)
		errf(err, errlen, "GET %s: %s", url, cerr);
	else if (lim && lim->deadline && total >= (curl_off_t)lim->deadline * 1000000 - 500000)
		errf(err, errlen, "GET %s: no complete answer within %d s (%lld bytes came)",
		    url, lim->deadline, (long long)got);
	else
		errf(err, errlen, "GET %s: too slow: under %d bytes/s for %d s (%lld bytes in "
		    "%.0f s), a stalled server", url, HTTP_LOW_SPEED, h->o.timeout,
		    (long long)got, (double)total / 1e6);
}

int
http_get(struct http *h, const char *url, const char *accept, const struct http_limits *lim,
    http_body_fn *fn, void *arg, struct http_resp *r, atomic_int *cancel, char *err,
    size_t errlen)
{
	struct xfer x = { .fn = fn, .arg = arg, .cancel = cancel,
		.max_body = lim ? lim->max_body : 0 };
	struct curl_slist *hdr = NULL;
	char cerr[CURL_ERROR_SIZE] = "", *line;
	CURLcode rc;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	x.c = curl_easy_init();
	if (!x.c) {
		errf(err, errlen, "libcurl: cannot start a request");
		return -1;
	}
	line = xasprintf("Accept: %s", accept);
	hdr = curl_slist_append(hdr, line);
	free(line);
	if (h->token) {
		line = xasprintf("Authorization: Token %s", h->token);
		hdr = curl_slist_append(hdr, line);
		explicit_bzero(line, strlen(line));
		free(line);
	}
	curl_easy_setopt(x.c, CURLOPT_URL, url);
	curl_easy_setopt(x.c, CURLOPT_SHARE, h->share);
	curl_easy_setopt(x.c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(x.c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(x.c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x.c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x.c, CURLOPT_CONNECTTIMEOUT, (long)h->o.timeout);
	/* A server silent for the timeout, or trickling, is a dead one; a
	 * deadline bounds one that is merely slow, where the caller can
	 * say how long is plausible. */
	curl_easy_setopt(x.c, CURLOPT_LOW_SPEED_LIMIT, (long)HTTP_LOW_SPEED);
	curl_easy_setopt(x.c, CURLOPT_LOW_SPEED_TIME, (long)h->o.timeout);
	if (lim && lim->deadline)
		curl_easy_setopt(x.c, CURLOPT_TIMEOUT, (long)lim->deadline);
	curl_easy_setopt(x.c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(x.c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x.c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(x.c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(x.c, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(x.c, CURLOPT_NOPROGRESS, 0L);
	if (h->o.ca)
		curl_easy_setopt(x.c, CURLOPT_CAINFO, h->o.ca);
	if (h->o.cert)
		curl_easy_setopt(x.c, CURLOPT_SSLCERT, h->o.cert);
	if (h->o.key)
		curl_easy_setopt(x.c, CURLOPT_SSLKEY, h->o.key);
	if (h->user) {
		curl_easy_setopt(x.c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(x.c, CURLOPT_USERPWD, h->user);
	} else if (h->bearer) {
		curl_easy_setopt(x.c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(x.c, CURLOPT_XOAUTH2_BEARER, h->bearer);
	}
	rc = curl_easy_perform(x.c);
	if (!x.status)
		curl_easy_getinfo(x.c, CURLINFO_RESPONSE_CODE, &x.status);
	r->status = x.status;
	memcpy(r->excerpt, x.excerpt, x.nex);
	r->excerpt[x.nex] = '\0';
	r->too_big = x.too_big;
	r->permanent = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
	    rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR ||
	    rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || rc == CURLE_SSL_CRL_BADFILE;
	if (x.status < 200 || x.status > 299) {
		curl_off_t ra = 0;

		/* curl reads seconds or an HTTP date; a date past is 0. */
		if (curl_easy_getinfo(x.c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			r->retry_after = ra > 86400 ? 86400 : (long)ra;
	}
	if (x.too_big) {
		char b[32];

		bytes_text(x.max_body, b, sizeof(b));
		errf(err, errlen, "GET %s: the answer is larger than %s; refused", url, b);
	} else if (x.stopped)
		errf(err, errlen, "GET %s: stopped", url);
	else if (rc == CURLE_ABORTED_BY_CALLBACK)
		errf(err, errlen, "interrupted");
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		timed_out(&x, h, lim, url, cerr[0] ? cerr : curl_easy_strerror(rc), err, errlen);
	else if (rc != CURLE_OK)
		errf(err, errlen, "GET %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
	else if (x.status < 200 || x.status > 299)
		errf(err, errlen, "GET %s: HTTP %ld%s%s", url, x.status, x.nex ? ": " : "",
		    r->excerpt);
	else
		ret = 0;
	/* The token's line, wiped before it goes back to the heap. */
	for (struct curl_slist *l = hdr; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(hdr);
	curl_easy_cleanup(x.c);
	free(x.ctype);
	return ret;
}

int
http_collect(void *arg, const char *ctype, const void *p, size_t n)
{
	struct http_buf *b = arg;

	(void)ctype;
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		if (b->max && b->cap > b->max + 1)
			b->cap = b->max + 1;
		if (b->cap < b->n + n + 1)
			b->cap = b->n + n + 1;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

char *
http_escape(const char *value)
{
	size_t len = strlen(value), n = 0;
	char *out = xmalloc(3 * len + 1);

	/* QIDO's wildcards stay as they are: a server need not decode %2A
	 * before matching (Orthanc 1.10's plugin does not). */
	for (const char *p = value; *p;) {
		size_t k = strcspn(p, "*?");
		char *e = k ? curl_easy_escape(NULL, p, (int)k) : NULL;

		if (k && !e)
			fatal("out of memory");
		if (e) {
			memcpy(out + n, e, strlen(e));
			n += strlen(e);
			curl_free(e);
		}
		p += k;
		if (*p)
			out[n++] = *p++;
	}
	out[n] = '\0';
	return out;
}
