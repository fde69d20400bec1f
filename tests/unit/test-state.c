/*
 * test-state.c - the SQLite state in a temporary folder: a new store gets
 * the whole schema, a catalog saved comes back the same after a reopen
 * (read-write and read-only), and a store of an older schema is upgraded
 * in place when opened to write, its rows kept, and refused read-only
 * with a message saying how to upgrade it.  The test looks at the file
 * through its own sqlite3 handle, as tests/integration/t-inventory.sh
 * does with the sqlite3 tool.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "rmtree.h"
#include <sqlite3.h>
#include "catalog.h"
#include "state.h"
#include "util.h"

/* The migrations in state/state.c: raise with each one added. */
#define SCHEMA_VERSION 8

#define PID "TH-01"
#define STUDY "1.2.826.0.1.1"
#define UID_A "1.2.826.0.1.1.1"
#define UID_B "1.2.826.0.1.1.2"

struct fx {
	char root[64];
	char *path;               /* <root>/.thlhp/state.db */
	char *url;                /* sqlite:<path> */
	struct state st;
	struct catalog cat;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	strcpy(f->root, "/tmp/thlhp-state-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	f->path = xasprintf("%s/.thlhp/state.db", f->root);
	f->url = xasprintf("sqlite:%s", f->path);
	catalog_init(&f->cat);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	state_close(&f->st);
	catalog_free(&f->cat);
	rmtree(f->root);
	free(f->path);
	free(f->url);
	free(f);
	return 0;
}

/* Run sql on the file, outside the store; with a result, its first
 * column of the first row as an integer (-1 when none). */
static long
sql(struct fx *f, const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *stmt;
	long v = -1;
	int rc;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	if (strchr(q, ';')) {
		char *err = NULL;

		if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK)
			fail_msg("%s: %s", q, err);
		sqlite3_close(db);
		return 0;
	}
	if (sqlite3_prepare_v2(db, q, -1, &stmt, NULL) != SQLITE_OK)
		fail_msg("%s: %s", q, sqlite3_errmsg(db));
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
		v = (long)sqlite3_column_int64(stmt, 0);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		fail_msg("%s: %s", q, sqlite3_errmsg(db));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

static void
open_ok(struct fx *f, int flags)
{
	if (state_open(&f->st, f->url, flags, 0) != 0)
		fail_msg("state_open: %s", f->st.err);
}

static void
test_new_store(void **state)
{
	struct fx *f = *state;

	/* Read-only, a store that does not exist is an empty state. */
	assert_int_equal(state_open(&f->st, f->url, STORE_READONLY, 0), 0);
	assert_null(f->st.db);
	assert_int_equal(state_load(&f->st, &f->cat), 0);
	assert_int_equal(f->cat.np, 0);
	/* To write, it is made, with every migration. */
	open_ok(f, 0);
	assert_non_null(f->st.db);
	assert_int_equal(f->st.shared, 0);
	state_close(&f->st);
	assert_int_equal(sql(f, "SELECT count(*) FROM schema_version"), 1);
	assert_int_equal(sql(f, "SELECT version FROM schema_version"), SCHEMA_VERSION);
	/* Opened again: nothing to migrate, the version stays. */
	open_ok(f, 0);
	state_close(&f->st);
	open_ok(f, STORE_READONLY);
	assert_non_null(f->st.db);
	state_close(&f->st);
	assert_int_equal(sql(f, "SELECT version FROM schema_version"), SCHEMA_VERSION);
}

static void
test_newer_store_refused(void **state)
{
	struct fx *f = *state;
	char want[128];

	open_ok(f, 0);
	state_close(&f->st);
	sql(f, "UPDATE schema_version SET version = version + 1;");
	/* The message names the version this build knows: the number of
	 * its migrations. */
	snprintf(want, sizeof(want), "state has schema version %d, newer than this "
	    "thlhp-make knows (%d)", SCHEMA_VERSION + 1, SCHEMA_VERSION);
	for (int ro = 0; ro <= 1; ro++) {
		assert_int_equal(state_open(&f->st, f->url, ro ? STORE_READONLY : 0, 0), -1);
		assert_null(f->st.db);
		if (!strstr(f->st.err, want))
			fail_msg("err: %s", f->st.err);
		assert_non_null(strstr(f->st.err, "use a newer thlhp-make"));
	}
	assert_int_equal(sql(f, "SELECT version FROM schema_version"), SCHEMA_VERSION + 1);
}

static void
test_tables_without_version_refused(void **state)
{
	struct fx *f = *state;

	open_ok(f, 0);
	state_close(&f->st);
	sql(f, "DELETE FROM schema_version;");
	assert_int_equal(state_open(&f->st, f->url, 0, 0), -1);
	if (!strstr(f->st.err, "state has no schema version but holds tables"))
		fail_msg("err: %s", f->st.err);
}

/* A patient with two series, what is on disk of one, and an archive. */
static void
fill_catalog(struct fx *f, struct instance inst[2])
{
	struct catalog *c = &f->cat;
	struct patient *p = catalog_patient(c, PID);
	struct series *a = catalog_series(c, p, STUDY, UID_A);
	struct series *b = catalog_series(c, p, STUDY, UID_B);

	catalog_iset(c, &a->modality, "CT");
	catalog_iset(c, &a->sop_class, "1.2.840.10008.5.1.4.1.1.2");
	catalog_iset(c, &a->study_date, "20240131");
	catalog_iset(c, &a->number, "3");
	catalog_iset(c, &a->desc, "Thorax 1.0");
	a->expected = 2;
	catalog_iset(c, &b->modality, "SR");
	b->expected = 1;
	b->gone = 1;
	catalog_set(&p->query_error, "C-FIND: 0xA700 out of resources");
	p->query_dirty = 1;
	catalog_sort(c);

	inst[0] = (struct instance){ "1.2.826.0.1.1.1.1", 1000, 1700000000123456789, 0x1234abcd5678ef00, 1 };
	inst[1] = (struct instance){ "1.2.826.0.1.1.1.2", 2048, 1700000000987654321, 0xfedcba9876543210, 0 };
	a->ninst = 2;
	a->set_sig = 0x0123456789abcdef;
	a->valid_sig = 0x0123456789abcdef;
	a->dir_mtime = 1700000001000000000;
	catalog_set(&b->error, "validate: 1 of 1 instance unreadable");

	p->has_ar = 1;
	p->ar.path = xstrdup("zip/TH-01.zip");
	p->ar.nseries = 2;
	p->ar.sig = 0xa5a5a5a55a5a5a5a;
	p->ar.settings = catalog_intern(c, "deflate 6");
	p->ar.series = catalog_series_list(p->series, p->nseries);
	p->ar.size = 123456;
	p->ar.mtime = 1700000002000000000;
	p->ar.hash = 0x1111222233334444;
}

static void
save_catalog(struct fx *f, struct instance inst[2])
{
	struct patient *p = f->cat.p[0];

	assert_int_equal(state_save_catalog(&f->st, &f->cat), 0);
	assert_int_equal(p->query_dirty, 0);
	assert_int_equal(p->series[0]->dirty, 0);
	/* A job's results: one transaction each. */
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_save_series(&f->st, p->series[0], inst, 2), 0);
	assert_int_equal(state_commit(&f->st), 0);
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_save_series(&f->st, p->series[1], NULL, 0), 0);
	assert_int_equal(state_commit(&f->st), 0);
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_save_patient(&f->st, p), 0);
	assert_int_equal(state_commit(&f->st), 0);
}

static void
sizes_fn(void *arg, const char *uid, int64_t n, int64_t bytes)
{
	int64_t *v = arg;

	assert_string_equal(uid, UID_A);
	v[0] += n;
	v[1] += bytes;
}

/* What fill_catalog wrote, as loaded into c. */
static void
check_catalog(struct fx *f, struct catalog *c)
{
	struct patient *p;
	struct series *a, *b;
	struct instance *inst;
	int n;
	int64_t sz[2] = { 0, 0 };

	assert_int_equal(c->np, 1);
	p = catalog_find_patient(c, PID);
	assert_non_null(p);
	assert_int_equal(p->nseries, 2);
	a = catalog_find_series(c, UID_A);
	b = catalog_find_series(c, UID_B);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_equal(a->patient, p);
	assert_string_equal(a->study, STUDY);
	assert_string_equal(a->modality, "CT");
	assert_string_equal(a->sop_class, "1.2.840.10008.5.1.4.1.1.2");
	assert_string_equal(a->study_date, "20240131");
	assert_string_equal(a->number, "3");
	assert_string_equal(a->desc, "Thorax 1.0");
	assert_int_equal(a->expected, 2);
	assert_int_equal(a->gone, 0);
	assert_int_equal(a->ninst, 2);
	assert_true(a->set_sig == 0x0123456789abcdef);
	assert_true(a->valid_sig == 0x0123456789abcdef);
	assert_true(a->dir_mtime == 1700000001000000000);
	assert_null(a->error);
	assert_int_equal(a->dirty, 0);
	assert_string_equal(b->modality, "SR");
	assert_null(b->sop_class);
	assert_null(b->number);
	assert_int_equal(b->expected, 1);
	assert_int_equal(b->gone, 1);
	assert_int_equal(b->ninst, 0);
	assert_true(b->set_sig == 0);
	assert_string_equal(b->error, "validate: 1 of 1 instance unreadable");

	assert_string_equal(p->query_error, "C-FIND: 0xA700 out of resources");
	assert_null(p->ar_error);
	assert_int_equal(p->has_ar, 1);
	assert_string_equal(p->ar.path, "zip/TH-01.zip");
	assert_int_equal(p->ar.nseries, 2);
	assert_true(p->ar.sig == 0xa5a5a5a55a5a5a5a);
	assert_string_equal(p->ar.settings, "deflate 6");
	assert_string_equal(p->ar.series, UID_A " " UID_B);
	assert_true(p->ar.size == 123456);
	assert_true(p->ar.mtime == 1700000002000000000);
	assert_true(p->ar.hash == 0x1111222233334444);

	assert_int_equal(state_load_instances(&f->st, a, &inst, &n), 0);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		int second = strcmp(inst[i].sop, "1.2.826.0.1.1.1.2") == 0;

		assert_true(second || strcmp(inst[i].sop, "1.2.826.0.1.1.1.1") == 0);
		assert_true(inst[i].size == (second ? 2048 : 1000));
		assert_true(inst[i].mtime == (second ? 1700000000987654321 : 1700000000123456789));
		assert_true(inst[i].hash == (second ? 0xfedcba9876543210 : 0x1234abcd5678ef00));
		assert_int_equal(inst[i].ok, second ? 0 : 1);
	}
	instance_free(inst, n);
	assert_int_equal(state_load_instances(&f->st, b, &inst, &n), 0);
	assert_int_equal(n, 0);
	free(inst);
	assert_int_equal(state_series_sizes(&f->st, sizes_fn, sz), 0);
	assert_true(sz[0] == 2 && sz[1] == 3048);
}

static void
test_save_reload(void **state)
{
	struct fx *f = *state;
	struct instance inst[2];
	struct catalog c;

	open_ok(f, 0);
	fill_catalog(f, inst);
	save_catalog(f, inst);
	state_close(&f->st);
	for (int ro = 0; ro <= 1; ro++) {
		open_ok(f, ro ? STORE_READONLY : 0);
		catalog_init(&c);
		assert_int_equal(state_load(&f->st, &c), 0);
		check_catalog(f, &c);
		catalog_free(&c);
		state_close(&f->st);
	}
}

static void
test_archive_error_cleared(void **state)
{
	struct fx *f = *state;
	struct instance inst[2];
	struct patient *p;
	struct catalog c;

	open_ok(f, 0);
	fill_catalog(f, inst);
	save_catalog(f, inst);
	/* A zip fails: the record says why; the archive record goes. */
	p = f->cat.p[0];
	p->has_ar = 0;
	catalog_set(&p->ar_error, "zip: No space left on device");
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_save_patient(&f->st, p), 0);
	assert_int_equal(state_commit(&f->st), 0);
	state_close(&f->st);
	open_ok(f, STORE_READONLY);
	catalog_init(&c);
	assert_int_equal(state_load(&f->st, &c), 0);
	p = catalog_find_patient(&c, PID);
	assert_non_null(p);
	assert_int_equal(p->has_ar, 0);
	assert_string_equal(p->ar_error, "zip: No space left on device");
	assert_string_equal(p->query_error, "C-FIND: 0xA700 out of resources");
	catalog_free(&c);
}

/* The store as schema 4 made it: the validate and archive records back
 * in their columns, the target table gone. */
static void
make_schema4(struct fx *f)
{
	sql(f, "UPDATE series SET valid_sig = (SELECT input_sig FROM target"
	    " WHERE stage = 'validate' AND key = series.uid);"
	    "UPDATE patient SET (ar_path, ar_sig, ar_settings, ar_series, ar_size, ar_mtime,"
	    " ar_hash, ar_error) = (SELECT out_path, input_sig, settings_sig, detail, out_size,"
	    " out_mtime, out_hash, error FROM target WHERE stage = 'zip' AND key = patient.id);"
	    "UPDATE patient SET ar_nseries = 2 WHERE ar_path IS NOT NULL;"
	    "DROP TABLE target; DROP TABLE metadata; DROP TABLE omop_id; DROP TABLE omop_row;"
	    "DROP TABLE archive_entry; DROP TABLE notice; DROP TABLE form_sub;"
	    "UPDATE schema_version SET version = 4;");
}

/* The store as schema 2 made it: the columns of 3 and 4 dropped, as
 * tests/integration/t-inventory.sh does. */
static void
make_schema2(struct fx *f)
{
	make_schema4(f);
	sql(f, "ALTER TABLE series DROP COLUMN series_number;"
	    "ALTER TABLE series DROP COLUMN series_desc;"
	    "ALTER TABLE src_file DROP COLUMN series_number;"
	    "ALTER TABLE src_file DROP COLUMN series_desc;"
	    "ALTER TABLE patient DROP COLUMN ar_error;"
	    "ALTER TABLE patient DROP COLUMN query_error;"
	    "UPDATE schema_version SET version = 2;");
}

static void
test_older_schema(void **state)
{
	struct fx *f = *state;
	struct instance inst[2];
	struct catalog c;
	struct patient *p;
	struct series *a;
	char want[128];

	open_ok(f, 0);
	fill_catalog(f, inst);
	save_catalog(f, inst);
	state_close(&f->st);
	sql(f, "INSERT INTO src_file (path, size, mtime) VALUES ('src/1.dcm', 1, 1);");
	make_schema2(f);
	assert_int_equal(sql(f, "SELECT version FROM schema_version"), 2);

	/* Read-only: refused, saying how to upgrade, and left as it is. */
	assert_int_equal(state_open(&f->st, f->url, STORE_READONLY, 0), -1);
	assert_null(f->st.db);
	snprintf(want, sizeof(want), "state has schema version 2, older than this "
	    "thlhp-make's (%d)", SCHEMA_VERSION);
	if (!strstr(f->st.err, want))
		fail_msg("err: %s", f->st.err);
	assert_non_null(strstr(f->st.err, "run `thlhp-make query` once"));
	assert_non_null(strstr(f->st.err, "to upgrade it"));
	assert_int_equal(sql(f, "SELECT version FROM schema_version"), 2);

	/* To write: upgraded in place, the rows kept. */
	open_ok(f, 0);
	assert_int_equal(sql(f, "SELECT version FROM schema_version"), SCHEMA_VERSION);
	catalog_init(&c);
	assert_int_equal(state_load(&f->st, &c), 0);
	p = catalog_find_patient(&c, PID);
	a = catalog_find_series(&c, UID_A);
	assert_non_null(p);
	assert_non_null(a);
	assert_int_equal(p->nseries, 2);
	assert_true(a->set_sig == 0x0123456789abcdef);
	assert_int_equal(a->ninst, 2);
	assert_int_equal(p->has_ar, 1);
	assert_string_equal(p->ar.path, "zip/TH-01.zip");
	/* The new columns are empty until a query or a zip says. */
	assert_null(a->number);
	assert_null(a->desc);
	assert_null(p->query_error);
	assert_null(p->ar_error);
	catalog_free(&c);
	/* The folder source's cache lacks the new fields: read again. */
	assert_int_equal(sql(f, "SELECT count(*) FROM src_file"), 0);
	/* And they can be written. */
	catalog_set(&f->cat.p[0]->query_error, "partial");
	f->cat.p[0]->query_dirty = 1;
	for (int i = 0; i < f->cat.p[0]->nseries; i++)
		f->cat.p[0]->series[i]->dirty = 1;
	assert_int_equal(state_save_catalog(&f->st, &f->cat), 0);
	state_close(&f->st);
	open_ok(f, STORE_READONLY);
	catalog_init(&c);
	assert_int_equal(state_load(&f->st, &c), 0);
	assert_string_equal(catalog_find_patient(&c, PID)->query_error, "partial");
	assert_string_equal(catalog_find_series(&c, UID_A)->number, "3");
	catalog_free(&c);
}

/* A schema-4 store with an archive and a validated series: upgraded to
 * 5, the records moved into target, the same values in memory. */
static void
test_schema4_records_moved(void **state)
{
	struct fx *f = *state;
	struct instance inst[2];
	struct catalog c;
	struct patient *p;

	open_ok(f, 0);
	fill_catalog(f, inst);
	save_catalog(f, inst);
	state_close(&f->st);
	make_schema4(f);
	assert_int_equal(sql(f, "SELECT count(*) FROM patient WHERE ar_path = 'zip/TH-01.zip'"), 1);
	assert_int_equal(sql(f, "SELECT count(*) FROM series WHERE valid_sig IS NOT NULL"), 1);

	open_ok(f, 0);
	assert_int_equal(sql(f, "SELECT version FROM schema_version"), SCHEMA_VERSION);
	assert_int_equal(sql(f, "SELECT count(*) FROM target WHERE stage = 'zip'"), 1);
	assert_int_equal(sql(f, "SELECT count(*) FROM target WHERE stage = 'validate'"
	    " AND key = '" UID_A "'"), 1);
	assert_int_equal(sql(f, "SELECT count(*) FROM target"), 2);
	/* The old columns are kept but emptied: nothing reads them. */
	assert_int_equal(sql(f, "SELECT count(*) FROM patient WHERE ar_path IS NOT NULL"), 0);
	assert_int_equal(sql(f, "SELECT count(*) FROM series WHERE valid_sig IS NOT NULL"), 0);
	catalog_init(&c);
	assert_int_equal(state_load(&f->st, &c), 0);
	check_catalog(f, &c);
	/* A failed zip after it: the archive record stays, with the error. */
	p = catalog_find_patient(&c, PID);
	catalog_set(&p->ar_error, "zip: No space left on device");
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_save_patient(&f->st, p), 0);
	assert_int_equal(state_commit(&f->st), 0);
	catalog_free(&c);
	state_close(&f->st);
	open_ok(f, STORE_READONLY);
	catalog_init(&c);
	assert_int_equal(state_load(&f->st, &c), 0);
	p = catalog_find_patient(&c, PID);
	assert_int_equal(p->has_ar, 1);
	assert_int_equal(p->ar.nseries, 2);
	assert_string_equal(p->ar.path, "zip/TH-01.zip");
	assert_string_equal(p->ar_error, "zip: No space left on device");
	catalog_free(&c);
}

static void
rec_copy(void *arg, const struct target_rec *r)
{
	struct target_rec *out = arg;

	*out = *r;
	out->settings = r->settings ? xstrdup(r->settings) : NULL;
	out->path = r->path ? xstrdup(r->path) : NULL;
	out->detail = r->detail ? xstrdup(r->detail) : NULL;
	out->error = r->error ? xstrdup(r->error) : NULL;
}

static void
rec_free(struct target_rec *r)
{
	free((char *)r->settings);
	free((char *)r->path);
	free((char *)r->detail);
	free((char *)r->error);
}

/* A stage of its own: its record needs no migration and no column. */
static void
test_target_record(void **state)
{
	struct fx *f = *state;
	struct target_rec r = { 0 }, in = {
		.input_sig = 0x1122334455667788, .settings = "sha256", .path = "zip/TH-01.sha256",
		.size = 99, .mtime = 1700000003000000000, .hash = 0xabcdef0123456789,
		.detail = "2 entries", .made = 1700000004000000000,
	};

	open_ok(f, 0);
	assert_int_equal(state_load_target(&f->st, "checksum", "TH-01", rec_copy, &r), 0);
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_save_target(&f->st, "checksum", "TH-01", &in), 0);
	assert_int_equal(state_commit(&f->st), 0);
	assert_int_equal(state_load_target(&f->st, "checksum", "TH-01", rec_copy, &r), 1);
	assert_true(r.input_sig == in.input_sig && r.hash == in.hash);
	assert_true(r.size == 99 && r.mtime == in.mtime && r.made == in.made);
	assert_string_equal(r.settings, "sha256");
	assert_string_equal(r.path, "zip/TH-01.sha256");
	assert_string_equal(r.detail, "2 entries");
	assert_null(r.error);
	rec_free(&r);
	/* Replaced whole; made is set when not given. */
	in = (struct target_rec){ .error = "disk full" };
	assert_int_equal(state_save_target(&f->st, "checksum", "TH-01", &in), 0);
	assert_int_equal(state_load_target(&f->st, "checksum", "TH-01", rec_copy, &r), 1);
	assert_true(r.input_sig == 0 && r.path == NULL && r.made > 0);
	assert_string_equal(r.error, "disk full");
	rec_free(&r);
	assert_int_equal(state_delete_target(&f->st, "checksum", "TH-01"), 0);
	assert_int_equal(state_load_target(&f->st, "checksum", "TH-01", rec_copy, &r), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_store_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tables_without_version_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_error_cleared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema4_records_moved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_record, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
