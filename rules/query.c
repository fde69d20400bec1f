/*
 * query.c - refresh the catalog from the source.  The only rule that runs
 * in a dry run too: asking the PACS what it holds writes nothing; the
 * result is merged into the in-memory catalog and saved unless -n/-q.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "names.h"
#include "rule.h"
#include "source.h"
#include "util.h"

static char *
query_plan(struct ctx *ctx, struct node *n)
{
	return ctx->offline ? NULL : xstrdup("refresh the catalog");
}

static int
query_start(struct job *job)
{
	struct ctx *ctx = job->ctx;

	/* A PACS is asked about what changed only; a folder of this host
	 * costs nothing to walk whole. */
	if (!ctx->src->ops->local && known_load(ctx->src, ctx, job->force, job->err,
	    sizeof(job->err)) < 0)
		return -1;
	if (ctx->src->ops->open(ctx->src, ctx, job->err, sizeof(job->err)) < 0)
		return -1;
	return 1;
}

static int
query_run(struct job *job)
{
	struct query_result *r = xcalloc(1, sizeof(*r));
	struct ctx *ctx = job->ctx;

	job->out = r;
	return ctx->src->ops->query(ctx->src, job, r);
}

/* An attribute as the catalog keeps it: "" (what a PACS answers for one
 * it has no value of) is none, as in a store migrated from before it. */
static const char *
value(const char *s)
{
	return s && *s ? s : NULL;
}

/* Fold what the source holds into the catalog. */
static void
merge(struct ctx *ctx, struct query_result *r, int *nnew, int *ngone)
{
	struct catalog *c = ctx->cat;

	for (int i = 0; i < r->n; i++) {
		struct found *f = &r->v[i];
		struct patient *p = catalog_patient(c, f->patient);
		struct series *s = catalog_find_series(c, f->uid);

		if (s && (s->patient != p || strcmp(s->study, f->study) != 0)) {
			if (verbosity > 0)
				warn("series %s: now under patient %s study %s, was %s %s; kept where it was",
				    f->uid, f->patient, f->study, s->patient->id, s->study);
			s->seen = 1;
			continue;
		}
		if (!s) {
			s = catalog_series(c, p, f->study, f->uid);
			(*nnew)++;
		}
		s->seen = 1;
		s->dirty |= catalog_iset(c, &s->modality, f->modality);
		s->dirty |= catalog_iset(c, &s->sop_class, f->sop_class);
		s->dirty |= catalog_iset(c, &s->study_date, f->date);
		s->dirty |= catalog_iset(c, &s->number, value(f->number));
		s->dirty |= catalog_iset(c, &s->desc, value(f->desc));
		if (s->expected != f->expected) {
			s->expected = f->expected;
			s->dirty = 1;
		}
		if (s->gone) {
			s->gone = 0;
			s->dirty = 1;
		}
	}
	/* Kept in the state: an --offline run must not build the archive
	 * the query could not vouch for either. */
	for (int i = 0; i < r->nfailed; i++) {
		struct patient *p = catalog_patient(c, r->failed[i].patient);

		warn("patient %s: the PACS's answer about it is incomplete: %s; its archive is "
		    "not built until a query sees it whole", p->id, r->failed[i].why);
		p->query_dirty |= catalog_set(&p->query_error, r->failed[i].why);
	}
	ctx->npartial = r->nfailed;
	if (!r->complete)
		return;
	for (int i = 0; i < c->np; i++) {
		struct patient *p = c->p[i];

		if (p->query_error && select_patient(ctx->sel, p->id) && !query_failed(r, p->id)) {
			catalog_set(&p->query_error, NULL);
			p->query_dirty = 1;
		}
	}
	/* Gone: not seen by a query that covered it, i.e. of a patient and
	 * modality and date [select] asks for now. */
	for (int i = 0; i < c->np; i++)
		for (int j = 0; j < c->p[i]->nseries; j++) {
			struct series *s = c->p[i]->series[j];

			if (s->seen || s->gone || c->p[i]->query_error ||
			    !select_patient(ctx->sel, c->p[i]->id) ||
			    !select_series(ctx->sel, s->modality, s->study_date))
				continue;
			s->gone = 1;
			s->dirty = 1;
			(*ngone)++;
			if (verbosity > 0)
				warn("series %s of patient %s is no longer at the source; "
				    "what was downloaded is kept", s->uid, s->patient->id);
		}
	catalog_sort(c);
}

static int
query_finish(struct job *job, int rc)
{
	struct ctx *ctx = job->ctx;
	struct query_result *r = job->out;
	char err[JOB_ERR_MAX];
	int nnew = 0, ngone = 0;

	if (rc == 0) {
		for (int i = 0; i < r->nnotes; i++)
			warn("%s", r->notes[i]);
		merge(ctx, r, &nnew, &ngone);
		ctx->queried = 1;
		job->summary = r->nfailed ? xasprintf("%d series at the source, %d new, %d gone; "
		    "%d patient%s seen only in part", r->n, nnew, ngone, r->nfailed,
		    r->nfailed == 1 ? "" : "s") :
		    xasprintf("%d series at the source, %d new, %d gone", r->n, nnew, ngone);
	}
	if (ctx->src->ops->query_done(ctx->src, ctx, err, sizeof(err)) < 0 && rc == 0) {
		memcpy(job->err, err, sizeof(err));
		rc = -1;
	}
	if (rc == 0 && !ctx->dry_run && state_save_catalog(ctx->st, ctx->cat) < 0) {
		errf(job->err, sizeof(job->err), "saving the catalog: %s", ctx->st->err);
		rc = -1;
	}
	if (rc == 0 && known_save(ctx->src, ctx, r, err, sizeof(err)) < 0) {
		memcpy(job->err, err, sizeof(err));
		rc = -1;
	}
	if (rc == 0 && ctx->verbose && ctx->src->known) {
		char *sum = known_summary(ctx->src);

		if (known_nocounts(ctx->src))
			warn("query: the PACS listed %d stud%s without NumberOfStudyRelatedSeries and "
			    "NumberOfStudyRelatedInstances: their series are asked for on every run",
			    known_nocounts(ctx->src), known_nocounts(ctx->src) == 1 ? "y" : "ies");
		warn("query: %s", sum);
		free(sum);
	}
	if (r)
		query_result_free(r);
	free(r);
	job->out = NULL;
	return rc;
}

/* What is asked: the folder, or "PACS". */
static char *
query_label(const struct rule *ru, struct ctx *ctx, void *obj)
{
	const struct source_ops *ops = ctx->src ? ctx->src->ops : source_find(ctx->cfg->pacs.protocol);

	(void)obj;
	return xstrdup(ops && ops->label ? ops->label(ctx->cfg) : "PACS");
}

const struct rule rule_query = {
	.name = "query",
	.per = PER_RUN,
	.label = query_label,
	.pool = POOL_PACS,
	.plan = query_plan,
	.start = query_start,
	.run = query_run,
	.finish = query_finish,
};
