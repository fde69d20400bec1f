/*
 * pg.c - the shared store: one libpq connection to a PostgreSQL database.
 * The schema is state.c's, the same tables as in SQLite (TEXT, INTEGER,
 * BIGINT; one schema_version row).  The URL goes to libpq as it is, so
 * PGPASSFILE, PGSERVICE, PGPASSWORD and the other PG* variables work; we
 * add only a connect timeout and an application_name, and only when
 * neither the URL nor the environment gives one.
 *
 * Every parameter travels as text, every result comes back as text.
 * Statements are prepared once per connection and kept, keyed by the SQL
 * text's address as in sqlite.c.  Messages name the database and host,
 * never the URL, which may hold a password.  One connection, used by the
 * main thread only (rule start and finish).
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "pgconn.h"
#include "store.h"
#include "util.h"

enum { NCACHE = 64, NROW = 32 };

struct pg_store {
	struct store st;
	PGconn *conn;
	char where[256];          /* "postgresql database 'x' on host:port" */
	int readonly;             /* STORE_READONLY: every session read-only */
	int hold_ms;              /* idle_in_transaction_session_timeout, 0: none */
	int intx;                 /* inside BEGIN ... COMMIT */
	struct { const char *sql; int nparam; } cache[NCACHE];
};

/* How long a lost connection is tried again before the run gives up:
 * long enough for a restart or a failover, bounded. */
enum { RECONNECT_MS = 60000 };

/* Copy msg to buf on one line: newlines and tabs become one space. */
static void
pg_oneline(char *buf, size_t len, const char *msg)
{
	size_t j = 0;
	int space = 0;

	for (const char *p = msg ? msg : ""; *p && j + 1 < len; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ') {
			space = j > 0;
			continue;
		}
		if (space && j + 2 < len)
			buf[j++] = ' ';
		space = 0;
		buf[j++] = *p;
	}
	buf[j] = '\0';
}

/* The password the URL gives, as libpq reads it, or NULL. */
static char *
pg_url_password(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	char *pw = NULL;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
			pw = xstrdup(o->val);
	PQconninfoFree(opts);
	return pw;
}

/* Replace every copy of the URL's password in buf by "***". */
static void
pg_scrub(char *buf, size_t len, const char *url)
{
	char *pw = pg_url_password(url), *in, *p, *q;
	size_t n, j = 0;

	if (!pw)
		return;
	n = strlen(pw);
	in = xstrdup(buf);
	for (p = in; (q = strstr(p, pw)) != NULL; p = q + n) {
		j += (size_t)snprintf(buf + j, len - j, "%.*s***", (int)(q - p), p);
		if (j >= len)
			goto out;
	}
	snprintf(buf + j, len - j, "%s", p);
out:
	free(in);
	free(pw);
}

static int
pg_fail(struct pg_store *s, const char *what, const PGresult *res)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[STORE_ERR_MAX];

	pg_oneline(line, sizeof(line), msg ? msg : PQerrorMessage(s->conn));
	errf(s->st.err, sizeof(s->st.err), "%s: %s: %s", s->where, what, line);
	return -1;
}

/* Warnings reach the user; notices ("already exists, skipping") do not. */
static void
pg_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (sev && msg && strcmp(sev, "WARNING") == 0)
		warn("%s: %s", (const char *)arg, msg);
}

/* 1 if the query answering one boolean said 't', 0 if 'f', -1 on error. */
static int
pg_bool(struct pg_store *s, const char *sql)
{
	PGresult *res = PQexec(s->conn, sql);
	int rc;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		pg_fail(s, "open", res);
		rc = -1;
	} else {
		rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	}
	PQclear(res);
	return rc;
}

/* What every session of ours starts with: -n and -q must not write,
 * whatever a statement says; a transaction left open by a frozen process
 * is ended by the server.  (SET takes no parameters: the number is ours.) */
static int
pg_session(struct pg_store *s)
{
	char sql[96];
	PGresult *res;

	snprintf(sql, sizeof(sql), "SET idle_in_transaction_session_timeout = %d%s",
	    s->hold_ms, s->readonly ? "; SET default_transaction_read_only = on" : "");
	res = PQexec(s->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail(s, "open", res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* The connection is gone (server restarted, network cut): connect again,
 * backing off from 0.25 s to 4 s, for at most RECONNECT_MS.  What the old
 * session had (prepared statements, an open transaction) is gone with it. */
static int
pg_reconnect(struct pg_store *s)
{
	int64_t start = mono_ns(), wait_ms = 250;

	warn("%s: lost the connection; connecting again", s->where);
	memset(s->cache, 0, sizeof(s->cache));
	s->intx = 0;
	for (;;) {
		PQreset(s->conn);
		if (PQstatus(s->conn) == CONNECTION_OK && pg_session(s) == 0) {
			s->st.reconnects++;
			warn("%s: connected again after %.1fs", s->where,
			    (double)(mono_ns() - start) / 1e9);
			return 0;
		}
		if ((mono_ns() - start) / 1000000 + wait_ms > RECONNECT_MS)
			break;
		struct timespec ts = { wait_ms / 1000, (wait_ms % 1000) * 1000000 };

		nanosleep(&ts, NULL);
		if (wait_ms < 4000)
			wait_ms *= 2;
	}
	char line[STORE_ERR_MAX];

	pg_oneline(line, sizeof(line), PQerrorMessage(s->conn));
	errf(s->st.err, sizeof(s->st.err), "%s: connection lost, and not back after %ds: %s",
	    s->where, RECONNECT_MS / 1000, line);
	return -1;
}

/* After a failed statement: was it the connection?  Then reconnect; 1 when
 * the statement may simply run again (it was not inside a transaction, or
 * it was the BEGIN), 0 when it failed for good, -1 when the server is not
 * back. */
static int
pg_lost(struct pg_store *s, int begins)
{
	int intx = s->intx;

	if (PQstatus(s->conn) != CONNECTION_BAD)
		return 0;
	if (pg_reconnect(s) < 0)
		return -1;
	if (intx && !begins) {
		s->st.cut++;
		errf(s->st.err, sizeof(s->st.err), "%s: the connection was lost in the middle "
		    "of a transaction, which is rolled back", s->where);
		return 0;
	}
	return 1;
}

static struct store *
pg_open(const char *url, int flags, int hold_ms, char *err, size_t errlen)
{
	struct pg_store *s;
	int rc;

	if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
		errf(err, errlen, "postgresql: the url must start with postgresql:// or postgres://");
		errno = EINVAL;
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->st.ops = &store_pg;
	s->conn = pgconn_open(url, "[state] url", s->where, sizeof(s->where), err, errlen);
	if (!s->conn) {
		free(s);
		return NULL;
	}
	pg_scrub(s->where, sizeof(s->where), url);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		char line[STORE_ERR_MAX];

		pg_oneline(line, sizeof(line), PQerrorMessage(s->conn));
		errf(err, errlen, "%s: cannot connect: %s", s->where, line);
		pg_scrub(err, errlen, url);
		goto bad;
	}
	PQsetNoticeReceiver(s->conn, pg_notice, s->where);
	s->readonly = !!(flags & STORE_READONLY);
	s->hold_ms = hold_ms > 0 ? hold_ms : 0;
	if (pg_session(s) < 0)
		goto bad_err;
	if (s->readonly) {
		rc = pg_bool(s, "SELECT to_regclass('schema_version') IS NOT NULL");
		if (rc < 0)
			goto bad_err;
		if (rc == 0) {
			errf(err, errlen, "%s: no state yet", s->where);
			PQfinish(s->conn);
			free(s);
			errno = ENOENT;
			return NULL;
		}
	}
	return &s->st;
bad_err:
	errf(err, errlen, "%s", s->st.err);
bad:
	PQfinish(s->conn);
	free(s);
	errno = EIO;   /* not ENOENT, which would read as "no state yet" */
	return NULL;
}

static void
pg_close(struct store *st)
{
	struct pg_store *s = (struct pg_store *)st;

	PQfinish(s->conn);
	free(s);
}

static int
pg_script(struct store *st, const char *sql)
{
	struct pg_store *s = (struct pg_store *)st;
	int begins = strcmp(sql, "BEGIN") == 0;

	for (;;) {
		PGresult *res = PQexec(s->conn, sql);
		ExecStatusType rs = PQresultStatus(res);

		if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
			PQclear(res);
			return 0;
		}
		pg_fail(s, "script", res);
		PQclear(res);
		if (pg_lost(s, begins) <= 0)
			return -1;
	}
}

static int
pg_begin(struct store *st)
{
	struct pg_store *s = (struct pg_store *)st;

	if (pg_script(st, "BEGIN") < 0)
		return -1;
	s->intx = 1;
	return 0;
}

static int
pg_commit(struct store *st)
{
	struct pg_store *s = (struct pg_store *)st;
	int rc;

	if (!s->intx) {
		errf(st->err, sizeof(st->err), "%s: the transaction was lost with the "
		    "connection", s->where);
		return -1;
	}
	rc = pg_script(st, "COMMIT");
	s->intx = 0;
	return rc;
}

static int
pg_rollback(struct store *st)
{
	struct pg_store *s = (struct pg_store *)st;

	PGresult *res;

	if (!s->intx)
		return 0;   /* gone with a lost connection, or never begun */
	s->intx = 0;
	if (PQstatus(s->conn) == CONNECTION_BAD)
		return 0;   /* so is the transaction; the next statement reconnects */
	res = PQexec(s->conn, "ROLLBACK");
	PQclear(res);
	return 0;
}

/* The highest $N in sql, outside quotes: the server wants exactly that
 * many parameters (state.c passes one NULL to a statement with none). */
static int
pg_nparam(const char *sql)
{
	int max = 0;
	char quote = 0;

	for (const char *p = sql; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
			int v = (int)strtol(p + 1, NULL, 10);

			if (v > max)
				max = v;
		}
	}
	return max;
}

/* Run sql: prepared once and kept when the cache has room. */
static PGresult *
pg_run(struct pg_store *s, const char *sql, int n, const char *const *param)
{
	int slot = -1, i, np;
	char name[24];

	for (i = 0; i < NCACHE; i++) {
		if (s->cache[i].sql == sql)
			break;
		if (!s->cache[i].sql && slot < 0)
			slot = i;
	}
	np = i < NCACHE ? s->cache[i].nparam : pg_nparam(sql);
	if (np > n) {
		errf(s->st.err, sizeof(s->st.err), "%s: statement wants %d parameters, "
		    "got %d", s->where, np, n);
		return NULL;
	}
	if (i == NCACHE && slot < 0)
		return PQexecParams(s->conn, sql, np, NULL, param, NULL, NULL, 0);
	if (i == NCACHE) {
		PGresult *res;

		snprintf(name, sizeof(name), "thlhp_%d", slot);
		res = PQprepare(s->conn, name, sql, np, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return res;
		PQclear(res);
		s->cache[slot].sql = sql;
		s->cache[slot].nparam = np;
		i = slot;
	}
	snprintf(name, sizeof(name), "thlhp_%d", i);
	return PQexecPrepared(s->conn, name, np, param, NULL, NULL, 0);
}

static int
pg_query(struct store *st, const char *sql, int n, const char *const *param,
    store_row_fn *fn, void *arg)
{
	struct pg_store *s = (struct pg_store *)st;
	PGresult *res;
	const char *val[NROW];
	int rc = 0, ncol, nrow;

	for (;;) {
		res = pg_run(s, sql, n, param);
		if (!res)
			return -1;   /* pg_run said why */
		if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK)
			break;
		rc = pg_fail(s, "query", res);
		PQclear(res);
		if (pg_lost(s, 0) > 0) {
			rc = 0;
			continue;
		}
		return rc;
	}
	ncol = PQnfields(res);
	if (ncol > NROW)
		ncol = NROW;
	nrow = PQntuples(res);
	for (int r = 0; fn && r < nrow; r++) {
		for (int c = 0; c < ncol; c++)
			val[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
		if (fn(arg, ncol, val) != 0) {
			errf(st->err, sizeof(st->err), "%s: stopped reading a row", s->where);
			rc = -1;
			break;
		}
	}
	PQclear(res);
	return rc;
}

static int
pg_exec(struct store *st, const char *sql, int n, const char *const *param)
{
	return pg_query(st, sql, n, param, NULL, NULL);
}

const struct store_ops store_pg = {
	.scheme = "postgresql",
	.shared = 1,
	.dialect = STORE_PG,
	/* Any constant key will do; this one spells "thlhp". */
	.schema_lock = "SELECT pg_advisory_lock(499834742896)",
	.schema_unlock = "SELECT pg_advisory_unlock(499834742896)",
	.open = pg_open,
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.script = pg_script,
	.exec = pg_exec,
	.query = pg_query,
};
