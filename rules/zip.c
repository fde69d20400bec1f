/*
 * zip.c - a patient's archive <zip_dir>/<id><delimiter><N>.zip, N the
 * number of series inside, entries <study>/<series>/<sop>.dcm in name order
 * with a fixed time, so the same content always gives the same bytes.
 * Written under a temp name, verified by reopening it (entry count, CRC of
 * every entry), fsynced and renamed; the older archive of the patient is
 * removed only then, and only after state records the new one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include "fileio.h"
#include "names.h"
#include "rule.h"
#include "units.h"
#include "util.h"
#include "zdeflate.h"

/* 1980-01-02 12:00 UTC: a DOS date in every time zone. */
#define ENTRY_TIME ((time_t)315662400)

struct entry {
	char *name;               /* <study>/<series>/<sop>.dcm */
	char *path;
};

struct zin {
	struct entry *e;
	int n;
	char *path, *tmp;         /* final and temp archive paths */
	uint64_t sig;
	char *series;             /* catalog_series_list() */
	zip_int32_t method;
	int level;
	const char *password;     /* AES-256 when set (the config's) */
	struct zdeflate *zd;      /* DEFLATE by libdeflate (zdeflate.h), or NULL */
};

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

static const char *
base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
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
static int
archive_intact(const struct archive *a, char **why)
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
			why = xasprintf("series added %s; replaces %s", uid, base(a->path));
			free(uid);
			goto out;
		}
		if ((uid = first_missing(a->series, list)) != NULL) {
			why = xasprintf("series removed %s; replaces %s", uid, base(a->path));
			free(uid);
			goto out;
		}
	}
	if (strcmp(a->settings, ctx->settings) != 0) {
		why = xstrdup("settings changed");
		goto out;
	}
	if (!archive_intact(a, &why))
		goto out;
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->reason) {
			why = xasprintf("series changed %s", ((struct series *)n->in[i]->obj)->uid);
			goto out;
		}
	if (a->sig != catalog_archive_sig(p->want, p->nwant, ctx->settings))
		why = xstrdup("series changed");
	else if (strcmp(a->path, path) != 0)
		why = xasprintf("renamed from %s", base(a->path));
	else if (leftovers(ctx, p, base(path)))
		why = xstrdup("older archive left over");
out:
	free(list);
	free(path);
	return why;
}

/* Remove p's older archives (never the one at keep). */
static void
remove_old(const struct ctx *ctx, struct patient *p, const char *keep)
{
	if (ctx->cfg->output.keep_old)
		return;
	for (int i = 0; i < p->nold; i++) {
		char *path;

		if (strcmp(p->old[i], base(keep)) == 0)
			continue;
		path = xasprintf("%s/%s", ctx->cfg->output.zip_dir, p->old[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			warn("%s: cannot remove old archive:", path);
		free(path);
	}
}

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
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
	zdeflate_free(z->zd);
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
	    strcmp(p->ar.settings, ctx->settings) == 0 && archive_intact(&p->ar, &why)) {
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
	z->method = methods[ctx->cfg->output.compression];
	z->level = ctx->cfg->output.level;
	z->password = ctx->cfg->output.encrypt == ENC_AES256 ? ctx->cfg->output.password : NULL;
	if (!zip_compression_method_supported(z->method, 1)) {
		errf(job->err, sizeof(job->err), "compression %s: not supported by this libzip",
		    ctx->cfg->output.compression == COMP_BZIP2 ? "bzip2" : "?");
		return -1;
	}
	if (z->password && !zip_encryption_method_supported(ZIP_EM_AES_256, 1)) {
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
			z->e[z->n].name = xasprintf("%s/%s/%s.dcm", s->study, s->uid, inst[j].sop);
			z->e[z->n].path = xasprintf("%s/%s.dcm", s->dir, inst[j].sop);
			z->n++;
		}
		instance_free(inst, n);
	}
	qsort(z->e, (size_t)z->n, sizeof(*z->e), cmp_entry);
	return 1;
}

static void
on_progress(zip_t *za, double done, void *arg)
{
	struct job *job = arg;

	atomic_store(&job->done, (long)(done * (double)atomic_load(&job->total)));
}

static int
on_cancel(zip_t *za, void *arg)
{
	return job_cancelled(arg);
}

static int
zfail(struct job *job, const char *what, zip_t *za)
{
	errf(job->err, sizeof(job->err), "%s: %s", what, za ? zip_strerror(za) : "failed");
	return -1;
}

/* zip_close() failed.  When the system said why (a full disk, the file
 * size limit), say that and what to do: libzip's own words ("Seek error")
 * and the temp name would only puzzle.  The job's label names the archive. */
static int
close_failed(struct job *job, zip_t *za)
{
	zip_error_t *ze = zip_get_error(za);
	int e = zip_error_system_type(ze) == ZIP_ET_SYS ? zip_error_code_system(ze) : 0;
	char buf[160];
	const char *hint = e ? write_hint(e, buf, sizeof(buf)) : "";

	if (job_cancelled(job))
		return zfail(job, "interrupted", za);
	if (*hint)
		errf(job->err, sizeof(job->err), "cannot write the archive: %s; nothing was put "
		    "under its name%s", strerror(e), hint);
	else
		zfail(job, "cannot write the archive", za);
	return -1;
}

static int
write_archive(struct job *job, struct zin *z)
{
	zip_t *za;
	int zerr;

	unlink(z->tmp);
	za = zip_open(z->tmp, ZIP_CREATE | ZIP_EXCL, &zerr);
	if (!za) {
		zip_error_t e;

		zip_error_init_with_code(&e, zerr);
		errf(job->err, sizeof(job->err), "%s: %s", z->tmp, zip_error_strerror(&e));
		zip_error_fini(&e);
		return -1;
	}
	atomic_store(&job->total, z->n);
	zip_register_progress_callback_with_state(za, 0.01, on_progress, NULL, job);
	zip_register_cancel_callback_with_state(za, on_cancel, NULL, job);
	if (z->method == ZIP_CM_DEFLATE && !z->zd)
		z->zd = zdeflate_new(z->level);
	for (int i = 0; i < z->n; i++) {
		zip_source_t *src;
		zip_int64_t idx;
		struct stat st;

		/* Validated as regular files; a link put there since is not
		 * followed (libzip's own source would follow it). */
		if (lstat(z->e[i].path, &st) < 0) {
			errf(job->err, sizeof(job->err), "%s: %s", z->e[i].path, strerror(errno));
			goto bad;
		}
		if (!S_ISREG(st.st_mode)) {
			errf(job->err, sizeof(job->err), "%s: not a regular file; run again to "
			    "validate and fetch it again", z->e[i].path);
			goto bad;
		}
		if (z->zd && st.st_size > 0 && st.st_size <= ZDEFLATE_MAX)
			src = zdeflate_source(za, z->zd, z->e[i].path, st.st_size, ENTRY_TIME);
		else
			src = zip_source_file(za, z->e[i].path, 0, -1);

		if (!src) {
			zfail(job, z->e[i].path, za);
			goto bad;
		}
		idx = zip_file_add(za, z->e[i].name, src, ZIP_FL_ENC_UTF_8);
		if (idx < 0) {
			zip_source_free(src);
			zfail(job, z->e[i].path, za);
			goto bad;
		}
		if (zip_set_file_compression(za, (zip_uint64_t)idx, z->method,
		    z->method == ZIP_CM_STORE ? 0 : (zip_uint32_t)z->level) < 0 ||
		    zip_file_set_mtime(za, (zip_uint64_t)idx, ENTRY_TIME, 0) < 0 ||
		    (z->password && zip_file_set_encryption(za, (zip_uint64_t)idx,
		    ZIP_EM_AES_256, z->password) < 0)) {
			zfail(job, z->e[i].name, za);
			goto bad;
		}
	}
	if (zip_close(za) < 0) {
		close_failed(job, za);
		goto bad;
	}
	return 0;
bad:
	zip_discard(za);
	return -1;
}

/* Reopen the archive and read every entry back: libzip checks each CRC. */
static int
verify_archive(struct job *job, struct zin *z)
{
	char *buf = xmalloc(1 << 16);
	zip_t *za;
	int zerr, rc = -1;

	za = zip_open(z->tmp, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
	if (!za) {
		errf(job->err, sizeof(job->err), "%s: reopening to verify failed (libzip error %d)",
		    z->tmp, zerr);
		free(buf);
		return -1;
	}
	if (zip_get_num_entries(za, 0) != z->n) {
		errf(job->err, sizeof(job->err), "%s: %lld entries written, %d expected", z->tmp,
		    (long long)zip_get_num_entries(za, 0), z->n);
		goto out;
	}
	for (int i = 0; i < z->n; i++) {
		const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
		zip_file_t *f;
		zip_int64_t r;

		if (!name || strcmp(name, z->e[i].name) != 0) {
			errf(job->err, sizeof(job->err), "%s: entry %d is %s, expected %s", z->tmp, i,
			    name ? name : "?", z->e[i].name);
			goto out;
		}
		if (z->zd) {
			int checked = zdeflate_check(za, z->zd, (zip_uint64_t)i, job->err,
			    sizeof(job->err));

			if (checked < 0)
				goto out;
			if (checked > 0)
				continue;
		}
		if (!(f = zip_fopen_index_encrypted(za, (zip_uint64_t)i, 0, z->password))) {
			zfail(job, name, za);
			goto out;
		}
		while ((r = zip_fread(f, buf, 1 << 16)) > 0)
			;
		if (r < 0) {
			errf(job->err, sizeof(job->err), "%s: %s: %s", z->tmp, name,
			    zip_error_strerror(zip_file_get_error(f)));
			zip_fclose(f);
			goto out;
		}
		zip_fclose(f);
	}
	rc = 0;
out:
	zip_discard(za);
	free(buf);
	return rc;
}

static int
zip_run(struct job *job)
{
	struct zin *z = job->in;
	struct zout *o = xcalloc(1, sizeof(*o));
	int fd;

	job->out = o;
	if (write_archive(job, z) < 0)
		goto bad;
	if ((fd = open(z->tmp, O_RDONLY | O_CLOEXEC)) < 0) {
		errf(job->err, sizeof(job->err), "%s: %s", z->tmp, strerror(errno));
		goto bad;
	}
#ifdef SYNC_FILE_RANGE_WRITE
	/* Start the writeback now: the disk writes while the verify inflates,
	 * and the fsync below finds little left to wait for. */
	sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
	if (verify_archive(job, z) < 0) {
		close(fd);
		goto bad;
	}
	if (fsync(fd) < 0) {
		errf(job->err, sizeof(job->err), "%s: fsync: %s", z->tmp, strerror(errno));
		close(fd);
		goto bad;
	}
	close(fd);
	if (hash_file(z->tmp, &o->hash, &o->size, &o->mtime, NULL, job->err, sizeof(job->err)) < 0)
		goto bad;
	if (rename(z->tmp, z->path) < 0) {
		errf(job->err, sizeof(job->err), "%s: rename: %s", z->path, strerror(errno));
		goto bad;
	}
	if (fsync_parent(z->path, job->err, sizeof(job->err)) < 0)
		return -1;
	job->summary = units_count_size(z->n, "instance", o->size);
	return 0;
bad:
	unlink(z->tmp);
	return -1;
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
		    state_commit(ctx->st) < 0) {
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
};
