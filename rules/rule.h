/*
 * rule.h - one interface for every rule (query, download, validate, zip),
 * as tmux's cmd_entry: each rules/X.c exports one const descriptor, listed
 * in rules/rules.c.  A rule never reaches into the scheduler; the
 * scheduler only calls these four functions.
 */
#ifndef THLHP_RULE_H
#define THLHP_RULE_H

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
	int npartial;             /* patients the query saw only in part (patient.partial) */
	atomic_int cancel;        /* set on SIGINT/SIGTERM: jobs stop soon and clean up */
};

/* Pools a rule's jobs are counted in, each with its own cap. */
enum pool {
	POOL_PACS,                /* connections to the source: max_associations */
	POOL_LOCAL,               /* disk and CPU: -j */
	NPOOL,
};

enum { JOB_ERR_MAX = 2048 };

struct job {
	const struct rule *rule;
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

struct rule {
	const char *name;         /* stage name: "download" */
	enum pool pool;
	/* Main thread, planning: why the target for obj is stale, as a
	 * malloc'd reason, or NULL when up to date.  n is its node; its
	 * inputs are planned already.  Reads disk metadata, writes nothing. */
	char *(*plan)(struct ctx *ctx, struct node *n);
	/* Main thread, when the node's inputs are done: take from the catalog
	 * and state what the job needs into job->in.  Returns 1 to run, 0 when
	 * there is nothing to do after all (inputs rebuilt to the same
	 * content), -1 with job->err. */
	int (*start)(struct job *job);
	/* A worker thread: the work.  0, or -1 with job->err.  Checks
	 * ctx->cancel between items and leaves nothing under a final name
	 * that is not complete. */
	int (*run)(struct job *job);
	/* Main thread, right after run, or after start returned 0 or -1 (rc
	 * that result): record the result in the catalog and in state, one
	 * transaction; free job->in and ->out, whatever start got to.
	 * Returns -1 with job->err if it cannot record. */
	int (*finish)(struct job *job, int rc);
};

extern const struct rule rule_query, rule_download, rule_validate, rule_zip;
extern const struct rule *const rule_table[];  /* NULL-terminated */

/* Look at s->dir once per run: count its files, note whether it changed
 * since the last scan (a stat when unchanged, a readdir otherwise). */
void series_check_disk(struct series *s);

/* True when the run is being interrupted. */
static inline int
job_cancelled(const struct job *job)
{
	return atomic_load(&job->ctx->cancel) != 0;
}

#endif
