/*
 * zip-int.h - what the zip rule (zip.c: plans, records, old archives) and
 * the writing of one archive (zip-write.c) share.
 */
#ifndef THLHP_ZIP_INT_H
#define THLHP_ZIP_INT_H

#include <string.h>
#include "rule.h"
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
	uint64_t hash;            /* XXH3-64 of the archive written */
};

enum { MAKE = -1, COPY = -2 };  /* zpack_entry.from until the older archive is open */

static inline const char *
zip_base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Is the recorded archive a still the file that was written?  0 with why
 * (malloc'd) when not. */
int zip_intact(const struct archive *a, char **why);

/* Which of z's entries (sorted) can be copied from p's recorded archive
 * (from = COPY, with the record's sizes, CRC and hash), or why none can
 * (z->afresh; not when p has no archive, nor when forced). */
void zip_find_copies(struct ctx *ctx, struct patient *p, struct zin *z, int force);

/* Write and verify z's archive under z->tmp, copying what it can from
 * z->old; when that archive lets it down, every entry is made and
 * z->afresh says why.  0, or -1 with the message in job->err. */
int zip_write(struct job *job, struct zin *z);

/* "N instances, S; K copied from OLD", or why none was; malloc'd. */
char *zip_summary(const struct zin *z, int64_t size);

#endif
