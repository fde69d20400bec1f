/*
 * dimse.c - [pacs] protocol = dimse: C-FIND to learn what the PACS holds,
 * C-GET or C-MOVE to fetch it.  For C-MOVE our storage SCP runs on
 * store_port for the rest of the run, started by the first move; each
 * arriving instance is routed by its SOP Instance UID to the job that asked
 * for it, and refused when no job did.  Nothing a retrieve reports is
 * trusted: each arriving instance must belong to the series asked for, and
 * what arrived is compared with what was asked and with the final
 * response's sub-operation counts.
 */
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dimse.h"
#include "fileio.h"
#include "names.h"
#include "pace.h"
#include "source.h"
#include "util.h"

enum { GET_BATCH = 200 };     /* SOP UIDs in one IMAGE-level C-GET */

struct getctx;

struct dimse {
	struct bucket bucket;     /* max_requests_per_minute, for every job */
	pthread_mutex_t mu;       /* guards what follows */
	struct dimse_scp *scp;    /* our storage SCP, once a C-MOVE needed it */
	struct getctx **moving;   /* jobs with a C-MOVE in flight */
	int nmoving;
};

static void
peer_of(const struct config *cfg, struct dimse_peer *p)
{
	p->host = cfg->pacs.host;
	p->port = cfg->pacs.port;
	p->called_aet = cfg->pacs.called_aet;
	p->calling_aet = cfg->pacs.calling_aet;
	p->timeout = cfg->pacs.timeout;
}

static int
dimse_open(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	struct dimse *d;

	/* Never fall back to plain DICOM when TLS was asked for. */
	if (src->cfg->pacs.tls) {
		char *where = config_where(src->cfg, "pacs", "tls");

		errf(err, errlen, "%s: DICOM TLS is not built in yet; refusing to connect without it",
		    where);
		free(where);
		return -1;
	}
	if (!src->priv) {
		d = xcalloc(1, sizeof(*d));
		bucket_init(&d->bucket, src->cfg->pacs.max_requests_per_minute);
		pthread_mutex_init(&d->mu, NULL);
		src->priv = d;
	}
	return 0;
}

static void
dimse_close(struct source *src)
{
	struct dimse *d = src->priv;

	if (d) {
		if (d->scp)
			dimse_scp_stop(d->scp);
		bucket_free(&d->bucket);
		pthread_mutex_destroy(&d->mu);
		free(d->moving);
		free(d);
	}
	src->priv = NULL;
}

/* Every request to the PACS goes through here: one token each. */
static int
find(struct job *job, enum dimse_level lv, const struct dimse_keys *k,
    dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX])
{
	struct dimse *d = job->ctx->src->priv;
	struct dimse_peer peer;

	if (bucket_take(&d->bucket, &job->ctx->cancel) < 0) {
		errf(err, DCM_ERR_MAX, "interrupted");
		return -1;
	}
	peer_of(job->ctx->cfg, &peer);
	return dimse_find(&peer, lv, k, fn, arg, err);
}

/* Run once(), and again after a backoff while it fails, at most
 * [pacs] retries more times; the last error stays in job->err. */
static int
with_retries(struct job *job, int (*once)(struct job *, void *), void *arg)
{
	int retries = job->ctx->cfg->pacs.retries;

	for (int attempt = 1;; attempt++) {
		if (once(job, arg) == 0)
			return 0;
		if (attempt > retries || job_cancelled(job))
			return -1;
		if (verbosity > 1)
			warn("%s %s: %s; retry %d of %d", job->rule->name, job->node->label, job->err,
			    attempt, retries);
		if (backoff_wait(attempt, &job->ctx->cancel) < 0)
			return -1;
	}
}

struct study {
	char *patient, *uid, *date, *classes;
};

struct studies {
	struct study *v;
	int n;
	const struct select *sel;
	struct htab seen;
};

static int
on_study(void *arg, const struct dimse_match *m)
{
	struct studies *ss = arg;
	struct study *s;

	if (!select_patient(ss->sel, m->h.patient_id) || !uid_is_safe(m->h.study_uid) ||
	    !name_fits(m->h.patient_id) || htab_get(&ss->seen, m->h.study_uid))
		return 0;
	ss->v = xreallocarray(ss->v, (size_t)ss->n + 1, sizeof(*ss->v));
	s = &ss->v[ss->n++];
	s->patient = xstrdup(m->h.patient_id);
	s->uid = xstrdup(m->h.study_uid);
	s->date = xstrdup(m->h.study_date);
	s->classes = xstrdup(m->sop_classes);
	htab_put(&ss->seen, s->uid, s);
	return 0;
}

struct series_q {
	struct query_result *r;
	const struct study *st;
	const struct select *sel;
	struct job *job;
};

static int
count_one(void *arg, const struct dimse_match *m)
{
	(*(int *)arg)++;
	return 0;
}

static int
on_series(void *arg, const struct dimse_match *m)
{
	struct series_q *q = arg;
	struct found f = {
		.patient = q->st->patient, .study = q->st->uid, .uid = (char *)m->h.series_uid,
		.modality = (char *)m->h.modality, .sop_class = q->st->classes, .date = q->st->date,
		.expected = m->nrelated,
	};

	if (!uid_is_safe(m->h.series_uid) || !select_series(q->sel, m->h.modality, q->st->date))
		return 0;
	if (f.expected < 0) {
		/* The PACS did not say: count with an IMAGE-level C-FIND. */
		struct dimse_keys k = { .study_uid = q->st->uid, .series_uid = m->h.series_uid };
		char err[DCM_ERR_MAX];
		int n = 0;

		if (find(q->job, DIMSE_IMAGE, &k, count_one, &n, err) < 0)
			return 0;
		f.expected = n;
	}
	query_add(q->r, &f);
	return 0;
}

static int
query_once(struct job *job, void *arg)
{
	struct query_result *r = arg;
	const struct config *cfg = job->ctx->cfg;
	const struct select *sel = job->ctx->sel;
	struct studies ss = { .sel = sel };
	struct dimse_peer peer;
	struct dimse_keys k = { .study_date = cfg->select.study_date };
	int rc = -1, nglob = sel->nglobs && !sel->has_re && !sel->has_ids ? sel->nglobs : 1;
	char err[DCM_ERR_MAX];

	peer_of(cfg, &peer);
	query_result_free(r);     /* a retry starts over */
	htab_init(&ss.seen);
	/* Globs are DICOM wildcards: let the PACS match them.  A regex or a
	 * list is matched here, on every patient's studies. */
	for (int i = 0; i < nglob; i++) {
		k.patient_id = nglob == sel->nglobs && sel->nglobs ? sel->globs[i] : "*";
		if (find(job, DIMSE_STUDY, &k, on_study, &ss, err) < 0) {
			errf(job->err, sizeof(job->err), "%s:%d %s: study query: %s", peer.host,
			    peer.port, peer.called_aet, err);
			goto out;
		}
	}
	atomic_store(&job->total, ss.n);
	for (int i = 0; i < ss.n; i++) {
		struct series_q q = { .r = r, .st = &ss.v[i], .sel = sel, .job = job };
		struct dimse_keys sk = { .study_uid = ss.v[i].uid };

		if (job_cancelled(job)) {
			errf(job->err, sizeof(job->err), "interrupted");
			goto out;
		}
		if (find(job, DIMSE_SERIES, &sk, on_series, &q, err) < 0) {
			errf(job->err, sizeof(job->err), "%s:%d %s: series query of study %s: %s",
			    peer.host, peer.port, peer.called_aet, ss.v[i].uid, err);
			goto out;
		}
		atomic_fetch_add(&job->done, 1);
	}
	r->complete = 1;
	rc = 0;
out:
	for (int i = 0; i < ss.n; i++) {
		free(ss.v[i].patient);
		free(ss.v[i].uid);
		free(ss.v[i].date);
		free(ss.v[i].classes);
	}
	free(ss.v);
	htab_free(&ss.seen);
	return rc;
}

static int
dimse_query(struct source *src, struct job *job, struct query_result *r)
{
	return with_retries(job, query_once, r);
}

static int
dimse_query_done(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	return 0;
}

/* What a C-GET's store callback needs. */
struct getctx {
	struct fetch *f;
	struct job *job;
	const char *prefix;       /* temp files in the series folder */
	struct htab want;         /* C-MOVE: SOP UIDs this job asked for */
	pthread_mutex_t mu;       /* the SCP's threads may deliver at once */
	int refused;
	char err[256];
};

static int
on_store(void *arg, const struct dcm_header *h, const char *tmp)
{
	struct getctx *g = arg;
	struct fetch *f = g->f;
	char *dst = NULL;
	uint64_t hash;
	int64_t size, mtime;
	int rc = -1;

	pthread_mutex_lock(&g->mu);
	/* Never store what nobody asked for. */
	if (strcmp(h->series_uid, f->s->uid) != 0 || strcmp(h->study_uid, f->s->study) != 0 ||
	    !uid_is_safe(h->sop_uid)) {
		g->refused++;
		goto out;
	}
	if (hash_file(tmp, &hash, &size, &mtime, &g->job->bytes, g->err, sizeof(g->err)) < 0)
		goto out;
	dst = xasprintf("%s/%s.dcm", f->dir, h->sop_uid);
	if (rename(tmp, dst) < 0) {
		errf(g->err, sizeof(g->err), "%s: rename: %s", dst, strerror(errno));
		goto out;
	}
	fetch_add(f, h->sop_uid, size, mtime, hash);
	atomic_fetch_add(&g->job->done, 1);
	rc = 0;
out:
	pthread_mutex_unlock(&g->mu);
	free(dst);
	return rc;
}

/* The storage SCP's question: which job asked for this instance? */
static int
route(void *arg, const char *sop_class, const char *sop_uid, struct dimse_sink *sink)
{
	struct dimse *d = arg;
	int rc = -1;

	pthread_mutex_lock(&d->mu);
	for (int i = 0; i < d->nmoving && rc < 0; i++)
		if (htab_get(&d->moving[i]->want, sop_uid)) {
			sink->fn = on_store;
			sink->arg = d->moving[i];
			sink->tmp_prefix = d->moving[i]->prefix;
			rc = 0;
		}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* Start the storage SCP if this is the first C-MOVE, and have arriving
 * instances of g's series routed to g. */
static int
move_begin(struct dimse *d, const struct config *cfg, struct getctx *g, char err[DCM_ERR_MAX])
{
	int rc = 0;

	pthread_mutex_lock(&d->mu);
	if (!d->scp) {
		d->scp = dimse_scp_start(cfg->pacs.move_destination, cfg->pacs.store_port,
		    cfg->pacs.max_associations, cfg->pacs.timeout, route, d, err);
		rc = d->scp ? 0 : -1;
	}
	if (rc == 0) {
		d->moving = xreallocarray(d->moving, (size_t)d->nmoving + 1, sizeof(*d->moving));
		d->moving[d->nmoving++] = g;
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

static void
move_end(struct dimse *d, struct getctx *g)
{
	pthread_mutex_lock(&d->mu);
	for (int i = 0; i < d->nmoving; i++)
		if (d->moving[i] == g) {
			d->moving[i] = d->moving[--d->nmoving];
			break;
		}
	pthread_mutex_unlock(&d->mu);
}

/* The SOP instances of a series still to fetch. */
struct soplist {
	const struct fetch *f;
	char **v;                 /* NULL-terminated */
	int n;
	int total;                /* every instance listed, present or not */
};

static int
on_sop(void *arg, const struct dimse_match *m)
{
	struct soplist *l = arg;

	if (!uid_is_safe(m->h.sop_uid))
		return 0;
	l->total++;
	if (!l->f->force && htab_get(&l->f->have, m->h.sop_uid))
		return 0;
	l->v = xreallocarray(l->v, (size_t)l->n + 2, sizeof(char *));
	l->v[l->n++] = xstrdup(m->h.sop_uid);
	l->v[l->n] = NULL;
	return 0;
}

/* Split a backslash-separated class list; a known default when empty. */
static char **
class_list(const char *s, int *n)
{
	static const char *const fallback[] = {
		"1.2.840.10008.5.1.4.1.1.2",      /* CT */
		"1.2.840.10008.5.1.4.1.1.2.1",    /* Enhanced CT */
		"1.2.840.10008.5.1.4.1.1.4",      /* MR */
		"1.2.840.10008.5.1.4.1.1.4.1",    /* Enhanced MR */
		"1.2.840.10008.5.1.4.1.1.7",      /* Secondary Capture */
		"1.2.840.10008.5.1.4.1.1.128",    /* PET */
		"1.2.840.10008.5.1.4.1.1.20",     /* NM */
		"1.2.840.10008.5.1.4.1.1.481.2",  /* RT Dose */
		"1.2.840.10008.5.1.4.1.1.88.11",  /* Basic SR */
	};
	char **v = NULL, *copy, *tok, *save;

	*n = 0;
	if (!s || !*s) {
		v = xcalloc(LEN(fallback) + 1, sizeof(*v));
		for (size_t i = 0; i < LEN(fallback); i++)
			v[(*n)++] = xstrdup(fallback[i]);
		return v;
	}
	copy = xstrdup(s);
	for (tok = strtok_r(copy, "\\", &save); tok; tok = strtok_r(NULL, "\\", &save)) {
		v = xreallocarray(v, (size_t)*n + 2, sizeof(*v));
		v[(*n)++] = xstrdup(tok);
		v[*n] = NULL;
	}
	free(copy);
	return v;
}

static int
fetch_once(struct job *job, void *arg)
{
	struct fetch *f = arg;
	struct source *src = job->ctx->src;
	const struct config *cfg = src->cfg;
	struct dimse *d = src->priv;
	struct dimse_peer peer;
	struct getctx g = { .f = f, .job = job };
	struct dimse_counts c = { 0 };
	struct soplist miss = { .f = f };
	struct dimse_keys k = { .study_uid = f->s->study, .series_uid = f->s->uid };
	char err[DCM_ERR_MAX], *prefix = NULL, **classes = NULL;
	const char *verb = cfg->pacs.retrieve == RETRIEVE_MOVE ? "C-MOVE" : "C-GET";
	int nclasses = 0, rc = -1, asked, before = f->ngot, moving = 0;

	peer_of(cfg, &peer);
	pthread_mutex_init(&g.mu, NULL);
	htab_init(&g.want);
	/* A retry resumes: what arrived so far counts as present. */
	for (int i = 0; i < f->ngot; i++)
		htab_put(&f->have, f->got[i].sop, f->got[i].sop);
	if (before)
		f->force = 0;
	/* What the series holds, instance by instance: then fetch only what
	 * is missing (a resume), and check the retrieve against it. */
	if (find(job, DIMSE_IMAGE, &k, on_sop, &miss, err) < 0) {
		errf(job->err, sizeof(job->err), "instance query: %s", err);
		goto out;
	}
	asked = miss.n;
	f->listed = miss.total;
	atomic_store(&job->total, asked);
	if (miss.n == 0) {
		rc = 0;
		goto out;
	}
	prefix = xasprintf("%s/" TMP_PREFIX "%ld-%s-", f->dir, (long)getpid(),
	    cfg->pacs.retrieve == RETRIEVE_MOVE ? "move" : "get");
	g.prefix = prefix;
	if (cfg->pacs.retrieve == RETRIEVE_MOVE) {
		for (int i = 0; i < miss.n; i++)
			htab_put(&g.want, miss.v[i], miss.v[i]);
		if (move_begin(d, cfg, &g, err) < 0) {
			errf(job->err, sizeof(job->err), "storage SCP for C-MOVE: %s", err);
			goto out;
		}
		moving = 1;
	} else {
		classes = class_list(f->s->sop_class, &nclasses);
	}
	for (int i = 0; i < miss.n; i += GET_BATCH) {
		int n = miss.n - i < GET_BATCH ? miss.n - i : GET_BATCH, r;
		/* Nothing on disk yet: the whole series at once; else by SOP UID. */
		int whole = i == 0 && (f->force || f->have.len == 0);
		const char *const *sops = whole ? NULL : (const char *const *)miss.v + i;

		if (bucket_take(&d->bucket, &job->ctx->cancel) < 0) {
			errf(job->err, sizeof(job->err), "interrupted");
			goto out;
		}
		if (cfg->pacs.retrieve == RETRIEVE_MOVE)
			r = dimse_move(&peer, cfg->pacs.move_destination, f->s->study, f->s->uid,
			    sops, whole ? 0 : n, &c, err);
		else
			r = dimse_get(&peer, f->s->study, f->s->uid, sops, whole ? 0 : n,
			    (const char *const *)classes, nclasses, prefix, on_store, &g, &c, err);
		if (r < 0) {
			errf(job->err, sizeof(job->err), "%s: %s%s%s", verb, err, g.err[0] ? "; " : "", g.err);
			goto out;
		}
		if (whole)
			break;
	}
	if (f->ngot - before < asked) {
		errf(job->err, sizeof(job->err), "incomplete: %d of %d instances arrived (PACS reported "
		    "%d completed, %d failed, %d warning, status 0x%04x)%s%s", f->ngot - before, asked,
		    c.completed, c.failed, c.warning, c.status, g.refused ? "; refused instances of "
		    "another series" : "", g.err[0] ? g.err : "");
		goto out;
	}
	rc = 0;
out:
	if (moving)
		move_end(d, &g);
	htab_free(&g.want);
	pthread_mutex_destroy(&g.mu);
	strv_free(miss.v);
	strv_free(classes);
	free(prefix);
	return rc;
}

static int
dimse_fetch(struct source *src, struct job *job, struct fetch *f)
{
	int rc = with_retries(job, fetch_once, f);

	return rc;
}

const struct source_ops source_dimse = {
	.name = "dimse",
	.open = dimse_open,
	.query = dimse_query,
	.query_done = dimse_query_done,
	.fetch = dimse_fetch,
	.close = dimse_close,
};
