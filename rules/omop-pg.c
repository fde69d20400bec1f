/*
 * omop-pg.c - the OMOP database of [omop] url, through libpq: a job's
 * rows upserted and the patient's rows no longer made deleted, in one
 * transaction on a connection of its own (workers share nothing); and
 * person_map read from a table.  Every value travels as a bound
 * parameter; the SQL holds only the CDM's names and identifiers quoted by
 * PQescapeIdentifier.  The URL goes to libpq as it is (PG* variables,
 * .pgpass and services work), with a connect timeout unless it or the
 * environment sets one, and every statement is bounded in time.  Messages
 * name the database and host, never the URL, which may hold a password.
 *
 * An upsert leaves a row that is already as made untouched (its xmin
 * stays), and sets only the columns the stage fills: a site may fill the
 * others (visit_occurrence_id) itself.  The tables need their primary
 * keys (ON CONFLICT needs a unique index on the id).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "omop-int.h"
#include "pgconn.h"
#include "util.h"

enum { STATEMENT_MS = 60000, SQL_MAX = 2048 };

char *
pg_target(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	const char *v[4] = { NULL };   /* user, host, port, dbname */
	static const char *const kw[4] = { "user", "host", "port", "dbname" };
	char *t;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		for (int i = 0; i < 4; i++)
			if (strcmp(o->keyword, kw[i]) == 0 && o->val && *o->val)
				v[i] = o->val;
	t = xasprintf("%s%s%s%s%s/%s", v[0] ? v[0] : "", v[0] ? "@" : "", v[1] ? v[1] : "",
	    v[2] ? ":" : "", v[2] ? v[2] : "", v[3] ? v[3] : "");
	PQconninfoFree(opts);
	return t;
}

/* libpq's message for res (or the connection's), on one line, into buf. */
static const char *
pg_msg(PGconn *c, const PGresult *res, char *buf, size_t len)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	size_t j = 0;

	for (m = m ? m : PQerrorMessage(c); *m && j + 1 < len; m++)
		if (*m != '\n' || (m[1] && j && buf[j - 1] != ' '))
			buf[j++] = *m == '\n' ? ' ' : *m;
	buf[j] = '\0';
	return buf;
}

/* A connection to url, its statements bounded in time; where names it
 * for messages.  NULL with err. */
static PGconn *
pg_connect(const char *url, char *where, size_t wlen, char *err, size_t errlen)
{
	char msg[512], sql[64];
	PGresult *res;
	PGconn *c;

	if (!(c = pgconn_open(url, "[omop] url", where, wlen, err, errlen)))
		return NULL;
	if (PQstatus(c) != CONNECTION_OK) {
		errf(err, errlen, "%s: cannot connect: %s", where, pg_msg(c, NULL, msg, sizeof(msg)));
		PQfinish(c);
		return NULL;
	}
	/* SET takes no parameters: the number is ours. */
	snprintf(sql, sizeof(sql), "SET statement_timeout = %d", STATEMENT_MS);
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		errf(err, errlen, "%s: %s", where, pg_msg(c, res, msg, sizeof(msg)));
		PQclear(res);
		PQfinish(c);
		return NULL;
	}
	PQclear(res);
	return c;
}

/* Run a statement with no result rows; its row count, or -1 with err. */
static int
pg_exec(PGconn *c, const char *where, const char *what, PGresult *res, char *err, size_t errlen)
{
	char msg[512];
	int n;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		/* undefined_table; invalid_column_reference (no unique index for ON CONFLICT) */
		const char *hint = !state ? "" : strcmp(state, "42P01") == 0 ? " (make the tables "
		    "in [omop] schema: examples/omop/*.sql)" : strcmp(state, "42P10") == 0 ?
		    " (the table needs its primary key, as the CDM's primary key script adds)" : "";

		errf(err, errlen, "%s: %s: %s%s", where, what, pg_msg(c, res, msg, sizeof(msg)), hint);
		PQclear(res);
		return -1;
	}
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n;
}

/* Append s to buf (SQL_MAX; the SQL is ours, so it fits). */
static void
cat(char *buf, const char *s)
{
	size_t n = strlen(buf);

	snprintf(buf + n, SQL_MAX - n, "%s", s);
}

/* The upsert of table t's rows: INSERT its columns, on a row with the
 * same id SET them, unless they are as given already.  Only identifiers
 * are formatted in, and they are the CDM's own names from omop_tables
 * (constants, never configured); every value is a bound $n. */
static void
upsert_sql(const struct omop_table *t, char *sql)
{
	char num[16];
	int k = 0;

	snprintf(sql, SQL_MAX, "INSERT INTO %s (", t->name);
	for (int i = 0; i < t->ncol; i++)
		if (t->col[i].ours) {
			cat(sql, k++ ? ", " : "");
			cat(sql, t->col[i].name);
		}
	cat(sql, ") VALUES (");
	for (int i = 1; i <= k; i++) {
		snprintf(num, sizeof(num), "%s$%d", i > 1 ? ", " : "", i);
		cat(sql, num);
	}
	cat(sql, ") ON CONFLICT (");
	cat(sql, t->col[0].name);
	cat(sql, ") DO UPDATE SET ");
	for (int i = 1, j = 0; i < t->ncol; i++)
		if (t->col[i].ours) {
			cat(sql, j++ ? ", " : "");
			cat(sql, t->col[i].name);
			cat(sql, " = excluded.");
			cat(sql, t->col[i].name);
		}
	/* The row constructors: (t.a, t.b) IS DISTINCT FROM (excluded.a, ...). */
	for (int side = 0; side < 2; side++) {
		cat(sql, side ? ") IS DISTINCT FROM (" : " WHERE (");
		for (int i = 1, j = 0; i < t->ncol; i++)
			if (t->col[i].ours) {
				cat(sql, j++ ? ", " : "");
				cat(sql, side ? "excluded" : t->name);
				cat(sql, ".");
				cat(sql, t->col[i].name);
			}
	}
	cat(sql, ")");
}

/* Upsert one row r of table t with statement name; -1 with err. */
static int
pg_upsert(PGconn *c, const char *where, const struct orow *r, const char *name,
    char *err, size_t errlen)
{
	const struct omop_table *t = &omop_tables[r->tbl];
	const char *p[32];
	int k = 0;

	for (int i = 0; i < t->ncol && k < (int)LEN(p); i++)
		if (t->col[i].ours)
			p[k++] = r->val[i];
	return pg_exec(c, where, t->name, PQexecPrepared(c, name, k, p, NULL, NULL, 0), err, errlen);
}

/* Delete ids[0..n) from table t; the count, or -1 with err. */
static int
pg_delete(PGconn *c, const char *where, const struct omop_table *t, const int64_t *ids, int n,
    char *err, size_t errlen)
{
	char sql[256], *arr = xmalloc((size_t)n * 21 + 3), *d = arr;
	const char *p[1] = { arr };
	int rc;

	/* The ids as an array literal: numbers of ours, bound as one parameter. */
	*d++ = '{';
	for (int i = 0; i < n; i++)
		d += sprintf(d, "%s%lld", i ? "," : "", (long long)ids[i]);
	*d++ = '}';
	*d = '\0';
	/* Identifiers from omop_tables (constants); the ids are bound. */
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ANY ($1::bigint[])", t->name,
	    t->col[0].name);
	rc = pg_exec(c, where, t->name, PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0), err, errlen);
	free(arr);
	return rc;
}

/* A statement without parameters or rows; -1 with err. */
static int
pg_simple(PGconn *c, const char *where, const char *sql, char *err, size_t errlen)
{
	return pg_exec(c, where, sql, PQexec(c, sql), err, errlen) < 0 ? -1 : 0;
}

int
pg_write(struct pg_job *pj, char *err, size_t errlen)
{
	char where[256], sql[SQL_MAX], *schema = NULL, name[8];
	PGconn *c = pg_connect(pj->url, where, sizeof(where), err, errlen);
	int rc = -1, n;

	if (!c)
		return -1;
	if (!(schema = PQescapeIdentifier(c, pj->schema, strlen(pj->schema)))) {
		errf(err, errlen, "%s: [omop] schema: %s", where, PQerrorMessage(c));
		goto out;
	}
	snprintf(sql, sizeof(sql), "SET search_path TO %s", schema);
	if (pg_simple(c, where, sql, err, errlen) < 0 || pg_simple(c, where, "BEGIN", err, errlen) < 0)
		goto out;
	for (int t = 0; t < NTBL; t++) {
		upsert_sql(&omop_tables[t], sql);
		snprintf(name, sizeof(name), "up%d", t);
		if (pg_exec(c, where, omop_tables[t].name, PQprepare(c, name, sql, 0, NULL), err,
		    errlen) < 0)
			goto out;
	}
	/* Procedures first, and deleted last: images may refer to them. */
	for (int i = 0; i < pj->n; i++) {
		if (atomic_load(pj->cancel)) {
			errf(err, errlen, "interrupted");
			goto out;
		}
		snprintf(name, sizeof(name), "up%d", (int)pj->rows[i].tbl);
		if ((n = pg_upsert(c, where, &pj->rows[i], name, err, errlen)) < 0)
			goto out;
		pj->written += n;
	}
	for (int t = NTBL - 1; t >= 0; t--) {
		if (pj->ngone[t] == 0)
			continue;
		if ((n = pg_delete(c, where, &omop_tables[t], pj->gone[t], pj->ngone[t], err, errlen)) < 0)
			goto out;
		pj->removed += n;
	}
	if (atomic_load(pj->cancel)) {
		errf(err, errlen, "interrupted");
		goto out;
	}
	rc = pg_simple(c, where, "COMMIT", err, errlen);
out:
	/* Without the COMMIT, closing rolls the transaction back. */
	PQfreemem(schema);
	PQfinish(c);
	return rc;
}

int
pg_persons(const char *url, const char *table, struct htab *map, char *err, size_t errlen)
{
	char where[256], limit[24], msg[512], *sql = NULL, *sch = NULL, *tab = NULL;
	const char *dot = strchr(table, '.'), *p[1] = { limit };
	PGconn *c = pg_connect(url, where, sizeof(where), err, errlen);
	PGresult *res = NULL;
	int rc = -1;

	if (!c)
		return -1;
	if (!dot) {
		errf(err, errlen, "%s: '%s' is not schema.table", where, table);
		goto out;
	}
	/* Reading the map writes nothing, whatever the database does. */
	if (pg_simple(c, where, "SET default_transaction_read_only = on", err, errlen) < 0)
		goto out;
	if (!(sch = PQescapeIdentifier(c, table, (size_t)(dot - table))) ||
	    !(tab = PQescapeIdentifier(c, dot + 1, strlen(dot + 1)))) {
		errf(err, errlen, "%s: %s", where, pg_msg(c, NULL, msg, sizeof(msg)));
		goto out;
	}
	/* An identifier cannot be bound: the configured names go in quoted
	 * by PQescapeIdentifier; the limit is bound. */
	sql = xasprintf("SELECT patient_id::text, person_id::text FROM %s.%s LIMIT $1", sch, tab);
	snprintf(limit, sizeof(limit), "%d", PERSONS_MAX + 1);
	res = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		errf(err, errlen, "%s: table %s: %s", where, table, pg_msg(c, res, msg, sizeof(msg)));
		goto out;
	}
	if (PQntuples(res) > PERSONS_MAX) {
		errf(err, errlen, "%s: table %s: more than %d rows", where, table, PERSONS_MAX);
		goto out;
	}
	snprintf(msg, sizeof(msg), "%s: table %s", where, table);
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1)) {
			errf(err, errlen, "%s: a row with a NULL %s", msg, PQgetisnull(res, i, 0) ?
			    "patient_id" : "person_id");
			goto out;
		}
		if (person_add(map, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), msg, 0, err,
		    errlen) < 0)
			goto out;
	}
	rc = 0;
out:
	PQclear(res);
	free(sql);
	PQfreemem(sch);
	PQfreemem(tab);
	PQfinish(c);
	return rc;
}
