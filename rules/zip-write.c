/*
 * zip-write.c - one archive written under its temp name: each entry made
 * by zpack, or copied from the archive it replaces when the records say
 * that one holds it as it is to be, and the result read back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include "fileio.h"
#include "htab.h"
#include "units.h"
#include "util.h"
#include "zfd.h"
#include "zip-int.h"

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

void
zip_find_copies(struct ctx *ctx, struct patient *p, struct zin *z, int force)
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
	if (!zip_intact(a, &why)) {
		z->afresh = xasprintf("%s: %s", zip_base(a->path), why);
		free(why);
		return;
	}
	htab_init(&rs.byname);
	for (int i = 0; i < z->n; i++)
		htab_put(&rs.byname, z->e[i].name, &z->e[i]);
	if (state_zentry_get(ctx->st, p->name, on_record, &rs) < 0) {
		z->afresh = xasprintf("reading the records of %s: %s", zip_base(a->path), ctx->st->err);
		z->ncopy = 0;
	}
	htab_free(&rs.byname);
	if (z->ncopy > 0 && !z->afresh)
		z->old = xstrdup(a->path);
	else if (!z->afresh)
		z->afresh = xasprintf("no entry of %s recorded as written", zip_base(a->path));
	if (z->afresh)
		for (int i = 0; i < z->n; i++)
			z->e[i].from = MAKE;
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
	char err[512];

	*old = NULL;
	if (!z->old || z->ncopy == 0)
		return NULL;
	if (!(*old = zfd_open(z->old, ZIP_RDONLY | ZIP_CHECKCONS, NULL, err, sizeof(err))))
		return xasprintf("cannot be read: %s", err);
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
			return xasprintf("%s: %s is not as it was written", zip_base(z->old), e->name);
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

char *
zip_summary(const struct zin *z, int64_t size)
{
	char *s = units_count_size(z->n, "instance", size), *t;

	if (z->ncopy > 0)
		t = xasprintf("%s; %d copied from %s", s, z->ncopy, zip_base(z->old));
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
	struct zfd *out;
	zip_t *za;
	int copy = 0;
	const char *why;

	unlink(z->tmp);
	za = zfd_open(z->tmp, ZIP_CREATE | ZIP_EXCL, &out, job->err, sizeof(job->err));
	if (!za)
		return -1;
	atomic_store(&job->total, z->n);
	zip_register_progress_callback_with_state(za, 0.01, on_progress, NULL, job);
	zip_register_cancel_callback_with_state(za, on_cancel, NULL, job);
	zp = zpack_new(&z->o, z->e, z->n, old);
	zpack_out(zp, out);
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
	zpack_out(zp, NULL);
	za = zfd_open(z->tmp, ZIP_RDONLY | ZIP_CHECKCONS, NULL, job->err, sizeof(job->err));
	if (!za) {
		errf(job->err, sizeof(job->err), "%s: reopening to verify failed", z->tmp);
		goto bad;
	}
	if (zpack_check(zp, za, z->tmp, &z->hash, job->err, sizeof(job->err)) < 0)
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

int
zip_write(struct job *job, struct zin *z)
{
	zip_t *old = NULL;
	char *why;
	int rc;

	if ((why = open_old(z, &old)) != NULL)
		all_afresh(z, why);
	rc = write_archive(job, z, old);
	if (rc == -2) {
		/* The older archive let us down: make them all. */
		all_afresh(z, xasprintf("%s: %s", zip_base(z->old), job->err));
		rc = write_archive(job, z, NULL);
	}
	if (old)
		zip_discard(old);
	return rc < 0 ? -1 : 0;
}
