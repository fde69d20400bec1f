/*
 * metadata.c - with a [metadata] section, each validated series' headers
 * in the state as DICOM JSON (dicom.h, dcm_json; state.h, table
 * metadata), one row per instance, for SQL.  A header validate parsed in
 * this run comes from it (hdrcache.h); the others are read here, once.
 * The target record holds the validated content it was made from and the
 * setting it was made with: a series whose content and max_value_bytes did
 * not change is not read again, and one that did has all its rows
 * replaced in one transaction.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dicom.h"
#include "hdrcache.h"
#include "rule.h"
#include "util.h"

extern const struct rule rule_metadata;

/* What a series' rows were made from, by series UID (the record's key). */
struct mrec {
	char *key;
	uint64_t input;           /* the series' valid_sig then */
	char *settings;
};

static struct htab recs;

static int
metadata_enabled(const struct config *cfg)
{
	return cfg->metadata.on != 0;
}

/* The settings the rows are made with, as recorded. */
static char *
settings(const struct ctx *ctx)
{
	return xasprintf("max_value_bytes=%lld", ctx->cfg->metadata.max_value);
}

static void
mrec_put(void *arg, const char *key, const struct target_rec *r)
{
	struct mrec *m;

	(void)arg;
	if (r->error)
		return;   /* a failure's record: no rows made */
	m = xcalloc(1, sizeof(*m));
	m->key = xstrdup(key);
	m->input = r->input_sig;
	m->settings = xstrdup(r->settings ? r->settings : "");
	htab_put(&recs, m->key, m);
}

static void
recs_free(void)
{
	for (size_t i = 0; i < recs.cap; i++) {
		struct mrec *m = recs.slot[i].val;

		if (recs.slot[i].key && m) {
			free(m->key);
			free(m->settings);
			free(m);
		}
	}
	htab_free(&recs);
}

static int
metadata_prepare(const struct rule *ru, struct ctx *ctx)
{
	recs_free();
	htab_init(&recs);
	hdrcache_want(0);   /* until a plan finds a series to store */
	/* Without the records every series reads as never stored: slower,
	 * the same answer; a store that cannot be read fails the run elsewhere. */
	state_load_targets(ctx->st, ru->name, mrec_put, NULL);
	return 0;
}

static char *why_stale(struct ctx *ctx, struct node *n);

/* validate hands its headers over only when some are to be stored: a
 * run of `validate` alone keeps none. */
static char *
metadata_plan(struct ctx *ctx, struct node *n)
{
	char *why = why_stale(ctx, n);

	if (why && !ctx->dry_run)
		hdrcache_want(1);
	return why;
}

static char *
why_stale(struct ctx *ctx, struct node *n)
{
	struct series *s = n->obj;
	const struct mrec *m = htab_get(&recs, s->uid);
	char *want;
	int same;

	if (n->force)
		return xstrdup("forced");
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->reason)
			return xasprintf("after validate (%s)", n->in[i]->reason);
	if (!m)
		return xstrdup("never stored");
	if (m->input != s->valid_sig)
		return xstrdup("series changed");
	want = settings(ctx);
	same = strcmp(want, m->settings) == 0;
	free(want);
	return same ? NULL : xasprintf("stored with %s", m->settings);
}

struct min {
	struct instance *inst;    /* as validate recorded them */
	int n;
	char *dir;
	size_t max_value;
	uint64_t input;           /* valid_sig */
	char *settings;
	/* run: */
	struct meta_row *rows;
	int nrows, nread;         /* rows made; headers read here */
};

static int
metadata_start(struct job *job)
{
	struct series *s = job->obj;
	const struct mrec *m = htab_get(&recs, s->uid);
	struct min *in;

	if (s->valid_sig == 0) {
		errf(job->err, sizeof(job->err), "%s: not validated", s->uid);
		return -1;
	}
	in = xcalloc(1, sizeof(*in));
	job->in = in;
	in->settings = settings(job->ctx);
	in->input = s->valid_sig;
	/* validate ran and found the same content: the rows stand. */
	if (!job->force && m && m->input == s->valid_sig && strcmp(m->settings, in->settings) == 0)
		return 0;
	if (state_load_instances(job->ctx->st, s, &in->inst, &in->n) < 0) {
		errf(job->err, sizeof(job->err), "%s", job->ctx->st->err);
		return -1;
	}
	in->dir = xstrdup(s->dir);
	in->max_value = (size_t)job->ctx->cfg->metadata.max_value;
	return 1;
}

static int
metadata_run(struct job *job)
{
	struct min *in = job->in;

	atomic_store(&job->total, in->n);
	in->rows = xcalloc((size_t)in->n + 1, sizeof(*in->rows));
	for (int i = 0; i < in->n; i++) {
		const struct instance *x = &in->inst[i];
		char *json = job->force ? NULL : hdrcache_take(x->sop, x->hash);

		if (job_cancelled(job)) {
			free(json);
			errf(job->err, sizeof(job->err), "interrupted");
			return -1;
		}
		if (!json) {
			char *path = xasprintf("%s/%s.dcm", in->dir, x->sop), err[DCM_ERR_MAX];
			int rc = dcm_json(path, in->max_value, &json, err);

			free(path);
			if (rc < 0) {
				errf(job->err, sizeof(job->err), "%s", err);
				return -1;
			}
			in->nread++;
		}
		in->rows[in->nrows].sop = x->sop;
		in->rows[in->nrows++].json = json;
		atomic_fetch_add(&job->done, 1);
	}
	job->summary = xasprintf("%d instance%s stored, %d header%s read", in->nrows,
	    in->nrows == 1 ? "" : "s", in->nread, in->nread == 1 ? "" : "s");
	return 0;
}

static int
metadata_finish(struct job *job, int rc)
{
	struct state *st = job->ctx->st;
	struct series *s = job->obj;
	struct min *in = job->in;
	struct target_rec r = { 0 };
	char detail[48];

	if (in && in->rows && (rc == 0 || !job_cancelled(job))) {
		if (rc == 0) {
			snprintf(detail, sizeof(detail), "%d instance%s", in->nrows, in->nrows == 1 ? "" : "s");
			r = (struct target_rec){ .input_sig = in->input, .settings = in->settings,
			    .detail = detail };
		} else {
			r.error = job->err;
		}
		if (state_begin(st) < 0 || (rc == 0 && state_meta_put(st, s, in->rows, in->nrows) < 0) ||
		    state_save_target(st, job->rule->name, s->uid, &r) < 0 || state_commit(st) < 0) {
			state_rollback(st);
			if (rc == 0) {
				errf(job->err, sizeof(job->err), "recording %s: %s", s->uid, st->err);
				rc = -1;
			} else {
				warn("metadata %s: recording the failure: %s", s->uid, st->err);
			}
		}
	}
	if (in) {
		for (int i = 0; i < in->nrows; i++)
			free((char *)in->rows[i].json);
		free(in->rows);
		instance_free(in->inst, in->n);
		free(in->dir);
		free(in->settings);
		free(in);
	}
	job->in = NULL;
	return rc;
}

/* What validate offered and nobody took (a series validated again to the
 * same content) goes with the run. */
static int
metadata_run_end(const struct rule *ru, struct ctx *ctx, int made)
{
	(void)ru, (void)ctx, (void)made;
	hdrcache_clear();
	return 0;
}

const struct rule rule_metadata = {
	.name = "metadata",
	.per = PER_SERIES,
	.after = "validate",
	.enabled = metadata_enabled,
	.label = series_label,
	.prepare = metadata_prepare,
	.pool = POOL_LOCAL,
	.plan = metadata_plan,
	.start = metadata_start,
	.run = metadata_run,
	.finish = metadata_finish,
	.run_end = metadata_run_end,
};
