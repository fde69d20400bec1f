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

struct getctx;

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
 * answered this run yet (then no retry), else that it may be busy. */
int dimse_src_find_on(struct job *job, struct dimse_finder *fd, enum dimse_level lv,
    const struct dimse_keys *k, dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX]);
/* dimse_src_find_on on an association of its own. */
int dimse_src_find(struct job *job, enum dimse_level lv, const struct dimse_keys *k,
    dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX]);
/* The fetch: bring the series' missing instances (dimse-fetch.c). */
int dimse_fetch(struct source *src, struct job *job, struct fetch *f);

#endif
