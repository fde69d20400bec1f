/*
 * known.c - what earlier queries learnt of each study, so that a query
 * asks the PACS about what changed only.  When a study's series are
 * walked, the counts the PACS gave for the study at STUDY level
 * (NumberOfStudyRelatedSeries, NumberOfStudyRelatedInstances) are kept.
 * A study the PACS lists again with the same counts, under the same
 * patient and the same [select] modality and study_date, has not changed:
 * its series are the catalog's, and nobody asks the PACS for them.
 *
 * What the counts cannot show (a series replaced by another with the same
 * counts) a full walk finds: every [pacs] full_query_every, for -B query,
 * and while nothing is known.  The records are the query stage's target
 * records, key the StudyInstanceUID; key "full" says when the last full
 * walk was.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "source.h"
#include "util.h"

#define KNOWN_STAGE "query"
#define KNOWN_FULL "full"         /* no UID: UIDs are digits and dots */

struct known_study {
	char *patient;
	uint64_t sig;             /* the counts it had */
	struct series **series;   /* the catalog's, borrowed: not gone, selected */
	int n, cap;
};

/* One study whose series this query walked, with the counts it had. */
struct walked {
	char *patient, *uid;
	uint64_t sig;
};

struct known {
	struct htab studies;      /* StudyInstanceUID -> struct known_study */
	char *settings;           /* what the catalog's series of a study depend on */
	int full;                 /* walk every study this run */
	char *why;                /* why (for -v) */
	int64_t started;          /* when the query started, ns */
	/* Written by the query (one thread), read after it: */
	struct walked *walked;
	int nwalked;
	int nsame;                /* studies taken as they were */
	int nocounts;             /* studies listed without counts */
	atomic_int req[4];        /* requests by enum qlevel */
};

static uint64_t
counts_sig(int nseries, int ninstances)
{
	return (uint64_t)(uint32_t)nseries << 32 | (uint32_t)ninstances;
}

struct load {
	struct known *k;
	struct catalog *cat;
	int64_t last_full;
};

static void
load_one(void *arg, const char *key, const struct target_rec *r)
{
	struct load *l = arg;
	struct known_study *ks;
	struct patient *p;

	if (strcmp(key, KNOWN_FULL) == 0) {
		l->last_full = r->made;
		return;
	}
	/* Counts taken under other [select] settings, or of a patient the
	 * last query saw only in part, vouch for nothing. */
	if (!r->detail || !r->settings || strcmp(r->settings, l->k->settings) != 0)
		return;
	p = catalog_find_patient(l->cat, r->detail);
	if (!p || p->query_error || htab_get(&l->k->studies, key))
		return;
	ks = xcalloc(1, sizeof(*ks));
	ks->patient = xstrdup(r->detail);
	ks->sig = r->input_sig;
	htab_put(&l->k->studies, xstrdup(key), ks);
}

int
known_load(struct source *src, struct ctx *ctx, int force, char *err, size_t errlen)
{
	const struct config *cfg = ctx->cfg;
	struct known *k;
	struct load l = { .cat = ctx->cat };
	int64_t every = (int64_t)cfg->pacs.full_query_every * 1000000000;

	known_free(src);
	k = src->known = xcalloc(1, sizeof(*k));
	htab_init(&k->studies);
	k->started = now_ns();
	k->settings = xasprintf("modality=%s study_date=%s",
	    cfg->select.modality ? cfg->select.modality : "",
	    cfg->select.study_date ? cfg->select.study_date : "");
	l.k = k;
	if (ctx->st->db && state_load_targets(ctx->st, KNOWN_STAGE, load_one, &l) < 0) {
		errf(err, errlen, "reading what the last queries learnt: %s", ctx->st->err);
		return -1;
	}
	/* Each known study's series in the catalog. */
	for (int i = 0; i < ctx->cat->np; i++) {
		struct patient *p = ctx->cat->p[i];

		for (int j = 0; j < p->nseries; j++) {
			struct series *s = p->series[j];
			struct known_study *ks = htab_get(&k->studies, s->study);

			if (!ks || s->gone || strcmp(ks->patient, p->id) != 0)
				continue;
			if (ks->n == ks->cap) {
				ks->cap = ks->cap ? 2 * ks->cap : 8;
				ks->series = xreallocarray(ks->series, (size_t)ks->cap, sizeof(*ks->series));
			}
			ks->series[ks->n++] = s;
		}
	}
	if (force)
		k->why = xstrdup("-B query");
	else if (!l.last_full)
		k->why = xstrdup("no full walk recorded yet");
	else if (every == 0)
		k->why = xstrdup("full_query_every = 0");
	else if (k->started - l.last_full >= every)
		k->why = xasprintf("the last was %.0f h ago; full_query_every = %d s",
		    (double)(k->started - l.last_full) / 3.6e12, cfg->pacs.full_query_every);
	k->full = k->why != NULL;
	return 0;
}

int
known_full(const struct source *src)
{
	return !src->known || src->known->full;
}

int
known_same(struct source *src, struct query_result *r, const char *patient, const char *study,
    int nseries, int ninstances)
{
	struct known *k = src->known;
	struct known_study *ks;

	if (nseries < 0 || ninstances < 0) {
		if (k)
			k->nocounts++;
		return 0;
	}
	if (!k || k->full || !(ks = htab_get(&k->studies, study)) ||
	    strcmp(ks->patient, patient) != 0 || ks->sig != counts_sig(nseries, ninstances))
		return 0;
	for (int i = 0; i < ks->n; i++) {
		const struct series *s = ks->series[i];
		struct found f = {
			.patient = (char *)patient, .study = (char *)study, .uid = s->uid,
			.modality = (char *)s->modality, .sop_class = (char *)s->sop_class,
			.date = (char *)s->study_date, .number = (char *)s->number,
			.desc = (char *)s->desc, .expected = s->expected,
		};

		query_add(r, &f);
	}
	k->nsame++;
	return 1;
}

void
known_walked(struct source *src, const char *patient, const char *study, int nseries,
    int ninstances)
{
	struct known *k = src->known;
	struct walked *w;

	if (!k || nseries < 0 || ninstances < 0)
		return;
	k->walked = xreallocarray(k->walked, (size_t)k->nwalked + 1, sizeof(*k->walked));
	w = &k->walked[k->nwalked++];
	w->patient = xstrdup(patient);
	w->uid = xstrdup(study);
	w->sig = counts_sig(nseries, ninstances);
}

void
known_request(struct source *src, enum qlevel level)
{
	if (src->known && level >= Q_PATIENT && level <= Q_IMAGE)
		atomic_fetch_add(&src->known->req[level], 1);
}

int
known_save(struct source *src, struct ctx *ctx, const struct query_result *r, char *err,
    size_t errlen)
{
	struct known *k = src->known;
	struct state *st = ctx->st;
	struct target_rec rec = { .settings = k ? k->settings : NULL };
	int rc = 0;

	if (!k || ctx->dry_run)
		return 0;
	if (state_begin(st) < 0)
		goto fail;
	for (int i = 0; i < k->nwalked; i++) {
		const struct walked *w = &k->walked[i];

		/* A study of a patient seen only in part is walked again. */
		if (query_failed(r, w->patient)) {
			rc = state_delete_target(st, KNOWN_STAGE, w->uid);
		} else {
			rec.input_sig = w->sig;
			rec.detail = w->patient;
			rc = state_save_target(st, KNOWN_STAGE, w->uid, &rec);
		}
		if (rc < 0)
			goto rollback;
	}
	if (r->complete) {
		/* Gone from the PACS (or from [select]): known no longer. */
		for (size_t i = 0; i < k->studies.cap; i++) {
			const char *uid = k->studies.slot[i].key;

			if (uid && !htab_get(&r->studies, uid) &&
			    state_delete_target(st, KNOWN_STAGE, uid) < 0)
				goto rollback;
		}
		if (k->full) {
			struct target_rec full = { .detail = "every study's series walked" };

			if (state_save_target(st, KNOWN_STAGE, KNOWN_FULL, &full) < 0)
				goto rollback;
		}
	}
	if (state_commit(st) < 0)
		goto fail;
	return 0;
rollback:
	state_rollback(st);
fail:
	errf(err, errlen, "saving what the query learnt: %s", st->err);
	return -1;
}

char *
known_summary(const struct source *src)
{
	static const char *const names[] = { "patient", "study", "series", "image" };
	const struct known *k = src->known;
	char by[160] = "";
	int total = 0;

	if (!k)
		return NULL;
	for (int i = Q_PATIENT; i <= Q_IMAGE; i++) {
		int n = atomic_load(&k->req[i]);

		if (!n)
			continue;
		total += n;
		snprintf(by + strlen(by), sizeof(by) - strlen(by), "%s%d %s-level",
		    *by ? ", " : "", n, names[i]);
	}
	return xasprintf("%d request%s%s%s%s, %.1f s; %d stud%s unchanged, %d walked%s%s%s",
	    total, total == 1 ? "" : "s", *by ? " (" : "", by, *by ? ")" : "",
	    (double)(now_ns() - k->started) / 1e9, k->nsame, k->nsame == 1 ? "y" : "ies",
	    k->nwalked + k->nocounts, k->full ? " (a full walk: " : "", k->full ? k->why : "",
	    k->full ? ")" : "");
}

int
known_nocounts(const struct source *src)
{
	return src->known ? src->known->nocounts : 0;
}

void
known_free(struct source *src)
{
	struct known *k = src->known;

	if (!k)
		return;
	for (size_t i = 0; i < k->studies.cap; i++) {
		struct known_study *ks = k->studies.slot[i].val;

		if (!k->studies.slot[i].key)
			continue;
		free((char *)k->studies.slot[i].key);
		free(ks->patient);
		free(ks->series);
		free(ks);
	}
	htab_free(&k->studies);
	for (int i = 0; i < k->nwalked; i++) {
		free(k->walked[i].patient);
		free(k->walked[i].uid);
	}
	free(k->walked);
	free(k->settings);
	free(k->why);
	free(k);
	src->known = NULL;
}
