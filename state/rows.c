/*
 * rows.c - the catalog's statements, for every backend: loading the
 * patients, series and their records at the start of a run, and saving
 * what the query and each job learned (state.c has the schema they use).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "names.h"
#include "state-int.h"
#include "util.h"

void
fill_archive(struct catalog *c, struct patient *p, const char *const *v)
{
	struct archive *a = &p->ar;

	if (p->has_ar) {
		free(a->path);
		free(a->series);
	}
	memset(a, 0, sizeof(*a));
	catalog_set(&p->ar_error, v[8]);
	catalog_set(&p->query_error, v[9]);
	/* A record missing a part (edited by hand) is no record: rebuilt. */
	p->has_ar = v[0] && v[3] && v[4];
	if (!p->has_ar)
		return;
	a->path = xstrdup(v[0]);
	a->nseries = 0;   /* v[1] is unused: the words of the series list */
	for (const char *w = v[4]; *w; w++)
		a->nseries += *w != ' ' && (w == v[4] || w[-1] == ' ');
	a->sig = unhex64(v[2]);
	a->settings = catalog_intern(c, v[3]);
	a->series = xstrdup(v[4]);
	a->size = i64(v[5]);
	a->mtime = i64(v[6]);
	a->hash = unhex64(v[7]);
}

void
fill_series(struct catalog *c, struct series *s, const char *const *v)
{
	catalog_iset(c, &s->modality, v[0]);
	catalog_iset(c, &s->sop_class, v[1]);
	catalog_iset(c, &s->study_date, v[2]);
	s->expected = (int)i64(v[3]);
	s->gone = (int)i64(v[4]);
	s->ninst = (int)i64(v[5]);
	s->set_sig = unhex64(v[6]);
	s->valid_sig = unhex64(v[7]);
	s->dir_mtime = i64(v[8]);
	catalog_set(&s->error, v[9]);
	catalog_iset(c, &s->number, v[10]);
	catalog_iset(c, &s->desc, v[11]);
}

static int
load_patient(void *arg, int ncol, const char *const *v)
{
	struct catalog *c = arg;
	char *id = name_decode(v[0]);

	if (!id)
		return 0;   /* not ours: skip rather than guess */
	fill_archive(c, catalog_patient(c, id), v + 1);
	free(id);
	return 0;
}

/* What load_series saw last: a patient's series come one after the
 * other, so most rows need no decoding and no lookup of their patient. */
struct series_load {
	struct catalog *c;
	char *name;               /* patient_id column of the last row */
	struct patient *p;        /* its patient */
};

static int
load_series(void *arg, int ncol, const char *const *v)
{
	struct series_load *l = arg;
	struct series *s;

	if (!v[0] || !v[1] || !v[2] || !uid_is_safe(v[0]) || !uid_is_safe(v[2]))
		return 0;
	if (!l->name || strcmp(l->name, v[1]) != 0) {
		char *id = name_decode(v[1]);

		if (!id)
			return 0;
		free(l->name);
		l->name = xstrdup(v[1]);
		l->p = catalog_patient(l->c, id);
		free(id);
	}
	s = catalog_series(l->c, l->p, v[2], v[0]);
	fill_series(l->c, s, v + 3);
	s->dirty = 0;
	return 0;
}

/* A validate record (key, input_sig) into its series, if loaded. */
static int
load_valid(void *arg, int ncol, const char *const *v)
{
	struct series *s = v[0] ? catalog_find_series(arg, v[0]) : NULL;

	(void)ncol;
	if (s)
		s->valid_sig = unhex64(v[1]);
	return 0;
}

int
state_load(struct state *st, struct catalog *c)
{
	struct series_load l = { .c = c };
	int rc;

	if (!st->db)
		return 0;
	if (QUERY(st, "SELECT patient.id, t.out_path, NULL, t.input_sig, t.settings_sig,"
	    " t.detail, t.out_size, t.out_mtime, t.out_hash, t.error, patient.query_error"
	    " FROM patient LEFT JOIN target t ON t.stage = '" STAGE_ARCHIVE "'"
	    " AND t.key = patient.id", load_patient, c, NULL) < 0)
		return -1;
	/* The series, then their validate records in one scan of the stage's
	 * rows, matched here by UID: a join looks each up in two B-trees,
	 * a sixth of a no-op run. */
	rc = QUERY(st, "SELECT series.uid, series.patient_id, series.study_uid, "
	    SERIES_COLS("NULL") " FROM series", load_series, &l, NULL);

	free(l.name);
	if (rc < 0 || QUERY(st, "SELECT key, input_sig FROM target WHERE stage = '" STAGE_VALID "'",
	    load_valid, c, NULL) < 0)
		return -1;
	catalog_sort(c);
	return 0;
}

struct instvec {
	struct instance *v;
	int n, cap;
};

static int
load_instance(void *arg, int ncol, const char *const *v)
{
	struct instvec *iv = arg;
	struct instance *in;

	if (!v[0] || !uid_is_safe(v[0]))
		return 0;
	if (iv->n == iv->cap) {
		iv->cap = iv->cap ? 2 * iv->cap : 64;
		iv->v = xreallocarray(iv->v, (size_t)iv->cap, sizeof(*iv->v));
	}
	in = &iv->v[iv->n++];
	in->sop = xstrdup(v[0]);
	in->size = i64(v[1]);
	in->mtime = i64(v[2]);
	in->hash = unhex64(v[3]);
	in->ok = (int)i64(v[4]);
	return 0;
}

int
state_load_instances(struct state *st, const struct series *s, struct instance **inst, int *n)
{
	struct instvec iv = { 0 };

	*inst = NULL;
	*n = 0;
	if (!st->db)
		return 0;
	if (QUERY(st, "SELECT sop_uid, size, mtime, hash, ok FROM instance WHERE series_uid = $1",
	    load_instance, &iv, s->uid) < 0) {
		instance_free(iv.v, iv.n);
		return -1;
	}
	*inst = iv.v;
	*n = iv.n;
	return 0;
}

struct sizes {
	void (*fn)(void *, const char *, int64_t, int64_t);
	void *arg;
};

static int
series_size(void *arg, int ncol, const char *const *v)
{
	struct sizes *z = arg;

	if (v[0])
		z->fn(z->arg, v[0], i64(v[1]), i64(v[2]));
	return 0;
}

int
state_series_sizes(struct state *st,
    void (*fn)(void *arg, const char *uid, int64_t n, int64_t bytes), void *arg)
{
	struct sizes z = { fn, arg };

	if (!st->db)
		return 0;
	return QUERY(st, "SELECT series_uid, count(*), sum(size) FROM instance GROUP BY series_uid",
	    series_size, &z, NULL);
}

/* The patient row and its archive record: the zip target's. */
int
state_save_patient(struct state *st, const struct patient *p)
{
	const struct archive *a = &p->ar;
	struct target_rec r = { .error = p->ar_error };

	if (EXEC(st, "INSERT INTO patient (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
	    p->name) < 0)
		return -1;
	if (!p->has_ar && !p->ar_error)
		return state_delete_target(st, STAGE_ARCHIVE, p->name);
	if (p->has_ar) {
		r.input_sig = a->sig;
		r.settings = a->settings;
		r.path = a->path;
		r.size = a->size;
		r.mtime = a->mtime;
		r.hash = a->hash;
		r.detail = a->series;
	}
	return state_save_target(st, STAGE_ARCHIVE, p->name, &r);
}

int
state_save_series(struct state *st, const struct series *s, const struct instance *inst, int n)
{
	char exp[24], gone[24], ninst[24], dm[24], ss[17];
	const struct target_rec r = { .input_sig = s->valid_sig };

	if (EXEC(st, "INSERT INTO series (uid, patient_id, study_uid, modality, sop_class,"
	    " study_date, expected, gone, ninst, set_sig, dir_mtime, error,"
	    " series_number, series_desc)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
	    " ON CONFLICT (uid) DO UPDATE SET ninst = excluded.ninst,"
	    " set_sig = excluded.set_sig,"
	    " dir_mtime = excluded.dir_mtime, error = excluded.error,"
	    " expected = CASE WHEN series.expected < excluded.expected"
	    " THEN excluded.expected ELSE series.expected END",
	    s->uid, s->patient->name, s->study, s->modality, s->sop_class, s->study_date,
	    ints(s->expected, exp), ints(s->gone, gone), ints(s->ninst, ninst),
	    hexs(s->set_sig, ss), ints(s->dir_mtime, dm), s->error,
	    s->number, s->desc) < 0)
		return -1;
	/* The validate record: the set it found good, if any. */
	if (s->valid_sig ? state_save_target(st, STAGE_VALID, s->uid, &r) < 0 :
	    state_delete_target(st, STAGE_VALID, s->uid) < 0)
		return -1;
	if (!inst)
		return 0;
	if (EXEC(st, "DELETE FROM instance WHERE series_uid = $1", s->uid) < 0)
		return -1;
	return state_put_instances(st, s, inst, n);
}

int
state_put_instances(struct state *st, const struct series *s, const struct instance *inst, int n)
{
	for (int i = 0; i < n; i++) {
		char sz[24], mt[24], h[17], ok[24];

		if (EXEC(st, "INSERT INTO instance (series_uid, sop_uid, size, mtime, hash, ok)"
		    " VALUES ($1, $2, $3, $4, $5, $6)"
		    " ON CONFLICT (series_uid, sop_uid) DO UPDATE SET size = excluded.size,"
		    " mtime = excluded.mtime, hash = excluded.hash, ok = excluded.ok",
		    s->uid, inst[i].sop, ints(inst[i].size, sz), ints(inst[i].mtime, mt),
		    hexs(inst[i].hash ? inst[i].hash : 1, h), ints(inst[i].ok, ok)) < 0)
			return -1;
	}
	return 0;
}

/* What the query learnt of a series: the catalog fields only. */
static int
save_catalog_row(struct state *st, const struct series *s)
{
	char exp[24], gone[24];

	return EXEC(st, "INSERT INTO series (uid, patient_id, study_uid, modality, sop_class,"
	    " study_date, expected, gone, series_number, series_desc)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
	    " ON CONFLICT (uid) DO UPDATE SET patient_id = excluded.patient_id,"
	    " study_uid = excluded.study_uid, modality = excluded.modality,"
	    " sop_class = excluded.sop_class, study_date = excluded.study_date,"
	    " expected = excluded.expected, gone = excluded.gone,"
	    " series_number = excluded.series_number, series_desc = excluded.series_desc",
	    s->uid, s->patient->name, s->study, s->modality, s->sop_class, s->study_date,
	    ints(s->expected, exp), ints(s->gone, gone), s->number, s->desc);
}

/* Every dirty patient and series, in the catalog's order (sorted): two
 * processes saving at once take the rows' locks in the same order. */
int
state_save_catalog(struct state *st, struct catalog *c)
{
	if (state_begin(st) < 0)
		return -1;
	for (int i = 0; i < c->np; i++) {
		struct patient *p = c->p[i];
		int any = p->ar_dirty || p->query_dirty;

		for (int j = 0; j < p->nseries; j++)
			any |= p->series[j]->dirty;
		if (!any)
			continue;
		if (EXEC(st, "INSERT INTO patient (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
		    p->name) < 0)
			goto bad;
		/* The query's field of the patient row: its jobs write the rest. */
		if (p->query_dirty && EXEC(st, "UPDATE patient SET query_error = $2 WHERE id = $1",
		    p->name, p->query_error) < 0)
			goto bad;
		for (int j = 0; j < p->nseries; j++)
			if (p->series[j]->dirty && save_catalog_row(st, p->series[j]) < 0)
				goto bad;
	}
	if (state_commit(st) < 0)
		goto bad;
	for (int i = 0; i < c->np; i++) {
		c->p[i]->ar_dirty = 0;
		c->p[i]->query_dirty = 0;
		for (int j = 0; j < c->p[i]->nseries; j++)
			c->p[i]->series[j]->dirty = 0;
	}
	return 0;
bad:
	state_rollback(st);
	return -1;
}
