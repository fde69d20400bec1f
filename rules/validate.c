/*
 * validate.c - a series is valid when every file parses, sits where its
 * PatientID, StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID say, and
 * the count equals what the source holds.  Files are hashed again only when
 * their size or mtime changed (the git-index trick) and parsed only when
 * their content is new; bad files are removed so the next run fetches them
 * again.  With the metadata stage on, a file parsed here hands its header
 * to it (hdrcache.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dicom.h"
#include "fileio.h"
#include "hdrcache.h"
#include "rule.h"
#include "util.h"

struct vin {
	struct instance *inst;    /* as recorded */
	int n;
};

struct vout {
	struct instance *inst;    /* good files now on disk */
	int n, cap;
	uint64_t set_sig;
	int64_t dir_mtime;
	int valid;
};

static char *
validate_plan(struct ctx *ctx, struct node *n)
{
	struct series *s = n->obj;

	if (n->force)
		return xstrdup("forced");
	series_check_disk(s);
	if (s->valid_sig == 0)
		return xstrdup("never validated");
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->reason)
			return xasprintf("after download (%s)", n->in[i]->reason);
	if (s->dir_changed)
		return xstrdup("file changed on disk");
	if (s->valid_sig != s->set_sig)
		return xstrdup("never validated");
	return NULL;
}

static int
validate_start(struct job *job)
{
	struct vin *in = xcalloc(1, sizeof(*in));

	job->in = in;
	if (mkdirs_under(job->ctx->cfg->output.dicom_dir, ((struct series *)job->obj)->dir, 0,
	    job->err, sizeof(job->err)) < 0)
		return -1;
	remove_dead_temps(((struct series *)job->obj)->dir);
	if (state_load_instances(job->ctx->st, job->obj, &in->inst, &in->n) < 0) {
		errf(job->err, sizeof(job->err), "%s", job->ctx->st->err);
		return -1;
	}
	return 1;
}

/* Append to a growing message, keeping it bounded. */
static void
addmsg(char *buf, size_t len, int *nbad, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (++*nbad > 10 || used + 4 >= len)
		return;
	if (used)
		buf[used++] = ';', buf[used++] = ' ', buf[used] = '\0';
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

/* Check one file's header against its place; NULL when it belongs. */
static const char *
misplaced(const struct dcm_header *h, const struct series *s, const char *sop)
{
	if (strcmp(h->sop_uid, sop) != 0)
		return "SOPInstanceUID differs from its file name";
	if (strcmp(h->series_uid, s->uid) != 0)
		return "SeriesInstanceUID is another series";
	if (strcmp(h->study_uid, s->study) != 0)
		return "StudyInstanceUID is another study";
	if (strcmp(h->patient_id, s->patient->id) != 0)
		return "PatientID is another patient";
	return NULL;
}

static int
validate_run(struct job *job)
{
	const struct series *s = job->obj;
	struct vin *in = job->in;
	struct vout *out = xcalloc(1, sizeof(*out));
	struct htab index;
	char bad[1024] = "", **sops, **v;
	int nsop, nbad = 0, rc = -1;

	job->out = out;
	htab_init(&index);
	for (int i = 0; i < in->n; i++)
		htab_put(&index, in->inst[i].sop, &in->inst[i]);
	out->dir_mtime = mtime_ns(s->dir, NULL);
	sops = list_dcm(s->dir, &nsop, job->err, sizeof(job->err));
	if (!sops)
		goto done;
	atomic_store(&job->total, nsop);
	out->inst = xcalloc((size_t)nsop + 1, sizeof(*out->inst));
	for (v = sops; *v; v++) {
		struct instance *old = htab_get(&index, *v), cur = { .sop = *v };
		char *path = xasprintf("%s/%s.dcm", s->dir, *v);
		char err[DCM_ERR_MAX];
		struct dcm_header h;
		const char *why = NULL;

		if (job_cancelled(job)) {
			free(path);
			errf(job->err, sizeof(job->err), "interrupted");
			goto done;
		}
		cur.mtime = mtime_ns(path, &cur.size);
		if (old && !job->force && old->size == cur.size && old->mtime == cur.mtime) {
			cur.hash = old->hash;
			cur.ok = old->ok;
		} else if (hash_file(path, &cur.hash, &cur.size, &cur.mtime, &job->bytes,
		    err, sizeof(err)) < 0) {
			why = err;
		} else {
			cur.ok = old && old->ok && old->hash == cur.hash && !job->force;
		}
		if (!why && !cur.ok) {
			char *json = NULL;
			int parsed = hdrcache_wanted() ?
			    dcm_check_file_json(path, &h, job->ctx->cfg->metadata.max_value, &json, err) :
			    dcm_check_file(path, &h, err);

			if (parsed < 0) {
				why = err;
			} else {
				why = misplaced(&h, s, *v);
				dcm_header_free(&h);
				/* The metadata stage stores it; this pass read it. */
				if (!why)
					hdrcache_offer(*v, cur.hash, json), json = NULL;
			}
			free(json);
			cur.ok = why == NULL;
		}
		if (why) {
			addmsg(bad, sizeof(bad), &nbad, "%s.dcm: %s", *v, why);
			unlink(path);
		} else {
			out->inst[out->n] = cur;
			out->inst[out->n++].sop = xstrdup(*v);
		}
		free(path);
		atomic_fetch_add(&job->done, 1);
	}
	out->set_sig = catalog_set_sig(out->inst, out->n);
	if (nbad) {
		/* What was removed is fetched again by the next run. */
		out->dir_mtime = mtime_ns(s->dir, NULL);
		errf(job->err, sizeof(job->err), "%d bad file%s removed, to be fetched again: %s%s",
		    nbad, nbad == 1 ? "" : "s", bad, nbad > 10 ? "; ..." : "");
		goto done;
	}
	if (out->n != s->expected) {
		errf(job->err, sizeof(job->err), "%d instances on disk, the source has %d",
		    out->n, s->expected);
		goto done;
	}
	out->valid = 1;
	job->summary = xasprintf("%d instance%s ok", out->n, out->n == 1 ? "" : "s");
	rc = 0;
done:
	strv_free(sops);
	htab_free(&index);
	return rc;
}

static int
validate_finish(struct job *job, int rc)
{
	struct series *s = job->obj;
	struct vin *in = job->in;
	struct vout *out = job->out;
	struct state *st = job->ctx->st;

	/* An interrupted pass read only part of the folder: recorded, it
	 * would stand for the whole at this folder's mtime. */
	if (out && out->inst && !(rc < 0 && job_cancelled(job))) {
		s->ninst = out->n;
		s->set_sig = out->n ? out->set_sig : 0;
		s->valid_sig = out->valid ? out->set_sig : 0;
		s->dir_mtime = out->dir_mtime > 0 ? out->dir_mtime : 0;
		catalog_set(&s->error, rc < 0 ? job->err : NULL);
		s->disk_checked = 0;
		if (state_begin(st) < 0 || state_save_series(st, s, out->inst, out->n) < 0 ||
		    state_commit(st) < 0) {
			state_rollback(st);
			if (rc == 0)
				errf(job->err, sizeof(job->err), "recording %s: %s", s->uid, st->err);
			rc = -1;
		}
	}
	if (in)
		instance_free(in->inst, in->n);
	if (out)
		instance_free(out->inst, out->n);
	free(in);
	free(out);
	job->in = job->out = NULL;
	return rc;
}

const struct rule rule_validate = {
	.name = "validate",
	.per = PER_SERIES,
	.after = "download",
	.label = series_label,
	.pool = POOL_LOCAL,
	.plan = validate_plan,
	.start = validate_start,
	.run = validate_run,
	.finish = validate_finish,
};
