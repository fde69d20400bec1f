/*
 * test-graph.c - why a target is stale, through the engine's own graph
 * construction (plan_patient, from the rule table) and the rules' plan
 * functions, on real files in a temporary folder; and the
 * signatures the plans compare (catalog_set_sig, catalog_archive_sig,
 * catalog_series_list).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "rmtree.h"
#include "catalog.h"
#include "config.h"
#include "fileio.h"
#include "graph.h"
#include "names.h"
#include "plan.h"
#include "rule.h"
#include "select.h"
#include "util.h"

#define PID "TH-01"
#define STUDY "1.2.826.0.1.1"
#define UID_A "1.2.826.0.1.1.1"
#define UID_B "1.2.826.0.1.1.2"

/* One test's world: a project folder, its config, catalog and graph. */
struct fx {
	char root[64];
	char *cfgtext;
	struct config cfg;
	struct catalog cat;
	struct graph g;
	struct ctx ctx;
	struct select sel;    /* everything selected */
	struct patient *p;
	int pin;              /* distinct old mtimes handed out by pin_mtime */
};

static void
load_config(struct fx *f, const char *extra)
{
	char *err = NULL;

	free(f->cfgtext);
	f->cfgtext = xasprintf("[pacs]\nprotocol = folder\npath = %s/src\n"
	    "[output]\ndicom_dir = %s/dicom\nzip_dir = %s/zip\n%s",
	    f->root, f->root, f->root, extra);
	if (config_load_string(&f->cfg, "test.ini", f->cfgtext, &err) != 0)
		fail_msg("config: %s", err);
	free(f->ctx.settings);
	f->ctx.settings = config_zip_settings(&f->cfg);
}

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char *zip;

	strcpy(f->root, "/tmp/thlhp-graph-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	load_config(f, "");
	zip = xasprintf("%s/zip", f->root);
	if (mkdir(zip, 0755) < 0)
		return -1;
	free(zip);
	catalog_init(&f->cat);
	graph_init(&f->g);
	f->ctx.cfg = &f->cfg;
	f->ctx.cat = &f->cat;
	f->ctx.sel = &f->sel;
	atomic_init(&f->ctx.cancel, 0);
	f->p = catalog_patient(&f->cat, PID);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	graph_free(&f->g);
	catalog_free(&f->cat);
	free(f->ctx.settings);
	config_free(&f->cfg);
	free(f->cfgtext);
	rmtree(f->root);
	free(f);
	return 0;
}

/* A series of p expecting n instances at the source. */
static struct series *
add_series(struct fx *f, struct patient *p, const char *study, const char *uid, int n)
{
	struct series *s = catalog_series(&f->cat, p, study, uid);

	s->expected = n;
	catalog_iset(&f->cat, &s->modality, "CT");
	catalog_iset(&f->cat, &s->study_date, "20200101");
	return s;
}

/* The series p's targets are for (every one: the fixture selects all). */
static void
choose(struct fx *f, struct patient *p)
{
	catalog_sort(&f->cat);
	plan_choose_series(&f->ctx, p);
}

/* Stages to force, as -B sets them. */
enum { F_DL = 1, F_VAL = 2, F_ZIP = 4 };

/* The node of stage name for obj in f's graph, or NULL. */
static struct node *
node_of(struct fx *f, const char *name, const void *obj)
{
	for (int i = 0; i < f->g.n; i++)
		if (f->g.node[i]->obj == obj && strcmp(f->g.node[i]->rule->name, name) == 0)
			return f->g.node[i];
	return NULL;
}

/* A new run: the graph of p as the engine makes and plans it. */
static void
plan(struct fx *f, struct patient *p, int force)
{
	stages build = 0, fs = 0, upto, self;

	graph_free(&f->g);
	graph_init(&f->g);
	for (int i = 0; i < p->nwant; i++)
		p->want[i]->disk_checked = 0;
	plan_stage_mask("zip", &upto, &self);
	build = upto;
	if (force & F_DL)
		plan_stage_mask("download", &upto, &self), fs |= self;
	if (force & F_VAL)
		plan_stage_mask("validate", &upto, &self), fs |= self;
	if (force & F_ZIP)
		plan_stage_mask("zip", &upto, &self), fs |= self;
	plan_patient(&f->ctx, &f->g, p, build, fs);
}

/* The download, validate or zip target of the last plan. */
#define DL(s) node_of(f, "download", (s))
#define VAL(s) node_of(f, "validate", (s))
#define ZIP(p) node_of(f, "zip", (p))

static void
write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Instances from..to-1 of s as files <sop>.dcm in s->dir. */
static void
put_instances(struct series *s, int from, int to)
{
	char err[256];

	if (mkdirs(s->dir, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	for (int i = from; i < to; i++) {
		char *path = xasprintf("%s/%s.%d.dcm", s->dir, s->uid, i + 1);
		char *data = xasprintf("not really DICOM: %s.%d", s->uid, i + 1);

		write_file(path, data, strlen(data));
		free(data);
		free(path);
	}
}

/* Set path's mtime to an old time no write will give it again. */
static void
pin_mtime(struct fx *f, const char *path)
{
	struct timespec ts[2] = { { 1000000000 + f->pin, 123456789 }, { 1000000000 + f->pin, 123456789 } };

	f->pin++;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Hash what is in s->dir, as validate_run and validate_finish do. */
static uint64_t
scan_sig(const struct series *s, int *n)
{
	char err[256], **sops = list_dcm(s->dir, n, err, sizeof(err));
	struct instance *inst;
	uint64_t sig;

	assert_non_null(sops);
	inst = xcalloc((size_t)*n + 1, sizeof(*inst));
	for (int i = 0; i < *n; i++) {
		char *path = xasprintf("%s/%s.dcm", s->dir, sops[i]);

		inst[i].sop = xstrdup(sops[i]);
		assert_int_equal(hash_file(path, &inst[i].hash, &inst[i].size, &inst[i].mtime,
		    NULL, err, sizeof(err)), 0);
		inst[i].ok = 1;
		free(path);
	}
	sig = catalog_set_sig(inst, *n);
	instance_free(inst, *n);
	strv_free(sops);
	return sig;
}

/* Record s as validated just now: what a successful validate records. */
static void
record_valid(struct fx *f, struct series *s)
{
	int n;

	pin_mtime(f, s->dir);
	s->set_sig = scan_sig(s, &n);
	s->ninst = n;
	s->valid_sig = s->set_sig;
	s->dir_mtime = mtime_ns(s->dir, NULL);
	assert_true(s->dir_mtime > 0);
}

static char *
archive_path(struct fx *f, struct patient *p)
{
	char *name = archive_name(p->id, f->cfg.output.delimiter, p->nwant);
	char *path = xasprintf("%s/%s", f->cfg.output.zip_dir, name);

	free(name);
	return path;
}

/* Write p's archive with this content and record it as zip_finish does. */
static void
record_archive(struct fx *f, struct patient *p, const char *content)
{
	struct archive *a = &p->ar;
	char err[256];

	free(a->path);
	free(a->series);   /* settings is interned: the catalog's */
	a->path = archive_path(f, p);
	write_file(a->path, content, strlen(content));
	assert_int_equal(hash_file(a->path, &a->hash, &a->size, &a->mtime, NULL, err, sizeof(err)), 0);
	a->nseries = p->nwant;
	a->sig = catalog_archive_sig(p->want, p->nwant, f->ctx.settings);
	a->settings = catalog_intern(&f->cat, f->ctx.settings);
	a->series = catalog_series_list(p->want, p->nwant);
	p->has_ar = 1;
}

/* p with one complete, validated series A and its archive. */
static struct series *
up_to_date_patient(struct fx *f)
{
	struct series *s = add_series(f, f->p, STUDY, UID_A, 3);

	choose(f, f->p);
	put_instances(s, 0, 3);
	record_valid(f, s);
	record_archive(f, f->p, "PK archive of " PID);
	return s;
}

static void
assert_reason(const struct node *n, const char *want)
{
	if (!n)
		fail_msg("no such target in the graph");
	if (!want) {
		if (n->reason)
			fail_msg("%s %s: stale (%s), expected up to date", n->rule->name, n->label, n->reason);
		assert_int_equal(n->state, N_CLEAN);
		return;
	}
	if (!n->reason)
		fail_msg("%s %s: up to date, expected \"%s\"", n->rule->name, n->label, want);
	assert_string_equal(n->reason, want);
	assert_int_equal(n->state, N_STALE);
}

static void
test_new_series(void **state)
{
	struct fx *f = *state;
	struct series *s = add_series(f, f->p, STUDY, UID_A, 3);

	choose(f, f->p);
	plan(f, f->p, 0);
	assert_reason(DL(s), "new series (0/3 instances)");
	assert_reason(VAL(s), "never validated");
	assert_reason(ZIP(f->p), "archive missing");
	assert_int_equal(graph_count(&f->g, N_STALE), 3);
}

static void
test_instances_missing(void **state)
{
	struct fx *f = *state;
	struct series *s = add_series(f, f->p, STUDY, UID_A, 5);
	char *tmp, *txt;

	choose(f, f->p);
	put_instances(s, 0, 2);
	/* A temp file of a download and a non-DICOM file do not count. */
	tmp = xasprintf("%s/" TMP_PREFIX "123-%s.3.dcm", s->dir, UID_A);
	write_file(tmp, "partial", 7);
	txt = xasprintf("%s/notes.txt", s->dir);
	write_file(txt, "notes", 5);
	plan(f, f->p, 0);
	assert_reason(DL(s), "instances missing (2/5 instances)");
	assert_reason(VAL(s), "never validated");

	put_instances(s, 2, 4);
	plan(f, f->p, 0);
	assert_reason(DL(s), "instances missing (4/5 instances)");
	free(tmp);
	free(txt);
}

static void
test_complete_never_validated(void **state)
{
	struct fx *f = *state;
	struct series *s = add_series(f, f->p, STUDY, UID_A, 3);

	choose(f, f->p);
	put_instances(s, 0, 3);
	plan(f, f->p, 0);
	assert_reason(DL(s), NULL);
	assert_reason(VAL(s), "never validated");
	assert_reason(ZIP(f->p), "archive missing");

	/* Scanned and hashed, but the validation failed: valid_sig stays 0. */
	record_valid(f, s);
	s->valid_sig = 0;
	plan(f, f->p, 0);
	assert_reason(DL(s), NULL);
	assert_reason(VAL(s), "never validated");
}

static void
test_up_to_date(void **state)
{
	struct fx *f = *state;
	struct series *a = add_series(f, f->p, STUDY, UID_A, 3);
	struct series *b = add_series(f, f->p, "1.2.826.0.1.2", UID_B, 2);

	choose(f, f->p);
	put_instances(a, 0, 3);
	put_instances(b, 0, 2);
	record_valid(f, a);
	record_valid(f, b);
	record_archive(f, f->p, "PK archive with two series");
	plan(f, f->p, 0);
	assert_reason(DL(a), NULL);
	assert_reason(VAL(a), NULL);
	assert_reason(DL(b), NULL);
	assert_reason(VAL(b), NULL);
	assert_reason(ZIP(f->p), NULL);
	assert_int_equal(graph_count(&f->g, N_CLEAN), 5);
	assert_int_equal(graph_count(&f->g, N_STALE), 0);

	/* Planning again changes nothing: plan writes nothing. */
	plan(f, f->p, 0);
	assert_int_equal(graph_count(&f->g, N_STALE), 0);
}

static void
test_file_added_on_disk(void **state)
{
	struct fx *f = *state;
	struct series *s = up_to_date_patient(f);
	char *extra;

	plan(f, f->p, 0);
	assert_reason(VAL(s), NULL);
	extra = xasprintf("%s/9.9.9.dcm", s->dir);
	write_file(extra, "stray", 5);
	plan(f, f->p, 0);
	assert_reason(DL(s), NULL);
	assert_reason(VAL(s), "file changed on disk");
	assert_reason(ZIP(f->p), "series changed " UID_A);
	free(extra);
}

static void
test_file_removed_on_disk(void **state)
{
	struct fx *f = *state;
	struct series *s = up_to_date_patient(f);
	char *gone = xasprintf("%s/%s.2.dcm", s->dir, UID_A);

	assert_int_equal(unlink(gone), 0);
	plan(f, f->p, 0);
	assert_reason(DL(s), "instances missing (2/3 instances)");
	assert_reason(VAL(s), "after download (instances missing (2/3 instances))");
	assert_reason(ZIP(f->p), "series changed " UID_A);
	free(gone);
}

static void
test_series_dir_removed(void **state)
{
	struct fx *f = *state;
	struct series *s = up_to_date_patient(f);

	rmtree(s->dir);
	plan(f, f->p, 0);
	assert_reason(DL(s), "instances missing (0/3 instances)");
	assert_reason(VAL(s), "after download (instances missing (0/3 instances))");
	assert_reason(ZIP(f->p), "series changed " UID_A);
}

static void
test_source_grew(void **state)
{
	struct fx *f = *state;
	struct series *s = up_to_date_patient(f);

	s->expected = 4;
	plan(f, f->p, 0);
	assert_reason(DL(s), "instances missing (3/4 instances)");
	assert_reason(VAL(s), "after download (instances missing (3/4 instances))");
	assert_reason(ZIP(f->p), "series changed " UID_A);
}

static void
test_archive_missing(void **state)
{
	struct fx *f = *state;
	struct series *s = up_to_date_patient(f);

	/* No record at all. */
	f->p->has_ar = 0;
	plan(f, f->p, 0);
	assert_reason(VAL(s), NULL);
	assert_reason(ZIP(f->p), "archive missing");

	/* A record whose file is gone. */
	f->p->has_ar = 1;
	assert_int_equal(unlink(f->p->ar.path), 0);
	plan(f, f->p, 0);
	assert_reason(VAL(s), NULL);
	assert_reason(ZIP(f->p), "archive missing");
}

static void
test_archive_modified(void **state)
{
	struct fx *f = *state;

	up_to_date_patient(f);
	plan(f, f->p, 0);
	assert_reason(ZIP(f->p), NULL);
	write_file(f->p->ar.path, "something else, and longer than the archive was", 47);
	plan(f, f->p, 0);
	assert_reason(ZIP(f->p), "archive modified on disk");
}

static void
test_archive_modified_same_size(void **state)
{
	struct fx *f = *state;
	const char *other = "PK archive of XX-99";   /* as long as the real one */

	up_to_date_patient(f);
	assert_int_equal((int64_t)strlen(other), f->p->ar.size);
	write_file(f->p->ar.path, other, strlen(other));
	pin_mtime(f, f->p->ar.path);
	plan(f, f->p, 0);
	assert_reason(ZIP(f->p), "archive modified on disk");
}

static void
test_archive_touched_same_content(void **state)
{
	struct fx *f = *state;
	const char *same = "PK archive of " PID;

	/* Rewritten with the same bytes: a new mtime, the same hash. */
	up_to_date_patient(f);
	write_file(f->p->ar.path, same, strlen(same));
	pin_mtime(f, f->p->ar.path);
	assert_true(mtime_ns(f->p->ar.path, NULL) != f->p->ar.mtime);
	plan(f, f->p, 0);
	assert_reason(ZIP(f->p), NULL);
}

static void
test_settings_changed(void **state)
{
	struct fx *f = *state;
	struct series *s = up_to_date_patient(f);

	config_free(&f->cfg);
	load_config(f, "level = 9\n");
	plan(f, f->p, 0);
	assert_reason(DL(s), NULL);
	assert_reason(VAL(s), NULL);
	assert_reason(ZIP(f->p), "settings changed");

	config_free(&f->cfg);
	load_config(f, "compression = bzip2\n");
	plan(f, f->p, 0);
	assert_reason(ZIP(f->p), "settings changed");

	/* Back to the settings it was built with. */
	config_free(&f->cfg);
	load_config(f, "");
	plan(f, f->p, 0);
	assert_reason(ZIP(f->p), NULL);
}

static void
test_series_added(void **state)
{
	struct fx *f = *state;
	struct series *a = up_to_date_patient(f), *b;

	b = add_series(f, f->p, STUDY, UID_B, 2);
	choose(f, f->p);
	put_instances(b, 0, 2);
	record_valid(f, b);
	plan(f, f->p, 0);
	assert_reason(VAL(a), NULL);
	assert_reason(DL(b), NULL);
	assert_reason(VAL(b), NULL);
	assert_reason(ZIP(f->p), "series added " UID_B "; replaces " PID "__seriesCount1.zip");

	/* And when the new series is still to be downloaded. */
	b->valid_sig = 0;
	plan(f, f->p, 0);
	assert_reason(VAL(b), "never validated");
	assert_reason(ZIP(f->p), "series added " UID_B "; replaces " PID "__seriesCount1.zip");
}

static void
test_series_removed(void **state)
{
	struct fx *f = *state;
	struct series *a = add_series(f, f->p, STUDY, UID_A, 3);
	struct series *b = add_series(f, f->p, STUDY, UID_B, 2);

	choose(f, f->p);
	put_instances(a, 0, 3);
	put_instances(b, 0, 2);
	record_valid(f, a);
	record_valid(f, b);
	record_archive(f, f->p, "PK two series");
	/* B gone from the source with nothing of it valid on disk: left out. */
	b->gone = 1;
	b->valid_sig = 0;
	plan(f, f->p, 0);
	assert_int_equal(f->p->nwant, 1);
	assert_ptr_equal(f->p->want[0], a);
	assert_reason(VAL(a), NULL);
	assert_reason(ZIP(f->p), "series removed " UID_B "; replaces " PID "__seriesCount2.zip");
}

static void
test_series_uid_prefix_of_another(void **state)
{
	struct fx *f = *state;
	struct series *a = add_series(f, f->p, STUDY, "1.2.3", 1);
	struct series *b;

	choose(f, f->p);
	put_instances(a, 0, 1);
	record_valid(f, a);
	record_archive(f, f->p, "PK one");
	/* "1.2.3" is inside "1.2.3.4": still a different series. */
	b = add_series(f, f->p, STUDY, "1.2.3.4", 1);
	choose(f, f->p);
	put_instances(b, 0, 1);
	record_valid(f, b);
	plan(f, f->p, 0);
	assert_reason(ZIP(f->p), "series added 1.2.3.4; replaces " PID "__seriesCount1.zip");
}

static void
test_series_content_changed(void **state)
{
	struct fx *f = *state;
	struct series *s = up_to_date_patient(f);

	/* Validated again (new content) in a run that did not zip. */
	s->set_sig ^= 0x5a5a;
	s->valid_sig = s->set_sig;
	plan(f, f->p, 0);
	assert_reason(DL(s), NULL);
	assert_reason(VAL(s), NULL);
	assert_reason(ZIP(f->p), "series changed");
}

static void
test_archive_renamed(void **state)
{
	struct fx *f = *state;

	up_to_date_patient(f);
	/* The delimiter changed since it was built. */
	free(f->p->ar.path);
	f->p->ar.path = xasprintf("%s/%s-n1.zip", f->cfg.output.zip_dir, PID);
	write_file(f->p->ar.path, "PK archive of " PID, strlen("PK archive of " PID));
	f->p->ar.mtime = mtime_ns(f->p->ar.path, NULL);
	plan(f, f->p, 0);
	assert_reason(ZIP(f->p), "renamed from " PID "-n1.zip");
}

static void
test_older_archive_left_over(void **state)
{
	struct fx *f = *state;
	struct patient *p = f->p;

	up_to_date_patient(f);
	p->old = xcalloc(2, sizeof(*p->old));
	p->old[p->nold++] = xstrdup(PID "__seriesCount1.zip");
	plan(f, p, 0);
	assert_reason(ZIP(p), NULL);
	p->old[p->nold++] = xstrdup(PID "__seriesCount2.zip");
	plan(f, p, 0);
	assert_reason(ZIP(p), "older archive left over");

	config_free(&f->cfg);
	load_config(f, "keep_old = yes\n");
	plan(f, p, 0);
	assert_reason(ZIP(p), NULL);
}

static void
test_forced(void **state)
{
	struct fx *f = *state;
	struct series *s = up_to_date_patient(f);

	plan(f, f->p, F_DL | F_VAL | F_ZIP);
	assert_reason(DL(s), "forced");
	assert_reason(VAL(s), "forced");
	assert_reason(ZIP(f->p), "forced");

	/* -B zip: only the archive. */
	plan(f, f->p, F_ZIP);
	assert_reason(DL(s), NULL);
	assert_reason(VAL(s), NULL);
	assert_reason(ZIP(f->p), "forced");

	/* Forced even when there is nothing yet. */
	f->p->has_ar = 0;
	plan(f, f->p, F_ZIP | F_VAL);
	assert_reason(VAL(s), "forced");
	assert_reason(ZIP(f->p), "forced");
}

static void
test_hostile_patient_id(void **state)
{
	struct fx *f = *state;
	struct patient *p = catalog_patient(&f->cat, "TH-../../x");
	struct series *a = add_series(f, p, STUDY, UID_A, 1), *b;
	char *prefix;

	choose(f, p);
	prefix = xasprintf("%s/TH-..%%2F..%%2Fx/", f->cfg.output.dicom_dir);
	assert_memory_equal(a->dir, prefix, strlen(prefix));
	free(prefix);
	put_instances(a, 0, 1);
	record_valid(f, a);
	record_archive(f, p, "PK hostile");
	plan(f, p, 0);
	assert_reason(VAL(a), NULL);
	assert_reason(ZIP(p), NULL);

	b = add_series(f, p, STUDY, UID_B, 1);
	choose(f, p);
	put_instances(b, 0, 1);
	record_valid(f, b);
	plan(f, p, 0);
	assert_reason(ZIP(p), "series added " UID_B "; replaces TH-..%2F..%2Fx__seriesCount1.zip");
}

/* n instances "1.2.<i>" with hash h(i); malloc'd. */
static struct instance *
instances(int n, uint64_t mix)
{
	struct instance *v = xcalloc((size_t)n + 1, sizeof(*v));

	for (int i = 0; i < n; i++) {
		v[i].sop = xasprintf("1.2.%d", i + 1);
		v[i].hash = (0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)) ^ mix;
		v[i].size = 1000 + i;
		v[i].mtime = 1600000000000000000LL + i;
		v[i].ok = 1;
	}
	return v;
}

static void
test_set_sig_order_independent(void **state)
{
	enum { N = 7 };
	struct instance *a = instances(N, 0), *b = instances(N, 0), *c = instances(N, 0);
	uint64_t sa, sb, sc;

	(void)state;
	/* b reversed, c rotated. */
	for (int i = 0; i < N / 2; i++) {
		struct instance t = b[i];

		b[i] = b[N - 1 - i];
		b[N - 1 - i] = t;
	}
	for (int i = 0; i < 3; i++) {
		struct instance t = c[0];

		memmove(c, c + 1, (N - 1) * sizeof(*c));
		c[N - 1] = t;
	}
	sa = catalog_set_sig(a, N);
	sb = catalog_set_sig(b, N);
	sc = catalog_set_sig(c, N);
	assert_true(sa != 0);
	assert_true(sa == sb);
	assert_true(sa == sc);
	instance_free(a, N);
	instance_free(b, N);
	instance_free(c, N);
}

static void
test_set_sig_changes(void **state)
{
	enum { N = 5 };
	struct instance *v = instances(N + 1, 0);
	uint64_t base, sig;

	(void)state;
	base = catalog_set_sig(v, N);
	/* One instance's content. */
	v[2].hash ^= 1;
	sig = catalog_set_sig(v, N);
	assert_true(sig != base);
	v[2].hash ^= 1;
	assert_true(catalog_set_sig(v, N) == base);
	/* An instance added. */
	sig = catalog_set_sig(v, N + 1);
	assert_true(sig != base);
	/* One removed. */
	assert_true(catalog_set_sig(v, N - 1) != base);
	/* One renamed. */
	free(v[0].sop);
	v[0].sop = xstrdup("1.2.99");
	assert_true(catalog_set_sig(v, N) != base);
	instance_free(v, N + 1);

	/* Size, mtime and ok are not content: a touched file keeps it. */
	v = instances(N, 0);
	for (int i = 0; i < N; i++) {
		v[i].mtime += 1000000000;
		v[i].ok = 0;
	}
	assert_true(catalog_set_sig(v, N) == base);
	instance_free(v, N);

	/* Every hash different. */
	v = instances(N, 0xabcdef);
	assert_true(catalog_set_sig(v, N) != base);
	instance_free(v, N);
}

static void
test_set_sig_sop_boundaries(void **state)
{
	struct instance x[2] = { { .sop = "1.2", .hash = 7 }, { .sop = "34", .hash = 8 } };
	struct instance y[2] = { { .sop = "1.23", .hash = 7 }, { .sop = "4", .hash = 8 } };

	(void)state;
	assert_true(catalog_set_sig(x, 2) != catalog_set_sig(y, 2));
	/* An empty series has a signature, but not "none" (0). */
	assert_true(catalog_set_sig(x, 0) != 0);
}

static void
test_archive_sig(void **state)
{
	struct fx *f = *state;
	struct series *a = add_series(f, f->p, STUDY, UID_A, 1);
	struct series *b = add_series(f, f->p, STUDY, UID_B, 1);
	uint64_t base, sig;

	choose(f, f->p);
	a->set_sig = 111;
	b->set_sig = 222;
	base = catalog_archive_sig(f->p->want, 2, "compression=deflate level=1");
	assert_true(base != 0);
	assert_true(catalog_archive_sig(f->p->want, 2, "compression=deflate level=1") == base);
	/* Settings. */
	sig = catalog_archive_sig(f->p->want, 2, "compression=deflate level=9");
	assert_true(sig != base);
	/* One series' content. */
	b->set_sig = 223;
	assert_true(catalog_archive_sig(f->p->want, 2, "compression=deflate level=1") != base);
	b->set_sig = 222;
	assert_true(catalog_archive_sig(f->p->want, 2, "compression=deflate level=1") == base);
	/* Fewer series. */
	assert_true(catalog_archive_sig(f->p->want, 1, "compression=deflate level=1") != base);
}

static void
test_series_list(void **state)
{
	struct fx *f = *state;
	struct series *v[3];
	char *s;

	v[0] = add_series(f, f->p, "9.9", "1.2.9", 1);
	v[1] = add_series(f, f->p, "1.1", "1.2.10", 1);
	v[2] = add_series(f, f->p, "5.5", "1.2.3", 1);
	s = catalog_series_list(v, 3);
	assert_string_equal(s, "1.2.10 1.2.3 1.2.9");
	free(s);
	s = catalog_series_list(v, 1);
	assert_string_equal(s, "1.2.9");
	free(s);
	s = catalog_series_list(v, 0);
	assert_string_equal(s, "");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_series, setup, teardown),
		cmocka_unit_test_setup_teardown(test_instances_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_complete_never_validated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_up_to_date, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_added_on_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_removed_on_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series_dir_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_grew, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_modified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_modified_same_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_touched_same_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settings_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series_added, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series_uid_prefix_of_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series_content_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_renamed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_archive_left_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_patient_id, setup, teardown),
		cmocka_unit_test(test_set_sig_order_independent),
		cmocka_unit_test(test_set_sig_changes),
		cmocka_unit_test(test_set_sig_sop_boundaries),
		cmocka_unit_test_setup_teardown(test_archive_sig, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series_list, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
