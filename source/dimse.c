/*
 * dimse.c - [pacs] protocol = dimse: C-FIND to learn what the PACS holds,
 * C-GET to fetch it (retrieve = get).  Nothing a retrieve reports is
 * trusted: each arriving instance must belong to the series asked for, and
 * what arrived is compared with what was asked and with the final
 * response's sub-operation counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dimse.h"
#include "fileio.h"
#include "names.h"
#include "source.h"
#include "util.h"

enum { GET_BATCH = 200 };     /* SOP UIDs in one IMAGE-level C-GET */

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
	if (src->cfg->pacs.retrieve == RETRIEVE_MOVE) {
		errf(err, errlen, "%s: [pacs] retrieve = move: not built in yet; use retrieve = get",
		    src->cfg->file);
		return -1;
	}
	return 0;
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
		struct dimse_peer peer;
		struct dimse_keys k = { .study_uid = q->st->uid, .series_uid = m->h.series_uid };
		char err[DCM_ERR_MAX];
		int n = 0;

		peer_of(q->job->ctx->cfg, &peer);
		if (dimse_find(&peer, DIMSE_IMAGE, &k, count_one, &n, err) < 0)
			return 0;
		f.expected = n;
	}
	query_add(q->r, &f);
	return 0;
}

static int
dimse_query(struct source *src, struct job *job, struct query_result *r)
{
	const struct config *cfg = src->cfg;
	const struct select *sel = job->ctx->sel;
	struct studies ss = { .sel = sel };
	struct dimse_peer peer;
	struct dimse_keys k = { .study_date = cfg->select.study_date };
	int rc = -1, nglob = sel->nglobs && !sel->has_re && !sel->has_ids ? sel->nglobs : 1;
	char err[DCM_ERR_MAX];

	peer_of(cfg, &peer);
	htab_init(&ss.seen);
	/* Globs are DICOM wildcards: let the PACS match them.  A regex or a
	 * list is matched here, on every patient's studies. */
	for (int i = 0; i < nglob; i++) {
		k.patient_id = nglob == sel->nglobs && sel->nglobs ? sel->globs[i] : "*";
		if (dimse_find(&peer, DIMSE_STUDY, &k, on_study, &ss, err) < 0) {
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
		if (dimse_find(&peer, DIMSE_SERIES, &sk, on_series, &q, err) < 0) {
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
dimse_query_done(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	return 0;
}

/* What a C-GET's store callback needs. */
struct getctx {
	struct fetch *f;
	struct job *job;
	int refused;
	char err[256];
};

static int
on_store(void *arg, const struct dcm_header *h, const char *tmp)
{
	struct getctx *g = arg;
	struct fetch *f = g->f;
	char *dst;
	uint64_t hash;
	int64_t size, mtime;

	/* Never store what nobody asked for. */
	if (strcmp(h->series_uid, f->s->uid) != 0 || strcmp(h->study_uid, f->s->study) != 0 ||
	    !uid_is_safe(h->sop_uid)) {
		g->refused++;
		return -1;
	}
	if (hash_file(tmp, &hash, &size, &mtime, &g->job->bytes, g->err, sizeof(g->err)) < 0)
		return -1;
	dst = xasprintf("%s/%s.dcm", f->dir, h->sop_uid);
	if (rename(tmp, dst) < 0) {
		errf(g->err, sizeof(g->err), "%s: rename: %s", dst, strerror(errno));
		free(dst);
		return -1;
	}
	free(dst);
	fetch_add(f, h->sop_uid, size, mtime, hash);
	atomic_fetch_add(&g->job->done, 1);
	return 0;
}

static int
on_sop(void *arg, const struct dimse_match *m)
{
	struct fetch *f = ((void **)arg)[0];
	char ***missing = ((void **)arg)[1];
	int *n = ((void **)arg)[2];

	if (!uid_is_safe(m->h.sop_uid) || (!f->force && htab_get(&f->have, m->h.sop_uid)))
		return 0;
	*missing = xreallocarray(*missing, (size_t)*n + 2, sizeof(char *));
	(*missing)[(*n)++] = xstrdup(m->h.sop_uid);
	(*missing)[*n] = NULL;
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
dimse_fetch(struct source *src, struct job *job, struct fetch *f)
{
	struct dimse_peer peer;
	struct getctx g = { .f = f, .job = job };
	struct dimse_counts c = { 0 };
	char err[DCM_ERR_MAX], **missing = NULL, *prefix, **classes;
	int nmissing = 0, nclasses, rc = -1, asked;

	peer_of(src->cfg, &peer);
	/* What the series holds, instance by instance: then fetch only what
	 * is missing (a resume), and check the retrieve against it. */
	{
		struct dimse_keys k = { .study_uid = f->s->study, .series_uid = f->s->uid };
		void *arg[3] = { f, &missing, &nmissing };

		if (dimse_find(&peer, DIMSE_IMAGE, &k, on_sop, arg, err) < 0) {
			errf(job->err, sizeof(job->err), "instance query: %s", err);
			return -1;
		}
	}
	asked = nmissing;
	atomic_store(&job->total, asked);
	if (nmissing == 0)
		return 0;
	classes = class_list(f->s->sop_class, &nclasses);
	prefix = xasprintf("%s/" TMP_PREFIX "%ld-get-", f->dir, (long)getpid());
	for (int i = 0; i < nmissing; i += GET_BATCH) {
		int n = nmissing - i < GET_BATCH ? nmissing - i : GET_BATCH;
		/* Nothing on disk yet: one SERIES-level C-GET; else by SOP UID. */
		int whole = i == 0 && (f->force || f->have.len == 0);

		if (job_cancelled(job)) {
			errf(job->err, sizeof(job->err), "interrupted");
			goto out;
		}
		if (dimse_get(&peer, f->s->study, f->s->uid, whole ? NULL : (const char *const *)missing + i,
		    whole ? 0 : n, (const char *const *)classes, nclasses, prefix, on_store, &g, &c, err) < 0) {
			errf(job->err, sizeof(job->err), "C-GET: %s%s%s", err, g.err[0] ? "; " : "", g.err);
			goto out;
		}
		if (whole)
			break;
	}
	if (f->ngot < asked) {
		errf(job->err, sizeof(job->err), "incomplete: %d of %d instances arrived (PACS reported "
		    "%d completed, %d failed, %d warning, status 0x%04x)%s%s", f->ngot, asked,
		    c.completed, c.failed, c.warning, c.status, g.refused ? "; refused instances of "
		    "another series" : "", g.err[0] ? g.err : "");
		goto out;
	}
	rc = 0;
out:
	strv_free(missing);
	strv_free(classes);
	free(prefix);
	return rc;
}

const struct source_ops source_dimse = {
	.name = "dimse",
	.open = dimse_open,
	.query = dimse_query,
	.query_done = dimse_query_done,
	.fetch = dimse_fetch,
};
