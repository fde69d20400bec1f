/*
 * test-split.c - source_ask_studies() against a PACS that caps its
 * answers silently (source/source.c): with [pacs] max_results set, every
 * study is found however the studies fall (many on one day, many of one
 * patient prefix), an answer under the cap is one request, [select]
 * study_date bounds the split, and a cap that no split can get under is
 * an error, never a shorter catalog.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "source.h"
#include "util.h"

/* A study at the fake PACS. */
struct st {
	char patient[16], date[9];
};

/* The fake PACS and what the walk took from it. */
struct pacs {
	const struct st *v;
	int n;
	int cap;                  /* answers hold at most this many; 0: all */
	int requests;
	int pend[4096], npend;    /* indexes answered, pending */
	int taken[4096];          /* times each study was kept */
	char last_range[40];
};

/* DICOM matching as far as the test needs: "P*" prefix or exact ID; a
 * range "A-B" or one date. */
static int
matches(const struct st *s, const char *glob, const char *range)
{
	size_t n = strlen(glob);

	if (n && glob[n - 1] == '*') {
		if (strncmp(s->patient, glob, n - 1) != 0)
			return 0;
	} else if (strcmp(s->patient, glob) != 0) {
		return 0;
	}
	if (!range)
		return 1;
	if (strlen(range) == 8)
		return strcmp(s->date, range) == 0;
	return strncmp(s->date, range, 8) >= 0 && strncmp(s->date, range + 9, 8) <= 0;
}

static int
ask(void *arg, const char *glob, const char *range)
{
	struct pacs *p = arg;

	p->requests++;
	p->npend = 0;
	snprintf(p->last_range, sizeof(p->last_range), "%s", range ? range : "");
	for (int i = 0; i < p->n; i++)
		if (matches(&p->v[i], glob, range) && (!p->cap || p->npend < p->cap))
			p->pend[p->npend++] = i;
	return p->npend;
}

static void
keep(void *arg)
{
	struct pacs *p = arg;

	for (int i = 0; i < p->npend; i++)
		p->taken[p->pend[i]]++;
	p->npend = 0;
}

static void
drop(void *arg)
{
	((struct pacs *)arg)->npend = 0;
}

struct fixture {
	struct config cfg;
	struct ctx ctx;
	struct job job;
	struct query_result r;
};

static int
ask_all(struct fixture *f, struct pacs *p, int max_results, const char *study_date,
    const char *glob)
{
	struct study_ask a = { ask, keep, drop, p };

	memset(f, 0, sizeof(*f));
	f->cfg.pacs.max_results = max_results;
	f->cfg.select.study_date = (char *)study_date;
	f->ctx.cfg = &f->cfg;
	f->job.ctx = &f->ctx;
	htab_init(&f->r.studies);
	int rc = source_ask_studies(&f->job, &f->r, glob, &a);

	if (rc < 0)
		print_message("source_ask_studies: %d: %s\n", rc, f->job.err);
	return rc;
}

/* Every study found exactly once. */
static void
all_taken_once(const struct pacs *p)
{
	for (int i = 0; i < p->n; i++)
		assert_int_equal(p->taken[i], 1);
}

static void
test_under_the_cap_is_one_request(void **state)
{
	static const struct st v[] = { { "P1", "20200101" }, { "P2", "20200102" } };
	struct pacs p = { .v = v, .n = 2, .cap = 5 };
	struct fixture f;

	(void)state;
	assert_int_equal(ask_all(&f, &p, 5, NULL, "P*"), 0);
	assert_int_equal(p.requests, 1);
	all_taken_once(&p);
	assert_int_equal(f.r.nnotes, 0);
	query_result_free(&f.r);
}

static void
test_no_max_results_trusts_the_answer(void **state)
{
	static const struct st v[] = { { "P1", "20200101" }, { "P2", "20200102" }, { "P3", "20200103" } };
	struct pacs p = { .v = v, .n = 3, .cap = 2 };
	struct fixture f;

	(void)state;
	/* What a PACS that caps does to a client that was not told: two of
	 * three, silently.  This is what max_results is for. */
	assert_int_equal(ask_all(&f, &p, 0, NULL, "P*"), 0);
	assert_int_equal(p.requests, 1);
	assert_int_equal(p.taken[0] + p.taken[1] + p.taken[2], 2);
	query_result_free(&f.r);
}

static void
test_capped_answer_is_split_by_date(void **state)
{
	static struct st v[300];
	struct pacs p = { .v = v, .n = 300, .cap = 50 };
	struct fixture f;

	(void)state;
	/* 300 studies over ten years, a cap of 50. */
	for (int i = 0; i < 300; i++) {
		snprintf(v[i].patient, sizeof(v[i].patient), "TH-%03d", i);
		snprintf(v[i].date, sizeof(v[i].date), "%04d%02d%02d", 2010 + i % 10, 1 + i % 12,
		    1 + i % 28);
	}
	assert_int_equal(ask_all(&f, &p, 50, NULL, "TH-*"), 0);
	all_taken_once(&p);
	assert_true(p.requests > 1);
	/* A few requests per capped range, not one per study. */
	assert_true(p.requests < 300);
	assert_int_equal(f.r.nnotes, 1);
	assert_non_null(strstr(f.r.notes[0], "StudyDate ranges"));
	query_result_free(&f.r);
}

static void
test_capped_day_is_split_by_prefix(void **state)
{
	static struct st v[40];
	struct pacs p = { .v = v, .n = 40, .cap = 10 };
	struct fixture f;

	(void)state;
	/* 40 studies on one day: dates cannot split them. */
	for (int i = 0; i < 40; i++) {
		snprintf(v[i].patient, sizeof(v[i].patient), "TH-%02d", i);
		memcpy(v[i].date, "20210305", 9);
	}
	assert_int_equal(ask_all(&f, &p, 10, NULL, "TH-*"), 0);
	all_taken_once(&p);
	query_result_free(&f.r);
}

static void
test_study_date_bounds_the_split(void **state)
{
	static struct st v[30];
	struct pacs p = { .v = v, .n = 30, .cap = 10 };
	struct fixture f;

	(void)state;
	for (int i = 0; i < 30; i++) {
		snprintf(v[i].patient, sizeof(v[i].patient), "P%02d", i);
		snprintf(v[i].date, sizeof(v[i].date), "202001%02d", 1 + i);
	}
	assert_int_equal(ask_all(&f, &p, 10, "20200101-20200131", "P*"), 0);
	all_taken_once(&p);
	/* Every request stayed inside [select] study_date. */
	assert_true(strncmp(p.last_range, "20200101", 8) >= 0);
	assert_true(strncmp(p.last_range, "20200131", 8) <= 0 ||
	    strncmp(p.last_range + 9, "20200131", 8) <= 0);
	query_result_free(&f.r);
}

static void
test_unsplittable_cap_is_an_error(void **state)
{
	static struct st v[12];
	struct pacs p = { .v = v, .n = 12, .cap = 5 };
	struct fixture f;

	(void)state;
	/* One patient with 12 studies on one day, a cap of 5: no narrower
	 * question exists.  An error saying what to do, not 5 of 12. */
	for (int i = 0; i < 12; i++) {
		memcpy(v[i].patient, "ONE", 4);
		memcpy(v[i].date, "20220202", 9);
	}
	assert_int_equal(ask_all(&f, &p, 5, NULL, "ONE"), -2);
	assert_non_null(strstr(f.job.err, "max_results"));
	assert_non_null(strstr(f.job.err, "20220202"));
	query_result_free(&f.r);
}

static void
test_unsplittable_range_is_an_error(void **state)
{
	static const struct st v[] = { { "P1", "20200101" }, { "P2", "20200101" } };
	struct pacs p = { .v = v, .n = 2, .cap = 2 };
	struct fixture f;

	(void)state;
	assert_int_equal(ask_all(&f, &p, 2, "junk", "P*"), -2);
	assert_non_null(strstr(f.job.err, "study_date"));
	query_result_free(&f.r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_under_the_cap_is_one_request),
		cmocka_unit_test(test_no_max_results_trusts_the_answer),
		cmocka_unit_test(test_capped_answer_is_split_by_date),
		cmocka_unit_test(test_capped_day_is_split_by_prefix),
		cmocka_unit_test(test_study_date_bounds_the_split),
		cmocka_unit_test(test_unsplittable_cap_is_an_error),
		cmocka_unit_test(test_unsplittable_range_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
