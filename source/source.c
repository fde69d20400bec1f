/* source.c - the protocol table and the result containers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pace.h"
#include "source.h"
#include "util.h"

extern const struct source_ops source_folder, source_dimse, source_dicomweb;

/* Every protocol; [pacs] protocol names one. */
static const struct source_ops *const sources[] = { &source_dimse, &source_dicomweb, &source_folder };

const struct source_ops *
source_find(const char *name)
{
	for (size_t i = 0; name && i < LEN(sources); i++)
		if (strcmp(sources[i]->name, name) == 0)
			return sources[i];
	return NULL;
}

const char *
source_names(void)
{
	static char names[128];

	if (!*names)
		for (size_t i = 0; i < LEN(sources); i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			    i ? " | " : "", sources[i]->name);
	return names;
}

struct source *
source_new(const struct config *cfg, char *err, size_t errlen)
{
	const struct source_ops *ops = source_find(cfg->pacs.protocol);
	struct source *src;

	if (!ops) {
		errf(err, errlen, "%s: [pacs] protocol = %s: no such protocol", cfg->file,
		    cfg->pacs.protocol ? cfg->pacs.protocol : "(none)");
		return NULL;
	}
	src = xcalloc(1, sizeof(*src));
	src->ops = ops;
	src->cfg = cfg;
	return src;
}

void
source_free(struct source *src)
{
	if (!src)
		return;
	if (src->ops->close)
		src->ops->close(src);
	known_free(src);
	free(src);
}

void
query_add(struct query_result *r, const struct found *f)
{
	struct found *d;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = xreallocarray(r->v, (size_t)r->cap, sizeof(*r->v));
	}
	d = &r->v[r->n++];
	d->patient = xstrdup(f->patient);
	d->study = xstrdup(f->study);
	d->uid = xstrdup(f->uid);
	d->modality = xstrdup(f->modality);
	d->sop_class = xstrdup(f->sop_class);
	d->date = xstrdup(f->date);
	d->number = xstrdup(f->number);
	d->desc = xstrdup(f->desc);
	d->expected = f->expected;
}

void
query_fail(struct query_result *r, const char *patient, const char *fmt, ...)
{
	struct query_fail *f;
	va_list ap;

	if (query_failed(r, patient))
		return;
	r->failed = xreallocarray(r->failed, (size_t)r->nfailed + 1, sizeof(*r->failed));
	f = &r->failed[r->nfailed++];
	f->patient = xstrdup(patient);
	va_start(ap, fmt);
	f->why = xvasprintf(fmt, ap);
	va_end(ap);
}

int
query_failed(const struct query_result *r, const char *patient)
{
	for (int i = 0; i < r->nfailed; i++)
		if (strcmp(r->failed[i].patient, patient) == 0)
			return 1;
	return 0;
}

void
query_note(struct query_result *r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	r->notes = xreallocarray(r->notes, (size_t)r->nnotes + 1, sizeof(*r->notes));
	r->notes[r->nnotes++] = s;
}

int
query_study(struct query_result *r, const char *patient, const char *uid)
{
	const char *was;

	was = htab_get(&r->studies, uid);
	if (!was) {
		char *k = xstrdup(uid);

		htab_put(&r->studies, k, xstrdup(patient));
		return 0;
	}
	if (strcmp(was, patient) == 0)
		return 1;
	query_fail(r, was, "study %s is listed under patients %s and %s", uid, was, patient);
	query_fail(r, patient, "study %s is listed under patients %s and %s", uid, was, patient);
	return -1;
}

void
query_result_free(struct query_result *r)
{
	for (int i = 0; i < r->n; i++) {
		free(r->v[i].patient);
		free(r->v[i].study);
		free(r->v[i].uid);
		free(r->v[i].modality);
		free(r->v[i].sop_class);
		free(r->v[i].date);
		free(r->v[i].number);
		free(r->v[i].desc);
	}
	free(r->v);
	for (int i = 0; i < r->nfailed; i++) {
		free(r->failed[i].patient);
		free(r->failed[i].why);
	}
	free(r->failed);
	for (int i = 0; i < r->nnotes; i++)
		free(r->notes[i]);
	free(r->notes);
	for (size_t i = 0; i < r->studies.cap; i++) {
		free((char *)r->studies.slot[i].key);
		free(r->studies.slot[i].val);
	}
	htab_free(&r->studies);
	memset(r, 0, sizeof(*r));
}

void
fetch_add(struct fetch *f, const char *sop, int64_t size, int64_t mtime, uint64_t hash)
{
	struct instance *in;

	if (f->ngot == f->capgot) {
		f->capgot = f->capgot ? 2 * f->capgot : 64;
		f->got = xreallocarray(f->got, (size_t)f->capgot, sizeof(*f->got));
	}
	in = &f->got[f->ngot++];
	in->sop = xstrdup(sop);
	in->size = size;
	in->mtime = mtime;
	in->hash = hash;
	in->ok = 0;
}

int
source_retry(struct job *job, int (*once)(struct job *, void *), void *arg)
{
	int retries = job->ctx->cfg->pacs.retries;
	int64_t delay;

	for (int attempt = 1;; attempt++) {
		int rc = once(job, arg);

		if (rc == 0)
			return 0;
		if (rc == -2 || job->no_retry || attempt > retries || job_cancelled(job))
			return -1;
		delay = backoff_delay(attempt);
		/* Said as it happens: a wait of a minute is no hang. */
		if (verbosity > 0)
			warn("%s %s: retrying in %.0f s (%d/%d): %s", job->stage, job->node->label,
			    (double)delay / 1e9, attempt, retries, job->err);
		if (backoff_wait(delay, &job->ctx->cancel) < 0)
			return -1;
	}
}

/* ---- answers capped at [pacs] max_results: split until none is ---- */

enum { SPLIT_DEPTH = 64 };      /* prefix characters, past a day's halves */

enum { NODAY = -1000000 };       /* no date: 1900 is day -25567 */

/* "YYYYMMDD" as days since 1970-01-01; NODAY when it is not a date. */
static long
day_of(const char *s, size_t n)
{
	struct tm tm = { 0 };
	int y, m, d;

	if (n != 8 || strspn(s, "0123456789") < 8 || sscanf(s, "%4d%2d%2d", &y, &m, &d) != 3 ||
	    m < 1 || m > 12 || d < 1 || d > 31)
		return NODAY;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	return (long)(timegm(&tm) / 86400);
}

static void
day_str(long day, char out[16])
{
	time_t t = (time_t)day * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y%m%d", &tm);
}

struct split {
	struct job *job;
	const struct study_ask *a;
	int cap;
	int nsplit;               /* requests made again, narrower */
};

static int split_days(struct split *sp, const char *glob, long lo, long hi, int depth);

/* One request; 1 when its answer was capped (and dropped). */
static int
ask_once(struct split *sp, const char *glob, long lo, long hi)
{
	char range[34], a[16], b[16];
	int n;

	day_str(lo, a);
	day_str(hi, b);
	if (lo == hi)
		snprintf(range, sizeof(range), "%s", a);
	else
		snprintf(range, sizeof(range), "%s-%s", a, b);
	sp->nsplit++;
	if ((n = sp->a->ask(sp->a->arg, glob, range)) < 0)
		return n;
	if (n < sp->cap) {
		sp->a->keep(sp->a->arg);
		return 0;
	}
	sp->a->drop(sp->a->arg);
	return 1;
}

/* A capped day, by PatientID prefix: glob "P*" as "P" itself and "Pc*"
 * for each character c a PatientID may hold (printable ASCII). */
static int
split_prefix(struct split *sp, const char *glob, long day, int depth)
{
	size_t n = strlen(glob);
	char *g;
	int rc = 0;

	if (n == 0 || glob[n - 1] != '*' || strcspn(glob, "*?") != n - 1 || depth >= SPLIT_DEPTH) {
		char d[16];

		day_str(day, d);
		errf(sp->job->err, sizeof(sp->job->err), "PatientID %s, StudyDate %s: the PACS's "
		    "answer holds %d matches, [pacs] max_results, however narrow the query: raise "
		    "max_results to the PACS's real cap", glob, d, sp->cap);
		return -2;
	}
	g = xmalloc(n + 2);
	/* The prefix itself, as a whole PatientID. */
	memcpy(g, glob, n - 1);
	g[n - 1] = '\0';
	if (n > 1 && (rc = ask_once(sp, g, day, day)) != 0)
		rc = rc < 0 ? rc : -2;
	for (int c = 0x20; rc == 0 && c < 0x7f; c++) {
		if (c == '*' || c == '?' || c == '\\')
			continue;
		memcpy(g, glob, n - 1);
		g[n - 1] = (char)c;
		g[n] = '*';
		g[n + 1] = '\0';
		if ((rc = ask_once(sp, g, day, day)) == 1)
			rc = split_prefix(sp, g, day, depth + 1);
	}
	free(g);
	return rc;
}

static int
split_days(struct split *sp, const char *glob, long lo, long hi, int depth)
{
	int rc = ask_once(sp, glob, lo, hi);

	if (rc != 1)
		return rc;
	if (lo == hi)
		return split_prefix(sp, glob, lo, depth);
	if ((rc = split_days(sp, glob, lo, lo + (hi - lo) / 2, depth)) != 0)
		return rc;
	return split_days(sp, glob, lo + (hi - lo) / 2 + 1, hi, depth);
}

int
source_ask_studies(struct job *job, struct query_result *r, const char *glob,
    const struct study_ask *a)
{
	const struct config *cfg = job->ctx->cfg;
	const char *range = cfg->select.study_date, *dash;
	struct split sp = { .job = job, .a = a, .cap = cfg->pacs.max_results };
	long lo = day_of("19000101", 8), hi = (long)(time(NULL) / 86400) + 366;
	int n = a->ask(a->arg, glob, NULL);

	if (n < 0)
		return n;
	if (!sp.cap || n < sp.cap) {
		a->keep(a->arg);
		return 0;
	}
	a->drop(a->arg);
	/* [select] study_date's bounds, where it has them. */
	if (range && (dash = strchr(range, '-'))) {
		if (dash > range)
			lo = day_of(range, (size_t)(dash - range));
		if (dash[1])
			hi = day_of(dash + 1, strlen(dash + 1));
	} else if (range) {
		lo = hi = day_of(range, strlen(range));
	}
	if (lo == NODAY || hi == NODAY || lo > hi) {
		errf(job->err, sizeof(job->err), "PatientID %s: the PACS's answer holds %d matches, "
		    "[pacs] max_results, and [select] study_date '%s' cannot be split", glob,
		    sp.cap, range);
		return -2;
	}
	query_note(r, "PatientID %s: the PACS's answer held %d matches, at least [pacs] max_results "
	    "(%d): asked again by StudyDate ranges (a study without a StudyDate is not found "
	    "that way)", glob, n, sp.cap);
	return split_days(&sp, glob, lo, hi, 0);
}

char *
source_ids_glob(const struct select *sel)
{
	const char *first = NULL;
	size_t n = 0;

	for (size_t i = 0; sel->has_ids && i < sel->ids.cap; i++) {
		const char *id = sel->ids.slot[i].key;
		size_t k = 0;

		if (!id)
			continue;
		if (!first) {
			first = id;
			n = strcspn(id, "*?\\");
			continue;
		}
		while (k < n && id[k] == first[k])
			k++;
		n = k;
	}
	return first && n ? xasprintf("%.*s*", (int)n, first) : NULL;
}
