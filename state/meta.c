/*
 * meta.c - the metadata stage's rows and the omop stage's ids and rows
 * (schema 6), the records of archive entries (schema 7); state.h has what
 * they hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "state-int.h"
#include "util.h"

int
state_meta_delete(struct state *st, const char *series_uid)
{
	return EXEC(st, "DELETE FROM metadata WHERE series_uid = $1", series_uid);
}

int
state_meta_put(struct state *st, const struct series *s, const struct meta_row *rows, int n)
{
	if (state_meta_delete(st, s->uid) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (EXEC(st, "INSERT INTO metadata (series_uid, sop_uid, patient_id, study_uid, header)"
		    " VALUES ($1, $2, $3, $4, $5)",
		    s->uid, rows[i].sop, s->patient->id, s->study, rows[i].json) < 0)
			return -1;
	return 0;
}

struct meta_cb {
	int (*fn)(void *arg, const char *sop, const char *json);
	void *arg;
};

static int
meta_row(void *arg, int ncol, const char *const *val)
{
	struct meta_cb *cb = arg;

	return ncol < 2 || !val[0] || !val[1] ? 0 : cb->fn(cb->arg, val[0], val[1]);
}

int
state_meta_get(struct state *st, const char *series_uid,
    int (*fn)(void *arg, const char *sop, const char *json), void *arg)
{
	struct meta_cb cb = { fn, arg };

	/* header::text: PostgreSQL's jsonb prints itself (keys reordered,
	 * ", " and ": "), which is still the same JSON. */
	return QUERY(st, st->db->ops->dialect == STORE_PG ?
	    "SELECT sop_uid, header::text FROM metadata WHERE series_uid = $1 ORDER BY sop_uid" :
	    "SELECT sop_uid, header FROM metadata WHERE series_uid = $1 ORDER BY sop_uid",
	    meta_row, &cb, series_uid);
}

int
state_meta_first(struct state *st, const char *series_uid,
    int (*fn)(void *arg, const char *sop, const char *json), void *arg)
{
	struct meta_cb cb = { fn, arg };

	return QUERY(st, st->db->ops->dialect == STORE_PG ?
	    "SELECT sop_uid, header::text FROM metadata WHERE series_uid = $1 ORDER BY sop_uid LIMIT 1" :
	    "SELECT sop_uid, header FROM metadata WHERE series_uid = $1 ORDER BY sop_uid LIMIT 1",
	    meta_row, &cb, series_uid);
}

int
state_omop_id(struct state *st, const char *kind, const char *uid, int64_t *id)
{
	long v = -1;

	if (QUERY(st, "SELECT id FROM omop_id WHERE kind = $1 AND uid = $2", row_int, &v,
	    kind, uid) < 0)
		return -1;
	if (v >= 0) {
		*id = v;
		return 0;
	}
	/* Two processes giving out ids at once would both take max + 1:
	 * PostgreSQL's table lock orders them (SQLite has one writer). */
	if (st->db->ops->dialect == STORE_PG &&
	    EXEC(st, "LOCK TABLE omop_id IN SHARE ROW EXCLUSIVE MODE", NULL) < 0)
		return -1;
	if (EXEC(st, "INSERT INTO omop_id (kind, uid, id)"
	    " SELECT $1, $2, coalesce(max(id), 0) + 1 FROM omop_id WHERE kind = $1"
	    " ON CONFLICT (kind, uid) DO NOTHING", kind, uid) < 0 ||
	    QUERY(st, "SELECT id FROM omop_id WHERE kind = $1 AND uid = $2", row_int, &v,
	    kind, uid) < 0)
		return -1;
	if (v < 0) {
		errf(st->err, sizeof(st->err), "omop_id: no id for %s %s", kind, uid);
		return -1;
	}
	*id = v;
	return 0;
}

int
state_omop_put(struct state *st, const char *patient, const struct omop_row *rows, int n)
{
	if (EXEC(st, "DELETE FROM omop_row WHERE patient_id = $1", patient) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char id[24];

		if (EXEC(st, "INSERT INTO omop_row (tbl, id, patient_id, uid, line)"
		    " VALUES ($1, $2, $3, $4, $5)"
		    " ON CONFLICT (tbl, id) DO UPDATE SET patient_id = excluded.patient_id,"
		    " uid = excluded.uid, line = excluded.line",
		    rows[i].tbl, ints(rows[i].id, id), patient, rows[i].uid, rows[i].line) < 0)
			return -1;
	}
	return 0;
}

struct omop_cb {
	const char *tbl;
	int (*fn)(void *arg, const struct omop_row *r);
	void *arg;
};

static int
omop_row_cb(void *arg, int ncol, const char *const *val)
{
	struct omop_cb *cb = arg;
	struct omop_row r;

	if (ncol < 3 || !val[0] || !val[1] || !val[2])
		return 0;
	r = (struct omop_row){ .tbl = cb->tbl, .id = i64(val[0]), .uid = val[1], .line = val[2] };
	return cb->fn(cb->arg, &r);
}

int
state_omop_get(struct state *st, const char *tbl, const char *patient,
    int (*fn)(void *arg, const struct omop_row *r), void *arg)
{
	struct omop_cb cb = { tbl, fn, arg };

	if (patient)
		return QUERY(st, "SELECT id, uid, line FROM omop_row WHERE tbl = $1 AND patient_id = $2"
		    " ORDER BY id", omop_row_cb, &cb, tbl, patient);
	return QUERY(st, "SELECT id, uid, line FROM omop_row WHERE tbl = $1 ORDER BY id",
	    omop_row_cb, &cb, tbl);
}

int
state_zentry_put(struct state *st, const char *patient, const struct zentry_rec *rows, int n)
{
	if (EXEC(st, "DELETE FROM archive_entry WHERE patient_id = $1", patient) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		const struct zentry_rec *r = &rows[i];
		char sh[17], crc[24], size[24], csize[24], ch[17];

		hex64(r->src_hash, sh);
		hex64(r->comp_hash, ch);
		if (EXEC(st, "INSERT INTO archive_entry (patient_id, name, src_hash, crc, size,"
		    " comp_size, comp_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)", patient, r->name,
		    sh, ints(r->crc, crc), ints(r->size, size), ints(r->comp_size, csize), ch) < 0)
			return -1;
	}
	return 0;
}

struct zentry_cb {
	int (*fn)(void *arg, const struct zentry_rec *r);
	void *arg;
};

static int
zentry_row(void *arg, int ncol, const char *const *val)
{
	struct zentry_cb *cb = arg;
	struct zentry_rec r;

	if (ncol < 6 || !val[0] || !val[1] || !val[5])
		return 0;
	r.name = val[0];
	r.src_hash = unhex64(val[1]);
	r.crc = (uint32_t)i64(val[2]);
	r.size = i64(val[3]);
	r.comp_size = i64(val[4]);
	r.comp_hash = unhex64(val[5]);
	return cb->fn(cb->arg, &r);
}

int
state_zentry_get(struct state *st, const char *patient,
    int (*fn)(void *arg, const struct zentry_rec *r), void *arg)
{
	struct zentry_cb cb = { fn, arg };

	return QUERY(st, "SELECT name, src_hash, crc, size, comp_size, comp_hash"
	    " FROM archive_entry WHERE patient_id = $1", zentry_row, &cb, patient);
}
