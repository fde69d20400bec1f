/*
 * dicomweb.c - [pacs] protocol = dicomweb: the source's state, the GET
 * every request goes through, and the query: QIDO-RS, read with jansson.
 * Reading QIDO answers, page by page and element by element, is
 * dicomweb-qido.c; the fetch, WADO-RS, is dicomweb-fetch.c.
 *
 * Query: /studies?PatientID=<glob> per glob of [select] (every study when
 * a regex is matched here, the IDs of patients_file exactly), then
 * /studies/{study}/series for each study with its
 * NumberOfSeriesRelatedInstances (counted from /instances when the server
 * does not say), SeriesNumber and SeriesDescription.  Every QIDO request
 * pages with limit/offset: a page as long as the limit asks for the next,
 * up to QIDO_PAGES_MAX pages.  A page is at most QIDO_PAGE_MAX bytes and
 * is read one array element at a time (jansson builds ~100 bytes of tree
 * per "{}": a whole 60 MB page took GBs), each at most QIDO_VALUE_MAX.
 *
 * Every request takes a token of one bucket per process; a failed job is
 * retried with backoff, except after an answer no retry can change (4xx
 * other than 408 and 429: a refused login, a bad URL).
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dicom.h"
#include "dicomweb-src.h"
#include "http.h"
#include "names.h"
#include "pace.h"
#include "source.h"
#include "util.h"



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

int
dw_get(struct job *job, const char *url, const char *accept, const struct http_limits *lim,
    http_body_fn *fn, void *arg)
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
	if (http_get(d->http, url, accept, lim, fn, arg, &r, &job->ctx->cancel, e,
	    sizeof(e)) == 0)
		return 0;
	if (job->err[0])
		return -1;
	errf(job->err, sizeof(job->err), "%s%s", e, r.status == 401 || r.status == 403 ?
	    " (check [pacs] auth)" : "");
	/* The same request would get the same too large answer, the same
	 * certificate that does not verify. */
	if (r.too_big || r.permanent)
		return -2;
	if (r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429)
		return -2;
	/* The server answered, with a failure a retry may change. */
	return r.status >= 400 ? -3 : -1;
}

struct study {
	char patient[DCM_ID_MAX], uid[DCM_UID_MAX], date[9], classes[1024];
	int nseries, ninstances;  /* NumberOfStudyRelated*; -1: not said */
};

/* A QIDO-RS query of the query walk, counted for -v. */
static int
qqido(struct job *job, enum qlevel level, const char *url, int (*fn)(void *arg, json_t *obj),
    void *arg)
{
	known_request(job->ctx->src, level);
	return dw_qido(job, url, fn, arg);
}

/* A count attribute of o; -1 when missing or not a whole number. */
static int
attr_count(json_t *o, const char *tag)
{
	char v[16];
	long c;

	dw_attr(o, tag, v, sizeof(v));
	return v[0] && parse_int(v, 0, 1000000000, &c) == 0 ? (int)c : -1;
}

struct walk {
	struct job *job;
	const struct select *sel;
	const char *asked;        /* the PatientID asked for, or NULL */
	struct study *v;
	int n;
	struct query_result *r;
	const struct study *st;   /* the study whose series are asked */
	int last;                 /* the query's last attempt */
	struct pend *pend;        /* a /studies answer, before it is taken */
	int nanswered;            /* its matches, ours or not */
	int npend, cappend;
};

/* A UID of o for the catalog, into out; when it is not one, why. */
static int
attr_uid(json_t *o, const char *tag, char out[DCM_UID_MAX], char *why, size_t len)
{
	char *v = dw_attr_dup(o, tag);

	dw_attr(o, tag, out, DCM_UID_MAX);
	if (uid_is_safe(out)) {
		free(v);
		return 0;
	}
	errf(why, len, "(%s) \"%.80s\"%s is not a usable UID", tag, v ? v : "",
	    v && strlen(v) > 80 ? "..." : "");
	free(v);
	return -1;
}

/* One match of a /studies answer as far as the walk needs it, kept until
 * the answer is known not to be capped: a few hundred bytes, never the
 * server's object (which may be large: one object in memory at a time). */
struct pend {
	struct study s;
	size_t pidlen;            /* the PatientID's length as sent */
	char uid80[84];           /* the study UID as sent, cut, for messages */
	int uid_bad;              /* not a usable UID: why */
	char why[160];
};

static int
on_study(void *arg, json_t *o)
{
	struct walk *w = arg;
	struct pend *pd;
	char *pid = dw_attr_dup(o, "00100020"), *uid;

	w->nanswered++;
	/* Not a patient of ours: counted (a cap counts every match), not kept. */
	if (pid && strlen(pid) < sizeof(pd->s.patient) &&
	    ((w->asked && strcmp(pid, w->asked) != 0) || !select_patient(w->sel, pid))) {
		free(pid);
		return 0;
	}
	if (!pid && (w->asked || !select_patient(w->sel, ""))) {
		return 0;
	}
	if (w->npend == w->cappend) {
		w->cappend = w->cappend ? 2 * w->cappend : 64;
		w->pend = xreallocarray(w->pend, (size_t)w->cappend, sizeof(*w->pend));
	}
	pd = &w->pend[w->npend++];
	memset(pd, 0, sizeof(*pd));
	pd->pidlen = pid ? strlen(pid) : 0;
	free(pid);
	uid = dw_attr_dup(o, "0020000D");
	snprintf(pd->uid80, sizeof(pd->uid80), "%.80s%s", uid ? uid : "",
	    uid && strlen(uid) > 80 ? "..." : "");
	free(uid);
	dw_attr(o, "00100020", pd->s.patient, sizeof(pd->s.patient));
	dw_attr(o, "00080020", pd->s.date, sizeof(pd->s.date));
	dw_attr(o, "00080062", pd->s.classes, sizeof(pd->s.classes));
	pd->s.nseries = attr_count(o, "00201206");
	pd->s.ninstances = attr_count(o, "00201208");
	pd->uid_bad = attr_uid(o, "0020000D", pd->s.uid, pd->why, sizeof(pd->why)) < 0;
	return 0;
}

/* A study the server listed: the walk's, when it is of a patient of ours. */
static void
take_study(struct walk *w, const struct pend *pd)
{
	const struct study *s = &pd->s;

	if (pd->pidlen >= sizeof(s->patient)) {
		/* Named by its study (and the ID asked), as over DIMSE. */
		query_note(w->r, "skipped a study record the server sent (study \"%s\"%s%s): "
		    "its PatientID is %zu bytes long", pd->uid80, w->asked ? " in answer to patient " : "",
		    w->asked ? w->asked : "", pd->pidlen);
		return;
	}
	if ((w->asked && strcmp(s->patient, w->asked) != 0) || !select_patient(w->sel, s->patient))
		return;
	if (!name_fits(s->patient)) {
		query_note(w->r, "patient %s: skipped: its PatientID is too long for a file name",
		    s->patient);
		return;
	}
	if (pd->uid_bad) {
		query_fail(w->r, s->patient, "the server lists a study whose StudyInstanceUID %s",
		    pd->why);
		return;
	}
	if (query_study(w->r, s->patient, s->uid) != 0)
		return;         /* seen already, or under another patient too */
	w->v = xreallocarray(w->v, (size_t)w->n + 1, sizeof(*w->v));
	w->v[w->n++] = *s;
}

static void
drop_studies(void *arg)
{
	((struct walk *)arg)->npend = ((struct walk *)arg)->nanswered = 0;
}

static void
keep_studies(void *arg)
{
	struct walk *w = arg;

	for (int i = 0; i < w->npend; i++)
		take_study(w, &w->pend[i]);
	drop_studies(w);
}

/* GET /studies for glob (source_ask_studies): the matches answered, or
 * < 0 with the job's err. */
static int
ask_studies(void *arg, const char *glob, const char *range)
{
	struct walk *w = arg;
	struct dicomweb *d = w->job->ctx->src->priv;
	const char *date = range ? range : w->job->ctx->cfg->select.study_date;
	char *e = http_escape(glob), *de = date ? http_escape(date) : NULL, *u;
	int rc;

	drop_studies(w);
	u = xasprintf("%s/studies?%s%s%s%s&includefield=00080062&includefield=00201206"
	    "&includefield=00201208", d->base, strcmp(glob, "*") ? "PatientID=" : "",
	    strcmp(glob, "*") ? e : "", de ? "&StudyDate=" : "", de ? de : "");
	rc = qqido(w->job, Q_STUDY, u, on_study, w);
	free(u);
	free(e);
	free(de);
	return rc < 0 ? rc : w->nanswered;
}

static int
count_one(void *arg, json_t *o)
{
	(*(int *)arg)++;
	return 0;
}

/* Whether a request about one study's patient that failed with rc spoils
 * that patient (as a failure status does over DIMSE) rather than the
 * query: an answer no retry can change, or one a retry may change once
 * the retries are spent.  A server that could not be asked at all fails
 * the query, which is retried. */
static int
spoils(const struct walk *w, int rc)
{
	return rc == -2 || (rc == -3 && w->last);
}

static int
on_series(void *arg, json_t *o)
{
	struct walk *w = arg;
	struct dicomweb *d = w->job->ctx->src->priv;
	char uid[DCM_UID_MAX], modality[17], why[160];
	struct found f = {
		.patient = (char *)w->st->patient, .study = (char *)w->st->uid, .uid = uid,
		.modality = modality, .sop_class = (char *)w->st->classes,
		.date = (char *)w->st->date, .expected = -1,
	};
	int rc = 0;

	if (attr_uid(o, "0020000E", uid, why, sizeof(why)) < 0) {
		query_fail(w->r, w->st->patient, "study %s lists a series whose SeriesInstanceUID %s",
		    w->st->uid, why);
		return 0;
	}
	dw_attr(o, "00080060", modality, sizeof(modality));
	if (!select_series(w->sel, modality, w->st->date))
		return 0;
	/* Shown, never matched: whole however long. */
	f.number = dw_attr_dup(o, "00200011");
	f.desc = dw_attr_dup(o, "0008103E");
	/* A count that is not a whole number is no count: we count. */
	f.expected = attr_count(o, "00201209");
	if (f.expected <= 0) {
		/* Not said, or 0 (said of a series not counted): count. */
		char *u = xasprintf("%s/studies/%s/series/%s/instances?includefield=00080018",
		    d->base, w->st->uid, uid);
		int n = 0;

		rc = qqido(w->job, Q_IMAGE, u, count_one, &n);
		free(u);
		f.expected = n;
		if (spoils(w, rc)) {
			query_fail(w->r, w->st->patient, "counting the instances of series %s: %s",
			    uid, w->job->err);
			rc = 1;
		} else if (rc == 0 && n == 0) {
			query_note(w->r, "patient %s: series %s (study %s) holds no instances at the "
			    "source; left out", w->st->patient, uid, w->st->uid);
			rc = 1;
		}
	}
	if (rc == 0)
		query_add(w->r, &f);
	free(f.number);
	free(f.desc);
	return rc < 0 ? -1 : 0;
}

struct attempt {
	struct query_result *r;
	int n;                    /* attempts made */
};

static int
query_once(struct job *job, void *arg)
{
	struct attempt *a = arg;
	struct query_result *r = a->r;
	const struct config *cfg = job->ctx->cfg;
	const struct select *sel = job->ctx->sel;
	struct dicomweb *d = job->ctx->src->priv;
	struct walk w = { .job = job, .sel = sel, .r = r, .last = ++a->n > cfg->pacs.retries };
	/* A patients_file's IDs by one wildcard, where one fits them all. */
	char *ids = source_ids_glob(sel);
	int rc = -1, nw = select_nwild(sel) + (ids != NULL);

	query_result_free(r);     /* a retry starts over */
	/* Studies by wildcard, then those of each listed patient. */
	for (int i = 0; i < nw + (sel->has_ids && !ids ? (int)sel->ids.cap : 0); i++) {
		const char *pid = i < select_nwild(sel) ? select_wild(sel, i) : i < nw ? ids :
		    sel->ids.slot[i - nw].key;
		struct study_ask ask = { ask_studies, keep_studies, drop_studies, &w };

		if (!pid || (i >= nw && !*pid))
			continue;
		w.asked = i < nw ? NULL : pid;
		if (i < nw) {
			rc = source_ask_studies(job, r, pid, &ask);
		} else if ((rc = ask_studies(&w, pid, NULL)) >= 0) {
			keep_studies(&w);
			rc = 0;
		}
		if (rc == -2 && i < nw)
			job->no_retry = 1;
		if (rc < 0)
			goto out;
	}
	atomic_store(&job->total, w.n);
	for (int i = 0; i < w.n; i++) {
		const struct study *st = &w.v[i];
		char *u;

		if (job_cancelled(job)) {
			errf(job->err, sizeof(job->err), "interrupted");
			rc = -1;
			goto out;
		}
		atomic_fetch_add(&job->done, 1);
		/* As it was when its series were last walked: not asked. */
		if (known_same(job->ctx->src, r, st->patient, st->uid, st->nseries, st->ninstances))
			continue;
		w.st = st;
		u = xasprintf("%s/studies/%s/series?includefield=00201209&includefield=00080060"
		    "&includefield=00200011&includefield=0008103E", d->base, st->uid);
		rc = qqido(job, Q_SERIES, u, on_series, &w);
		free(u);
		if (spoils(&w, rc)) {
			query_fail(r, st->patient, "series query of study %s: %s", st->uid, job->err);
			rc = 0;
		} else if (rc == 0) {
			known_walked(job->ctx->src, st->patient, st->uid, st->nseries, st->ninstances);
		}
		if (rc < 0)
			goto out;
	}
	r->complete = 1;
	rc = 0;
out:
	free(ids);
	drop_studies(&w);
	free(w.pend);
	free(w.v);
	return rc;
}

static int
dw_query(struct source *src, struct job *job, struct query_result *r)
{
	struct attempt a = { .r = r };

	return source_retry(job, query_once, &a);
}

static int
dw_query_done(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	return 0;
}

static const char *const dw_needs[] = { "url", NULL };

const struct source_ops source_dicomweb = {
	.name = "dicomweb",
	.needs = dw_needs,
	.open = dw_open,
	.query = dw_query,
	.query_done = dw_query_done,
	.fetch = dw_fetch,
	.close = dw_close,
};
