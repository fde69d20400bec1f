/*
 * store.h - one interface, one file per backend (state/sqlite.c,
 * state/pg.c), like redis's rio.  The backends know SQL, not DICOM: state/
 * holds the schema and every statement, written once for both but the few
 * that differ by dialect (shared.c, chosen by ops->dialect).
 *
 * Statements use $1, $2, ... placeholders, which PostgreSQL and SQLite both
 * read; every parameter is bound as text (NULL pointer = SQL NULL), never
 * formatted into the SQL.
 *
 * Return convention, for every op that returns int: 0 on success, -1 with
 * the message in st->err.
 */
#ifndef THLHP_STORE_H
#define THLHP_STORE_H

#include <stddef.h>

enum { STORE_ERR_MAX = 512 };

/* Open flags. */
enum {
	STORE_READONLY = 1 << 0,  /* -n / -q: read what is there, create nothing */
	STORE_WAIT = 1 << 1,      /* --wait: a store another run holds is waited for */
};

/* The SQL dialect a backend speaks, for the few statements that differ
 * (the store's clock, row locks): state/shared.c picks them by it. */
enum store_dialect {
	STORE_SQLITE,             /* SQLite 3: julianday(), BEGIN IMMEDIATE locks */
	STORE_PG,                 /* PostgreSQL: clock_timestamp(), SKIP LOCKED */
};

struct store {
	const struct store_ops *ops;
	char err[STORE_ERR_MAX];  /* last error */
	int reconnects;           /* times a lost connection was made again */
	int cut;                  /* transactions lost with a connection */
};

/* Called once per result row; a non-zero return stops the query with -1. */
typedef int store_row_fn(void *arg, int ncol, const char *const *val);

struct store_ops {
	const char *scheme;       /* URL scheme: "sqlite", "postgresql" */
	/* Several processes may work on one store at once (jobs are then
	 * claimed, state.h); 0 when the backend keeps out a second writer. */
	int shared;
	/* Which of state/'s few dialect-specific statements it takes. */
	enum store_dialect dialect;
	/* Statements that keep other processes out while the schema is made
	 * or migrated, and let them in again; "" when not needed. */
	const char *schema_lock, *schema_unlock;
	/* Open url (scheme included).  Returns NULL with the message in err
	 * and errno ENOENT when READONLY and the store does not exist.
	 * hold_ms > 0: the longest a transaction may sit open between two
	 * statements; a process frozen inside one (SIGSTOP, a suspended host)
	 * then loses its session, and the locks others wait on, after that
	 * (shared backends; the others have one writer anyway). */
	struct store *(*open)(const char *url, int flags, int hold_ms, char *err, size_t errlen);
	void (*close)(struct store *st);
	int (*begin)(struct store *st);
	int (*commit)(struct store *st);
	int (*rollback)(struct store *st);
	/* Run several statements without parameters (schema, migrations). */
	int (*script)(struct store *st, const char *sql);
	/* Run one statement with n text parameters. */
	int (*exec)(struct store *st, const char *sql, int n, const char *const *param);
	/* Run one query, calling fn for each row. */
	int (*query)(struct store *st, const char *sql, int n, const char *const *param,
	    store_row_fn *fn, void *arg);
};

extern const struct store_ops store_sqlite;
extern const struct store_ops store_pg;

#endif
