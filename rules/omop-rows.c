/*
 * omop-rows.c - what one omop job makes: each series' header read from
 * the state (its first instance's, DICOM JSON), and from them the rows,
 * a procedure_occurrence per study and an image_occurrence per series,
 * with the CDM's columns in the CDM's order.
 *
 * Dates: image_occurrence_date is the SeriesDate, else the StudyDate;
 * procedure_date the StudyDate, else the earliest of its series' dates;
 * procedure_datetime the StudyDate and StudyTime (to the second), NULL
 * without them.  The CDM requires the dates: a series without one, or
 * with one that is no date of the calendar, has no row (the job's summary
 * counts it).  procedure_concept_id is 0 (no standard procedure concept
 * follows from a DICOM header alone) and procedure_type_concept_id 32817,
 * EHR, as the MI-CDM's own ETL has it.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "omop-int.h"
#include "util.h"

/* procedure_type_concept_id: the record comes from an EHR. */
#define TYPE_EHR "32817"

/* The columns, in the CDM's order; the id and person_id first in both. */
enum { C_ID, C_PERSON };
enum { I_PROCEDURE = 2, I_VISIT, I_SITE, I_WADO, I_PATH, I_DATE, I_STUDY, I_SERIES, I_MODALITY };
enum { P_CONCEPT = 2, P_DATE, P_DATETIME, P_END_DATE, P_END_DATETIME, P_TYPE };
static const struct omop_col image_cols[] = {
	[C_ID] = { "image_occurrence_id", 1 }, [C_PERSON] = { "person_id", 1 },
	[I_PROCEDURE] = { "procedure_occurrence_id", 1 }, [I_VISIT] = { "visit_occurrence_id", 0 },
	[I_SITE] = { "anatomic_site_concept_id", 1 }, [I_WADO] = { "wadors_uri", 1 },
	[I_PATH] = { "local_path", 1 }, [I_DATE] = { "image_occurrence_date", 1 },
	[I_STUDY] = { "image_study_uid", 1 }, [I_SERIES] = { "image_series_uid", 1 },
	[I_MODALITY] = { "modality_concept_id", 1 },
};
static const struct omop_col procedure_cols[] = {
	[C_ID] = { "procedure_occurrence_id", 1 }, [C_PERSON] = { "person_id", 1 },
	[P_CONCEPT] = { "procedure_concept_id", 1 }, [P_DATE] = { "procedure_date", 1 },
	[P_DATETIME] = { "procedure_datetime", 1 }, [P_END_DATE] = { "procedure_end_date", 0 },
	[P_END_DATETIME] = { "procedure_end_datetime", 0 },
	[P_TYPE] = { "procedure_type_concept_id", 1 },
	{ "modifier_concept_id", 0 }, { "quantity", 0 }, { "provider_id", 0 },
	{ "visit_occurrence_id", 0 }, { "visit_detail_id", 0 }, { "procedure_source_value", 0 },
	{ "procedure_source_concept_id", 0 }, { "modifier_source_value", 0 },
};
const struct omop_table omop_tables[NTBL] = {
	[T_PROCEDURE] = { "procedure_occurrence", procedure_cols, (int)LEN(procedure_cols) },
	[T_IMAGE] = { "image_occurrence", image_cols, (int)LEN(image_cols) },
};

/* The number the n digits at s make. */
static int
digits(const char *s, int n)
{
	int v = 0;

	while (n--)
		v = v * 10 + *s++ - '0';
	return v;
}

/* DA "YYYYMMDD", a date of the calendar, as "YYYY-MM-DD" into out; 0, or -1. */
static int
da_iso(const char *s, char out[11])
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d;

	if (!s || strlen(s) != 8 || strspn(s, "0123456789") != 8)
		return -1;
	y = digits(s, 4);
	m = digits(s + 4, 2);
	d = digits(s + 6, 2);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
	    (m == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))))
		return -1;
	snprintf(out, 11, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
	return 0;
}

/* TM "HH[MM[SS[.F...]]]" as "HH:MM:SS" (to the second) into out; 0, or -1. */
static int
tm_iso(const char *s, char out[9])
{
	size_t n = s ? strspn(s, "0123456789") : 0;
	char d[6] = { '0', '0', '0', '0', '0', '0' };

	if ((n != 2 && n != 4 && n != 6) ||
	    (s[n] && (n != 6 || s[n] != '.' || s[n + 1 + strspn(s + n + 1, "0123456789")])))
		return -1;
	memcpy(d, s, n);
	if (digits(d, 2) > 23 || digits(d + 2, 2) > 59 || digits(d + 4, 2) > 59)
		return -1;
	snprintf(out, 9, "%.2s:%.2s:%.2s", d, d + 2, d + 4);
	return 0;
}

/* The first value of tag in a DICOM JSON header, if a short string. */
static char *
tag_str(json_t *root, const char *tag)
{
	const char *v = json_string_value(json_array_get(json_object_get(json_object_get(root, tag),
	    "Value"), 0));

	return v && strlen(v) <= 256 ? xstrdup(v) : NULL;
}

static int
header_cb(void *arg, const char *sop, const char *json)
{
	(void)sop;
	*(char **)arg = xstrdup(json);
	return 0;
}

/* Series o's header, from the state, into o, and into its study u what
 * u lacks; -1 with err. */
static int
read_header(struct state *st, struct oser *o, struct ostudy *u, char *err, size_t errlen)
{
	char *json = NULL, *v;
	json_error_t je;
	json_t *root;

	if (state_meta_first(st, o->uid, header_cb, &json) < 0) {
		errf(err, errlen, "series %s: %s", o->uid, st->err);
		return -1;
	}
	/* No instance, so no header: no date either, so no row. */
	if (!json)
		return 0;
	root = json_loads(json, 0, &je);
	free(json);
	if (!json_is_object(root)) {
		errf(err, errlen, "series %s: the stored header is not DICOM JSON: %s", o->uid,
		    root ? "not an object" : je.text);
		json_decref(root);
		return -1;
	}
	o->modality = tag_str(root, "00080060");
	o->body = tag_str(root, "00180015");
	if (!u->date[0]) {
		v = tag_str(root, "00080020");
		if (da_iso(v, u->date) < 0)
			u->date[0] = '\0';
		free(v);
		v = tag_str(root, "00080030");
		if (!u->date[0] || tm_iso(v, u->time) < 0)
			u->time[0] = '\0';
		free(v);
	}
	v = tag_str(root, "00080021");
	if (da_iso(v, o->date) < 0)
		memcpy(o->date, u->date, sizeof(o->date));
	free(v);
	json_decref(root);
	return 0;
}

int
rows_gather(struct state *st, struct series *const *with, int n, struct oin *in, char *err,
    size_t errlen)
{
	in->ser = xcalloc((size_t)n + 1, sizeof(*in->ser));
	in->stu = xcalloc((size_t)n + 1, sizeof(*in->stu));
	for (int i = 0; i < n; i++) {
		const struct series *s = with[i];
		struct oser *o = &in->ser[in->nser++];

		/* with is sorted by study: a new one starts its study. */
		if (!in->nstu || strcmp(in->stu[in->nstu - 1].uid, s->study) != 0)
			in->stu[in->nstu++].uid = xstrdup(s->study);
		o->uid = xstrdup(s->uid);
		o->study = xstrdup(s->study);
		o->dir = xstrdup(s->dir);
		o->study_ix = in->nstu - 1;
		if (read_header(st, o, &in->stu[in->nstu - 1], err, errlen) < 0)
			return -1;
	}
	/* The ids, given once for good, in one transaction. */
	if (state_begin(st) < 0)
		goto err;
	for (int i = 0; i < in->nstu; i++)
		if (state_omop_id(st, omop_tables[T_PROCEDURE].name, in->stu[i].uid, &in->stu[i].id) < 0)
			goto rollback;
	for (int i = 0; i < in->nser; i++)
		if (in->ser[i].date[0] &&
		    state_omop_id(st, omop_tables[T_IMAGE].name, in->ser[i].uid, &in->ser[i].id) < 0)
			goto rollback;
	if (state_commit(st) < 0)
		goto rollback;
	return 0;
rollback:
	state_rollback(st);
err:
	errf(err, errlen, "omop ids: %s", st->err);
	return -1;
}

static char *
num(int64_t v)
{
	return xasprintf("%lld", (long long)v);
}

/* A new row of in's, its values all NULL so far. */
static struct orow *
row_new(struct oin *in, enum omop_tbl t, int64_t id, const char *uid)
{
	struct orow *r = &in->rows[in->nrows++];

	r->tbl = t;
	r->id = id;
	r->uid = uid;
	r->val = xcalloc((size_t)omop_tables[t].ncol, sizeof(*r->val));
	r->val[C_ID] = num(id);
	r->val[C_PERSON] = num(in->person);
	return r;
}

static int
row_cmp(const void *a, const void *b)
{
	const struct orow *x = a, *y = b;

	if (x->tbl != y->tbl)
		return x->tbl < y->tbl ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* in's rows: a procedure per study, an image per series, each with a
 * date (the CDM requires one); by table, then id. */
void
rows_build(struct oin *in, const struct vocab *v, const char *wado)
{
	in->rows = xcalloc((size_t)(in->nser + in->nstu) + 1, sizeof(*in->rows));
	for (int k = 0; k < in->nstu; k++) {
		const struct ostudy *u = &in->stu[k];
		const char *date = u->date[0] ? u->date : NULL;
		struct orow *r;

		/* No StudyDate: the earliest of its series' dates. */
		for (int i = 0; i < in->nser && !u->date[0]; i++)
			if (in->ser[i].study_ix == k && in->ser[i].date[0] &&
			    (!date || strcmp(in->ser[i].date, date) < 0))
				date = in->ser[i].date;
		if (!date)
			continue;
		r = row_new(in, T_PROCEDURE, u->id, u->uid);
		r->val[P_CONCEPT] = xstrdup("0");
		r->val[P_DATE] = xstrdup(date);
		if (u->date[0] && u->time[0])
			r->val[P_DATETIME] = xasprintf("%s %s", u->date, u->time);
		r->val[P_TYPE] = xstrdup(TYPE_EHR);
	}
	for (int i = 0; i < in->nser; i++) {
		const struct oser *o = &in->ser[i];
		struct orow *r;

		if (!o->date[0]) {
			in->nodate++;
			continue;
		}
		r = row_new(in, T_IMAGE, o->id, o->uid);
		r->val[I_PROCEDURE] = num(in->stu[o->study_ix].id);
		r->val[I_SITE] = num(vocab_site(v, o->body));
		if (wado)
			r->val[I_WADO] = xasprintf("%s/studies/%s/series/%s", wado, o->study, o->uid);
		r->val[I_PATH] = xstrdup(o->dir);
		r->val[I_DATE] = xstrdup(o->date);
		r->val[I_STUDY] = xstrdup(o->study);
		r->val[I_SERIES] = xstrdup(o->uid);
		r->val[I_MODALITY] = num(vocab_modality(v, o->modality));
	}
	qsort(in->rows, (size_t)in->nrows, sizeof(*in->rows), row_cmp);
	for (int i = 0; i < in->nrows; i++)
		in->rows[i].line = csv_line(in->rows[i].val, omop_tables[in->rows[i].tbl].ncol);
}

/* Are in's rows those the state has? */
int
rows_same(const struct oin *in)
{
	int i = 0;

	for (int t = 0; t < NTBL; t++)
		for (int k = 0; k < in->prev[t].n; k++, i++)
			if (i >= in->nrows || in->rows[i].tbl != (enum omop_tbl)t ||
			    in->rows[i].id != in->prev[t].id[k] ||
			    strcmp(in->rows[i].line, in->prev[t].line[k]) != 0)
				return 0;
	return i == in->nrows;
}

/* The ids of the state's rows of table t that in no longer makes, into
 * gone (prev[t].n at most); how many. */
int
rows_gone(const struct oin *in, int t, int64_t *gone)
{
	const struct oprev *pv = &in->prev[t];
	const struct orow *r = in->rows, *end = in->rows + in->nrows;
	int n = 0;

	/* Both by table and id: one walk. */
	while (r < end && r->tbl < (enum omop_tbl)t)
		r++;
	for (int k = 0; k < pv->n; k++) {
		while (r < end && r->tbl == (enum omop_tbl)t && r->id < pv->id[k])
			r++;
		if (r == end || r->tbl != (enum omop_tbl)t || r->id != pv->id[k])
			gone[n++] = pv->id[k];
	}
	return n;
}

void
oin_free(struct oin *in)
{
	for (int i = 0; i < in->nser; i++) {
		free(in->ser[i].uid);
		free(in->ser[i].study);
		free(in->ser[i].dir);
		free(in->ser[i].modality);
		free(in->ser[i].body);
	}
	free(in->ser);
	for (int i = 0; i < in->nstu; i++)
		free(in->stu[i].uid);
	free(in->stu);
	for (int t = 0; t < NTBL; t++) {
		for (int k = 0; k < in->prev[t].n; k++)
			free(in->prev[t].line[k]);
		free(in->prev[t].id);
		free(in->prev[t].line);
	}
	for (int i = 0; i < in->nrows; i++)
		orow_free(&in->rows[i]);
	free(in->rows);
	free(in->settings);
	free(in);
}

void
orow_free(struct orow *r)
{
	for (int i = 0; r->val && i < omop_tables[r->tbl].ncol; i++)
		free(r->val[i]);
	free(r->val);
	free(r->line);
}

