/*
 * build-int.h - what build.c and targets.c share: a run, and what its
 * command line's targets ask of each patient.
 */
#ifndef THLHP_BUILD_INT_H
#define THLHP_BUILD_INT_H

#include "build.h"
#include "htab.h"
#include "lease.h"
#include "plan.h"
#include "rule.h"
#include "setup.h"

/* What the targets ask of one patient (stages: bit k is rule_table[k]). */
struct want {
	stages build;             /* to build */
	stages force;             /* to rebuild regardless (-B) */
	const char *file;         /* a file named as a target, or NULL */
	const struct rule *file_rule; /* the stage that makes it */
};

/* One run of build.c: its options, setup, graph and targets. */
struct run {
	const struct options *o;
	struct setup *s;          /* config, selection, state, catalog */
	struct ctx ctx;
	struct lease lease;       /* when the store is shared */
	struct graph g;
	struct want all;          /* for every selected patient */
	stages every;             /* every stage made per series or patient */
	stages redo;              /* what -B of a patient or of all redoes */
	struct htab one;          /* patient id -> struct want, named targets */
	struct want *wants;
	int nwants;
	char **wanted_ids;        /* ids named, to check after the query */
	int query_only;
	int force_query;          /* -B query: a full walk (known.c) */
	int nstale;               /* -n, -q: stale targets seen */
	struct {
		const char *name;
		int n;
	} stale_by[8];            /* -n: stale targets by rule, for the count */
	int nstale_by;
	/* PER_ITEM stages: each one's items, and those named STAGE:KEY. */
	struct item *items[RULE_MAX];
	int nitems[RULE_MAX];
	struct named_item *named;
	int nnamed;
};

/* Parse the command line's targets into r (patients are checked after
 * the query): 0, or -1 with a warning. */
int build_targets(struct run *r);

#endif
