/*
 * sched.h - run the stale nodes of a graph, like samurai's build(): take
 * ready work while under the limits, wait, reap, unblock dependents.  Each
 * job runs on its own thread; the loop itself does no real work.
 */
#ifndef THLHP_SCHED_H
#define THLHP_SCHED_H

#include "graph.h"
#include "progress.h"
#include "rule.h"

struct sched_opts {
	int jobs;                 /* -j: jobs at once in all */
	int cap[NPOOL];           /* jobs at once per pool */
	int keep_going;           /* -k */
	progress_title_fn *title; /* how a job is named on screen; NULL: its label */
	int summary;              /* end with what was built (the build, not the query) */
};

/* Catch SIGINT and SIGTERM for ctx: the first stops the run cleanly (no new
 * jobs, running ones told to stop), a second one kills the process. */
void sched_signals(struct ctx *ctx);
/* The signal that interrupted the run (SIGINT, SIGTERM), or 0. */
int sched_signal(void);
/* Run every stale node of g.  Returns 0 when all are done, -1 when any
 * failed or was blocked, -2 when interrupted. */
int sched_run(struct graph *g, struct ctx *ctx, const struct sched_opts *o);

/*
 * Idle slots of -j, for a job that can use more threads than its own (the
 * zip stage compresses one archive's entries on several).  -j bounds the
 * jobs and the borrowed threads together.  sched_borrow takes a slot when
 * one is idle and no ready job waits for it: 1, or 0.  sched_wanted says
 * a ready job waits for a slot: a borrower gives its slot back at its next
 * chance.  sched_giveback returns one, at the latest before the borrowing
 * job's run ends.  Outside sched_run nothing can be borrowed.
 */
int sched_borrow(void);
int sched_wanted(void);
void sched_giveback(void);

#endif
