/*
 * forms.c - the forms stage's submissions (table form_sub, schema 8);
 * state.h has what they hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include "state-int.h"
#include "util.h"

int
state_form_put(struct state *st, const char *form, const struct form_sub *s)
{
	char id[24];

	return EXEC(st, "INSERT INTO form_sub (form, id, submitted, body, deleted)"
	    " VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (form, id) DO UPDATE SET"
	    " submitted = excluded.submitted, body = excluded.body, deleted = NULL",
	    form, ints(s->id, id), s->submitted, s->json);
}

int
state_form_delete(struct state *st, const char *form, int64_t id, int64_t when)
{
	char i[24], w[24];

	return EXEC(st, "UPDATE form_sub SET deleted = $3 WHERE form = $1 AND id = $2",
	    form, ints(id, i), ints(when, w));
}

struct stats {
	int64_t count;
	char *latest;
};

static int
stats_row(void *arg, int ncol, const char *const *val)
{
	struct stats *s = arg;

	if (ncol >= 2) {
		s->count = i64(val[0]);
		s->latest = val[1] ? xstrdup(val[1]) : NULL;
	}
	return 0;
}

int
state_form_stats(struct state *st, const char *form, int64_t *count, char **latest)
{
	struct stats s = { 0, NULL };

	if (QUERY(st, "SELECT count(CASE WHEN deleted IS NULL THEN 1 END), max(submitted)"
	    " FROM form_sub WHERE form = $1", stats_row, &s, form) < 0)
		return -1;
	*count = s.count;
	*latest = s.latest;
	return 0;
}

struct sub_cb {
	int (*fn)(void *arg, const struct form_sub *s);
	void *arg;
};

static int
sub_row(void *arg, int ncol, const char *const *val)
{
	struct sub_cb *cb = arg;
	struct form_sub s;

	if (ncol < 4 || !val[2])
		return 0;
	s.id = i64(val[0]);
	s.submitted = val[1];
	s.json = val[2];
	s.deleted = i64(val[3]);
	return cb->fn(cb->arg, &s);
}

int
state_form_get(struct state *st, const char *form, int deleted,
    int (*fn)(void *arg, const struct form_sub *s), void *arg)
{
	struct sub_cb cb = { fn, arg };

	/* body::text: PostgreSQL's jsonb prints itself, the same JSON. */
	return QUERY(st, st->db->ops->dialect == STORE_PG ?
	    (deleted ? "SELECT id, submitted, body::text, deleted FROM form_sub WHERE form = $1"
	    " ORDER BY id" : "SELECT id, submitted, body::text, deleted FROM form_sub WHERE"
	    " form = $1 AND deleted IS NULL ORDER BY id") :
	    (deleted ? "SELECT id, submitted, body, deleted FROM form_sub WHERE form = $1"
	    " ORDER BY id" : "SELECT id, submitted, body, deleted FROM form_sub WHERE"
	    " form = $1 AND deleted IS NULL ORDER BY id"), sub_row, &cb, form);
}
