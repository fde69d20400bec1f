/*
 * notice.c - what runs did, kept for the digests (table notice, schema 8):
 * one row per notice, with the channels still to send it as bits.
 */
#include <stdint.h>
#include "notify.h"
#include "state-int.h"

int
state_notice_put(struct state *st, const struct notice *n, int pending)
{
	char at[24], kind[24], num[24], size[24], pend[24];

	return EXEC(st, "INSERT INTO notice (at, kind, patient_id, what, detail, n, size, pending)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", ints(n->at, at), ints(n->kind, kind),
	    n->patient, n->what, n->detail, ints(n->n, num), ints(n->size, size),
	    ints(pending, pend));
}

struct notice_cb {
	int (*fn)(void *arg, const struct notice *n);
	void *arg;
};

static int
notice_row(void *arg, int ncol, const char *const *val)
{
	struct notice_cb *cb = arg;
	struct notice n;

	if (ncol < 8)
		return 0;
	n.id = i64(val[0]);
	n.at = i64(val[1]);
	n.kind = (enum notice_kind)i64(val[2]);
	n.patient = val[3];
	n.what = val[4];
	n.detail = val[5];
	n.n = i64(val[6]);
	n.size = i64(val[7]);
	return cb->fn(cb->arg, &n);
}

int
state_notice_get(struct state *st, int channel,
    int (*fn)(void *arg, const struct notice *n), void *arg)
{
	struct notice_cb cb = { fn, arg };
	char ch[24];

	return QUERY(st, "SELECT id, at, kind, patient_id, what, detail, n, size FROM notice"
	    " WHERE (pending & $1) <> 0 ORDER BY id", notice_row, &cb, ints(channel, ch));
}

int
state_notice_sent(struct state *st, int channel, const int64_t *ids, int n)
{
	char ch[24], lo[24], hi[24];

	/* By the ids read, not up to the largest: in PostgreSQL a notice with
	 * a smaller id may commit after those read, unsent.  They were read
	 * in id order, so each run of consecutive ids is one statement (one
	 * for a digest, as a rule). */
	for (int i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && ids[j] == ids[j - 1] + 1; j++)
			;
		if (EXEC(st, "UPDATE notice SET pending = pending & ~CAST($1 AS INTEGER)"
		    " WHERE id >= $2 AND id <= $3", ints(channel, ch), ints(ids[i], lo),
		    ints(ids[j - 1], hi)) < 0)
			return -1;
	}
	return EXEC(st, "DELETE FROM notice WHERE pending = 0");
}
