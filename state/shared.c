/*
 * shared.c - what processes that share a store need of it: re-reading what
 * the others changed since state_load(), and the claims on jobs (the lease
 * table, schema version 2).  A job's row is inserted the first time it is
 * claimed, on its own; a claim is then one transaction: the row is locked
 * (PostgreSQL: FOR UPDATE SKIP LOCKED, so a row another transaction is
 * claiming reads as held; SQLite holds the whole file) and taken only when
 * free, ours or expired, its generation bumped.  Expiry is the store's
 * clock, whatever the hosts' clocks say.
 */
#include <stdio.h>
#include <string.h>
#include "state-int.h"

/* The claims' statements that differ: the store's clock in ms (expiry is
 * the database's time, whatever the hosts' clocks say), and how a SELECT
 * locks its row without waiting for one another transaction holds
 * (SQLite's BEGIN IMMEDIATE holds the whole file already). */
static const struct lease_sql {
	const char *claim;        /* a job's row, locked: owner, ms left, gen */
	const char *take;         /* make it ours for $3 ms; RETURNING gen */
	const char *renew;        /* extend every lease $1 holds by $2 ms */
} lease_sql[] = {
	[STORE_SQLITE] = {
		.claim = "SELECT owner, expires -"
		    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), gen"
		    " FROM lease WHERE job = $1",
		.take = "UPDATE lease SET owner = $2, expires ="
		    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + $3,"
		    " gen = gen + 1 WHERE job = $1 RETURNING gen",
		.renew = "UPDATE lease SET expires ="
		    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + $2"
		    " WHERE owner = $1",
	},
	[STORE_PG] = {
		.claim = "SELECT owner, expires -"
		    " CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT), gen"
		    " FROM lease WHERE job = $1 FOR UPDATE SKIP LOCKED",
		.take = "UPDATE lease SET owner = $2, expires ="
		    " CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT) + $3,"
		    " gen = gen + 1 WHERE job = $1 RETURNING gen",
		.renew = "UPDATE lease SET expires ="
		    " CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT) + $2"
		    " WHERE owner = $1",
	},
};

/* The claims' statements in st's dialect. */
static const struct lease_sql *
dialect_sql(const struct state *st)
{
	return &lease_sql[st->db->ops->dialect];
}

/* ---- what other processes changed ---------------------------------- */

/* What a reload callback fills in, and the catalog that interns for it. */
struct reload {
	struct catalog *c;
	void *obj;
};

static int
reload_series(void *arg, int ncol, const char *const *v)
{
	struct reload *r = arg;

	fill_series(r->c, r->obj, v);
	return 0;
}

int
state_reload_series(struct state *st, struct catalog *c, struct series *s)
{
	struct reload r = { c, s };

	if (!st->db)
		return 0;
	if (QUERY(st, "SELECT " SERIES_FIELDS " FROM series WHERE uid = $1",
	    reload_series, &r, s->uid) < 0)
		return -1;
	s->disk_checked = 0;   /* look at the folder again */
	return 0;
}

static int
reload_patient(void *arg, int ncol, const char *const *v)
{
	struct reload *r = arg;

	fill_archive(r->c, r->obj, v);
	return 0;
}

int
state_reload_patient(struct state *st, struct catalog *c, struct patient *p)
{
	struct reload r = { c, p };

	if (!st->db)
		return 0;
	return QUERY(st, "SELECT " ARCHIVE_FIELDS " FROM patient WHERE id = $1",
	    reload_patient, &r, p->name);
}

/* ---- claims ------------------------------------------------------------ */

struct claimrow {
	int found;
	char owner[256];
	int64_t left, gen;
};

static int
claim_row(void *arg, int ncol, const char *const *v)
{
	struct claimrow *r = arg;

	r->found = 1;
	snprintf(r->owner, sizeof(r->owner), "%s", v[0] ? v[0] : "");
	r->left = i64(v[1]);
	r->gen = i64(v[2]);
	return 0;
}

int
state_claim(struct state *st, const char *job, const char *owner, int64_t ms,
    int64_t *gen, char *holder, size_t holderlen)
{
	struct claimrow r = { 0 };
	char msbuf[24];
	long n;

	/* The job's row is made outside the transaction, the first time: an
	 * INSERT that meets another's uncommitted row waits for it, and the
	 * other may be frozen; a locked row is skipped. */
	for (int made = 0;; made = 1) {
		if (state_begin(st) < 0)
			return -1;
		if (QUERY(st, dialect_sql(st)->claim, claim_row, &r, job) < 0)
			goto bad;
		if (r.found || made)
			break;
		state_rollback(st);
		if (EXEC(st, "INSERT INTO lease (job) VALUES ($1) ON CONFLICT (job) DO NOTHING",
		    job) < 0)
			return -1;
	}
	if (!r.found || (r.owner[0] && strcmp(r.owner, owner) != 0 && r.left > 0)) {
		/* Held, or being claimed this very moment (a locked row). */
		snprintf(holder, holderlen, "%s", r.found ? r.owner : "another worker");
		state_rollback(st);
		return 0;
	}
	n = -1;
	if (QUERY(st, dialect_sql(st)->take, row_int, &n, job, owner, ints(ms, msbuf)) < 0 ||
	    state_commit(st) < 0)
		goto bad;
	*gen = n;
	return 1;
bad:
	state_rollback(st);
	return -1;
}

int
state_renew(struct state *st, const char *owner, int64_t ms)
{
	char msbuf[24];

	return EXEC(st, dialect_sql(st)->renew, owner, ints(ms, msbuf));
}

int
state_release(struct state *st, const char *job, const char *owner, int64_t gen)
{
	char g[24];
	long n = 0;

	/* One statement: the row is checked and freed atomically. */
	if (QUERY(st, "UPDATE lease SET owner = '', expires = 0 WHERE job = $1 AND owner = $2"
	    " AND gen = $3 RETURNING gen", row_count, &n, job, owner, ints(gen, g)) < 0)
		return -1;
	return n > 0;
}

int
state_release_all(struct state *st, const char *owner)
{
	if (!st->db)
		return 0;
	return EXEC(st, "UPDATE lease SET owner = '', expires = 0 WHERE owner = $1", owner);
}

/* ---- fencing ------------------------------------------------------------ */

void
state_fence_begin(struct state *st, const char *job, const char *owner, int64_t gen)
{
	st->fence.job = job;
	st->fence.owner = owner;
	st->fence.gen = gen;
	st->fence.lost = 0;
	st->fence.armed = 1;
}

int
state_fence_end(struct state *st)
{
	int rc = STATE_FENCE_UNUSED;

	/* state_commit() clears job when it runs the release. */
	if (st->fence.armed && !st->fence.job)
		rc = st->fence.lost ? STATE_FENCE_LOST : STATE_FENCE_USED;
	memset(&st->fence, 0, sizeof(st->fence));
	return rc;
}

int
state_cut_mark(const struct state *st)
{
	return st->db ? st->db->cut : 0;
}

int
state_cut_since(const struct state *st, int mark)
{
	return state_cut_mark(st) != mark;
}
