/*
 * dicomweb.c - [pacs] protocol = dicomweb: QIDO-RS to learn what the
 * archive holds, WADO-RS to fetch it, over libcurl (src/http.h), JSON read
 * with jansson, multipart bodies with src/multipart.h.
 *
 * Query: /studies?PatientID=<glob> per glob of [select] (every study when
 * a regex is matched here, the IDs of patients_file exactly), then
 * /studies/{study}/series for each study with its
 * NumberOfSeriesRelatedInstances (counted from /instances when the server
 * does not say).  Every QIDO request pages with limit/offset: a page as
 * long as the limit asks for the next.
 *
 * Fetch: /studies/{study}/series/{series}/instances lists the series; the
 * whole series comes from /studies/{study}/series/{series} when nothing of
 * it is on disk, else each missing instance from .../instances/{sop}.
 * Either is multipart/related; type="application/dicom" with
 * transfer-syntax=* (as stored, never transcoded), each part streamed to a
 * temp file while it is hashed, then checked (it parses, it is of this
 * series, it was listed) and renamed.  As for DIMSE, what arrived is
 * compared with what was listed, whatever the status said.
 *
 * Every request takes a token of one bucket per process; a failed job is
 * retried with backoff, except after an answer no retry can change (4xx
 * other than 408 and 429: a refused login, a bad URL).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <xxhash.h>
#include "dicom.h"
#include "fileio.h"
#include "http.h"
#include "multipart.h"
#include "names.h"
#include "pace.h"
#include "source.h"
#include "util.h"

enum {
	PAGE = 100,               /* QIDO results asked per request (a common server cap) */
	JSON_MAX = 64 << 20,      /* a QIDO answer larger than this is refused */
};

static const char ACCEPT_DICOM[] = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

struct dicomweb {
	struct bucket bucket;     /* max_requests_per_minute, for every job */
	struct http *http;        /* the connection pool */
	char *base;               /* [pacs] url without a trailing '/' */
};

static int
dw_open(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	const struct config *cfg = src->cfg;
	struct http_opts o = {
		.auth = cfg->pacs.auth, .ca = cfg->pacs.tls_ca, .cert = cfg->pacs.tls_cert,
		.key = cfg->pacs.tls_key, .timeout = cfg->pacs.timeout,
	};
	struct dicomweb *d;
	char e[HTTP_ERR_MAX];
	size_t n;

	if (src->priv)
		return 0;
	d = xcalloc(1, sizeof(*d));
	d->http = http_new(&o, e, sizeof(e));
	if (!d->http) {
		char *where = config_where(cfg, "pacs", "auth");

		errf(err, errlen, "%s: %s", where, e);
		free(where);
		free(d);
		return -1;
	}
	d->base = xstrdup(cfg->pacs.url);
	n = strlen(d->base);
	while (n > 0 && d->base[n - 1] == '/')
		d->base[--n] = '\0';
	bucket_init(&d->bucket, cfg->pacs.max_requests_per_minute);
	src->priv = d;
	return 0;
}

static void
dw_close(struct source *src)
{
	struct dicomweb *d = src->priv;

	if (d) {
		http_free(d->http);
		bucket_free(&d->bucket);
		free(d->base);
		free(d);
	}
	src->priv = NULL;
}

/* One GET, after its token; -2 for an answer no retry can change. */
static int
get(struct job *job, const char *url, const char *accept, http_body_fn *fn, void *arg)
{
	struct dicomweb *d = job->ctx->src->priv;
	struct http_resp r;
	char e[HTTP_ERR_MAX];

	if (bucket_take(&d->bucket, &job->ctx->cancel) < 0) {
		errf(job->err, sizeof(job->err), "interrupted");
		return -1;
	}
	/* A body callback that stops the transfer says why in job->err. */
	job->err[0] = '\0';
	if (http_get(d->http, url, accept, fn, arg, &r, &job->ctx->cancel, e, sizeof(e)) == 0)
		return 0;
	if (job->err[0])
		return -1;
	errf(job->err, sizeof(job->err), "%s%s", e, r.status == 401 || r.status == 403 ?
	    " (check [pacs] auth)" : "");
	return r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429 ? -2 : -1;
}

/* ---- QIDO-RS: JSON ---------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
};

static int
collect(void *arg, const char *ctype, const void *p, size_t n)
{
	struct buf *b = arg;

	if (b->n + n > JSON_MAX)
		return -1;
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

/* The values of attribute tag ("0020000D") of a DICOM JSON object,
 * backslash-joined, into out; "" when absent.  Numbers (IS) as integers. */
static void
attr(json_t *obj, const char *tag, char *out, size_t len)
{
	json_t *v = json_object_get(json_object_get(obj, tag), "Value");
	size_t i, off = 0;
	json_t *x;

	out[0] = '\0';
	json_array_foreach(v, i, x) {
		char num[32];
		const char *s = json_is_string(x) ? json_string_value(x) : NULL;
		size_t n;

		if (json_is_integer(x)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(x));
			s = num;
		}
		if (!s)
			continue;
		n = strlen(s);
		if (off + n + 2 > len) {
			out[0] = '\0';        /* too long: as good as absent */
			return;
		}
		if (off)
			out[off++] = '\\';
		memcpy(out + off, s, n + 1);
		off += n;
	}
}

/* GET a QIDO url (with '?' in it) page by page; fn for each object.  A
 * server that does not page answers everything at once (more than the
 * limit), or the same first page whatever the offset: both end it. */
static int
qido(struct job *job, const char *url, int (*fn)(void *arg, json_t *obj), void *arg)
{
	json_t *first = NULL;

	for (int offset = 0;; offset += PAGE) {
		char *u = xasprintf("%s&limit=%d&offset=%d", url, PAGE, offset);
		struct buf b = { 0 };
		json_error_t je;
		json_t *a = NULL, *x;
		size_t i, n;
		int rc = get(job, u, "application/dicom+json", collect, &b);

		if (rc == 0 && b.n > 0) {
			a = json_loadb(b.p, b.n, 0, &je);
			if (!json_is_array(a)) {
				errf(job->err, sizeof(job->err), "GET %s: not a DICOM JSON array: %s", u,
				    a ? "another JSON value" : je.text);
				rc = -1;
			}
		}
		free(u);
		free(b.p);
		n = a ? json_array_size(a) : 0;
		if (rc == 0 && first && n > 0 && json_equal(first, json_array_get(a, 0)))
			n = 0;            /* the offset was not taken: seen already */
		for (i = 0; rc == 0 && i < n; i++)
			if (json_is_object(x = json_array_get(a, i)) && fn(arg, x) < 0)
				rc = -1;
		if (!first && n > 0)
			first = json_incref(json_array_get(a, 0));
		json_decref(a);
		if (rc < 0 || n != PAGE) {
			json_decref(first);
			return rc;
		}
	}
}

struct study {
	char patient[DCM_ID_MAX], uid[DCM_UID_MAX], date[9], classes[1024];
};

struct walk {
	struct job *job;
	const struct select *sel;
	const char *asked;        /* the PatientID asked for, or NULL */
	struct study *v;
	int n;
	struct htab seen;
	struct query_result *r;
	const struct study *st;   /* the study whose series are asked */
};

static int
on_study(void *arg, json_t *o)
{
	struct walk *w = arg;
	struct study s;

	attr(o, "00100020", s.patient, sizeof(s.patient));
	attr(o, "0020000D", s.uid, sizeof(s.uid));
	attr(o, "00080020", s.date, sizeof(s.date));
	attr(o, "00080062", s.classes, sizeof(s.classes));
	if ((w->asked && strcmp(s.patient, w->asked) != 0) || !select_patient(w->sel, s.patient) ||
	    !name_fits(s.patient) || !uid_is_safe(s.uid) || htab_get(&w->seen, s.uid))
		return 0;
	w->v = xreallocarray(w->v, (size_t)w->n + 1, sizeof(*w->v));
	w->v[w->n] = s;
	htab_put(&w->seen, xstrdup(s.uid), w);
	w->n++;
	return 0;
}

static int
count_one(void *arg, json_t *o)
{
	(*(int *)arg)++;
	return 0;
}

static int
on_series(void *arg, json_t *o)
{
	struct walk *w = arg;
	struct dicomweb *d = w->job->ctx->src->priv;
	char uid[DCM_UID_MAX], modality[17], count[16];
	struct found f = {
		.patient = (char *)w->st->patient, .study = (char *)w->st->uid, .uid = uid,
		.modality = modality, .sop_class = (char *)w->st->classes,
		.date = (char *)w->st->date, .expected = -1,
	};

	attr(o, "0020000E", uid, sizeof(uid));
	attr(o, "00080060", modality, sizeof(modality));
	attr(o, "00201209", count, sizeof(count));
	if (!uid_is_safe(uid) || !select_series(w->sel, modality, w->st->date))
		return 0;
	if (count[0])
		f.expected = atoi(count);
	if (f.expected < 0 || !count[0]) {
		/* The server did not say: count the instances. */
		char *u = xasprintf("%s/studies/%s/series/%s/instances?includefield=00080018",
		    d->base, w->st->uid, uid);
		int n = 0, rc = qido(w->job, u, count_one, &n);

		free(u);
		if (rc < 0)
			return -1;
		f.expected = n;
	}
	query_add(w->r, &f);
	return 0;
}

static int
query_once(struct job *job, void *arg)
{
	struct query_result *r = arg;
	const struct config *cfg = job->ctx->cfg;
	const struct select *sel = job->ctx->sel;
	struct dicomweb *d = job->ctx->src->priv;
	struct walk w = { .job = job, .sel = sel, .r = r };
	char *date = cfg->select.study_date ? http_escape(cfg->select.study_date) : NULL;
	int rc = -1, nw = select_nwild(sel);

	query_result_free(r);     /* a retry starts over */
	htab_init(&w.seen);
	/* Studies by wildcard, then those of each listed patient. */
	for (int i = 0; i < nw + (sel->has_ids ? (int)sel->ids.cap : 0); i++) {
		const char *pid = i < nw ? select_wild(sel, i) : sel->ids.slot[i - nw].key;
		char *e, *u;

		if (!pid || (i >= nw && !*pid))
			continue;
		w.asked = i < nw ? NULL : pid;
		e = http_escape(pid);
		u = xasprintf("%s/studies?%s%s%s%s&includefield=00080062", d->base,
		    strcmp(pid, "*") ? "PatientID=" : "", strcmp(pid, "*") ? e : "",
		    date ? "&StudyDate=" : "", date ? date : "");
		free(e);
		rc = qido(job, u, on_study, &w);
		free(u);
		if (rc < 0)
			goto out;
	}
	atomic_store(&job->total, w.n);
	for (int i = 0; i < w.n; i++) {
		char *u;

		if (job_cancelled(job)) {
			errf(job->err, sizeof(job->err), "interrupted");
			rc = -1;
			goto out;
		}
		w.st = &w.v[i];
		u = xasprintf("%s/studies/%s/series?includefield=00201209&includefield=00080060",
		    d->base, w.v[i].uid);
		rc = qido(job, u, on_series, &w);
		free(u);
		if (rc < 0)
			goto out;
		atomic_fetch_add(&job->done, 1);
	}
	r->complete = 1;
	rc = 0;
out:
	for (size_t i = 0; i < w.seen.cap; i++)
		free((char *)w.seen.slot[i].key);
	htab_free(&w.seen);
	free(w.v);
	free(date);
	return rc;
}

static int
dw_query(struct source *src, struct job *job, struct query_result *r)
{
	return source_retry(job, query_once, r);
}

static int
dw_query_done(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	return 0;
}

/* ---- WADO-RS: multipart ----------------------------------------------- */

/* One retrieve's parts, as they arrive. */
struct recv {
	struct job *job;
	struct fetch *f;
	const struct htab *want;  /* SOP UIDs listed and missing */
	struct multipart *mp;
	char *prefix;             /* temp files: prefix + counter */
	unsigned long counter;
	int fd;                   /* the part being written, or -1 */
	char *tmp;
	XXH3_state_t *xx;
	int refused;              /* parts that were not an instance asked for */
	char err[256];            /* the first trouble with a part */
};

static void
note(struct recv *v, const char *fmt, const char *a, const char *b)
{
	if (!v->err[0])
		snprintf(v->err, sizeof(v->err), fmt, a, b);
}

static int
part_begin(void *arg, const char *ctype)
{
	struct recv *v = arg;

	if (ctype && strncasecmp(ctype, "application/dicom", 17) != 0) {
		v->refused++;
		note(v, "a part of type %.100s%s", ctype, "");
		return 0;
	}
	free(v->tmp);
	v->tmp = xasprintf("%s%lu", v->prefix, ++v->counter);
	v->fd = open(v->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (v->fd < 0) {
		errf(v->job->err, sizeof(v->job->err), "%s: %s", v->tmp, strerror(errno));
		return -1;
	}
	XXH3_64bits_reset(v->xx);
	return 0;
}

static int
part_data(void *arg, const void *p, size_t n)
{
	struct recv *v = arg;
	const char *c = p;

	if (v->fd < 0)
		return 0;         /* a part we do not keep */
	XXH3_64bits_update(v->xx, p, n);
	atomic_fetch_add(&v->job->bytes, (long long)n);
	while (n > 0) {
		ssize_t w = write(v->fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			errf(v->job->err, sizeof(v->job->err), "%s: %s", v->tmp, strerror(errno));
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
part_end(void *arg, int complete)
{
	struct recv *v = arg;
	struct fetch *f = v->f;
	struct dcm_header h;
	char e[DCM_ERR_MAX], *dst = NULL;
	int64_t size, mtime;
	int rc = 0, fd = v->fd;

	if (fd < 0)
		return 0;
	v->fd = -1;
	if (!complete) {
		close(fd);
		unlink(v->tmp);
		return 0;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		errf(v->job->err, sizeof(v->job->err), "%s: %s", v->tmp, strerror(errno));
		unlink(v->tmp);
		return -1;
	}
	/* Trust nothing: it parses, it is of this series, it was asked for. */
	if (dcm_read_header(v->tmp, &h, e) < 0) {
		note(v, "a part is not DICOM: %.180s%s", e, "");
	} else if (strcmp(h.study_uid, f->s->study) || strcmp(h.series_uid, f->s->uid)) {
		note(v, "instance %s of series %s, not this one", h.sop_uid, h.series_uid);
	} else if (!htab_get(v->want, h.sop_uid)) {
		note(v, "instance %s%s was not asked for", h.sop_uid, "");
	} else {
		dst = xasprintf("%s/%s.dcm", f->dir, h.sop_uid);
		if (rename(v->tmp, dst) < 0) {
			errf(v->job->err, sizeof(v->job->err), "%s: rename: %s", dst, strerror(errno));
			rc = -1;
		} else if ((mtime = mtime_ns(dst, &size)) >= 0) {
			fetch_add(f, h.sop_uid, size, mtime, XXH3_64bits_digest(v->xx));
			atomic_fetch_add(&v->job->done, 1);
			free(dst);
			return 0;
		}
	}
	if (!dst || rc < 0)
		v->refused += rc == 0;
	unlink(v->tmp);
	free(dst);
	return rc;
}

static const struct multipart_cb parts = {
	.begin = part_begin, .data = part_data, .end = part_end,
};

static int
on_body(void *arg, const char *ctype, const void *p, size_t n)
{
	struct recv *v = arg;

	if (!v->mp) {
		char e[256], *b = multipart_boundary(ctype, e, sizeof(e));

		if (!b) {
			errf(v->job->err, sizeof(v->job->err), "the server sent %s, not multipart: %s",
			    ctype, e);
			return -1;
		}
		v->mp = multipart_new(b, &parts, v);
		free(b);
	}
	if (multipart_feed(v->mp, p, n) < 0) {
		if (!v->job->err[0])
			errf(v->job->err, sizeof(v->job->err), "multipart body: %s",
			    multipart_error(v->mp));
		return -1;
	}
	return 0;
}

/* One WADO-RS retrieve into f->dir. */
static int
wado(struct job *job, struct recv *v, const char *url)
{
	int rc;

	job->err[0] = '\0';
	rc = get(job, url, ACCEPT_DICOM, on_body, v);
	if (v->mp) {
		if (multipart_finish(v->mp) < 0 && rc == 0) {
			errf(job->err, sizeof(job->err), "GET %s: multipart body: %s", url,
			    multipart_error(v->mp));
			rc = -1;
		}
		multipart_free(v->mp);
		v->mp = NULL;
	}
	if (v->fd >= 0) {         /* a part cut off by an error */
		close(v->fd);
		unlink(v->tmp);
		v->fd = -1;
	}
	return rc;
}

struct list {
	struct fetch *f;
	char **v;                 /* missing SOP UIDs, NULL-terminated */
	int n, total;
};

static int
on_instance(void *arg, json_t *o)
{
	struct list *l = arg;
	char sop[DCM_UID_MAX];

	attr(o, "00080018", sop, sizeof(sop));
	if (!uid_is_safe(sop))
		return 0;
	l->total++;
	if (!l->f->force && htab_get(&l->f->have, sop))
		return 0;
	l->v = xreallocarray(l->v, (size_t)l->n + 2, sizeof(*l->v));
	l->v[l->n++] = xstrdup(sop);
	l->v[l->n] = NULL;
	return 0;
}

static int
fetch_once(struct job *job, void *arg)
{
	struct fetch *f = arg;
	struct dicomweb *d = job->ctx->src->priv;
	struct list miss = { .f = f };
	struct htab want;
	struct recv v = { .job = job, .f = f, .want = &want, .fd = -1 };
	char *series = xasprintf("%s/studies/%s/series/%s", d->base, f->s->study, f->s->uid);
	char *u = xasprintf("%s/instances?includefield=00080018", series);
	int rc, before = f->ngot, got;

	htab_init(&want);
	/* A retry resumes: what arrived so far counts as present. */
	for (int i = 0; i < f->ngot; i++)
		htab_put(&f->have, f->got[i].sop, f->got[i].sop);
	if (before)
		f->force = 0;
	rc = qido(job, u, on_instance, &miss);
	free(u);
	if (rc < 0)
		goto out;
	f->listed = miss.total;
	atomic_store(&job->total, miss.n);
	for (int i = 0; i < miss.n; i++)
		htab_put(&want, miss.v[i], miss.v[i]);
	v.xx = XXH3_createState();
	v.prefix = xasprintf("%s/" TMP_PREFIX "%ld-wado-", f->dir, (long)getpid());
	if (miss.n > 0 && (f->force || f->have.len == 0)) {
		/* Nothing on disk: the whole series in one answer. */
		rc = wado(job, &v, series);
	} else {
		for (int i = 0; rc == 0 && i < miss.n; i++) {
			u = xasprintf("%s/instances/%s", series, miss.v[i]);
			rc = wado(job, &v, u);
			free(u);
		}
	}
	got = f->ngot - before;
	if (rc == 0 && got < miss.n) {
		errf(job->err, sizeof(job->err), "incomplete: %d of %d instances arrived%s%s",
		    got, miss.n, v.err[0] ? "; " : "", v.err);
		rc = -1;
	}
out:
	htab_free(&want);
	strv_free(miss.v);
	if (v.xx)
		XXH3_freeState(v.xx);
	free(v.prefix);
	free(v.tmp);
	free(series);
	return rc;
}

static int
dw_fetch(struct source *src, struct job *job, struct fetch *f)
{
	return source_retry(job, fetch_once, f);
}

const struct source_ops source_dicomweb = {
	.name = "dicomweb",
	.open = dw_open,
	.query = dw_query,
	.query_done = dw_query_done,
	.fetch = dw_fetch,
	.close = dw_close,
};
