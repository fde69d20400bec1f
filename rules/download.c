/*
 * download.c - bring a series' missing instances from the source into
 * <dicom_dir>/<patient>/<study>/<series>/<sop>.dcm.  The source writes each
 * file under a temp name, hashed as written, and renames it when complete;
 * this rule records what arrived.  Validation follows in its own rule.
 */
#include <stdlib.h>
#include <string.h>
#include "fileio.h"
#include "rule.h"
#include "source.h"
#include "units.h"
#include "util.h"

static char *
download_plan(struct ctx *ctx, struct node *n)
{
	struct series *s = n->obj;

	if (n->force)
		return xstrdup("forced");
	series_check_disk(s);
	if (s->disk_count >= s->expected)
		return NULL;
	if (s->disk_count == 0 && s->ninst == 0)
		return xasprintf("new series (0/%d instances)", s->expected);
	return xasprintf("instances missing (%d/%d instances)", s->disk_count, s->expected);
}

static int
download_start(struct job *job)
{
	struct series *s = job->obj;
	struct ctx *ctx = job->ctx;
	struct fetch *f;
	char **sops;
	int n;

	if (!ctx->queried) {
		errf(job->err, sizeof(job->err), "needs the source, which --offline leaves alone");
		return -1;
	}
	if (mkdirs_under(ctx->cfg->output.dicom_dir, s->dir, 1, job->err, sizeof(job->err)) < 0)
		return -1;
	remove_dead_temps(s->dir);
	sops = list_dcm(s->dir, &n, job->err, sizeof(job->err));
	if (!sops)
		return -1;
	f = xcalloc(1, sizeof(*f));
	f->s = s;
	f->dir = s->dir;
	f->force = job->force;
	f->listed = -1;
	htab_init(&f->have);
	/* The table's keys point into sops, kept until finish. */
	for (int i = 0; i < n; i++)
		htab_put(&f->have, sops[i], sops[i]);
	job->in = f;
	job->out = sops;
	return 1;
}

static int
download_run(struct job *job)
{
	struct ctx *ctx = job->ctx;

	return ctx->src->ops->fetch(ctx->src, job, job->in);
}

static int
download_finish(struct job *job, int rc)
{
	struct series *s = job->obj;
	struct state *st = job->ctx->st;
	struct fetch *f = job->in;
	int64_t bytes = 0;

	if (!f)
		return rc;
	for (int i = 0; i < f->ngot; i++)
		bytes += f->got[i].size;
	job->summary = units_count_size(f->ngot, "instance", bytes);
	/* Interrupted is no failure of the series: what it was stays. */
	if (!job_cancelled(job))
		catalog_set(&s->error, rc < 0 ? job->err : NULL);
	/* Instances can arrive at the PACS after the query: go by the newer list. */
	if (f->listed > s->expected)
		s->expected = f->listed;
	/* Record what arrived even when the rest failed: a rerun resumes. */
	if (state_begin(st) < 0 || state_put_instances(st, s, f->got, f->ngot) < 0 ||
	    state_save_series(st, s, NULL, 0) < 0 || state_commit(st) < 0) {
		state_rollback(st);
		if (rc == 0)
			errf(job->err, sizeof(job->err), "recording %s: %s", s->uid, st->err);
		rc = -1;
	}
	instance_free(f->got, f->ngot);
	htab_free(&f->have);
	free(f);
	strv_free(job->out);
	job->in = job->out = NULL;
	return rc;
}

/* "<patient> <series UID>" */
char *
series_label(const struct rule *ru, struct ctx *ctx, void *obj)
{
	const struct series *s = obj;
	size_t a = strlen(s->patient->name), b = strlen(s->uid);
	char *l = xmalloc(a + b + 2);

	/* Not xasprintf: one label per series, at 100k series a no-op's
	 * noticeable share. */
	(void)ctx;
	memcpy(l, s->patient->name, a);
	l[a] = ' ';
	memcpy(l + a + 1, s->uid, b + 1);
	return l;
}

const struct rule rule_download = {
	.name = "download",
	.per = PER_SERIES,
	.costly = 1,
	.label = series_label,
	.pool = POOL_PACS,
	.plan = download_plan,
	.start = download_start,
	.run = download_run,
	.finish = download_finish,
};
