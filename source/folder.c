/*
 * folder.c - [pacs] protocol = folder: any tree of DICOM files is the
 * "PACS".  The query walks the tree and reads headers, but only of files
 * whose size or mtime changed since the last run (the src_file cache in
 * state), so a rescan of an unchanged tree reads no DICOM content.  The
 * fetch hard-links (or copies) each file into the series folder.
 *
 * Only regular files are read.  A symbolic link is followed only when it
 * leads inside the tree, and then its target is read where it lies (the
 * walk meets it there), so a link never makes a duplicate and behaves the
 * same on any filesystem; a link leading out of the tree is skipped with a
 * warning on every run.  A file that is not DICOM is named once, on the
 * run that first reads it, and many at once are one summary line.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "dicom.h"
#include "fileio.h"
#include "names.h"
#include "source.h"
#include "util.h"

/* One file of the tree, as cached or as read this run. */
struct ent {
	struct srcfile f;         /* f.patient is the raw PatientID here */
	int seen;                 /* found by this run's walk */
	int changed;              /* read this run: to be saved */
};

/* The files of one series, for the fetch. */
struct flist {
	struct found f;
	char **sop, **path;
	int n, cap;
};

struct folder {
	struct ent **ent;         /* every file known, cached or new */
	int nent, capent;
	struct htab bypath;       /* path -> ent */
	struct flist **ser;       /* per series, after the query */
	int nser;
	struct htab byseries;     /* series uid -> flist */
	char **warnings;          /* printed on the main thread */
	int nwarn;
	int queried;
	char *root;               /* realpath of [pacs] path: links inside it are its own */
};

/* Name this many non-DICOM files of a run one by one; more make one line. */
enum { NONDICOM_NAMED = 3 };

static void
ent_free(struct ent *e)
{
	free(e->f.path);
	free(e->f.sop);
	free(e->f.series);
	free(e->f.study);
	free(e->f.patient);
	free(e->f.modality);
	free(e->f.date);
	free(e->f.sop_class);
	free(e->f.number);
	free(e->f.desc);
	free(e->f.error);
	free(e);
}

static struct ent *
ent_add(struct folder *fo, const char *path)
{
	struct ent *e = xcalloc(1, sizeof(*e));

	e->f.path = xstrdup(path);
	if (fo->nent == fo->capent) {
		fo->capent = fo->capent ? 2 * fo->capent : 256;
		fo->ent = xreallocarray(fo->ent, (size_t)fo->capent, sizeof(*fo->ent));
	}
	fo->ent[fo->nent++] = e;
	htab_put(&fo->bypath, e->f.path, e);
	return e;
}

static void
cache_row(void *arg, struct srcfile *f)
{
	struct folder *fo = arg;
	struct ent *e = ent_add(fo, f->path);

	e->f.size = f->size;
	e->f.mtime = f->mtime;
	e->f.sop = xstrdup(f->sop);
	e->f.series = xstrdup(f->series);
	e->f.study = xstrdup(f->study);
	e->f.patient = f->patient ? name_decode(f->patient) : NULL;
	e->f.modality = xstrdup(f->modality);
	e->f.date = xstrdup(f->date);
	e->f.sop_class = xstrdup(f->sop_class);
	e->f.number = xstrdup(f->number);
	e->f.desc = xstrdup(f->desc);
	e->f.error = xstrdup(f->error);
	if (!e->f.error && (!e->f.patient || !e->f.sop || !e->f.series || !e->f.study))
		e->f.mtime = -1;   /* damaged row: read the file again */
}

static int
folder_open(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	struct folder *fo = xcalloc(1, sizeof(*fo));

	htab_init(&fo->bypath);
	htab_init(&fo->byseries);
	src->priv = fo;
	if (state_srcfile_load(ctx->st, cache_row, fo) < 0) {
		errf(err, errlen, "%s", ctx->st->err);
		return -1;
	}
	return 0;
}

static void
folder_warn(struct folder *fo, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fo->warnings = xreallocarray(fo->warnings, (size_t)fo->nwarn + 1, sizeof(char *));
	fo->warnings[fo->nwarn++] = xvasprintf(fmt, ap);
	va_end(ap);
}

static void
read_header(struct ent *e)
{
	struct dcm_header h;
	char err[DCM_ERR_MAX];

	free(e->f.error);
	e->f.error = NULL;
	if (dcm_read_header(e->f.path, &h, err) < 0) {
		e->f.error = xstrdup(err);
		return;
	}
	catalog_set(&e->f.patient, h.patient_id);
	catalog_set(&e->f.sop, h.sop_uid);
	catalog_set(&e->f.series, h.series_uid);
	catalog_set(&e->f.study, h.study_uid);
	catalog_set(&e->f.modality, h.modality);
	catalog_set(&e->f.date, h.study_date);
	catalog_set(&e->f.sop_class, h.sop_class);
	catalog_set(&e->f.number, h.series_number);
	catalog_set(&e->f.desc, h.series_desc);
	dcm_header_free(&h);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A symbolic link met by the walk: one inside the tree is left to the walk,
 * which reads its target where it lies; one leading out is skipped. */
static void
walk_link(struct folder *fo, const char *path)
{
	char *real = realpath(path, NULL);
	size_t rl = strlen(fo->root);

	if (!real)
		folder_warn(fo, "%s: symbolic link to nothing (%s), skipped", path, strerror(errno));
	else if (strncmp(real, fo->root, rl) != 0 || (real[rl] != '/' && strcmp(fo->root, "/") != 0))
		folder_warn(fo, "%s: symbolic link to %s, outside the source folder, skipped "
		    "(links are followed only inside it: copy or move the file in)", path, real);
	free(real);
}

/* Walk dir depth first in name order; links are not followed (walk_link). */
static int
walk(struct folder *fo, struct job *job, const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	int n = 0, rc = 0;

	if (!d) {
		errf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		names = xreallocarray(names, (size_t)n + 1, sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, (size_t)n, sizeof(*names), cmp_name);
	for (int i = 0; i < n && rc == 0; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		struct stat sb;
		struct ent *e;

		if (job_cancelled(job)) {
			errf(err, errlen, "interrupted");
			rc = -1;
		} else if (lstat(path, &sb) < 0) {
			folder_warn(fo, "%s: %s, skipped", path, strerror(errno));
		} else if (S_ISLNK(sb.st_mode)) {
			walk_link(fo, path);
		} else if (S_ISDIR(sb.st_mode)) {
			rc = walk(fo, job, path, err, errlen);
		} else if (!S_ISREG(sb.st_mode)) {
			folder_warn(fo, "%s: not a regular file, skipped", path);
		} else {
			int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;

			e = htab_get(&fo->bypath, path);
			if (!e)
				e = ent_add(fo, path);
			e->seen = 1;
			if (e->f.size != sb.st_size || e->f.mtime != mt) {
				e->f.size = sb.st_size;
				e->f.mtime = mt;
				e->changed = 1;
				read_header(e);
			}
			atomic_fetch_add(&job->done, 1);
		}
		free(path);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static void
flist_add(struct flist *l, const char *sop, const char *path)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->sop = xreallocarray(l->sop, (size_t)l->cap, sizeof(*l->sop));
		l->path = xreallocarray(l->path, (size_t)l->cap, sizeof(*l->path));
	}
	l->sop[l->n] = xstrdup(sop);
	l->path[l->n] = xstrdup(path);
	l->n++;
}

/* Group the files seen into series, applying [select]. */
static void
group(struct folder *fo, struct ctx *ctx, struct query_result *r)
{
	struct htab sops;
	struct ent *eg[NONDICOM_NAMED];
	int nnew = 0, nold = 0;

	htab_init(&sops);
	for (int i = 0; i < fo->nent; i++) {
		struct ent *e = fo->ent[i];
		struct flist *l;

		if (!e->seen)
			continue;
		if (e->f.error) {
			/* Named on the run that read it; the cache remembers. */
			if (!e->changed)
				nold++;
			else if (strncmp(e->f.error, "not a DICOM file", 16) != 0)
				folder_warn(fo, "%s: %s, skipped", e->f.path, e->f.error);
			else if (nnew++ < NONDICOM_NAMED)
				eg[nnew - 1] = e;
			continue;
		}
		if (!select_patient(ctx->sel, e->f.patient) ||
		    !select_series(ctx->sel, e->f.modality, e->f.date))
			continue;
		if (!uid_is_safe(e->f.sop) || !uid_is_safe(e->f.series) || !uid_is_safe(e->f.study)) {
			folder_warn(fo, "%s: a UID is not a valid DICOM UID, skipped", e->f.path);
			continue;
		}
		if (!name_fits(e->f.patient)) {
			folder_warn(fo, "%s: PatientID too long for a file name, skipped", e->f.path);
			continue;
		}
		l = htab_get(&fo->byseries, e->f.series);
		if (!l) {
			l = xcalloc(1, sizeof(*l));
			l->f.patient = e->f.patient;
			l->f.study = e->f.study;
			l->f.uid = e->f.series;
			l->f.modality = e->f.modality;
			l->f.sop_class = e->f.sop_class;
			l->f.date = e->f.date;
			l->f.number = e->f.number;
			l->f.desc = e->f.desc;
			fo->ser = xreallocarray(fo->ser, (size_t)fo->nser + 1, sizeof(*fo->ser));
			fo->ser[fo->nser++] = l;
			htab_put(&fo->byseries, l->f.uid, l);
		} else if (strcmp(l->f.patient, e->f.patient) != 0 || strcmp(l->f.study, e->f.study) != 0) {
			folder_warn(fo, "%s: series %s belongs to another patient or study in other files, skipped",
			    e->f.path, e->f.series);
			continue;
		}
		if (htab_get(&sops, e->f.sop)) {
			folder_warn(fo, "%s: SOP instance %s also in %s, skipped", e->f.path, e->f.sop,
			    ((struct ent *)htab_get(&sops, e->f.sop))->f.path);
			continue;
		}
		htab_put(&sops, e->f.sop, e);
		flist_add(l, e->f.sop, e->f.path);
	}
	htab_free(&sops);
	if (nnew > NONDICOM_NAMED)
		folder_warn(fo, "%s: skipped %d non-DICOM files, e.g. %s, %s, %s; later runs name "
		    "only new ones", ctx->cfg->pacs.path, nnew, eg[0]->f.path, eg[1]->f.path,
		    eg[2]->f.path);
	else
		for (int i = 0; i < nnew; i++)
			folder_warn(fo, "%s: %s, skipped", eg[i]->f.path, eg[i]->f.error);
	if (nold && verbosity > 1)
		folder_warn(fo, "%s: %d files skipped as on earlier runs (not DICOM or damaged)",
		    ctx->cfg->pacs.path, nold);
	for (int i = 0; i < fo->nser; i++) {
		fo->ser[i]->f.expected = fo->ser[i]->n;
		query_add(r, &fo->ser[i]->f);
	}
}

static int
folder_query(struct source *src, struct job *job, struct query_result *r)
{
	struct folder *fo = src->priv;

	free(fo->root);
	if (!(fo->root = realpath(src->cfg->pacs.path, NULL))) {
		errf(job->err, sizeof(job->err), "%s: %s", src->cfg->pacs.path, strerror(errno));
		return -1;
	}
	if (walk(fo, job, src->cfg->pacs.path, job->err, sizeof(job->err)) < 0)
		return -1;
	group(fo, job->ctx, r);
	r->complete = 1;
	fo->queried = 1;
	return 0;
}

static int
folder_query_done(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	struct folder *fo = src->priv;
	struct state *st = ctx->st;

	if (verbosity > 0)
		for (int i = 0; i < fo->nwarn; i++)
			warn("%s", fo->warnings[i]);
	if (ctx->dry_run || !fo->queried)
		return 0;
	if (state_begin(st) < 0)
		goto bad;
	for (int i = 0; i < fo->nent; i++) {
		struct ent *e = fo->ent[i];
		int rc;

		if (!e->seen) {
			rc = state_srcfile_delete(st, e->f.path);
		} else if (e->changed) {
			struct srcfile f = e->f;

			f.patient = f.patient ? name_encode(f.patient) : NULL;
			rc = state_srcfile_put(st, &f);
			free(f.patient);
		} else {
			continue;
		}
		if (rc < 0) {
			state_rollback(st);
			goto bad;
		}
	}
	if (state_commit(st) < 0)
		goto bad;
	return 0;
bad:
	errf(err, errlen, "%s", st->err);
	return -1;
}

static int
folder_fetch(struct source *src, struct job *job, struct fetch *f)
{
	struct folder *fo = src->priv;
	struct flist *l = fo->queried ? htab_get(&fo->byseries, f->s->uid) : NULL;
	int rc = 0;

	if (!fo->queried) {
		errf(job->err, sizeof(job->err), "the source folder was not read (--offline)");
		return -1;
	}
	if (!l) {
		errf(job->err, sizeof(job->err), "series is no longer in %s", src->cfg->pacs.path);
		return -1;
	}
	atomic_store(&job->total, l->n);
	f->listed = l->n;
	for (int i = 0; i < l->n && rc == 0; i++) {
		char *dst;
		uint64_t hash;
		int64_t size, mtime;

		if (job_cancelled(job)) {
			errf(job->err, sizeof(job->err), "interrupted");
			return -1;
		}
		if (!f->force && htab_get(&f->have, l->sop[i])) {
			atomic_fetch_add(&job->done, 1);
			continue;
		}
		dst = xasprintf("%s/%s.dcm", f->dir, l->sop[i]);
		rc = import_file(l->path[i], dst, &hash, &size, &mtime, &job->bytes,
		    job->err, sizeof(job->err));
		if (rc == 0)
			fetch_add(f, l->sop[i], size, mtime, hash);
		free(dst);
		atomic_fetch_add(&job->done, 1);
	}
	return rc;
}

static void
folder_close(struct source *src)
{
	struct folder *fo = src->priv;

	if (!fo)
		return;
	for (int i = 0; i < fo->nent; i++)
		ent_free(fo->ent[i]);
	for (int i = 0; i < fo->nser; i++) {
		struct flist *l = fo->ser[i];

		for (int j = 0; j < l->n; j++) {
			free(l->sop[j]);
			free(l->path[j]);
		}
		free(l->sop);
		free(l->path);
		free(l);
	}
	for (int i = 0; i < fo->nwarn; i++)
		free(fo->warnings[i]);
	free(fo->warnings);
	free(fo->root);
	free(fo->ent);
	free(fo->ser);
	htab_free(&fo->bypath);
	htab_free(&fo->byseries);
	free(fo);
	src->priv = NULL;
}

static const char *
folder_label(const struct config *cfg)
{
	return cfg->pacs.path;
}

static const char *const folder_needs[] = { "path", NULL };

const struct source_ops source_folder = {
	.name = "folder",
	.needs = folder_needs,
	.local = 1,
	.label = folder_label,
	.open = folder_open,
	.query = folder_query,
	.query_done = folder_query_done,
	.fetch = folder_fetch,
	.close = folder_close,
};
