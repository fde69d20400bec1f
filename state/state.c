/*
 * state.c - the schema and its migrations, opening a store, transactions;
 * shared by all backends.  The catalog's statements are rows.c, the
 * generic target records target.c, what processes sharing a store need
 * more (reloads, claims) shared.c.
 *
 * Schema (version 1):
 *   schema_version(version)           one row: the schema this store has
 *   patient(id, ar_*)                 one row per patient; id is the file-name
 *                                     encoding of PatientID (ASCII, reversible);
 *                                     ar_* the archive last built, or NULL
 *   series(uid, patient_id, study_uid, ..., expected, gone,
 *          ninst, set_sig, valid_sig, dir_mtime, error)
 *                                     the catalog plus what was last seen on disk
 *   instance(series_uid, sop_uid, size, mtime, hash, ok)
 *                                     the hash index: one row per file on disk
 *   src_file(path, size, mtime, ...)  the folder source's header cache
 * Version 2 adds
 *   lease(job, owner, expires, gen)   claims on jobs, for shared stores
 * Version 3 adds
 *   series_number, series_desc        to series and to src_file: SeriesNumber
 *                                     and SeriesDescription (-t inventory),
 *                                     NULL until the next query says; the
 *                                     older src_file rows are dropped, so
 *                                     that each file is read again
 * Version 4 adds
 *   ar_error, query_error             to patient: why its last zip failed
 *                                     (NULL once one is built); why the
 *                                     last query saw it only in part (NULL
 *                                     once one sees it whole)
 * Version 5 adds
 *   target(stage, key, input_sig, settings_sig, out_path, out_size,
 *          out_mtime, out_hash, detail, error, made)
 *                                     one record per target of any stage
 *                                     (state.h, struct target_rec); the
 *                                     validate record (series.valid_sig)
 *                                     and the archive record (patient.ar_*)
 *                                     move into it.  Those columns stay,
 *                                     unused: SQLite before 3.35 cannot
 *                                     drop them.  series.error stays the
 *                                     series' last failure, of any job.
 * Version 6 adds
 *   metadata(series_uid, sop_uid, patient_id, study_uid, header)
 *                                     the metadata stage's rows: each
 *                                     instance's header as DICOM JSON
 *                                     (jsonb with a GIN index for @> in
 *                                     PostgreSQL: jsonb_path_ops, which
 *                                     costs inserts less than a key index)
 *   omop_id(kind, uid, id)            the omop stage's ids, never reused
 *   omop_row(tbl, id, patient_id, uid, line)
 *                                     the rows it made, as CSV lines
 * Version 7 adds
 *   archive_entry(patient_id, name, src_hash, crc, size, comp_size, comp_hash)
 *                                     each entry of the patient's archive as
 *                                     written: the file it was made from
 *                                     (its hash), the entry's CRC-32 and
 *                                     sizes, and the hash of its raw bytes
 *                                     in the archive; what lets the next
 *                                     archive copy it rather than compress
 *                                     it again
 * Version 8 adds
 *   notice(id, at, kind, patient_id, what, detail, n, size, pending)
 *                                     what runs did, for the digests
 *                                     (notify.h, struct notice): kept
 *                                     until every channel in its pending
 *                                     bits has sent it
 *   form_sub(form, id, submitted, body, deleted)
 *                                     the forms stage's submissions, by
 *                                     form (asset uid) and the server's
 *                                     _id: each as the server sent it
 *                                     (jsonb in PostgreSQL), its
 *                                     _submission_time, and when a full
 *                                     pull found it gone (ns), or NULL
 * Hashes are XXH3-64 as 16 hex digits; file times are nanoseconds; lease
 * expiry is the store's clock in milliseconds.
 *
 * Who writes what, so that processes sharing a store never overwrite each
 * other's news: the query writes a series' catalog fields (what the PACS
 * says) and inserts patients; a job, under its claim, writes the fields of
 * what is on disk and the archive record.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "names.h"
#include "state-int.h"
#include "util.h"

/* Each step as plain SQL SQLite and PostgreSQL both run, or, where they
 * differ, PostgreSQL's own (pg). */
static const struct { const char *sql, *pg; } migrations[] = {
	{ /* 1 */
	"CREATE TABLE patient ("
	" id TEXT PRIMARY KEY,"
	" ar_path TEXT, ar_nseries INTEGER, ar_sig TEXT, ar_settings TEXT,"
	" ar_series TEXT, ar_size BIGINT, ar_mtime BIGINT, ar_hash TEXT);"
	"CREATE TABLE series ("
	" uid TEXT PRIMARY KEY,"
	" patient_id TEXT NOT NULL REFERENCES patient(id),"
	" study_uid TEXT NOT NULL,"
	" modality TEXT, sop_class TEXT, study_date TEXT,"
	" expected INTEGER NOT NULL,"
	" gone INTEGER NOT NULL DEFAULT 0,"
	" ninst INTEGER NOT NULL DEFAULT 0,"
	" set_sig TEXT, valid_sig TEXT,"
	" dir_mtime BIGINT NOT NULL DEFAULT 0,"
	" error TEXT);"
	"CREATE INDEX series_patient ON series(patient_id);"
	"CREATE TABLE instance ("
	" series_uid TEXT NOT NULL,"
	" sop_uid TEXT NOT NULL,"
	" size BIGINT NOT NULL, mtime BIGINT NOT NULL, hash TEXT NOT NULL,"
	" ok INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (series_uid, sop_uid));"
	"CREATE TABLE src_file ("
	" path TEXT PRIMARY KEY, size BIGINT NOT NULL, mtime BIGINT NOT NULL,"
	" sop_uid TEXT, series_uid TEXT, study_uid TEXT, patient_id TEXT,"
	" modality TEXT, study_date TEXT, sop_class TEXT, error TEXT);", NULL },
	{ /* 2 */
	"CREATE TABLE lease ("
	" job TEXT PRIMARY KEY,"
	" owner TEXT NOT NULL DEFAULT '',"
	" expires BIGINT NOT NULL DEFAULT 0,"
	" gen BIGINT NOT NULL DEFAULT 0);"
	"CREATE INDEX lease_owner ON lease(owner);", NULL },
	/* 3: the cached headers lack the new fields, so the folder source
	 * reads every file once more rather than never fill them in. */
	{ "ALTER TABLE series ADD COLUMN series_number TEXT;"
	"ALTER TABLE series ADD COLUMN series_desc TEXT;"
	"DELETE FROM src_file;"
	"ALTER TABLE src_file ADD COLUMN series_number TEXT;"
	"ALTER TABLE src_file ADD COLUMN series_desc TEXT;", NULL },
	{ /* 4 */
	"ALTER TABLE patient ADD COLUMN ar_error TEXT;"
	"ALTER TABLE patient ADD COLUMN query_error TEXT;", NULL },
	{ /* 5 */
	"CREATE TABLE target ("
	" stage TEXT NOT NULL, key TEXT NOT NULL,"
	" input_sig TEXT, settings_sig TEXT,"
	" out_path TEXT, out_size BIGINT, out_mtime BIGINT, out_hash TEXT,"
	" detail TEXT, error TEXT, made BIGINT,"
	" PRIMARY KEY (stage, key));"
	"INSERT INTO target (stage, key, input_sig)"
	" SELECT 'validate', uid, valid_sig FROM series WHERE valid_sig IS NOT NULL;"
	"INSERT INTO target (stage, key, input_sig, settings_sig, out_path, out_size,"
	" out_mtime, out_hash, detail, error)"
	" SELECT 'zip', id, ar_sig, ar_settings, ar_path, ar_size, ar_mtime, ar_hash,"
	" ar_series, ar_error FROM patient WHERE ar_path IS NOT NULL OR ar_error IS NOT NULL;"
	"UPDATE series SET valid_sig = NULL;"
	"UPDATE patient SET ar_path = NULL, ar_nseries = NULL, ar_sig = NULL,"
	" ar_settings = NULL, ar_series = NULL, ar_size = NULL, ar_mtime = NULL,"
	" ar_hash = NULL, ar_error = NULL;", NULL },
	{ /* 6 */
#define OMOP_TABLES \
	"CREATE TABLE omop_id (" \
	" kind TEXT NOT NULL, uid TEXT NOT NULL, id BIGINT NOT NULL," \
	" PRIMARY KEY (kind, uid), UNIQUE (kind, id));" \
	"CREATE TABLE omop_row (" \
	" tbl TEXT NOT NULL, id BIGINT NOT NULL, patient_id TEXT NOT NULL, uid TEXT NOT NULL," \
	" line TEXT NOT NULL, PRIMARY KEY (tbl, id));" \
	"CREATE INDEX omop_row_patient ON omop_row(patient_id);"
	"CREATE TABLE metadata ("
	" series_uid TEXT NOT NULL, sop_uid TEXT NOT NULL,"
	" patient_id TEXT NOT NULL, study_uid TEXT NOT NULL, header TEXT NOT NULL,"
	" PRIMARY KEY (series_uid, sop_uid));"
	OMOP_TABLES,
	"CREATE TABLE metadata ("
	" series_uid TEXT NOT NULL, sop_uid TEXT NOT NULL,"
	" patient_id TEXT NOT NULL, study_uid TEXT NOT NULL, header JSONB NOT NULL,"
	" PRIMARY KEY (series_uid, sop_uid));"
	"CREATE INDEX metadata_header ON metadata USING GIN (header jsonb_path_ops);"
	OMOP_TABLES },
#undef OMOP_TABLES
	{ /* 7 */
	"CREATE TABLE archive_entry ("
	" patient_id TEXT NOT NULL, name TEXT NOT NULL, src_hash TEXT NOT NULL,"
	" crc BIGINT NOT NULL, size BIGINT NOT NULL, comp_size BIGINT NOT NULL,"
	" comp_hash TEXT NOT NULL, PRIMARY KEY (patient_id, name));", NULL },
	{ /* 8 */
#define NOTICE_TABLE(id) \
	"CREATE TABLE notice (" \
	" id " id " PRIMARY KEY, at BIGINT NOT NULL, kind INTEGER NOT NULL," \
	" patient_id TEXT, what TEXT, detail TEXT, n BIGINT NOT NULL DEFAULT 0," \
	" size BIGINT NOT NULL DEFAULT 0, pending INTEGER NOT NULL);"
	NOTICE_TABLE("INTEGER")
	"CREATE TABLE form_sub ("
	" form TEXT NOT NULL, id BIGINT NOT NULL, submitted TEXT, body TEXT NOT NULL,"
	" deleted BIGINT, PRIMARY KEY (form, id));",
	NOTICE_TABLE("BIGSERIAL")
	"CREATE TABLE form_sub ("
	" form TEXT NOT NULL, id BIGINT NOT NULL, submitted TEXT, body JSONB NOT NULL,"
	" deleted BIGINT, PRIMARY KEY (form, id));" },
#undef NOTICE_TABLE
};

static const struct { const char *scheme; const struct store_ops *ops; } backends[] = {
	{ "sqlite", &store_sqlite },
	{ "postgresql", &store_pg },
	{ "postgres", &store_pg },
};

int
st_fail(struct state *st)
{
	memcpy(st->err, st->db->err, sizeof(st->err));
	return -1;
}

int
row_int(void *arg, int ncol, const char *const *val)
{
	*(long *)arg = ncol > 0 && val[0] ? atol(val[0]) : -1;
	return 0;
}

int
row_count(void *arg, int ncol, const char *const *val)
{
	(*(long *)arg)++;
	return 0;
}

int64_t
i64(const char *s)
{
	/* Not strtoll: five of these a series make a tenth of loading the
	 * state.  The store wrote them (ints), so they are plain decimals;
	 * anything else reads as far as it is digits. */
	uint64_t v = 0;
	int neg;

	if (!s)
		return 0;
	if ((neg = *s == '-'))
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return neg ? -(int64_t)v : (int64_t)v;
}

const char *
ints(int64_t v, char buf[24])
{
	snprintf(buf, 24, "%" PRId64, v);
	return buf;
}

const char *
hexs(uint64_t v, char buf[17])
{
	if (!v)
		return NULL;
	hex64(v, buf);
	return buf;
}

/* The schema version: -1 when there is none, -2 when it is not a number. */
static int
row_version(void *arg, int ncol, const char *const *val)
{
	char *end;
	long v;

	if (ncol < 1 || !val[0]) {
		*(long *)arg = -1;
		return 0;
	}
	v = strtol(val[0], &end, 10);
	*(long *)arg = end == val[0] || *end || v < 0 ? -2 : v;
	return 0;
}

static int migrate(struct state *st, int readonly);

/* Bring the schema up to date; two processes starting on a new store at
 * once take turns (the backend's schema lock). */
static int
state_migrate(struct state *st, int readonly)
{
	const struct store_ops *ops = st->db->ops;
	int rc;

	if (readonly || !*ops->schema_lock)
		return migrate(st, readonly);
	if (ops->script(st->db, ops->schema_lock) < 0)
		return st_fail(st);
	rc = migrate(st, readonly);
	if (ops->script(st->db, ops->schema_unlock) < 0 && rc == 0)
		rc = st_fail(st);
	return rc;
}

static int
migrate(struct state *st, int readonly)
{
	long version = -1;
	const long known = (long)LEN(migrations);

	if (!readonly && st->db->ops->script(st->db,
	    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)") < 0)
		return st_fail(st);
	if (QUERY(st, "SELECT max(version) FROM schema_version", row_version, &version, NULL) < 0) {
		/* Read-only, a store never written reads as empty; anything
		 * else (not a database at all, ...) is an error. */
		if (readonly && strstr(st->err, "no such table")) {
			st->db->ops->close(st->db);
			st->db = NULL;
			return 0;
		}
		return -1;
	}
	if (version == -2 || (version < 0 && QUERY(st, "SELECT count(*) FROM patient",
	    NULL, NULL, NULL) == 0)) {
		errf(st->err, sizeof(st->err), "state has %s schema version but holds tables: "
		    "edited by hand? Move it away and run again to make a new one (what is on "
		    "disk is kept and hashed again)", version == -2 ? "an invalid" : "no");
		return -1;
	}
	if (version < 0)
		version = 0;
	if (version > known) {
		errf(st->err, sizeof(st->err), "state has schema version %ld, newer than this "
		    "thlhp-make knows (%ld): use a newer thlhp-make", version, known);
		return -1;
	}
	if (version < known && readonly) {
		errf(st->err, sizeof(st->err), "state has schema version %ld, older than this "
		    "thlhp-make's (%ld): run `thlhp-make query` once (not -n, -q or a -t report) "
		    "to upgrade it", version, known);
		return -1;
	}
	for (long v = version; v < known; v++) {
		char vs[24];

		snprintf(vs, sizeof(vs), "%ld", v + 1);
		if (state_begin(st) < 0)
			return -1;
		const char *sql = st->db->ops->dialect == STORE_PG && migrations[v].pg ?
		    migrations[v].pg : migrations[v].sql;

		if (st->db->ops->script(st->db, sql) < 0 ||
		    EXEC(st, "DELETE FROM schema_version", NULL) < 0 ||
		    EXEC(st, "INSERT INTO schema_version (version) VALUES ($1)", vs) < 0) {
			st_fail(st);
			state_rollback(st);
			return -1;
		}
		if (state_commit(st) < 0)
			return -1;
	}
	return 0;
}

int
state_open(struct state *st, const char *url, int flags, int hold_ms)
{
	const struct store_ops *ops = NULL;
	size_t n;
	size_t i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < LEN(backends); i++) {
		n = strlen(backends[i].scheme);
		if (strncmp(url, backends[i].scheme, n) == 0 && url[n] == ':')
			break;
	}
	if (i == LEN(backends)) {
		errf(st->err, sizeof(st->err), "'%s': unknown store "
		    "(use sqlite:FILE or postgresql://...)", url);
		return -1;
	}
	ops = backends[i].ops;
	if (!ops) {
		errf(st->err, sizeof(st->err), "%s: not built in", backends[i].scheme);
		return -1;
	}
	errno = 0;
	st->db = ops->open(url, flags, hold_ms, st->err, sizeof(st->err));
	if (!st->db)
		return (flags & STORE_READONLY) && errno == ENOENT ? 0 : -1;
	if (state_migrate(st, flags & STORE_READONLY) < 0) {
		state_close(st);
		return -1;
	}
	if (!st->db)
		return 0;
	st->shared = ops->shared;
	return 0;
}

void
state_close(struct state *st)
{
	if (st->db)
		st->db->ops->close(st->db);
	st->db = NULL;
}

int
state_begin(struct state *st)
{
	return st->db->ops->begin(st->db) < 0 ? st_fail(st) : 0;
}

int
state_commit(struct state *st)
{
	if (st->fence.job) {
		const char *job = st->fence.job;
		int rc;

		st->fence.job = NULL;
		rc = state_release(st, job, st->fence.owner, st->fence.gen);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			st->fence.lost = 1;
			errf(st->err, sizeof(st->err), "the claim on this job lapsed and "
			    "another worker took it over; its result is not recorded twice");
			return -1;   /* the caller rolls back */
		}
	}
	return st->db->ops->commit(st->db) < 0 ? st_fail(st) : 0;
}

void
state_rollback(struct state *st)
{
	st->db->ops->rollback(st->db);
}
