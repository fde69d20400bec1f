/*
 * job.h - what the engine hands a stage's job and a source: the run's
 * shared context (struct ctx) and one job (struct job).  The rules, the
 * sources and the scheduler all speak these; only the rules know the
 * stage descriptors (rules/rule.h).
 */
#ifndef THLHP_JOB_H
#define THLHP_JOB_H

#include <stdatomic.h>
#include <stdint.h>
#include "catalog.h"
#include "config.h"
#include "graph.h"
#include "select.h"
#include "state.h"

struct source;
struct lease;

/* Everything a run shares; read-only for jobs except the atomics. */
struct ctx {
	const struct config *cfg;
	struct state *st;
	struct catalog *cat;
	struct select *sel;
	struct source *src;
	struct lease *lease;      /* shared store: jobs are claimed; else NULL */
	char *settings;           /* config_zip_settings() */
	int dry_run;              /* -n or -q: write nothing */
	int offline;              /* --offline: the source is not to be contacted */
	int queried;              /* the source was queried this run */
	int verbose;              /* -v: what the query cost, in a dry run too */
	int npartial;             /* patients the query saw only in part (patient.query_error) */
	atomic_int cancel;        /* set on SIGINT/SIGTERM: jobs stop soon and clean up */
};

/* Pools a rule's jobs are counted in, each with its own cap. */
enum pool {
	POOL_PACS,                /* connections to the source: max_associations */
	POOL_LOCAL,               /* disk and CPU: -j */
	POOL_RULE0,               /* the first declared rule's: its jobs (or -j) */
	NPOOL = POOL_RULE0 + 32,  /* RULE_MAX */
};

enum { JOB_ERR_MAX = 2048 };

struct job {
	const struct rule *rule;
	const char *stage;        /* its rule's name, for messages */
	struct node *node;
	struct ctx *ctx;
	void *obj;                /* node->obj: a series or a patient */
	int force;                /* -B */
	void *in, *out;           /* rule-private input (start) and result (run) */
	atomic_long done, total;  /* progress in items, for the status line */
	atomic_llong bytes;       /* progress in bytes */
	int64_t start_ns, end_ns;
	int nothing;              /* start found nothing to do after all */
	int no_retry;             /* the failure is ours (a full disk): retrying cannot help */
	char *summary;            /* one line on what it did (malloc'd), or NULL */
	char err[JOB_ERR_MAX];    /* why it failed */
};

/* True when the run is being interrupted. */
static inline int
job_cancelled(const struct job *job)
{
	return atomic_load(&job->ctx->cancel) != 0;
}

#endif
