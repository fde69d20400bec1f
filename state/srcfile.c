/*
 * srcfile.c - the folder source's cache of file headers, the src_file
 * table (state.c has the schema): what each file of the tree held when
 * its size and mtime were last seen, so that a rescan reads only the
 * files that changed.
 */
#include "state-int.h"

/* The columns of a src_file row, in the order load_srcfile reads them. */
#define SRCFILE_FIELDS "path, size, mtime, sop_uid, series_uid, study_uid, patient_id," \
	" modality, study_date, sop_class, error, series_number, series_desc"

struct srcload {
	void (*fn)(void *, struct srcfile *);
	void *arg;
};

static int
load_srcfile(void *arg, int ncol, const char *const *v)
{
	struct srcload *l = arg;
	struct srcfile f = {
		.path = (char *)v[0], .size = i64(v[1]), .mtime = i64(v[2]),
		.sop = (char *)v[3], .series = (char *)v[4], .study = (char *)v[5],
		.patient = (char *)v[6], .modality = (char *)v[7], .date = (char *)v[8],
		.sop_class = (char *)v[9], .error = (char *)v[10],
		.number = (char *)v[11], .desc = (char *)v[12],
	};

	l->fn(l->arg, &f);
	return 0;
}

int
state_srcfile_load(struct state *st, void (*fn)(void *arg, struct srcfile *f), void *arg)
{
	struct srcload l = { fn, arg };

	if (!st->db)
		return 0;
	return QUERY(st, "SELECT " SRCFILE_FIELDS " FROM src_file", load_srcfile, &l, NULL);
}

int
state_srcfile_put(struct state *st, const struct srcfile *f)
{
	char sz[24], mt[24];

	return EXEC(st, "INSERT INTO src_file (" SRCFILE_FIELDS ")"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
	    " ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime,"
	    " sop_uid = excluded.sop_uid, series_uid = excluded.series_uid,"
	    " study_uid = excluded.study_uid, patient_id = excluded.patient_id,"
	    " modality = excluded.modality, study_date = excluded.study_date,"
	    " sop_class = excluded.sop_class, error = excluded.error,"
	    " series_number = excluded.series_number, series_desc = excluded.series_desc",
	    f->path, ints(f->size, sz), ints(f->mtime, mt), f->sop, f->series, f->study,
	    f->patient, f->modality, f->date, f->sop_class, f->error, f->number, f->desc);
}

int
state_srcfile_delete(struct state *st, const char *path)
{
	return EXEC(st, "DELETE FROM src_file WHERE path = $1", path);
}
