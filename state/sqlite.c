/*
 * sqlite.c - the embedded store: one SQLite file, WAL journal, a busy
 * timeout so a reader waits for a writer's transaction instead of failing.
 * Statements are prepared once and kept (keyed by the SQL text's address,
 * which is always a string literal in state.c).
 *
 * One writer at a time: a run that may write holds an flock on
 * <file>.lock, which says "pid host" of its holder, for as long as the
 * store is open (the kernel drops it when the process dies, kill -9
 * included).  A second such run stops at once with "state in use by pid
 * N on host H" rather than interleave its jobs with the first's, or with
 * STORE_WAIT (--wait) waits for the lock.  -n and -q only read, under WAL,
 * and take no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include "store.h"
#include "util.h"

enum { NCACHE = 64 };

struct sqlite_store {
	struct store st;
	sqlite3 *db;
	char *path;               /* for messages */
	int lockfd;               /* <file>.lock, flocked; -1 when read-only */
	struct { const char *sql; sqlite3_stmt *stmt; } cache[NCACHE];
};

static int
sq_fail(struct sqlite_store *s, const char *what)
{
	int e = sqlite3_system_errno(s->db);

	/* "disk I/O error" alone does not say that the disk is full. */
	if (e && (sqlite3_errcode(s->db) & 0xff) == SQLITE_IOERR)
		errf(s->st.err, sizeof(s->st.err), "%s: %s: %s: %s", s->path, what,
		    sqlite3_errmsg(s->db), strerror(e));
	else
		errf(s->st.err, sizeof(s->st.err), "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
	return -1;
}

/* mkdir -p for the parent of path. */
static int
mkparent(const char *path)
{
	char *d = xstrdup(path), *p;
	int rc = 0;

	for (p = d + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(d, 0700) < 0 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	free(d);
	return rc;
}
/* The writer's lock of the store at path (see the top); its fd, or -1
 * with err naming the process that holds it. */
static int
take_lock(const char *path, int wait, char *err, size_t errlen)
{
	char *lp = xasprintf("%s.lock", path), who[300] = "", host[256] = "?";
	/* Never through a link: the holder's line is written over the file,
	 * and a planted link would have us truncate whatever it names. */
	int fd = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
	struct stat sb = { 0 };
	ssize_t n;

	if (fd < 0 && errno == ELOOP) {
		errf(err, errlen, "%s: a symbolic link, not the lock file; remove it, then run again", lp);
		free(lp);
		return -1;
	}
	if (fd < 0) {
		errf(err, errlen, "%s: %s", lp, strerror(errno));
		free(lp);
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		errf(err, errlen, "%s: %s, not the lock file; remove it, then run again", lp,
		    S_ISREG(sb.st_mode) ? "a file with other hard links" : "not a regular file");
		close(fd);
		free(lp);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		if (e == EWOULDBLOCK) {
			n = pread(fd, who, sizeof(who) - 1, 0);
			who[n > 0 ? n : 0] = '\0';
			who[strcspn(who, "\n")] = '\0';
		}
		if (e == EWOULDBLOCK && wait) {
			warn("%s: state in use by %s; waiting for it to finish (--wait)", path,
			    *who ? who : "another process");
			while ((e = flock(fd, LOCK_EX) < 0 ? errno : 0) == EINTR)
				;
		}
		if (e == EWOULDBLOCK) {
			errf(err, errlen, "%s: state in use by %s; wait for it to finish (or "
			    "run with --wait), or look with -n", path, *who ? who : "another process");
		} else if (e) {
			errf(err, errlen, "%s: flock: %s", lp, strerror(e));
		}
		if (e) {
			close(fd);
			free(lp);
			return -1;
		}
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(who, sizeof(who), "pid %ld on host %s\n", (long)getpid(), host);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, who, strlen(who), 0) < 0) {
		errf(err, errlen, "%s: %s", lp, strerror(errno));
		close(fd);
		fd = -1;
	}
	free(lp);
	return fd;
}


static struct store *
sq_open(const char *url, int flags, int hold_ms, char *err, size_t errlen)
{
	struct sqlite_store *s;
	const char *path = url + strlen("sqlite:");
	int oflags;

	(void)hold_ms;   /* one writer at a time (the flock): nobody waits on a lock of ours */
	if (!*path) {
		errf(err, errlen, "sqlite: no file name in '%s'", url);
		return NULL;
	}
	if (flags & STORE_READONLY) {
		if (access(path, F_OK) < 0) {
			errf(err, errlen, "%s: no state yet", path);
			errno = ENOENT;
			return NULL;
		}
		oflags = SQLITE_OPEN_READONLY;
	} else {
		if (mkparent(path) < 0) {
			errf(err, errlen, "%s: cannot create its folder: %s", path, strerror(errno));
			return NULL;
		}
		oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	}
	s = xcalloc(1, sizeof(*s));
	s->st.ops = &store_sqlite;
	s->path = xstrdup(path);
	s->lockfd = -1;
	if (!(flags & STORE_READONLY) && (s->lockfd = take_lock(path, flags & STORE_WAIT, err, errlen)) < 0)
		goto bad;
	if (sqlite3_open_v2(path, &s->db, oflags | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		errf(err, errlen, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
		goto bad;
	}
	sqlite3_busy_timeout(s->db, 30000);
	/* -n and -q read each table once, in order: a page cache would only
	 * keep what was read (2 MB, a 30th of the peak RSS at 100k series). */
	if ((flags & STORE_READONLY) &&
	    sqlite3_exec(s->db, "PRAGMA cache_size=-64;", NULL, NULL, NULL) != SQLITE_OK) {
		errf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
		goto bad;
	}
	if (!(flags & STORE_READONLY) &&
	    sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
	    NULL, NULL, NULL) != SQLITE_OK) {
		errf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
		goto bad;
	}
	return &s->st;
bad:
	sqlite3_close(s->db);
	if (s->lockfd >= 0)
		close(s->lockfd);
	free(s->path);
	free(s);
	errno = EIO;   /* not ENOENT, which would read as "no state yet" */
	return NULL;
}

static void
sq_close(struct store *st)
{
	struct sqlite_store *s = (struct sqlite_store *)st;

	for (int i = 0; i < NCACHE; i++)
		sqlite3_finalize(s->cache[i].stmt);
	sqlite3_close(s->db);
	if (s->lockfd >= 0)
		close(s->lockfd);   /* the lock goes with it */
	free(s->path);
	free(s);
}

static int
sq_script(struct store *st, const char *sql)
{
	struct sqlite_store *s = (struct sqlite_store *)st;

	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_fail(s, "script");
	return 0;
}

static int
sq_begin(struct store *st)
{
	/* IMMEDIATE: take the write lock now, so two processes queue here
	 * (busy timeout) instead of failing at their first write. */
	return sq_script(st, "BEGIN IMMEDIATE");
}

static int
sq_commit(struct store *st)
{
	return sq_script(st, "COMMIT");
}

static int
sq_rollback(struct store *st)
{
	return sq_script(st, "ROLLBACK");
}

static sqlite3_stmt *
sq_prepare(struct sqlite_store *s, const char *sql, int n, const char *const *param)
{
	sqlite3_stmt *stmt = NULL;
	int slot = -1;

	for (int i = 0; i < NCACHE; i++) {
		if (s->cache[i].sql == sql) {
			stmt = s->cache[i].stmt;
			break;
		}
		if (!s->cache[i].sql && slot < 0)
			slot = i;
	}
	if (!stmt) {
		if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
			sq_fail(s, "prepare");
			return NULL;
		}
		if (slot >= 0) {
			s->cache[slot].sql = sql;
			s->cache[slot].stmt = stmt;
		}
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	for (int i = 0; i < n; i++) {
		char name[16];
		int idx;

		snprintf(name, sizeof(name), "$%d", i + 1);
		idx = sqlite3_bind_parameter_index(stmt, name);
		if (idx == 0)
			continue;
		if (sqlite3_bind_text(stmt, idx, param[i], -1, SQLITE_TRANSIENT) != SQLITE_OK) {
			sq_fail(s, "bind");
			return NULL;
		}
	}
	return stmt;
}

/* Statements not in the cache are finalized after use. */
static void
sq_done(struct sqlite_store *s, sqlite3_stmt *stmt)
{
	for (int i = 0; i < NCACHE; i++)
		if (s->cache[i].stmt == stmt) {
			sqlite3_reset(stmt);
			return;
		}
	sqlite3_finalize(stmt);
}

static int
sq_query(struct store *st, const char *sql, int n, const char *const *param,
    store_row_fn *fn, void *arg)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *stmt = sq_prepare(s, sql, n, param);
	const char *val[32];
	int rc, ncol;

	if (!stmt)
		return -1;
	ncol = sqlite3_column_count(stmt);
	if (ncol > (int)LEN(val))
		ncol = LEN(val);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (!fn)
			continue;
		for (int i = 0; i < ncol; i++)
			val[i] = (const char *)sqlite3_column_text(stmt, i);
		if (fn(arg, ncol, val) != 0) {
			errf(st->err, sizeof(st->err), "sqlite: stopped reading a row");
			sq_done(s, stmt);
			return -1;
		}
	}
	if (rc != SQLITE_DONE) {
		sq_fail(s, "step");
		sq_done(s, stmt);
		return -1;
	}
	sq_done(s, stmt);
	return 0;
}

static int
sq_exec(struct store *st, const char *sql, int n, const char *const *param)
{
	return sq_query(st, sql, n, param, NULL, NULL);
}

const struct store_ops store_sqlite = {
	.scheme = "sqlite",
	.shared = 0,              /* one writer: the flock above */
	.dialect = STORE_SQLITE,
	.schema_lock = "",        /* the flock is enough */
	.schema_unlock = "",
	.open = sq_open,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.script = sq_script,
	.exec = sq_exec,
	.query = sq_query,
};
