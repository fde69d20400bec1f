/*
 * dimse-src.h - what the two halves of the DIMSE source share: dimse.c
 * (state, query) and dimse-fetch.c (C-GET, C-MOVE and our storage SCP).
 */
#ifndef THLHP_DIMSE_SRC_H
#define THLHP_DIMSE_SRC_H

#include <pthread.h>
#include <stdatomic.h>
#include "dimse.h"
#include "pace.h"
#include "source.h"

/* An instance received under its temp name, waiting for its fsync. */
struct arrived {
	char *tmp, *sop;
	int fd;                   /* open from its arrival to its hash, else -1 */
	uint64_t hash;            /* once hashed: */
	int64_t size, mtime;
	int hashed;
	int placed;               /* renamed to its final name */
	struct arrived *next;
};

/* One fetch's retrieve, and what arrives for it (dimse-fetch.c and
 * dimse-receive.c). */
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
	atomic_int nopen;         /* their descriptors kept open (KEEP_OPEN_MAX) */
	int closing;              /* nothing more will be queued */
	int finisher;             /* the finisher thread runs */
	pthread_t fin;
	int refused;
	char err[256];
};


/* src->priv of the DIMSE source. */
struct dimse {
	struct bucket bucket;     /* max_requests_per_minute, for every job */
	pthread_mutex_t mu;       /* guards what follows */
	atomic_int study_root;    /* the PACS refused Patient Root */
	atomic_int reached;       /* a request of this run was answered */
	struct dimse_scp *scp;    /* our storage SCP, once a C-MOVE needed it */
	struct getctx **moving;   /* jobs with a C-MOVE in flight */
	int nmoving;
	atomic_uint move_ids;     /* C-MOVE Message IDs, when getrandom fails */
	/* A C-STORE came that no C-MOVE of a whole series could be told by
	 * (the PACS does not quote its Move Originator Message ID, or not
	 * as sent): each move lists the SOP UIDs it routes from then on. */
	atomic_int unnamed;
};

/* The PACS and the TLS settings of cfg. */
void dimse_peer_of(const struct config *cfg, struct dimse_peer *p);
/* Requests of p stop when job is cancelled (Ctrl-C). */
void dimse_peer_stop(struct dimse_peer *p, struct job *job);
/* A C-FIND on fd's association (on one of its own when fd is NULL),
 * after its token of the bucket (every request takes one).  A rejected
 * association says what to check: our AE titles when the PACS has not
 * answered this run yet (then no retry), else that it may be busy.  A
 * PACS certificate that does not verify is -1, not retried. */
int dimse_src_find_on(struct job *job, struct dimse_finder *fd, enum dimse_level lv,
    const struct dimse_keys *k, dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX]);
/* dimse_src_find_on on an association of its own. */
int dimse_src_find(struct job *job, enum dimse_level lv, const struct dimse_keys *k,
    dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX]);
/* dimse_store_fn for g's C-GET and the C-MOVEs routed to g: check what
 * arrived and queue it for g's finisher (dimse-receive.c). */
int dimse_on_store(void *arg, const struct dcm_header *h, const char *tmp);
/* Before a retrieve: g's finisher, and for a C-MOVE g's place among the
 * moves the storage SCP routes to.  0, or -1 with job->err. */
int dimse_receiving_begin(struct job *job, struct getctx *g);
/* After it: once all that came is in place; may be called again. */
void dimse_receiving_end(struct job *job, struct getctx *g);
/* One try of the query (source_retry's once; arg the query_result):
 * the walk down the PACS's hierarchy (dimse-walk.c). */
int dimse_walk(struct job *job, void *arg);
/* The fetch: bring the series' missing instances (dimse-fetch.c). */
int dimse_fetch(struct source *src, struct job *job, struct fetch *f);

#endif
