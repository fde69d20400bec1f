/*
 * plan.h - a patient's part of the graph, and the targets of the stages
 * that list their own (PER_ITEM), built from the rule table.
 * Main thread; reads disk metadata (each target is planned as it is
 * added), writes nothing.
 */
#ifndef THLHP_PLAN_H
#define THLHP_PLAN_H

#include <stdint.h>
#include "graph.h"
#include "job.h"
#include "rule.h"

/* Stages, as bits: bit k is rule_table[k]. */
typedef uint32_t stages;

/* Does ctx's config ask for stage ru (rule.enabled)? */
int plan_stage_on(const struct ctx *ctx, const struct rule *ru);
/* The stages the target name asks for: *upto, it and those it is made
 * from; *self, it alone (0 and 0 for the query).  -1 if no stage is so
 * named. */
int plan_stage_mask(const char *name, stages *upto, stages *self);
/* p->want: the series its targets are made for, selected, and not gone
 * unless what was downloaded of it is valid (never silently dropped);
 * each with its dir. */
void plan_choose_series(struct ctx *ctx, struct patient *p);
/* Add to g p's targets of the stages in build (those in force marked
 * forced, -B), planned: a series stage's for each series, series by
 * series, each after the same series' target of the stage it comes
 * after; then the patient stages', each after all of the patient's
 * targets of the stage it comes after, none for a patient the query saw
 * only in part (query_error).  Calls plan_choose_series. */
void plan_patient(struct ctx *ctx, struct graph *g, struct patient *p, stages build,
    stages force);

/* The stages whose targets are items of their own (rule.h, PER_ITEM). */
stages plan_item_stages(void);
/* A target STAGE:KEY of such a stage named on the command line. */
struct named_item {
	int k;                    /* the stage: rule_table[k] */
	int force;                /* -B */
	const char *key;
};
/* Add to g the targets of the PER_ITEM stages that are on and asked
 * for: every item of those in build (forced when in force), and the
 * named[0..n) ones; each stage's items, listed by its rule, into
 * items[k] and nitems[k] (freed with plan_items_free).  0, or -1 after a
 * warning: a listing failed, or a named item is not listed. */
int plan_items(struct ctx *ctx, struct graph *g, stages build, stages force,
    const struct named_item *named, int n, struct item *items[RULE_MAX], int nitems[RULE_MAX]);
void plan_items_free(struct item *items[RULE_MAX], int nitems[RULE_MAX]);

#endif
