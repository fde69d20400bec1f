/*
 * target.c - the generic target records (table target, schema 5): one row
 * per target of a stage, keyed by (stage, key), like samurai's
 * .ninja_log entry: what it was made from (input_sig, settings_sig), what
 * it made (out_*), its last error and when.  A new stage needs no
 * migration and no catalog column: it reads and writes its rows here.
 */
#include <stdint.h>
#include <stdlib.h>
#include "state-int.h"
#include "util.h"

int
state_save_target(struct state *st, const char *stage, const char *key,
    const struct target_rec *r)
{
	char sig[17], sz[24], mt[24], h[17], made[24];

	return EXEC(st, "INSERT INTO target (stage, key, input_sig, settings_sig, out_path,"
	    " out_size, out_mtime, out_hash, detail, error, made)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
	    " ON CONFLICT (stage, key) DO UPDATE SET input_sig = excluded.input_sig,"
	    " settings_sig = excluded.settings_sig, out_path = excluded.out_path,"
	    " out_size = excluded.out_size, out_mtime = excluded.out_mtime,"
	    " out_hash = excluded.out_hash, detail = excluded.detail,"
	    " error = excluded.error, made = excluded.made",
	    stage, key, hexs(r->input_sig, sig), r->settings, r->path,
	    r->path ? ints(r->size, sz) : NULL, r->path ? ints(r->mtime, mt) : NULL,
	    hexs(r->hash, h), r->detail, r->error, ints(r->made ? r->made : now_ns(), made));
}

int
state_delete_target(struct state *st, const char *stage, const char *key)
{
	return EXEC(st, "DELETE FROM target WHERE stage = $1 AND key = $2", stage, key);
}

#define TARGET_FIELDS "input_sig, settings_sig, out_path, out_size, out_mtime," \
	" out_hash, detail, error, made"

/* The columns TARGET_FIELDS as a record; its strings are v's. */
static struct target_rec
target_row(const char *const *v)
{
	return (struct target_rec){
		.input_sig = unhex64(v[0]), .settings = v[1], .path = v[2],
		.size = i64(v[3]), .mtime = i64(v[4]), .hash = unhex64(v[5]),
		.detail = v[6], .error = v[7], .made = i64(v[8]),
	};
}

struct target_load {
	void (*fn)(void *arg, const struct target_rec *r);
	void (*each)(void *arg, const char *key, const struct target_rec *r);
	void *arg;
	int found;
};

static int
load_target(void *arg, int ncol, const char *const *v)
{
	struct target_load *l = arg;
	struct target_rec r = target_row(v);

	l->found = 1;
	l->fn(l->arg, &r);
	return 0;
}

static int
load_targets(void *arg, int ncol, const char *const *v)
{
	struct target_load *l = arg;
	struct target_rec r = target_row(v + 1);

	if (v[0])
		l->each(l->arg, v[0], &r);
	return 0;
}

int
state_load_targets(struct state *st, const char *stage,
    void (*fn)(void *arg, const char *key, const struct target_rec *r), void *arg)
{
	struct target_load l = { .each = fn, .arg = arg };

	if (!st->db)
		return 0;
	return QUERY(st, "SELECT key, " TARGET_FIELDS " FROM target WHERE stage = $1",
	    load_targets, &l, stage);
}

int
state_load_target(struct state *st, const char *stage, const char *key,
    void (*fn)(void *arg, const struct target_rec *r), void *arg)
{
	struct target_load l = { .fn = fn, .arg = arg };

	if (!st->db)
		return 0;
	if (QUERY(st, "SELECT " TARGET_FIELDS " FROM target WHERE stage = $1 AND key = $2",
	    load_target, &l, stage, key) < 0)
		return -1;
	return l.found;
}

