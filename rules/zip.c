/*
 * zip.c - a patient's archive <zip_dir>/<id><delimiter><N>.zip, N the
 * number of series inside, entries <study>/<series>/<sop>.dcm in name order
 * with a fixed time, so the same content always gives the same bytes.
 * Written under a temp name and verified (its directory reopened: entry
 * count, names, CRC and sizes; every entry's bytes hashed as they go to
 * the file, zpack.h), fsynced and renamed;
 * the older archive of the patient is removed only then, and only after
 * state records the new one.
 *
 * When the older archive is the one recorded, made with the same settings,
 * the entries of the files it already holds (same name, same file hash)
 * are copied from it as they are, checked against the record of what was
 * written (archive_entry), and only the others are compressed (zpack.h):
 * the result is the same bytes as a full rebuild.  When anything about
 * the older archive is not as recorded, every entry is made afresh, and
 * the job's line says why.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include "fileio.h"
#include "names.h"
#include "units.h"
#include "util.h"
#include "zip-int.h"

struct zout {
	int64_t size, mtime;
	uint64_t hash;
};

static char *
zip_path(const struct ctx *ctx, const struct patient *p)
{
	char *name = archive_name(p->id, ctx->cfg->output.delimiter, p->nwant);
	char *path = xasprintf("%s/%s", ctx->cfg->output.zip_dir, name);

	free(name);
	return path;
}

/* The first UID in list a that is not in list b (space-separated), or NULL. */
static char *
first_missing(const char *a, const char *b)
{
	char *copy = xstrdup(a), *tok, *save, *res = NULL;
	size_t bl = strlen(b);

	for (tok = strtok_r(copy, " ", &save); tok && !res; tok = strtok_r(NULL, " ", &save)) {
		size_t tl = strlen(tok);
		const char *h = b;
		int found = 0;

		while ((h = strstr(h, tok)) != NULL) {
			if ((h == b || h[-1] == ' ') && (h + tl == b + bl || h[tl] == ' ')) {
				found = 1;
				break;
			}
			h += tl;
		}
		if (!found)
			res = xstrdup(tok);
	}
	free(copy);
	return res;
}

/* Is the recorded archive still the file we wrote?  Cheap check first. */
int
zip_intact(const struct archive *a, char **why)
{
	int64_t size, mtime = mtime_ns(a->path, &size);
	uint64_t hash;
	char err[256];

	if (mtime < 0) {
		*why = xstrdup("archive missing");
		return 0;
	}
	if (size == a->size && mtime == a->mtime)
		return 1;
	if (hash_file(a->path, &hash, &size, &mtime, NULL, err, sizeof(err)) == 0 &&
	    hash == a->hash && size == a->size)
		return 1;
	*why = xstrdup("archive modified on disk");
	return 0;
}

/* Other archives of p to remove once the current one is in place. */
static int
leftovers(const struct ctx *ctx, const struct patient *p, const char *current)
{
	int n = 0;

	if (ctx->cfg->output.keep_old)
		return 0;
	for (int i = 0; i < p->nold; i++)
		n += strcmp(p->old[i], current) != 0;
	return n;
}

static char *
zip_plan(struct ctx *ctx, struct node *n)
{
	struct patient *p = n->obj;
	char *path = zip_path(ctx, p), *list = NULL, *uid, *why = NULL;
	const struct archive *a = &p->ar;

	if (n->force) {
		why = xstrdup("forced");
		goto out;
	}
	if (!p->has_ar) {
		why = xstrdup("archive missing");
		goto out;
	}
	list = catalog_series_list(p->want, p->nwant);
	/* Both lists are sorted: equal is the usual case, and then neither
	 * misses a UID of the other (first_missing is quadratic). */
	if (strcmp(list, a->series) != 0) {
		if ((uid = first_missing(list, a->series)) != NULL) {
			why = xasprintf("series added %s; replaces %s", uid, zip_base(a->path));
			free(uid);
			goto out;
		}
		if ((uid = first_missing(a->series, list)) != NULL) {
			why = xasprintf("series removed %s; replaces %s", uid, zip_base(a->path));
			free(uid);
			goto out;
		}
	}
	if (strcmp(a->settings, ctx->settings) != 0) {
		why = xstrdup("settings changed");
		goto out;
	}
	if (!zip_intact(a, &why))
		goto out;
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->reason) {
			why = xasprintf("series changed %s", ((struct series *)n->in[i]->obj)->uid);
			goto out;
		}
	if (a->sig != catalog_archive_sig(p->want, p->nwant, ctx->settings))
		why = xstrdup("series changed");
	else if (strcmp(a->path, path) != 0)
		why = xasprintf("renamed from %s", zip_base(a->path));
	else if (leftovers(ctx, p, zip_base(path)))
		why = xstrdup("older archive left over");
out:
	free(list);
	free(path);
	return why;
}

/*
 * Older archives are removed on a thread of their own: freeing the blocks
 * of a large file takes tens of milliseconds, which the scheduler's thread
 * (finish runs there) would spend waiting.  run_end joins them and says
 * what could not be removed; should the process die first, the next run
 * finds the archive left over and removes it.
 */
struct reap {
	pthread_t t;
	char **path;
	int *err;                 /* errno of each unlink, 0 when done */
	int n;
};

static struct reap **reaps;
static int nreaps;

static void *
reap_main(void *arg)
{
	struct reap *r = arg;

	for (int i = 0; i < r->n; i++)
		r->err[i] = unlink(r->path[i]) < 0 && errno != ENOENT ? errno : 0;
	return NULL;
}

/* Say what could not be removed, and free r. */
static void
reap_done(struct reap *r)
{
	for (int i = 0; i < r->n; i++) {
		if (r->err[i])
			warn("%s: cannot remove old archive: %s", r->path[i], strerror(r->err[i]));
		free(r->path[i]);
	}
	free(r->path);
	free(r->err);
	free(r);
}

/* Remove p's older archives (never the one at keep). */
static void
remove_old(const struct ctx *ctx, struct patient *p, const char *keep)
{
	struct reap *r;
	int rc;

	if (ctx->cfg->output.keep_old)
		return;
	r = xcalloc(1, sizeof(*r));
	r->path = xcalloc((size_t)p->nold + 1, sizeof(*r->path));
	r->err = xcalloc((size_t)p->nold + 1, sizeof(*r->err));
	for (int i = 0; i < p->nold; i++)
		if (strcmp(p->old[i], zip_base(keep)) != 0)
			r->path[r->n++] = xasprintf("%s/%s", ctx->cfg->output.zip_dir, p->old[i]);
	if (r->n > 0 && (rc = pthread_create(&r->t, NULL, reap_main, r)) == 0) {
		reaps = xreallocarray(reaps, (size_t)nreaps + 1, sizeof(*reaps));
		reaps[nreaps++] = r;
		return;
	}
	reap_main(r);             /* nothing to do, or no thread: here */
	reap_done(r);
}

/* Wait for the removals, and say what failed. */
static int
zip_run_end(const struct rule *ru, struct ctx *ctx, int made)
{
	(void)ru;
	(void)ctx;
	(void)made;
	for (int k = 0; k < nreaps; k++) {
		pthread_join(reaps[k]->t, NULL);
		reap_done(reaps[k]);
	}
	free(reaps);
	reaps = NULL;
	nreaps = 0;
	return 0;
}

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct zpack_entry *)a)->name, ((const struct zpack_entry *)b)->name);
}

static void
zin_free(struct zin *z)
{
	if (!z)
		return;
	for (int i = 0; i < z->n; i++) {
		free(z->e[i].name);
		free(z->e[i].path);
	}
	free(z->e);
	free(z->path);
	free(z->tmp);
	free(z->series);
	free(z->old);
	free(z->afresh);
	free(z);
}

static int
zip_start(struct job *job)
{
	struct ctx *ctx = job->ctx;
	struct patient *p = job->obj;
	struct zin *z;
	uint64_t sig = catalog_archive_sig(p->want, p->nwant, ctx->settings);
	char *path = zip_path(ctx, p), *why = NULL;
	static const zip_int32_t methods[] = {
		[COMP_STORE] = ZIP_CM_STORE, [COMP_DEFLATE] = ZIP_CM_DEFLATE, [COMP_BZIP2] = ZIP_CM_BZIP2,
	};

	/* Inputs may have been rebuilt to the same content: then nothing to do. */
	if (!job->force && p->has_ar && p->ar.sig == sig && strcmp(p->ar.path, path) == 0 &&
	    strcmp(p->ar.settings, ctx->settings) == 0 && zip_intact(&p->ar, &why)) {
		remove_old(ctx, p, path);
		free(path);
		return 0;
	}
	free(why);
	for (int i = 0; i < p->nwant; i++) {
		struct series *s = p->want[i];

		if (s->valid_sig == 0 || s->valid_sig != s->set_sig) {
			errf(job->err, sizeof(job->err), "series %s is not valid%s%s", s->uid,
			    s->error ? ": " : "", s->error ? s->error : "");
			free(path);
			return -1;
		}
	}
	z = xcalloc(1, sizeof(*z));
	job->in = z;
	z->path = path;
	z->tmp = tmp_name(path);
	z->sig = sig;
	z->series = catalog_series_list(p->want, p->nwant);
	z->o.method = methods[ctx->cfg->output.compression];
	z->o.level = ctx->cfg->output.level;
	z->o.password = ctx->cfg->output.encrypt == ENC_AES256 ? ctx->cfg->output.password : NULL;
	z->o.mtime = ENTRY_TIME;
	z->o.cancel = &ctx->cancel;
	if (!zip_compression_method_supported(z->o.method, 1)) {
		errf(job->err, sizeof(job->err), "compression %s: not supported by this libzip",
		    ctx->cfg->output.compression == COMP_BZIP2 ? "bzip2" : "?");
		return -1;
	}
	if (z->o.password && !zip_encryption_method_supported(ZIP_EM_AES_256, 1)) {
		errf(job->err, sizeof(job->err), "encrypt = aes256: not supported by this libzip "
		    "(built without a crypto library)");
		return -1;
	}
	if (mkdirs(ctx->cfg->output.zip_dir, job->err, sizeof(job->err)) < 0)
		return -1;
	remove_dead_temps(ctx->cfg->output.zip_dir);
	for (int i = 0; i < p->nwant; i++) {
		struct series *s = p->want[i];
		struct instance *inst;
		int n;

		if (state_load_instances(ctx->st, s, &inst, &n) < 0) {
			errf(job->err, sizeof(job->err), "%s", ctx->st->err);
			return -1;
		}
		z->e = xreallocarray(z->e, (size_t)(z->n + n), sizeof(*z->e));
		for (int j = 0; j < n; j++) {
			struct zpack_entry *e = &z->e[z->n++];

			memset(e, 0, sizeof(*e));
			e->name = xasprintf("%s/%s/%s.dcm", s->study, s->uid, inst[j].sop);
			e->path = xasprintf("%s/%s.dcm", s->dir, inst[j].sop);
			e->src_hash = inst[j].hash;
			e->size = inst[j].size;
			e->from = MAKE;
		}
		instance_free(inst, n);
	}
	qsort(z->e, (size_t)z->n, sizeof(*z->e), cmp_entry);
	zip_find_copies(ctx, p, z, job->force);
	return 1;
}

static int
zip_run(struct job *job)
{
	struct zin *z = job->in;
	struct zout *o = xcalloc(1, sizeof(*o));
	struct stat sb;
	int fd;

	job->out = o;
	if (zip_write(job, z) < 0)
		goto bad;
	if ((fd = open(z->tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		errf(job->err, sizeof(job->err), "%s: %s", z->tmp, strerror(errno));
		goto bad;
	}
	if (fsync(fd) < 0 || fstat(fd, &sb) < 0) {
		errf(job->err, sizeof(job->err), "%s: fsync: %s", z->tmp, strerror(errno));
		close(fd);
		goto bad;
	}
	close(fd);
	o->hash = z->hash;
	o->size = sb.st_size;
	o->mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	if (rename(z->tmp, z->path) < 0) {
		errf(job->err, sizeof(job->err), "%s: rename: %s", z->path, strerror(errno));
		goto bad;
	}
	if (fsync_parent(z->path, job->err, sizeof(job->err)) < 0)
		return -1;
	job->summary = zip_summary(z, o->size);
	return 0;
bad:
	unlink(z->tmp);
	return -1;
}

/* What was written, for the next archive to copy from. */
static int
save_records(struct ctx *ctx, struct patient *p, const struct zin *z)
{
	struct zentry_rec *r = xcalloc((size_t)z->n + 1, sizeof(*r));
	int n = 0, rc;

	for (int i = 0; i < z->n; i++) {
		const struct zpack_entry *e = &z->e[i];

		if (!e->comp_hash)
			continue;
		r[n++] = (struct zentry_rec){ e->name, e->src_hash, e->crc, e->size, e->comp_size,
		    e->comp_hash };
	}
	rc = state_zentry_put(ctx->st, p->name, r, n);
	free(r);
	return rc;
}

static int
zip_finish(struct job *job, int rc)
{
	struct ctx *ctx = job->ctx;
	struct patient *p = job->obj;
	struct zin *z = job->in;
	struct zout *o = job->out;

	if (rc == 0 && z && o) {
		struct archive *a = &p->ar;

		catalog_set(&a->path, z->path);
		catalog_iset(ctx->cat, &a->settings, ctx->settings);
		catalog_set(&a->series, z->series);
		a->nseries = p->nwant;
		a->sig = z->sig;
		a->size = o->size;
		a->mtime = o->mtime;
		a->hash = o->hash;
		p->has_ar = 1;
		catalog_set(&p->ar_error, NULL);
		if (state_begin(ctx->st) < 0 || state_save_patient(ctx->st, p) < 0 ||
		    save_records(ctx, p, z) < 0 || state_commit(ctx->st) < 0) {
			state_rollback(ctx->st);
			errf(job->err, sizeof(job->err), "recording %s: %s", z->path, ctx->st->err);
			rc = -1;
		} else {
			remove_old(ctx, p, z->path);
		}
	} else if (rc < 0 && z && !job_cancelled(job)) {
		/* Said in -t status and the DAG until an archive is built; a
		 * failure to record it is only a warning: the job failed. */
		catalog_set(&p->ar_error, job->err);
		if (state_begin(ctx->st) < 0 || state_save_patient(ctx->st, p) < 0 ||
		    state_commit(ctx->st) < 0) {
			state_rollback(ctx->st);
			warn("zip %s: recording the failure: %s", z->path, ctx->st->err);
		}
	}
	zin_free(z);
	free(o);
	job->in = job->out = NULL;
	return rc;
}

/* zip_dir/<id><delimiter><N>.zip, N the series the archive is to hold. */
static char *
zip_label(const struct rule *ru, struct ctx *ctx, void *obj)
{
	return zip_path(ctx, obj);
}

/* The archives in zip_dir, by patient: what a new one replaces. */
static int
zip_prepare(const struct rule *ru, struct ctx *ctx)
{
	DIR *d = opendir(ctx->cfg->output.zip_dir);
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		int n;
		char *id = archive_parse(e->d_name, ctx->cfg->output.delimiter, &n);
		struct patient *p = id ? catalog_find_patient(ctx->cat, id) : NULL;

		if (p) {
			p->old = xreallocarray(p->old, (size_t)p->nold + 1, sizeof(*p->old));
			p->old[p->nold++] = xstrdup(e->d_name);
		}
		free(id);
	}
	closedir(d);
	return 0;
}

static char *
zip_file_owner(struct ctx *ctx, const char *file, char *err, size_t errlen)
{
	const char *b = strrchr(file, '/'), *zd = ctx->cfg->output.zip_dir;
	size_t len = strlen(file);
	char *id;
	int n;

	err[0] = '\0';
	if (len <= 4 || strcmp(file + len - 4, ".zip") != 0)
		return NULL;
	if (!(id = archive_parse(b ? b + 1 : file, ctx->cfg->output.delimiter, &n))) {
		errf(err, errlen, "%s: not an archive name of the form <PatientID>%s<N>.zip",
		    file, ctx->cfg->output.delimiter);
		return NULL;
	}
	if (!file_in_folder(file, zd)) {
		errf(err, errlen, "%s: not under zip_dir (%s): archives are made there only, as "
		    "%s/%s", file, zd, zd, b ? b + 1 : file);
		free(id);
		return NULL;
	}
	return id;
}

const struct rule rule_zip = {
	.name = "zip",
	.per = PER_PATIENT,
	.after = "validate",
	.product = "archive",
	.label = zip_label,
	.prepare = zip_prepare,
	.file_owner = zip_file_owner,
	.pool = POOL_LOCAL,
	.plan = zip_plan,
	.start = zip_start,
	.run = zip_run,
	.finish = zip_finish,
	.run_end = zip_run_end,
};
