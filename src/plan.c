/*
 * plan.c - a patient's targets, as the rule table says: which series they
 * are made for, one node per stage and series or patient, wired by each
 * stage's after, each planned (why it is stale) as it is added.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"
#include "util.h"

/* The strings up to NULL, one after the other, malloc'd: labels and
 * paths for every node, where xasprintf was a sixth of a no-op run. */
static char *
concat(const char *first, ...)
{
	va_list ap;
	size_t len = 0;
	char *res, *d;

	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		len += strlen(a);
	va_end(ap);
	d = res = xmalloc(len + 1);
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		size_t l = strlen(a);

		memcpy(d, a, l);
		d += l;
	}
	va_end(ap);
	*d = '\0';
	return res;
}

/* The series a patient's archive holds: selected, and not gone unless
 * what was downloaded of it is valid (never silently dropped). */
void
plan_choose_series(struct ctx *ctx, struct patient *p)
{
	p->nwant = 0;
	free(p->want);
	p->want = xcalloc((size_t)p->nseries + 1, sizeof(*p->want));
	for (int i = 0; i < p->nseries; i++) {
		struct series *s = p->series[i];

		if (!select_series(ctx->sel, s->modality, s->study_date))
			continue;
		if (s->gone && s->valid_sig == 0)
			continue;
		free(s->dir);
		s->dir = concat(ctx->cfg->output.dicom_dir, "/", p->name, "/", s->study, "/", s->uid,
		    (char *)NULL);
		p->want[p->nwant++] = s;
	}
}

/* Does the config ask for stage ru? */
int
plan_stage_on(const struct ctx *ctx, const struct rule *ru)
{
	return !ru->enabled || ru->enabled(ctx->cfg);
}

/* The stages target name asks for: *upto, it and those it is made from;
 * *self, it alone (0 and 0 for the query).  -1 if no stage is so named. */
int
plan_stage_mask(const char *name, stages *upto, stages *self)
{
	int k;
	const struct rule *ru = rule_find(name, &k);

	*upto = *self = 0;
	if (!ru)
		return -1;
	if (ru->per == PER_RUN)
		return 0;
	*self = (stages)1 << k;
	for (; ru; ru = ru->after ? rule_find(ru->after, &k) : NULL)
		*upto |= (stages)1 << k;
	return 0;
}

/* Each stage's targets for p, as the table says: a series stage's for
 * each series (series by series, each after the same series' target of
 * the stage it comes after), then the patient stages', each after all of
 * the patient's targets of the stage it comes after. */
void
plan_patient(struct ctx *ctx, struct graph *g, struct patient *p, stages build, stages force)
{
	struct node **made[RULE_MAX] = { 0 };
	int after[RULE_MAX];

	plan_choose_series(ctx, p);
	if (p->nwant == 0)
		return;
	for (int k = 0; rule_table[k]; k++) {
		after[k] = -1;
		if (rule_table[k]->after)
			rule_find(rule_table[k]->after, &after[k]);
		if ((build & ((stages)1 << k)) && plan_stage_on(ctx, rule_table[k]))
			made[k] = xcalloc((size_t)p->nwant, sizeof(**made));
	}
	for (int i = 0; i < p->nwant; i++)
		for (int k = 0; rule_table[k]; k++) {
			const struct rule *ru = rule_table[k];
			struct node *n;

			if (ru->per != PER_SERIES || !made[k])
				continue;
			n = graph_add(g, ru, p->want[i], ru->label(ru, ctx, p->want[i]));
			n->force = !!(force & ((stages)1 << k));
			if (after[k] >= 0 && made[after[k]] && made[after[k]][i])
				graph_edge(made[after[k]][i], n);
			graph_stale(n, ru->plan(ctx, n));
			made[k][i] = n;
		}
	/* A patient the query saw only in part keeps what it has: made now,
	 * it could lack a series. */
	for (int k = 0; rule_table[k] && !p->query_error; k++) {
		const struct rule *ru = rule_table[k];
		int a = after[k];
		struct node *n;

		if (ru->per != PER_PATIENT || !made[k])
			continue;
		n = graph_add(g, ru, p, ru->label(ru, ctx, p));
		n->force = !!(force & ((stages)1 << k));
		for (int i = 0; a >= 0 && made[a] && i < p->nwant; i++)
			if (made[a][i])
				graph_edge(made[a][i], n);
		graph_stale(n, ru->plan(ctx, n));
		made[k][0] = n;
	}
	for (int k = 0; rule_table[k]; k++)
		free(made[k]);
}


stages
plan_item_stages(void)
{
	stages m = 0;

	for (int k = 0; rule_table[k]; k++)
		if (rule_table[k]->per == PER_ITEM)
			m |= (stages)1 << k;
	return m;
}

/* Is named[0..n) naming key of stage k?  1, and *force or'd with its -B. */
static int
is_named(const struct named_item *named, int n, int k, const char *key, int *force)
{
	int hit = 0;

	for (int j = 0; j < n; j++)
		if (named[j].k == k && strcmp(named[j].key, key) == 0) {
			hit = 1;
			*force |= named[j].force;
		}
	return hit;
}

int
plan_items(struct ctx *ctx, struct graph *g, stages build, stages force,
    const struct named_item *named, int n, struct item *items[RULE_MAX], int nitems[RULE_MAX])
{
	for (int k = 0; rule_table[k]; k++) {
		const struct rule *ru = rule_table[k];
		stages bit = (stages)1 << k;
		int asked = 0;

		if (ru->per != PER_ITEM || !plan_stage_on(ctx, ru))
			continue;
		for (int j = 0; j < n; j++)
			asked += named[j].k == k;
		if (!(build & bit) && !asked)
			continue;
		if (ru->items(ru, ctx, &items[k], &nitems[k]) < 0)
			return -1;
		/* Each named one must be listed. */
		for (int j = 0; j < n; j++) {
			int i;

			if (named[j].k != k)
				continue;
			for (i = 0; i < nitems[k] && strcmp(items[k][i].key, named[j].key) != 0; i++)
				;
			if (i == nitems[k]) {
				warn("%s:%s: no such %s target (%d known%s; -t targets lists them)",
				    ru->name, named[j].key, ru->name, nitems[k],
				    ctx->offline ? ", from the state: --offline" : "");
				return -1;
			}
		}
		for (int i = 0; i < nitems[k]; i++) {
			struct item *it = &items[k][i];
			int f = !!(force & bit);
			struct node *nd;

			if (!is_named(named, n, k, it->key, &f) && !(build & bit))
				continue;
			nd = graph_add(g, ru, it, ru->label(ru, ctx, it));
			nd->force = f;
			graph_stale(nd, ru->plan(ctx, nd));
		}
	}
	return 0;
}

void
plan_items_free(struct item *items[RULE_MAX], int nitems[RULE_MAX])
{
	for (int k = 0; k < RULE_MAX; k++) {
		for (int i = 0; i < nitems[k]; i++) {
			free(items[k][i].key);
			free(items[k][i].title);
		}
		free(items[k]);
		items[k] = NULL;
		nitems[k] = 0;
	}
}
