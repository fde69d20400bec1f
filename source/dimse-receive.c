/*
 * dimse-receive.c - where a fetch's instances go as they arrive.  For
 * C-MOVE our storage SCP runs on store_port for the rest of the run,
 * started by the first move; each arriving instance is routed to the job
 * that asked for it (by the C-MOVE's Message ID, or its SOP Instance UID),
 * and refused when no job did.  An instance that arrived is answered at
 * once and queued, its writeback started; a thread of the job hashes each
 * as it comes, and at the end of the retrieve (or every
 * DURABLE_BATCH_FILES or _BYTES, source.h) makes them durable together
 * and renames them into place, while the next ones arrive (an fsync in
 * the way of every C-STORE cost nearly half the throughput), so each gets
 * its final name only once it is on disk, and the job counts it only once
 * its name is too.
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

/* Keep the first error of the job's instances in g->err. */
static void
keep_err(struct getctx *g, const char *err)
{
	pthread_mutex_lock(&g->mu);
	if (!g->err[0])
		snprintf(g->err, sizeof(g->err), "%s", err);
	pthread_mutex_unlock(&g->mu);
}

/* Descriptors a job keeps open from an instance's arrival to its hash:
 * past this many (a finisher held up by a slow disk), the finisher opens
 * the file again, and the process does not run out of descriptors. */
#ifndef KEEP_OPEN_MAX
#define KEEP_OPEN_MAX 64
#endif

/* Hash an arrived instance at once, while it is still in the page cache
 * and likely in the CPU's: nothing writes it again.  The first failure of
 * a commit is kept in err. */
static void
hash_arrived(struct getctx *g, struct arrived *a, char *err, size_t errlen)
{
	char e[256];
	int kept = a->fd >= 0;

	if (err[0])
		return;
	if (a->fd < 0 && (a->fd = open(a->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		errf(err, errlen, "%s: %s", a->tmp, strerror(errno));
		return;
	}
	if (hash_fd(a->fd, a->tmp, &a->hash, &a->size, &a->mtime, &g->job->bytes, e,
	    sizeof(e)) < 0)
		snprintf(err, errlen, "%s", e);
	else
		a->hashed = 1;
	close(a->fd);
	a->fd = -1;
	if (kept)
		atomic_fetch_sub(&g->nopen, 1);
}

/* Put hashed instances in place: one syncfs for all (their writeback
 * started as each arrived; a journal commit each, as fsync gives, cost
 * ~15% of -j4's throughput, and a syncfs each ~10% of the CPU), then each
 * renamed, the folder fsynced, and only then counted, so the job records
 * nothing that is not on disk under its name.  A failure (err, or one
 * here) is kept in g->err and leaves no temp file. */
static void
put_in_place(struct getctx *g, struct arrived *batch, char *err, size_t errlen)
{
	struct fetch *f = g->f;
	struct arrived *a;
	char hint[160];
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e;

	if (!err[0] && (dfd < 0 || syncfs(dfd) < 0)) {
		e = errno;
		errf(err, errlen, "%s: cannot write to disk: %s%s", f->dir, strerror(e),
		    write_hint(e, hint, sizeof(hint)));
	}
	for (a = batch; a; a = a->next) {
		char *dst = xasprintf("%s/%s.dcm", f->dir, a->sop);

		if (!err[0] && a->hashed) {
			if (rename(a->tmp, dst) == 0)
				a->placed = 1;
			else
				errf(err, errlen, "%s: rename: %s", dst, strerror(errno));
		}
		if (!a->placed)
			unlink(a->tmp);
		free(dst);
	}
	if (!err[0] && fsync(dfd) < 0)
		errf(err, errlen, "%s: fsync: %s", f->dir, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	if (err[0]) {
		/* What was renamed stays: the next run's validate finds it. */
		keep_err(g, err);
		return;
	}
	pthread_mutex_lock(&g->mu);
	for (a = batch; a; a = a->next) {
		fetch_add(f, a->sop, a->size, a->mtime, a->hash);
		atomic_fetch_add(&g->job->done, 1);
	}
	pthread_mutex_unlock(&g->mu);
}

/* Free a list; a descriptor still open is one kept since arrival. */
static void
free_arrived(struct getctx *g, struct arrived *a)
{
	struct arrived *next;

	for (; a; a = next) {
		next = a->next;
		if (a->fd >= 0) {
			close(a->fd);
			atomic_fetch_sub(&g->nopen, 1);
		}
		free(a->tmp);
		free(a->sop);
		free(a);
	}
}

/* The finisher: hashes what is queued, in order, as it comes, and puts
 * it in place when the retrieve is over (closing, and nothing queued) or
 * DURABLE_BATCH_FILES or _BYTES wait. */
static void *
finisher(void *arg)
{
	struct getctx *g = arg;
	struct arrived *batch, *ready = NULL, **rtail = &ready, *a;
	long long rbytes = 0;
	int nready = 0, last;
	char err[256] = "";

	pthread_mutex_lock(&g->mu);
	do {
		while (!g->head && !g->closing)
			pthread_cond_wait(&g->cv, &g->mu);
		batch = g->head;
		last = !batch;
		g->head = NULL;
		g->tail = &g->head;
		pthread_mutex_unlock(&g->mu);
		for (a = batch; a; a = a->next) {
			hash_arrived(g, a, err, sizeof(err));
			rbytes += a->size;
			nready++;
		}
		if (batch) {
			*rtail = batch;
			while (*rtail)
				rtail = &(*rtail)->next;
		}
		if (ready && (last || rbytes >= DURABLE_BATCH_BYTES ||
		    nready >= DURABLE_BATCH_FILES)) {
			put_in_place(g, ready, err, sizeof(err));
			free_arrived(g, ready);
			ready = NULL;
			rtail = &ready;
			rbytes = 0;
			nready = 0;
			err[0] = '\0';
		}
		pthread_mutex_lock(&g->mu);
	} while (!last);
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

int
dimse_on_store(void *arg, const struct dcm_header *h, const char *tmp)
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
	/* Its writeback starts now, while the next arrives: what is still
	 * to be written when the series ends is then little more than the
	 * last instance (the kernel would start it only past its dirty
	 * thresholds).  The finisher hashes through the descriptor, kept
 * while fewer than KEEP_OPEN_MAX are. */
	a->fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
#ifdef SYNC_FILE_RANGE_WRITE
	if (a->fd >= 0)
		sync_file_range(a->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
	if (a->fd >= 0 && atomic_fetch_add(&g->nopen, 1) >= KEEP_OPEN_MAX) {
		atomic_fetch_sub(&g->nopen, 1);
		close(a->fd);
		a->fd = -1;
	}
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
			sink->fn = dimse_on_store;
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

/* Before a retrieve: g's finisher, and for a C-MOVE g's place among the
 * moves the storage SCP routes to (by g->want, or g->move_id when
 * g->whole).  receiving_end() undoes it once all that came is in place;
 * it may be called again. */
int
dimse_receiving_begin(struct job *job, struct getctx *g)
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

void
dimse_receiving_end(struct job *job, struct getctx *g)
{
	if (g->moving)
		move_end(job->ctx->src->priv, g);
	g->moving = 0;
	finisher_join(g);
}

