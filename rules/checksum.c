/*
 * checksum.c - with [output] checksums = yes, a manifest next to each
 * archive, <zip_dir>/<id><delimiter><N>.sha256: the SHA-256 of every
 * entry, one "<hex>  <entry>" line each as sha256sum prints them (so
 * `sha256sum -c` checks an unpacked archive), after a first line naming
 * the archive and its XXH3 hash as recorded, which says whether the
 * manifest is that archive's.  Written under a temp name, fsynced and
 * renamed; the older archives' manifests go with them.  Its target record
 * (state.h, struct target_rec: the archive's hash as the input, the
 * manifest's path, size and mtime) lets the plan of a no-op run stat the
 * manifest rather than read it; without a record, or when the stat
 * differs, the plan reads the first line.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>
#include "fileio.h"
#include "names.h"
#include "rule.h"
#include "util.h"

enum { FIRST_MAX = 512 };     /* the manifest's first line, at most */

/* A manifest as recorded, by patient (the record's key). */
struct crec {
	char *key;                /* the patient's file-name id */
	uint64_t archive;         /* the archive's hash it was made from */
	char *path;
	int64_t size, mtime;
};

/* The records, loaded once per run by checksum_prepare. */
static struct htab recs;

extern const struct rule rule_checksum;

/* <zip_dir>/<id><delimiter><N>.sha256, for the archive p is to have. */
static char *
checksum_label(const struct rule *ru, struct ctx *ctx, void *obj)
{
	struct patient *p = obj;
	char *name = archive_name(p->id, ctx->cfg->output.delimiter, p->nwant);
	char *path = xasprintf("%s/%.*s.sha256", ctx->cfg->output.zip_dir,
	    (int)(strlen(name) - 4), name);

	free(name);
	return path;
}

static int
checksum_enabled(const struct config *cfg)
{
	return cfg->output.checksums;
}

/* The first line a manifest of p's recorded archive has. */
static char *
first_line(const struct patient *p)
{
	const char *b = strrchr(p->ar.path, '/');

	return xasprintf("# sha256 of the entries of %s (xxh3 %016" PRIx64 ")\n",
	    b ? b + 1 : p->ar.path, p->ar.hash);
}

static void
crec_put(void *arg, const char *key, const struct target_rec *r)
{
	struct crec *c;

	if (!r->path)
		return;   /* a failure's record: nothing made */
	c = xcalloc(1, sizeof(*c));
	c->key = xstrdup(key);
	c->archive = r->input_sig;
	c->path = xstrdup(r->path);
	c->size = r->size;
	c->mtime = r->mtime;
	free(htab_get(&recs, c->key));   /* NULL: keys are unique */
	htab_put(&recs, c->key, c);
}

static int
checksum_prepare(const struct rule *ru, struct ctx *ctx)
{
	for (size_t i = 0; i < recs.cap; i++) {
		struct crec *c = recs.slot[i].val;

		if (recs.slot[i].key && c) {
			free(c->key);
			free(c->path);
			free(c);
		}
	}
	htab_free(&recs);
	htab_init(&recs);
	/* Without the records the plan reads each manifest: slower, the
	 * same answer; a store that cannot be read fails the run elsewhere. */
	if (checksum_enabled(ctx->cfg))
		state_load_targets(ctx->st, rule_checksum.name, crec_put, NULL);
	return 0;
}

/* The manifest is the one recorded for p's archive, by a stat. */
static int
recorded(const struct patient *p, const char *path)
{
	const struct crec *c = htab_get(&recs, p->name);
	int64_t size = 0;

	return c && c->archive == p->ar.hash && strcmp(c->path, path) == 0 &&
	    mtime_ns(path, &size) == c->mtime && size == c->size;
}

static char *
checksum_plan(struct ctx *ctx, struct node *n)
{
	struct patient *p = n->obj;
	char line[FIRST_MAX], *want;
	FILE *f;
	int same;

	if (n->force)
		return xstrdup("forced");
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->reason)
			return xasprintf("after zip (%s)", n->in[i]->reason);
	if (!p->has_ar)
		return xstrdup("archive missing");
	if (recorded(p, n->label))
		return NULL;
	if (!(f = fopen(n->label, "re")))
		return xstrdup("manifest missing");
	want = first_line(p);
	same = fgets(line, sizeof(line), f) && strcmp(line, want) == 0;
	fclose(f);
	free(want);
	return same ? NULL : xstrdup("archive changed");
}

struct cin {
	char *archive;            /* the archive as recorded */
	uint64_t hash;            /* and its hash */
	char *first;              /* the manifest's first line */
	int64_t size, mtime;      /* run: of the manifest written */
	int64_t n;                /* run: its entries */
};

static int
checksum_start(struct job *job)
{
	struct patient *p = job->obj;
	struct cin *in;

	if (!p->has_ar) {
		errf(job->err, sizeof(job->err), "no archive of %s to sum", p->id);
		return -1;
	}
	in = xcalloc(1, sizeof(*in));
	in->archive = xstrdup(p->ar.path);
	in->hash = p->ar.hash;
	in->first = first_line(p);
	job->in = in;
	return 1;
}

/* SHA-256 of entry i of za as 64 hex digits into hex; -1 with job->err. */
static int
sum_entry(struct job *job, zip_t *za, zip_uint64_t i, EVP_MD_CTX *md, char hex[65])
{
	unsigned char buf[1 << 16], d[EVP_MAX_MD_SIZE];
	unsigned int dn = 0;
	zip_file_t *zf = zip_fopen_index(za, i, 0);
	zip_int64_t got;

	if (!zf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		errf(job->err, sizeof(job->err), "%s: %s", zip_get_name(za, i, 0),
		    zf ? "SHA-256 not available" : zip_strerror(za));
		if (zf)
			zip_fclose(zf);
		return -1;
	}
	while ((got = zip_fread(zf, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(md, buf, (size_t)got);
	if (got < 0) {
		errf(job->err, sizeof(job->err), "%s: %s", zip_get_name(za, i, 0),
		    zip_error_strerror(zip_file_get_error(zf)));
		zip_fclose(zf);
		return -1;
	}
	zip_fclose(zf);
	EVP_DigestFinal_ex(md, d, &dn);
	for (unsigned int k = 0; k < dn && k < 32; k++)
		snprintf(hex + 2 * k, 3, "%02x", d[k]);
	return 0;
}

static int
checksum_run(struct job *job)
{
	struct cin *in = job->in;
	const char *path = job->node->label;
	char *tmp = tmp_name(path), hex[65];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	zip_t *za = NULL;
	FILE *out = NULL;
	int fd = -1, zerr, rc = -1;
	zip_int64_t n;

	if (!md) {
		errf(job->err, sizeof(job->err), "out of memory");
		goto out;
	}
	if (!(za = zip_open(in->archive, ZIP_RDONLY, &zerr))) {
		zip_error_t e;

		zip_error_init_with_code(&e, zerr);
		errf(job->err, sizeof(job->err), "%s: %s", in->archive, zip_error_strerror(&e));
		zip_error_fini(&e);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || !(out = fdopen(fd, "w"))) {
		errf(job->err, sizeof(job->err), "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	fputs(in->first, out);
	n = zip_get_num_entries(za, 0);
	atomic_store(&job->total, (long)n);
	for (zip_int64_t i = 0; i < n; i++) {
		if (job_cancelled(job)) {
			errf(job->err, sizeof(job->err), "interrupted");
			goto out;
		}
		if (sum_entry(job, za, (zip_uint64_t)i, md, hex) < 0)
			goto out;
		fprintf(out, "%s  %s\n", hex, zip_get_name(za, (zip_uint64_t)i, 0));
		atomic_fetch_add(&job->done, 1);
	}
	if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
		errf(job->err, sizeof(job->err), "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(out) != 0) {
		out = NULL;
		errf(job->err, sizeof(job->err), "%s: %s", tmp, strerror(errno));
		goto out;
	}
	out = NULL;
	if (rename(tmp, path) < 0) {
		errf(job->err, sizeof(job->err), "%s: rename: %s", path, strerror(errno));
		goto out;
	}
	if (fsync_parent(path, job->err, sizeof(job->err)) < 0)
		goto out;
	if ((in->mtime = mtime_ns(path, &in->size)) < 0) {
		errf(job->err, sizeof(job->err), "%s: %s", path, strerror(errno));
		goto out;
	}
	in->n = (int64_t)n;
	job->summary = xasprintf("%" PRId64 " entr%s", (int64_t)n, n == 1 ? "y" : "ies");
	rc = 0;
out:
	if (out)
		fclose(out);
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	if (za)
		zip_discard(za);
	EVP_MD_CTX_free(md);
	free(tmp);
	return rc;
}

/* The manifests of p's other archives, which zip removed. */
static void
remove_old(struct ctx *ctx, const struct patient *p, const char *keep)
{
	/* The older archives stay with keep_old: so do their manifests. */
	if (ctx->cfg->output.keep_old)
		return;
	for (int i = 0; i < p->nold; i++) {
		size_t len = strlen(p->old[i]);
		char *m = xasprintf("%s/%.*s.sha256", ctx->cfg->output.zip_dir, (int)(len - 4),
		    p->old[i]);

		if (strcmp(m, keep) != 0 && unlink(m) < 0 && errno != ENOENT)
			warn("%s: cannot remove the older manifest:", m);
		free(m);
	}
}

static int
checksum_finish(struct job *job, int rc)
{
	struct state *st = job->ctx->st;
	struct patient *p = job->obj;
	struct cin *in = job->in;
	char detail[32];
	struct target_rec r = { 0 };

	if (in && (rc == 0 || !job_cancelled(job))) {
		/* The manifest made, or why it was not. */
		if (rc == 0) {
			snprintf(detail, sizeof(detail), "%" PRId64 " entries", in->n);
			r = (struct target_rec){ .input_sig = in->hash, .path = job->node->label,
			    .size = in->size, .mtime = in->mtime, .detail = detail };
		} else {
			r.error = job->err;
		}
		if (state_begin(st) < 0 || state_save_target(st, job->rule->name, p->name, &r) < 0 ||
		    state_commit(st) < 0) {
			state_rollback(st);
			if (rc == 0) {
				errf(job->err, sizeof(job->err), "recording %s: %s",
				    job->node->label, st->err);
				rc = -1;
			} else {
				warn("checksum %s: recording the failure: %s", job->node->label, st->err);
			}
		}
	}
	if (rc == 0)
		remove_old(job->ctx, job->obj, job->node->label);
	if (in) {
		free(in->archive);
		free(in->first);
		free(in);
	}
	job->in = NULL;
	return rc;
}

const struct rule rule_checksum = {
	.name = "checksum",
	.per = PER_PATIENT,
	.after = "zip",
	.enabled = checksum_enabled,
	.label = checksum_label,
	.prepare = checksum_prepare,
	.pool = POOL_LOCAL,
	.plan = checksum_plan,
	.start = checksum_start,
	.run = checksum_run,
	.finish = checksum_finish,
};
