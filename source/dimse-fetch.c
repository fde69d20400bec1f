/*
 * dimse-fetch.c - the DIMSE source's fetch: C-GET or C-MOVE of a series'
 * missing instances (where they go as they arrive: dimse-receive.c).
 * Nothing a retrieve reports is trusted: each arriving instance must
 * belong to the series asked for,
 * and what arrived is compared with what was asked and with the final
 * response's sub-operation counts.  A series with nothing on disk is
 * first asked for whole and checked against the query's count; only a
 * resume, or a whole series that fell short, lists its instances first.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "dimse-src.h"
#include "fileio.h"
#include "names.h"
#include "util.h"

enum { GET_BATCH = 200 };     /* SOP UIDs in one IMAGE-level C-GET */
enum { NONE = 0x10000 };      /* a dimse_counts.status no response has */

/* The SOP instances of a series still to fetch, with their classes. */
struct soplist {
	const struct fetch *f;
	char **v;                 /* SOP Instance UIDs, NULL-terminated */
	char **cls;               /* v[i]'s SOP Class UID, "" when not returned */
	int n;
	int total;                /* every instance listed, present or not */
	int bad;                  /* listed, but with no usable SOP Instance UID */
	char why[128];            /* the first such record's trouble */
};

static int
on_sop(void *arg, const struct dimse_match *m)
{
	struct soplist *l = arg;

	l->total++;
	if (m->bad[0] || !uid_is_safe(m->h.sop_uid)) {
		if (l->bad++ == 0)
			snprintf(l->why, sizeof(l->why), "%s", m->bad[0] ? m->bad :
			    "SOPInstanceUID is not a usable UID");
		return 0;
	}
	if (!l->f->force && htab_get(&l->f->have, m->h.sop_uid))
		return 0;
	l->v = xreallocarray(l->v, (size_t)l->n + 2, sizeof(char *));
	l->cls = xreallocarray(l->cls, (size_t)l->n + 2, sizeof(char *));
	l->v[l->n] = xstrdup(m->h.sop_uid);
	l->cls[l->n++] = xstrdup(m->h.sop_class);
	l->v[l->n] = l->cls[l->n] = NULL;
	return 0;
}

/* Order by class, so that each C-GET takes few classes. */
static void
soplist_sort(struct soplist *l)
{
	for (int i = 1; i < l->n; i++)
		for (int j = i; j > 0 && strcmp(l->cls[j - 1], l->cls[j]) > 0; j--) {
			char *t = l->cls[j];

			l->cls[j] = l->cls[j - 1];
			l->cls[j - 1] = t;
			t = l->v[j];
			l->v[j] = l->v[j - 1];
			l->v[j - 1] = t;
		}
}

/* The classes to offer for l's instances [from, to) (sorted by class):
 * each distinct one, and the guess for those the PACS did not name. */
static int
offer(const struct soplist *l, int from, int to, const char *const *guess, int nguess,
    const char ***out)
{
	int n = 0;

	*out = xcalloc((size_t)(to - from + nguess) + 1, sizeof(**out));
	for (int i = from; i < to; i++) {
		if (i > from && strcmp(l->cls[i], l->cls[i - 1]) == 0)
			continue;
		if (l->cls[i][0])
			(*out)[n++] = l->cls[i];
		else
			for (int j = 0; j < nguess; j++)
				(*out)[n++] = guess[j];
	}
	return n;
}

/* The classes to offer C-GET's storage role for, of instances whose
 * class the PACS did not say: the study's, or a known default. */
static const char **
class_guess(const char *study_classes, int *n)
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
	const char **v;
	char *copy, *tok, *save;

	*n = 0;
	if (!study_classes || !*study_classes) {
		v = xcalloc(LEN(fallback) + 1, sizeof(*v));
		for (size_t i = 0; i < LEN(fallback); i++)
			v[(*n)++] = xstrdup(fallback[i]);
		return v;
	}
	v = xcalloc(strlen(study_classes) / 2 + 2, sizeof(*v));
	copy = xstrdup(study_classes);
	for (tok = strtok_r(copy, "\\", &save); tok; tok = strtok_r(NULL, "\\", &save))
		v[(*n)++] = xstrdup(tok);
	free(copy);
	return v;
}

/* One C-GET or C-MOVE: the series (sops NULL), or n instances of it. */
static int
retrieve(struct job *job, struct getctx *g, const char *const *sops, int n,
    const char **classes, int nclasses, struct dimse_counts *sum)
{
	const struct config *cfg = job->ctx->cfg;
	struct dimse *d = job->ctx->src->priv;
	const struct series *s = g->f->s;
	struct dimse_peer peer;
	struct dimse_counts c = { 0 };
	char err[DCM_ERR_MAX];
	int r;

	dimse_peer_of(cfg, &peer);
	dimse_peer_stop(&peer, job);
	if (bucket_take(&d->bucket, &job->ctx->cancel) < 0) {
		errf(job->err, sizeof(job->err), "interrupted");
		return -1;
	}
	if (cfg->pacs.retrieve == RETRIEVE_MOVE)
		r = dimse_move(&peer, cfg->pacs.move_destination, g->move_id, s->patient->id,
		    s->study, s->uid, sops, n, &c, err);
	else
		r = dimse_get(&peer, s->patient->id, s->study, s->uid, sops, n,
		    (const char *const *)classes, nclasses,
		    g->prefix, dimse_on_store, g, &c, err);
	sum->completed += c.completed;
	sum->failed += c.failed;
	sum->warning += c.warning;
	sum->status = c.status;
	if (r < 0)
		errf(job->err, sizeof(job->err), "%s: %s%s%s",
		    cfg->pacs.retrieve == RETRIEVE_MOVE ? "C-MOVE" : "C-GET", err,
		    g->err[0] ? "; " : "", g->err);
	return r;
}

/* A series with nothing of it on disk, asked of the PACS whole, without
 * listing its instances first (an IMAGE-level C-FIND costs the PACS a
 * lookup per instance, ~25% of a series' time on the benchmark).  A C-MOVE
 * is done so only when the PACS names the move in its C-STOREs, as the
 * storage SCP then routes them by that.  It is complete when what arrived
 * is at least what the query counted (NumberOfSeriesRelatedInstances),
 * with no failed sub-operation; 1 then, 0 when it fell short or was not
 * tried (the caller then lists the instances and asks for the missing
 * ones; sum says what the PACS reported), -1 on error. */
static int
retrieve_whole(struct job *job, struct getctx *g, int max, struct dimse_counts *sum)
{
	const struct config *cfg = job->ctx->cfg;
	struct dimse *d = job->ctx->src->priv;
	struct fetch *f = g->f;
	const char **cls;
	int ncls, rc = 0, before = f->ngot, move = cfg->pacs.retrieve == RETRIEVE_MOVE;

	cls = class_guess(f->s->sop_class, &ncls);
	if (ncls > max || (move && atomic_load(&d->unnamed)))
		goto out;
	atomic_store(&job->total, f->s->expected);
	g->whole = 1;
	if (dimse_receiving_begin(job, g) < 0) {
		g->whole = 0;
		rc = -1;
		goto out;
	}
	rc = retrieve(job, g, NULL, 0, cls, ncls, sum);
	dimse_receiving_end(job, g);
	g->whole = 0;
	if (g->extra) {
		/* More came than the query counted: list, and take only what
		 * the PACS lists. */
		warn("series %s of patient %s: the PACS sent SOP instance %s%s beyond the %d "
		    "instances its query counted; refused, listing the series", f->s->uid,
		    f->s->patient->id, g->extra_sop, g->extra > 1 ? " and more" : "",
		    f->s->expected);
		g->extra = 0;
		job->err[0] = '\0';
		sum->status = NONE;
		rc = 0;
	} else if (move && atomic_load(&d->unnamed)) {
		/* Something that came was refused, unrouted: list. */
		sum->status = NONE;
		rc = 0;
	} else if (rc == 0 && g->err[0]) {
		errf(job->err, sizeof(job->err), "%s", g->err);
		rc = -1;
	} else if (rc == 0 && f->ngot - before >= f->s->expected && sum->failed == 0 &&
	    sum->status == 0) {
		f->listed = f->ngot - before;
		rc = 1;
	}
out:
	for (int i = 0; i < ncls; i++)
		free((char *)cls[i]);
	free(cls);
	return rc;
}

static int
fetch_once(struct job *job, void *arg)
{
	struct fetch *f = arg;
	struct source *src = job->ctx->src;
	const struct config *cfg = src->cfg;
	struct getctx g = { .f = f, .job = job, .tail = &g.head };
	struct dimse_counts sum = { 0 }, whole = { .status = NONE };
	struct soplist miss = { .f = f };
	struct dimse_keys k = {
		.patient_id = f->s->patient->id, .study_uid = f->s->study, .series_uid = f->s->uid,
	};
	char err[DCM_ERR_MAX], *prefix = NULL;
	const char **guess = NULL, **cls = NULL;
	int move = cfg->pacs.retrieve == RETRIEVE_MOVE;
	int max = move ? INT_MAX : dimse_get_max_classes();
	int rc = -1, asked, before = f->ngot, nguess = 0, ncls;

	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	pthread_cond_init(&g.idle, NULL);
	htab_init(&g.want);
	htab_init(&g.took);
	prefix = xasprintf("%s/%s%s-", f->dir, tmp_tag(), move ? "move" : "get");
	g.prefix = prefix;
	if (before == 0 && (f->force || f->have.len == 0) && f->s->expected > 0) {
		if ((rc = retrieve_whole(job, &g, max, &whole)) != 0) {
			rc = rc > 0 ? 0 : -1;
			goto out;
		}
		before = f->ngot;
	}
	/* A retry resumes: what arrived so far counts as present. */
	for (int i = 0; i < f->ngot; i++)
		htab_put(&f->have, f->got[i].sop, f->got[i].sop);
	if (before)
		f->force = 0;
	/* What the series holds, instance by instance: then fetch only what
	 * is missing (a resume), and check the retrieve against it. */
	rc = -1;
	if (dimse_src_find(job, DIMSE_IMAGE, &k, on_sop, &miss, err) < 0) {
		errf(job->err, sizeof(job->err), "instance query: %s", err);
		goto out;
	}
	if (miss.bad) {
		errf(job->err, sizeof(job->err), "the PACS lists %d instance%s of the series that "
		    "cannot be fetched: %s", miss.bad, miss.bad == 1 ? "" : "s", miss.why);
		goto out;
	}
	asked = miss.n;
	f->listed = miss.total;
	atomic_store(&job->total, f->ngot + asked);
	if (miss.n == 0 && whole.status != NONE && f->ngot < f->s->expected) {
		/* The whole series fell short of the query's count, and the
		 * PACS lists no more than it sent. */
		errf(job->err, sizeof(job->err), "incomplete: %d of %d instances arrived (the PACS "
		    "reported %d completed, %d failed, %d warning, final status 0x%04x); it lists "
		    "%d now", f->ngot, f->s->expected, whole.completed, whole.failed, whole.warning,
		    whole.status, f->listed);
		goto out;
	}
	if (miss.n == 0) {
		rc = 0;
		goto out;
	}
	soplist_sort(&miss);
	for (int i = 0; i < miss.n; i++)
		htab_put(&g.want, miss.v[i], miss.v[i]);
	if (!move && !miss.cls[0][0]) {
		/* Sorted: an unknown class comes first. */
		guess = class_guess(f->s->sop_class, &nguess);
	}
	if (dimse_receiving_begin(job, &g) < 0)
		goto out;
	ncls = offer(&miss, 0, miss.n, guess, nguess, &cls);
	if ((f->force || f->have.len == 0) && ncls <= max) {
		/* Nothing on disk yet, and one association can take every
		 * class: the whole series at once. */
		rc = retrieve(job, &g, NULL, 0, cls, ncls, &sum);
	} else {
		/* By SOP Instance UID, at most GET_BATCH and max classes each. */
		rc = 0;
		for (int i = 0, j; rc == 0 && i < miss.n; i = j) {
			const char **bc;
			int nbc = 0;

			for (j = i; j < miss.n && j - i < GET_BATCH; j++) {
				if (j > i && strcmp(miss.cls[j], miss.cls[j - 1]) == 0)
					continue;
				nbc += miss.cls[j][0] ? 1 : nguess;
				if (j > i && nbc > max)
					break;
			}
			nbc = offer(&miss, i, j, guess, nguess, &bc);
			rc = retrieve(job, &g, (const char *const *)miss.v + i, j - i, bc, nbc, &sum);
			free(bc);
		}
	}
	dimse_receiving_end(job, &g);
	if (g.extra)
		warn("series %s of patient %s: the PACS sent SOP instance %s%s, which it did not "
		    "list; refused", f->s->uid, f->s->patient->id, g.extra_sop,
		    g.extra > 1 ? " and more" : "");
	if (rc < 0) {
		if (g.err[0] && !strstr(job->err, g.err))
			errf(job->err + strlen(job->err), sizeof(job->err) - strlen(job->err),
			    "; %s", g.err);
		goto out;
	}
	rc = -1;
	if (f->ngot - before < asked) {
		errf(job->err, sizeof(job->err), "incomplete: %d of %d instances arrived (the PACS "
		    "reported %d completed, %d failed, %d warning, final status 0x%04x)%s%s%s",
		    f->ngot - before, asked, sum.completed, sum.failed, sum.warning, sum.status,
		    g.refused ? "; refused instances of another series" : "", g.err[0] ? "; " : "",
		    g.err);
		goto out;
	}
	rc = 0;
out:
	dimse_receiving_end(job, &g);
	htab_free(&g.want);
	htab_free(&g.took);
	strv_free(g.tookv);
	pthread_cond_destroy(&g.cv);
	pthread_cond_destroy(&g.idle);
	pthread_mutex_destroy(&g.mu);
	strv_free(miss.v);
	strv_free(miss.cls);
	if (guess)
		for (int i = 0; i < nguess; i++)
			free((char *)guess[i]);
	free(guess);
	free(cls);
	free(prefix);
	return rc;
}

int
dimse_fetch(struct source *src, struct job *job, struct fetch *f)
{
	return source_retry(job, fetch_once, f);
}

