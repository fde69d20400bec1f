/*
 * targets.c - what the command line's targets ask for: all, a stage, a
 * patient, STAGE:PATIENT, STAGE:KEY of a stage that lists its own items,
 * or a file a stage makes (an archive's path); -B's part of each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build-int.h"
#include "util.h"

/* Patient id's want, made on first use; build and force added to it. */
static struct want *
want_patient(struct run *r, const char *id, stages build, stages force)
{
	struct want *w = htab_get(&r->one, id);

	if (!w) {
		char *key = xstrdup(id);

		w = xcalloc(1, sizeof(*w));
		htab_put(&r->one, key, w);
		r->wanted_ids = xreallocarray(r->wanted_ids, (size_t)r->nwants + 1, sizeof(char *));
		r->wanted_ids[r->nwants++] = key;
	}
	w->build |= build;
	w->force |= force;
	return w;
}

/* The stages' names, for messages: "download, validate or zip". */
static void
stage_names(char *buf, size_t len)
{
	size_t off = 0;
	int m = 0, j = 0;

	for (int k = 0; rule_table[k]; k++)
		m += rule_table[k]->per != PER_RUN;
	buf[0] = '\0';
	for (int k = 0; rule_table[k] && off < len; k++)
		if (rule_table[k]->per != PER_RUN)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", j == 0 ? "" :
			    j == m - 1 ? " or " : ", ", rule_table[k]->name), j++;
}

/* The stage whose file the target t names: 1 with the patient's want, 0
 * when no stage makes such a file, -1 when one does but t is wrong. */
static int
file_target(struct run *r, const char *t)
{
	const struct options *o = r->o;
	char err[512];

	for (int k = 0; rule_table[k]; k++) {
		const struct rule *ru = rule_table[k];
		stages upto, self;
		struct want *w;
		char *id;

		if (!ru->file_owner)
			continue;
		id = ru->file_owner(&r->ctx, t, err, sizeof(err));
		if (!id && err[0]) {
			warn("%s", err);
			return -1;
		}
		if (!id)
			continue;
		plan_stage_mask(ru->name, &upto, &self);
		w = want_patient(r, id, upto, o->always ? self : 0);
		w->file = t;
		w->file_rule = ru;
		free(id);
		return 1;
	}
	return 0;
}

int
build_targets(struct run *r)
{
	const struct options *o = r->o;
	int any = 0;

	for (int k = 0; rule_table[k]; k++) {
		if (rule_table[k]->per == PER_RUN || !plan_stage_on(&r->ctx, rule_table[k]))
			continue;
		r->every |= (stages)1 << k;
		if (!rule_table[k]->costly)
			r->redo |= (stages)1 << k;
	}
	for (int i = 0; i < o->ntargets; i++) {
		const char *t = o->targets[i], *colon = strchr(t, ':');
		stages upto, self;
		int rc, k;

		if (strcmp(t, "all") == 0) {
			r->all.build |= r->every;
			r->all.force |= o->always ? r->redo : 0;
		} else if (plan_stage_mask(t, &upto, &self) == 0) {
			if (!plan_stage_on(&r->ctx, rule_find(t, NULL))) {
				warn("%s: that stage is off in %s", t, r->s->cfg.file);
				return -1;
			}
			r->all.build |= upto;
			r->all.force |= o->always ? self : 0;
			if (upto == 0) {
				r->query_only = 1;
				r->force_query |= o->always;
			}
		} else if ((rc = file_target(r, t)) != 0) {
			if (rc < 0)
				return -1;
		} else if (colon && colon > t) {
			char *stage = strndup(t, (size_t)(colon - t)), names[256];

			rc = plan_stage_mask(stage, &upto, &self);
			if (rc < 0 || upto == 0) {
				free(stage);
				stage_names(names, sizeof(names));
				warn("%s: unknown stage before ':' (%s)", t, names);
				return -1;
			}
			if (!plan_stage_on(&r->ctx, rule_find(stage, NULL))) {
				warn("%s: stage %s is off in %s", t, stage, r->s->cfg.file);
				free(stage);
				return -1;
			}
			if (rule_find(stage, &k)->per == PER_ITEM) {
				r->named = xreallocarray(r->named, (size_t)r->nnamed + 1, sizeof(*r->named));
				r->named[r->nnamed].k = k;
				r->named[r->nnamed].force = o->always;
				r->named[r->nnamed++].key = colon + 1;
				free(stage);
				any = 1;
				continue;
			}
			free(stage);
			want_patient(r, colon + 1, upto, o->always ? self : 0);
		} else {
			want_patient(r, t, r->every, o->always ? r->redo : 0);
		}
		any = 1;
	}
	if (!any)
		r->all = (struct want){ .build = r->every, .force = o->always ? r->redo : 0 };
	if (r->all.build || r->nwants)
		r->query_only = 0;
	return 0;
}
