/*
 * notify.c - heartbeats, mail and webhooks over libcurl, one short
 * request each, and when the digests are due (notify.h).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <curl/curl.h>
#include <jansson.h>
#include "config.h"
#include "notify.h"
#include "state.h"
#include "util.h"

/* The answer's body is of no interest. */
static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* The body of a failure ping without its lines: they name patients. */
static char *
withheld(char *lines)
{
	int n = 0, errors = 0;
	char *body;

	for (char *l = lines, *e; *l; l = e + 1) {
		if (!(e = strchr(l, '\n')))
			break;
		n++;
		errors += strncmp(l, argv0, strlen(argv0)) == 0;
	}
	body = xasprintf("%s: the run failed; its last %d lines (%d of them errors) name "
	    "patients and stay on this host: see its log, or set [notify] include_ids = yes\n",
	    argv0, n, errors);
	free(lines);
	return body;
}

/* One short HTTP request to url within timeout s: a POST of body (of
 * type ctype, or curl's form default when NULL), or a GET when body is
 * NULL; at most 3 redirects followed when follow.  The status, or 0 with
 * the network's reason in err when no answer came. */
static long
request(const char *url, int timeout, int follow, const char *ctype, const char *body,
    char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "", *line;
	struct curl_slist *hdr = NULL;
	long status = 0;
	CURLcode rc;
	CURL *c;

	if (!(c = curl_easy_init())) {
		errf(err, errlen, "cannot set up libcurl");
		return 0;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)timeout);
	if (follow) {
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
	}
	curl_easy_setopt(c, CURLOPT_USERAGENT, "thlhp-make");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	if (ctype) {
		line = xasprintf("Content-Type: %s", ctype);
		hdr = curl_slist_append(hdr, line);
		free(line);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	}
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if ((rc = curl_easy_perform(c)) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		errf(err, errlen, "%s", *cerr ? cerr : curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	return status;
}

void
notify_ping(const char *url, int include_ids, int timeout, enum notify_event event)
{
	static const char *const suffix[] = { "/start", "", "/fail" };
	char *u, *body = NULL, err[CURL_ERROR_SIZE] = "";
	size_t len;
	long status;

	if (!url || !*url)
		return;
	len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		len--;
	u = xasprintf("%.*s%s", (int)len, url, suffix[event]);
	/* A failure's body: what went wrong, as the operator would have seen it. */
	if (event == NOTIFY_FAIL)
		body = include_ids ? log_kept() : withheld(log_kept());
	if (!(status = request(u, timeout, 1, NULL, body, err, sizeof(err))))
		warn("ping %s failed (the run goes on): %s", u, err);
	else if (status >= 400)
		warn("ping %s: HTTP %ld (the run goes on)", u, status);
	free(body);
	free(u);
}

/* url without its user and password, for messages; malloc'd. */
static char *
server_name(const char *url)
{
	CURLU *h = curl_url();
	char *u = NULL, *r;

	if (h && curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_set(h, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
	    curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_URL, &u, 0) == CURLUE_OK)
		r = xescape(u);
	else
		r = xstrdup("(a URL that does not parse)");
	curl_free(u);
	curl_url_cleanup(h);
	return r;
}

/* Date (RFC 5322, in English whatever the locale) into buf. */
static void
mail_date(char *buf, size_t len)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = time(NULL);
	struct tm tm;
	long off;

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", wd[tm.tm_wday], tm.tm_mday,
	    mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

static char *
header(const char *name, const char *value)
{
	/* Values are ours or checked addresses: no CR or LF gets here. */
	return xasprintf("%s: %s", name, value);
}

int
notify_mail(const struct config *cfg, const char *subject, const char *body, char *err,
    size_t errlen)
{
	const struct config_notify *n = &cfg->notify;
	struct curl_slist *rcpt = NULL, *hdr = NULL;
	char date[64], host[256] = "localhost", cerr[CURL_ERROR_SIZE] = "", *to;
	char *server = server_name(n->smtp_url), *h, *from, *crlf;
	size_t k = 0;
	unsigned char rnd[8];
	CURL *c;
	curl_mime *mime = NULL;
	curl_mimepart *part;
	CURLcode rc = CURLE_FAILED_INIT;
	int ret = -1;

	gethostname(host, sizeof(host) - 1);
	if (!(c = curl_easy_init())) {
		errf(err, errlen, "mail through %s: cannot set up libcurl", server);
		free(server);
		return -1;
	}
	for (char **a = n->rcpt; a && *a; a++) {
		h = xasprintf("<%s>", *a);
		rcpt = curl_slist_append(rcpt, h);
		free(h);
	}
	from = xasprintf("<%s>", n->mail_from);
	mail_date(date, sizeof(date));
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	hdr = curl_slist_append(hdr, h = header("Date", date));
	free(h);
	hdr = curl_slist_append(hdr, h = header("From", n->mail_from));
	free(h);
	/* The To line as given, its separators made commas. */
	to = xstrdup("");
	for (char **a = n->rcpt; a && *a; a++) {
		h = xasprintf("%s%s%s", to, *to ? ", " : "", *a);
		free(to);
		to = h;
	}
	hdr = curl_slist_append(hdr, h = header("To", to));
	free(h);
	free(to);
	hdr = curl_slist_append(hdr, h = header("Subject", subject));
	free(h);
	h = xasprintf("Message-ID: <%" PRId64 ".%02x%02x%02x%02x%02x%02x%02x%02x.thlhp-make@%s>",
	    now_ns() / 1000000000, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
	    host);
	hdr = curl_slist_append(hdr, h);
	free(h);

	/* Mail's lines end in CRLF: quoted-printable keeps those as line
	 * breaks (a bare LF it would encode as =0A). */
	crlf = xmalloc(2 * strlen(body) + 1);
	for (const char *s = body; *s; s++) {
		if (*s == '\n' && (s == body || s[-1] != '\r'))
			crlf[k++] = '\r';
		crlf[k++] = *s;
	}
	crlf[k] = '\0';
	mime = curl_mime_init(c);
	part = curl_mime_addpart(mime);
	curl_mime_data(part, crlf, k);
	curl_mime_type(part, "text/plain; charset=UTF-8");
	curl_mime_encoder(part, "quoted-printable");

	curl_easy_setopt(c, CURLOPT_URL, n->smtp_url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	/* STARTTLS whenever the server offers it; smtps:// is TLS from the start. */
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	if (n->smtp_ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, n->smtp_ca);
	if (n->smtp_user)
		curl_easy_setopt(c, CURLOPT_USERNAME, n->smtp_user);
	if (n->smtp_password)
		curl_easy_setopt(c, CURLOPT_PASSWORD, n->smtp_password);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)n->timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)n->timeout);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		errf(err, errlen, "mail through %s: %s", server, *cerr ? cerr : curl_easy_strerror(rc));
	else
		ret = 0;
	curl_easy_cleanup(c);
	curl_mime_free(mime);
	free(crlf);
	curl_slist_free_all(rcpt);
	curl_slist_free_all(hdr);
	free(from);
	free(server);
	return ret;
}

int
notify_hook(const char *url, int timeout, const char *text, char *err, size_t errlen)
{
	json_t *o = json_pack("{s:s}", "text", text);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL, *server = server_name(url);
	char e[CURL_ERROR_SIZE] = "";
	long status = 0;

	json_decref(o);
	if (!body)
		errf(err, errlen, "webhook %s: cannot make its JSON", server);
	else if (!(status = request(url, timeout, 0, "application/json", body, e, sizeof(e))))
		errf(err, errlen, "webhook %s: %s", server, e);
	else if (status < 200 || status >= 300)
		errf(err, errlen, "webhook %s: HTTP %ld", server, status);
	free(body);
	free(server);
	return status >= 200 && status < 300 ? 0 : -1;
}

/* The notices of one channel, loaded. */
struct pending {
	struct notice *v;
	int64_t *ids;             /* their ids */
	int n;
};

static int
take_notice(void *arg, const struct notice *x)
{
	struct pending *p = arg;
	struct notice *c;

	p->v = xreallocarray(p->v, (size_t)p->n + 1, sizeof(*p->v));
	p->ids = xreallocarray(p->ids, (size_t)p->n + 1, sizeof(*p->ids));
	p->ids[p->n] = x->id;
	c = &p->v[p->n++];
	*c = *x;
	c->patient = xstrdup(x->patient);
	c->what = xstrdup(x->what);
	c->detail = xstrdup(x->detail);
	return 0;
}

static void
pending_free(struct pending *p)
{
	for (int i = 0; i < p->n; i++) {
		free((char *)p->v[i].patient);
		free((char *)p->v[i].what);
		free((char *)p->v[i].detail);
	}
	free(p->v);
	free(p->ids);
}

/* The folder the config file is in, as the project's name; malloc'd. */
static char *
project_name(const struct config *cfg)
{
	char *path = realpath(cfg->file, NULL), *slash, *name;

	if (!path)
		return xstrdup(cfg->file);
	if ((slash = strrchr(path, '/')))
		*slash = '\0';
	slash = strrchr(path, '/');
	name = xescape(slash && slash[1] ? slash + 1 : path);
	free(path);
	return name;
}

/* Send channel's digest if it is due: 0 sent or nothing due, -1 a warning
 * said why not (its notices stay for the next run). */
static int
digest(const struct config *cfg, struct state *st, int channel, const char *host,
    const char *project)
{
	const struct config_notify *n = &cfg->notify;
	struct pending p = { 0 };
	char err[512], *subject = NULL, *text = NULL, owner[320], job[32], holder[320];
	int64_t oldest = INT64_MAX, now = now_ns() / 1000000000, gen = 0;
	int rc = 0, claimed = 0;

	/* Several processes sharing the store: the one that claims the
	 * channel reads and sends.  Read only once claimed, so that nothing
	 * is read that another is sending.  One that finds another sending
	 * waits for it (at most one send's timeout), then sends what that
	 * one did not read: its own news goes now, not with the next run. */
	if (st->shared) {
		int64_t until = mono_ns() + (int64_t)(n->timeout + 5) * 1000000000;

		snprintf(owner, sizeof(owner), "%s %ld digest", host, (long)getpid());
		snprintf(job, sizeof(job), "notify:%s", channel == NOTIFY_MAIL ? "mail" : "webhook");
		while ((claimed = state_claim(st, job, owner, (int64_t)(n->timeout + 60) * 1000, &gen,
		    holder, sizeof(holder))) == 0 && mono_ns() < until)
			nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
		if (claimed <= 0) {
			if (claimed < 0)
				warn("notify: %s", st->err);
			else if (verbosity > 0)
				warn("notify: %s is still sending the %s digest; what this run did "
				    "goes with the next", holder, channel == NOTIFY_MAIL ? "mail" :
				    "webhook");
			return claimed < 0 ? -1 : 0;
		}
	}
	if (state_notice_get(st, channel, take_notice, &p) < 0) {
		warn("notify: cannot read the notices: %s", st->err);
		rc = -1;
		goto out;
	}
	for (int i = 0; i < p.n; i++)
		if (p.v[i].at / 1000000000 < oldest)
			oldest = p.v[i].at / 1000000000;
	/* Daily: once the digest time has passed since the oldest notice. */
	if (!p.n || (n->digest == DIGEST_DAILY && notify_last_time(n->digest_time, now) < oldest))
		goto out;
	text = notify_digest(p.v, p.n, n->include_ids, host, project, &subject);
	if ((channel == NOTIFY_MAIL ? notify_mail(cfg, subject, text, err, sizeof(err)) :
	    notify_hook(n->webhook_url, n->timeout, text, err, sizeof(err))) < 0) {
		warn("%s (the digest is kept for the next run)", err);
		rc = -1;
	} else if (state_begin(st) < 0 || state_notice_sent(st, channel, p.ids, p.n) < 0 ||
	    state_commit(st) < 0) {
		warn("notify: the digest was sent, but cannot be marked so (it may come "
		    "again): %s", st->err);
		state_rollback(st);
		rc = -1;
	}
out:
	if (claimed > 0 && state_release(st, job, owner, gen) < 0)
		warn("notify: %s", st->err);
	free(subject);
	free(text);
	pending_free(&p);
	return rc;
}

void
notify_news(const struct config *cfg, struct state *st, const struct notice *v, int n,
    int failed)
{
	const struct config_notify *c = &cfg->notify;
	int channels = (c->mail_to ? NOTIFY_MAIL : 0) | (c->webhook_url ? NOTIFY_HOOK : 0);
	char host[256] = "localhost", *project, *subject, *text, err[512];
	int nfail = 0;

	if (!channels || !st->db)
		return;
	gethostname(host, sizeof(host) - 1);
	project = project_name(cfg);
	if (n > 0) {
		if (state_begin(st) < 0) {
			warn("notify: cannot record what the run did: %s", st->err);
		} else {
			int i;

			for (i = 0; i < n && state_notice_put(st, &v[i], channels) == 0; i++)
				;
			if (i < n || state_commit(st) < 0) {
				warn("notify: cannot record what the run did: %s", st->err);
				state_rollback(st);
			}
		}
	}
	for (int i = 0; i < n; i++)
		nfail += v[i].kind == NOTICE_FAILURE;
	/* Failures at once, where the digest does not go at once anyway. */
	if (failed && nfail && c->digest == DIGEST_DAILY) {
		text = notify_failures(v, n, c->include_ids, host, project, &subject);
		if ((channels & NOTIFY_MAIL) && c->errors == ERRORS_IMMEDIATE &&
		    notify_mail(cfg, subject, text, err, sizeof(err)) < 0)
			warn("%s", err);
		if ((channels & NOTIFY_HOOK) && notify_hook(c->webhook_url, c->timeout, text, err,
		    sizeof(err)) < 0)
			warn("%s", err);
		free(subject);
		free(text);
	}
	if (channels & NOTIFY_MAIL)
		digest(cfg, st, NOTIFY_MAIL, host, project);
	if (channels & NOTIFY_HOOK)
		digest(cfg, st, NOTIFY_HOOK, host, project);
	free(project);
}
