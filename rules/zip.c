/*
 * zip.c - a patient's archive <zip_dir>/<id><delimiter><N>.zip, N the
 * number of series inside, entries <study>/<series>/<sop>.dcm in name order
 * with a fixed time, so the same content always gives the same bytes.
 * Written under a temp name, verified by reopening it (entry count, names,
 * CRC and sizes, the hash of every entry's bytes), fsynced and renamed;
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
#include "htab.h"
#include "util.h"
#include "zpack.h"

/* 1980-01-02 12:00 UTC: a DOS date in every time zone. */
#define ENTRY_TIME ((time_t)315662400)

struct zin {
	struct zpack_entry *e;    /* sorted by name */
	int n;
	char *path, *tmp;         /* final and temp archive paths */
	uint64_t sig;
	char *series;             /* catalog_series_list() */
	struct zpack_opts o;
	char *old;                /* the archive to copy entries from, or NULL */
	int ncopy;                /* entries to copy from it (from == COPY) */
	char *afresh;             /* why none is copied from an older archive, or NULL */
};

enum { MAKE = -1, COPY = -2 };  /* zpack_entry.from until the old archive is open */

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
	return strcmp(((const struct zpack_entry *)a)->name, ((const struct zpack_entry *)b)->name);
}

/* A record of the older archive's entry: the entry of that name is copied
 * when it is to hold the same file (hash and size). */
struct records {
	struct zin *z;
	struct htab byname;       /* z's entries */
};

static int
on_record(void *arg, const struct zentry_rec *r)
{
	struct records *rs = arg;
	struct zin *z = rs->z;
	struct zpack_entry *e;

	if (!(e = htab_get(&rs->byname, r->name)) || e->src_hash != r->src_hash || e->size != r->size ||
	    !r->comp_hash || e->from == COPY)
		return 0;
	e->from = COPY;
	e->crc = r->crc;
	e->comp_size = r->comp_size;
	e->comp_hash = r->comp_hash;
	z->ncopy++;
	return 0;
}

/* Which entries can be copied from p's recorded archive, or why none. */
static void
find_copies(struct ctx *ctx, struct patient *p, struct zin *z, int force)
{
	const struct archive *a = &p->ar;
	struct records rs = { .z = z };
	char *why = NULL;

	if (!p->has_ar || force)
		return;
	if (!zpack_raw(&z->o, 0)) {
		z->afresh = xstrdup("stored entries are encrypted afresh (libzip's random salt)");
		return;
	}
	if (strcmp(a->settings, ctx->settings) != 0) {
		z->afresh = xstrdup("settings changed");
		return;
	}
	if (!archive_intact(a, &why)) {
		z->afresh = xasprintf("%s: %s", base(a->path), why);
		free(why);
		return;
	}
	htab_init(&rs.byname);
	for (int i = 0; i < z->n; i++)
		htab_put(&rs.byname, z->e[i].name, &z->e[i]);
	if (state_zentry_get(ctx->st, p->name, on_record, &rs) < 0) {
		z->afresh = xasprintf("reading the records of %s: %s", base(a->path), ctx->st->err);
		z->ncopy = 0;
	}
	htab_free(&rs.byname);
	if (z->ncopy > 0 && !z->afresh)
		z->old = xstrdup(a->path);
	else if (!z->afresh)
		z->afresh = xasprintf("no entry of %s recorded as written", base(a->path));
	if (z->afresh)
		for (int i = 0; i < z->n; i++)
			z->e[i].from = MAKE;
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
	find_copies(ctx, p, z, job->force);
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

/* Open z->old and find each entry to copy in it, as recorded (name, sizes,
 * CRC, method); NULL, or why not (then nothing is copied). */
static char *
open_old(struct zin *z, zip_t **old)
{
	const zip_uint16_t em = z->o.password ? ZIP_EM_AES_256 : ZIP_EM_NONE;
	int zerr;

	*old = NULL;
	if (!z->old || z->ncopy == 0)
		return NULL;
	if (!(*old = zip_open(z->old, ZIP_RDONLY | ZIP_CHECKCONS, &zerr)))
		return xasprintf("%s: cannot be read (libzip error %d)", base(z->old), zerr);
	for (int i = 0; i < z->n; i++) {
		struct zpack_entry *e = &z->e[i];
		zip_int64_t idx;
		zip_stat_t st;

		if (e->from != COPY)
			continue;
		idx = zip_name_locate(*old, e->name, ZIP_FL_ENC_RAW);
		if (idx < 0 || zip_stat_index(*old, (zip_uint64_t)idx, 0, &st) < 0 ||
		    st.size != (zip_uint64_t)e->size || st.comp_size != (zip_uint64_t)e->comp_size ||
		    st.comp_method != z->o.method || st.encryption_method != em ||
		    (st.crc != e->crc && !(z->o.password && e->size < 20)))
			return xasprintf("%s: %s is not as it was written", base(z->old), e->name);
		e->from = idx;
	}
	return NULL;
}

/* Copy nothing: every entry is made afresh, and why is said. */
static void
all_afresh(struct zin *z, char *why)
{
	for (int i = 0; i < z->n; i++)
		z->e[i].from = MAKE;
	z->ncopy = 0;
	free(z->afresh);
	z->afresh = why;
}

/* Start writing path out now: the disk writes while the archive is read
 * back, and the fsync after finds little left to wait for. */
static void
writeback(const char *path)
{
#ifdef SYNC_FILE_RANGE_WRITE
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		close(fd);
	}
#else
	(void)path;
#endif
}

/* "N instances, S; K copied from OLD", or why none was. */
static char *
summary(const struct zin *z, int64_t size)
{
	char *s = units_count_size(z->n, "instance", size), *t;

	if (z->ncopy > 0)
		t = xasprintf("%s; %d copied from %s", s, z->ncopy, base(z->old));
	else if (z->afresh)
		t = xasprintf("%s; all compressed: %s", s, z->afresh);
	else
		return s;
	free(s);
	return t;
}

/* Write the temp archive: 0; -1 with the message in job->err; -2 when a
 * copied entry was not what was recorded (job->err says which). */
static int
write_archive(struct job *job, struct zin *z, zip_t *old)
{
	struct zpack *zp = NULL;
	zip_t *za;
	int zerr, copy = 0;
	const char *why;

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
	zp = zpack_new(&z->o, z->e, z->n, old);
	for (int i = 0; i < z->n; i++) {
		struct zpack_entry *e = &z->e[i];
		zip_source_t *src;
		zip_int64_t idx;
		struct stat st;
		int raw;

		if (e->from < 0) {
			/* Validated as regular files; a link put there since is
			 * not followed (libzip's own source would follow it). */
			if (lstat(e->path, &st) < 0) {
				errf(job->err, sizeof(job->err), "%s: %s", e->path, strerror(errno));
				goto bad;
			}
			if (!S_ISREG(st.st_mode)) {
				errf(job->err, sizeof(job->err), "%s: not a regular file; run again to "
				    "validate and fetch it again", e->path);
				goto bad;
			}
			e->size = st.st_size;
			e->comp_hash = 0;
		}
		raw = e->from >= 0 || zpack_raw(&z->o, e->size);
		src = raw ? zpack_source(za, zp, i) : zip_source_file(za, e->path, 0, -1);
		if (!src) {
			zfail(job, e->path, za);
			goto bad;
		}
		idx = zip_file_add(za, e->name, src, ZIP_FL_ENC_UTF_8);
		if (idx < 0) {
			zip_source_free(src);
			zfail(job, e->path, za);
			goto bad;
		}
		/* A raw entry's password is NULL: libzip copies what zpack
		 * encrypted rather than encrypt it again. */
		if (zip_set_file_compression(za, (zip_uint64_t)idx, z->o.method,
		    z->o.method == ZIP_CM_STORE ? 0 : (zip_uint32_t)z->o.level) < 0 ||
		    zip_file_set_mtime(za, (zip_uint64_t)idx, ENTRY_TIME, 0) < 0 ||
		    (z->o.password && zip_file_set_encryption(za, (zip_uint64_t)idx,
		    ZIP_EM_AES_256, raw ? NULL : z->o.password) < 0)) {
			zfail(job, e->name, za);
			goto bad;
		}
	}
	zpack_start(zp);
	if (zip_close(za) < 0) {
		if ((why = zpack_error(zp, &copy)) != NULL && !job_cancelled(job))
			errf(job->err, sizeof(job->err), "%s", why);
		else
			close_failed(job, za);
		goto bad;
	}
	writeback(z->tmp);
	za = zip_open(z->tmp, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
	if (!za) {
		errf(job->err, sizeof(job->err), "%s: reopening to verify failed (libzip error %d)",
		    z->tmp, zerr);
		goto bad;
	}
	if (zpack_check(zp, za, job->err, sizeof(job->err)) < 0)
		goto bad;
	zip_discard(za);
	zpack_free(zp);
	return 0;
bad:
	if (za)
		zip_discard(za);
	zpack_free(zp);
	return copy ? -2 : -1;
}

static int
zip_run(struct job *job)
{
	struct zin *z = job->in;
	struct zout *o = xcalloc(1, sizeof(*o));
	zip_t *old = NULL;
	char *why;
	int fd, rc;

	job->out = o;
	if ((why = open_old(z, &old)) != NULL)
		all_afresh(z, why);
	rc = write_archive(job, z, old);
	if (rc == -2) {
		/* The older archive let us down: make them all. */
		all_afresh(z, xasprintf("%s: %s", base(z->old), job->err));
		rc = write_archive(job, z, NULL);
	}
	if (old)
		zip_discard(old);
	if (rc < 0)
		goto bad;
	if ((fd = open(z->tmp, O_RDONLY | O_CLOEXEC)) < 0) {
		errf(job->err, sizeof(job->err), "%s: %s", z->tmp, strerror(errno));
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
	job->summary = summary(z, o->size);
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
};
