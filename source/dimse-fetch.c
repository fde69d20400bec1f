/*
 * dimse-fetch.c - the DIMSE source's fetch: C-GET or C-MOVE of a series'
 * missing instances.  For C-MOVE our storage SCP runs on store_port for
 * the rest of the run, started by the first move; each arriving instance
 * is routed by its SOP Instance UID to the job that asked for it, and
 * refused when no job did.  An instance that arrived is answered at once
 * and queued; a thread of the job fsyncs, hashes and renames it into place
 * while the next one arrives (an fsync in the way of every C-STORE cost
 * nearly half the throughput), so it gets its final name only once it is
 * on disk, and the job counts it only then.  Nothing a retrieve reports
 * is trusted: each arriving instance must belong to the series asked for,
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

/* An instance received under its temp name, waiting for its fsync. */
struct arrived {
	char *tmp, *sop;
	int fd;                   /* open once its writeback started, else -1 */
	struct arrived *next;
};

/* What a C-GET's store callback needs. */
struct getctx {
	struct fetch *f;
	struct job *job;
	const char *prefix;       /* temp files in the series folder */
	struct htab want;         /* SOP UIDs listed and asked for; the only
	                           * ones taken, unless whole */
	struct htab took;         /* whole: SOP UIDs taken (keys in tookv) */
	char **tookv;
	int ntook;
	int move_id;              /* C-MOVE: its Message ID, while moving */
	int whole;                /* the whole series, unlisted: at most its
	                           * expected count is taken (a C-MOVE is
	                           * routed by move_id) */
	int extra;                /* refused: unlisted, or beyond the count */
	char extra_sop[72];       /* the first of them */
	int moving;               /* C-MOVE: among the moves the SCP routes to */
	pthread_mutex_t mu;       /* the SCP's threads may deliver at once */
	pthread_cond_t cv;        /* an instance queued, or closing */
	pthread_cond_t idle;      /* inflight dropped to 0 */
	int inflight;             /* C-MOVE: C-STOREs routed here, not released */
	struct arrived *head, **tail;  /* queued for the finisher, in order */
	int closing;              /* nothing more will be queued */
	int finisher;             /* the finisher thread runs */
	pthread_t fin;
	int refused;
	char err[256];
};

/* fsync, hash and rename one arrived instance; count it.  An error is kept
 * in g->err (the first one) and the temp file removed. */
static void
finish_one(struct getctx *g, struct arrived *a)
{
	struct fetch *f = g->f;
	char *dst = xasprintf("%s/%s.dcm", f->dir, a->sop), err[256], hint[160];
	uint64_t hash;
	int64_t size, mtime;
	int fd = a->fd >= 0 ? a->fd : open(a->tmp, O_RDONLY | O_CLOEXEC), e;

	err[0] = '\0';
	if (fd < 0 || fsync(fd) < 0) {
		e = errno;
		errf(err, sizeof(err), "%s: cannot write it to disk: %s%s", dst, strerror(e),
		    write_hint(e, hint, sizeof(hint)));
	} else if (hash_file(a->tmp, &hash, &size, &mtime, &g->job->bytes, err, sizeof(err)) < 0) {
		;
	} else if (rename(a->tmp, dst) < 0) {
		errf(err, sizeof(err), "%s: rename: %s", dst, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&g->mu);
	if (err[0]) {
		unlink(a->tmp);
		if (!g->err[0])
			snprintf(g->err, sizeof(g->err), "%s", err);
	} else {
		fetch_add(f, a->sop, size, mtime, hash);
		atomic_fetch_add(&g->job->done, 1);
	}
	pthread_mutex_unlock(&g->mu);
	free(dst);
}

/* The finisher: takes what is queued, in order, until closing and empty.
 * All that arrived while it was busy is one batch: the writeback of each
 * is started first, so that the fsyncs that follow find their data on its
 * way and one journal commit covers many of them (an fsync of each in
 * turn cost ~30% more on the benchmark's disk). */
static void *
finisher(void *arg)
{
	struct getctx *g = arg;
	struct arrived *batch, *a, *next;

	pthread_mutex_lock(&g->mu);
	for (;;) {
		while (!g->head && !g->closing)
			pthread_cond_wait(&g->cv, &g->mu);
		if (!(batch = g->head))
			break;
		g->head = NULL;
		g->tail = &g->head;
		pthread_mutex_unlock(&g->mu);
		for (a = batch->next ? batch : NULL; a; a = a->next) {
			if ((a->fd = open(a->tmp, O_RDONLY | O_CLOEXEC)) < 0)
				continue;
#ifdef SYNC_FILE_RANGE_WRITE
			sync_file_range(a->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
		}
		for (a = batch; a; a = next) {
			next = a->next;
			finish_one(g, a);
			free(a->tmp);
			free(a->sop);
			free(a);
		}
		pthread_mutex_lock(&g->mu);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

/* Wait until every queued instance is finished (or failed). */
static void
finisher_join(struct getctx *g)
{
	if (!g->finisher)
		return;
	pthread_mutex_lock(&g->mu);
	g->closing = 1;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->fin, NULL);
	g->finisher = 0;
}

static int
on_store(void *arg, const struct dcm_header *h, const char *tmp)
{
	struct getctx *g = arg;
	struct fetch *f = g->f;
	struct arrived *a;
	int rc = -1;

	pthread_mutex_lock(&g->mu);
	/* Never store what nobody asked for. */
	if (strcmp(h->series_uid, f->s->uid) != 0 || strcmp(h->study_uid, f->s->study) != 0 ||
	    !uid_is_safe(h->sop_uid)) {
		g->refused++;
		goto out;
	}
	/* Nor what the PACS did not list, nor, unlisted, more than the query
	 * counted or one twice: the count is never raised by what arrives. */
	if (g->whole ? htab_get(&g->took, h->sop_uid) != NULL || g->ntook >= f->s->expected
		     : htab_get(&g->want, h->sop_uid) == NULL) {
		if (!g->extra++)
			snprintf(g->extra_sop, sizeof(g->extra_sop), "%s", h->sop_uid);
		goto out;
	}
	if (g->whole) {
		g->tookv = xreallocarray(g->tookv, (size_t)g->ntook + 2, sizeof(char *));
		g->tookv[g->ntook] = xstrdup(h->sop_uid);
		htab_put(&g->took, g->tookv[g->ntook], g->tookv[g->ntook]);
		g->tookv[++g->ntook] = NULL;
	}
	/* The finisher puts it in place (the caller leaves tmp to us). */
	a = xcalloc(1, sizeof(*a));
	a->tmp = xstrdup(tmp);
	a->sop = xstrdup(h->sop_uid);
	a->fd = -1;
	*g->tail = a;
	g->tail = &a->next;
	pthread_cond_signal(&g->cv);
	rc = 0;
out:
	pthread_mutex_unlock(&g->mu);
	return rc;
}

/* The storage SCP is done with a C-STORE route() gave to g. */
static void
on_release(void *arg)
{
	struct getctx *g = arg;

	pthread_mutex_lock(&g->mu);
	if (--g->inflight == 0)
		pthread_cond_signal(&g->idle);
	pthread_mutex_unlock(&g->mu);
}

/* The storage SCP's question: which job asked for this instance? */
static int
route(void *arg, const char *sop_class, const char *sop_uid, const char *move_aet, int move_id,
    struct dimse_sink *sink)
{
	struct dimse *d = arg;
	int rc = -1, whole = 0;

	pthread_mutex_lock(&d->mu);
	for (int i = 0; i < d->nmoving && rc < 0; i++) {
		struct getctx *g = d->moving[i];
		const char *us = g->job->ctx->cfg->pacs.calling_aet;

		whole |= g->whole;
		if (g->whole ? move_id == g->move_id && (!move_aet || strcmp(move_aet, us) == 0)
		    : htab_get(&g->want, sop_uid) != NULL) {
			pthread_mutex_lock(&g->mu);
			g->inflight++;
			pthread_mutex_unlock(&g->mu);
			sink->fn = on_store;
			sink->arg = g;
			sink->tmp_prefix = g->prefix;
			sink->release = on_release;
			rc = 0;
		}
	}
	/* Refused while a whole series is being moved: perhaps one of its
	 * own, not named as ours.  Every move lists its instances from now
	 * on (retrieve_whole() sees this and does the series so). */
	if (rc < 0 && whole)
		atomic_store(&d->unnamed, 1);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* A C-MOVE Message ID for g: random (a peer cannot guess one to quote),
 * and none of another move in flight.  Under d->mu. */
static int
move_id_new(struct dimse *d)
{
	for (;;) {
		uint16_t r;
		int id, used = 0;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint16_t)atomic_fetch_add(&d->move_ids, 7919);
		id = r % 65535 + 1;
		for (int i = 0; i < d->nmoving; i++)
			used |= d->moving[i]->move_id == id;
		if (!used)
			return id;
	}
}

/* Start the storage SCP if this is the first C-MOVE, and have arriving
 * instances of g's series routed to g, by a new Message ID. */
static int
move_begin(struct dimse *d, const struct config *cfg, struct getctx *g, char err[DCM_ERR_MAX])
{
	int rc = 0;

	pthread_mutex_lock(&d->mu);
	if (!d->scp) {
		struct dimse_peer peer;

		dimse_peer_of(cfg, &peer);
		d->scp = dimse_scp_start(cfg->pacs.move_destination, cfg->pacs.peer_aet,
		    cfg->pacs.store_bind, cfg->pacs.store_port, cfg->pacs.max_associations,
		    cfg->pacs.timeout, &peer.tls, route, d, err);
		rc = d->scp ? 0 : -1;
	}
	if (rc == 0) {
		g->move_id = move_id_new(d);
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
	/* No new C-STORE comes to g now; those under way still hold it (a
	 * C-MOVE that failed or timed out may leave some), each for at most
	 * the SCP's timeout. */
	pthread_mutex_lock(&g->mu);
	while (g->inflight > 0)
		pthread_cond_wait(&g->idle, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

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
		    g->prefix, on_store, g, &c, err);
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

/* Before a retrieve: g's finisher, and for a C-MOVE g's place among the
 * moves the storage SCP routes to (by g->want, or g->move_id when
 * g->whole).  receiving_end() undoes it once all that came is in place;
 * it may be called again. */
static int
receiving_begin(struct job *job, struct getctx *g)
{
	const struct config *cfg = job->ctx->cfg;
	char err[DCM_ERR_MAX];

	g->closing = 0;
	if ((errno = pthread_create(&g->fin, NULL, finisher, g)) != 0) {
		errf(job->err, sizeof(job->err), "cannot start a thread: %s", strerror(errno));
		return -1;
	}
	g->finisher = 1;
	if (cfg->pacs.retrieve != RETRIEVE_MOVE)
		return 0;
	if (move_begin(job->ctx->src->priv, cfg, g, err) < 0) {
		errf(job->err, sizeof(job->err), "storage SCP for C-MOVE: %s", err);
		finisher_join(g);
		return -1;
	}
	g->moving = 1;
	return 0;
}

static void
receiving_end(struct job *job, struct getctx *g)
{
	if (g->moving)
		move_end(job->ctx->src->priv, g);
	g->moving = 0;
	finisher_join(g);
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
	if (receiving_begin(job, g) < 0) {
		g->whole = 0;
		rc = -1;
		goto out;
	}
	rc = retrieve(job, g, NULL, 0, cls, ncls, sum);
	receiving_end(job, g);
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
	if (receiving_begin(job, &g) < 0)
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
	receiving_end(job, &g);
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
	receiving_end(job, &g);
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

