/*
 * test-sched.c - the job loop (src/sched.c) with fake rules: each node's
 * obj is a struct spec saying what its start, run and finish do (sleep,
 * fail, find nothing to do, cancel the run), and what they saw.  The runs
 * count themselves with atomics, so the tests see how many jobs ran at
 * once, in all and per pool, and in which order they started and ended.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "graph.h"
#include "rule.h"
#include "sched.h"
#include "util.h"

enum { MAXN = 32 };

/* What start returns. */
enum start { START_RUN, START_NOTHING, START_FAIL };

/* One node's script, and what happened to it. */
struct spec {
	enum start start;
	int sleep_ms;             /* run sleeps this long */
	int fail;                 /* run returns -1 */
	int cancel;               /* run sets ctx->cancel, then returns -1 */
	int finish_fails;         /* finish cannot record */
	/* Seen: */
	int starts, runs, finishes;
	int finish_rc;            /* the rc finish was given */
	int nothing;              /* job->nothing at finish */
	int start_seq, end_seq;   /* run's place in the order of events */
};

/* What the runs saw, across threads. */
static atomic_int running, inpool[NPOOL], max_running, max_pool[NPOOL], seq;

static void
raise_max(atomic_int *max, int v)
{
	int m = atomic_load(max);

	while (v > m && !atomic_compare_exchange_weak(max, &m, v))
		;
}

static char *
fake_plan(struct ctx *ctx, struct node *n)
{
	(void)ctx;
	return xasprintf("%s: test", n->label);
}

static int
fake_start(struct job *job)
{
	struct spec *sp = job->obj;

	sp->starts++;
	if (sp->start == START_FAIL)
		snprintf(job->err, sizeof(job->err), "start failed: %s", job->node->label);
	return sp->start == START_RUN ? 1 : sp->start == START_NOTHING ? 0 : -1;
}

static int
fake_run(struct job *job)
{
	struct spec *sp = job->obj;
	int p = job->rule->pool, rc = 0;
	struct timespec ts = { sp->sleep_ms / 1000, (long)(sp->sleep_ms % 1000) * 1000000 };

	raise_max(&max_running, atomic_fetch_add(&running, 1) + 1);
	raise_max(&max_pool[p], atomic_fetch_add(&inpool[p], 1) + 1);
	sp->start_seq = atomic_fetch_add(&seq, 1);
	sp->runs++;
	nanosleep(&ts, NULL);
	if (sp->cancel) {
		atomic_store(&job->ctx->cancel, 1);
		snprintf(job->err, sizeof(job->err), "interrupted");
		rc = -1;
	}
	if (sp->fail) {
		snprintf(job->err, sizeof(job->err), "run failed: %s", job->node->label);
		rc = -1;
	}
	sp->end_seq = atomic_fetch_add(&seq, 1);
	atomic_fetch_sub(&inpool[p], 1);
	atomic_fetch_sub(&running, 1);
	return rc;
}

static int
fake_finish(struct job *job, int rc)
{
	struct spec *sp = job->obj;

	sp->finishes++;
	sp->finish_rc = rc;
	sp->nothing = job->nothing;
	if (sp->finish_fails) {
		snprintf(job->err, sizeof(job->err), "cannot record: %s", job->node->label);
		return -1;
	}
	return 0;
}

static const struct rule rule_pacs = {
	.name = "fetch", .pool = POOL_PACS,
	.plan = fake_plan, .start = fake_start, .run = fake_run, .finish = fake_finish,
};
static const struct rule rule_local = {
	.name = "pack", .pool = POOL_LOCAL,
	.plan = fake_plan, .start = fake_start, .run = fake_run, .finish = fake_finish,
};

/* A job that borrows idle slots (as the zip stage does): it takes what
 * it can for ms milliseconds, gives a slot back when a job wants one, and
 * returns the rest at its end.  busy counts jobs and borrowed slots. */
static atomic_int busy, max_busy, borrowed_most;

static int
borrow_run(struct job *job)
{
	struct spec *sp = job->obj;
	int held = 0;

	raise_max(&max_busy, atomic_fetch_add(&busy, 1) + 1);
	sp->runs++;
	for (int t = 0; t < sp->sleep_ms; t++) {
		struct timespec ts = { 0, 1000000 };

		if (sched_borrow()) {
			held++;
			raise_max(&max_busy, atomic_fetch_add(&busy, 1) + 1);
			raise_max(&borrowed_most, held);
		}
		if (held > 0 && sched_wanted()) {
			held--;
			atomic_fetch_sub(&busy, 1);
			sched_giveback();
		}
		nanosleep(&ts, NULL);
	}
	for (; held > 0; held--) {
		atomic_fetch_sub(&busy, 1);
		sched_giveback();
	}
	sp->end_seq = atomic_fetch_add(&seq, 1);
	atomic_fetch_sub(&busy, 1);
	return 0;
}

static int
busy_run(struct job *job)
{
	int rc;

	raise_max(&max_busy, atomic_fetch_add(&busy, 1) + 1);
	rc = fake_run(job);
	atomic_fetch_sub(&busy, 1);
	return rc;
}

static const struct rule rule_borrow = {
	.name = "borrow", .pool = POOL_LOCAL,
	.plan = fake_plan, .start = fake_start, .run = borrow_run, .finish = fake_finish,
};
static const struct rule rule_busy_pacs = {
	.name = "fetch", .pool = POOL_PACS,
	.plan = fake_plan, .start = fake_start, .run = busy_run, .finish = fake_finish,
};
static const struct rule rule_busy_local = {
	.name = "pack", .pool = POOL_LOCAL,
	.plan = fake_plan, .start = fake_start, .run = busy_run, .finish = fake_finish,
};

/* One test's world. */
struct fx {
	struct graph g;
	struct ctx ctx;
	struct sched_opts o;
	struct spec spec[MAXN];
	struct node *node[MAXN];
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	verbosity = 0;
	graph_init(&f->g);
	atomic_init(&f->ctx.cancel, 0);
	f->o.jobs = 4;
	f->o.cap[POOL_PACS] = 4;
	f->o.cap[POOL_LOCAL] = 4;
	atomic_store(&running, 0);
	atomic_store(&max_running, 0);
	atomic_store(&seq, 0);
	for (int p = 0; p < NPOOL; p++) {
		atomic_store(&inpool[p], 0);
		atomic_store(&max_pool[p], 0);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	graph_free(&f->g);
	free(f);
	return 0;
}

/* Node i, stale as build.c makes it: planned after its inputs. */
static struct spec *
add(struct fx *f, int i, const struct rule *r, int sleep_ms)
{
	struct node *n;

	assert_true(i == f->g.n && i < MAXN);
	f->spec[i].sleep_ms = sleep_ms;
	n = graph_add(&f->g, r, &f->spec[i], xasprintf("n%d", i));
	f->node[i] = n;
	return &f->spec[i];
}

static void
plan_all(struct fx *f)
{
	for (int i = 0; i < f->g.n; i++)
		graph_stale(f->node[i], f->node[i]->rule->plan(&f->ctx, f->node[i]));
}

static void
test_independent_all_run(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 12; i++)
		add(f, i, i % 2 ? &rule_local : &rule_pacs, 30);
	f->o.jobs = 4;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	for (int i = 0; i < 12; i++) {
		assert_int_equal(f->node[i]->state, N_DONE);
		assert_int_equal(f->spec[i].starts, 1);
		assert_int_equal(f->spec[i].runs, 1);
		assert_int_equal(f->spec[i].finishes, 1);
		assert_int_equal(f->spec[i].finish_rc, 0);
		assert_null(f->node[i]->error);
	}
	assert_int_equal(graph_count(&f->g, N_DONE), 12);
	/* Four at once, not one after the other, and no more. */
	assert_int_equal(atomic_load(&max_running), 4);
}

static void
test_clean_nodes_not_run(void **state)
{
	struct fx *f = *state;

	add(f, 0, &rule_local, 0);
	add(f, 1, &rule_local, 0);
	graph_edge(f->node[0], f->node[1]);
	/* n0 is up to date: only n1 runs, at once. */
	graph_stale(f->node[1], xstrdup("test"));
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	assert_int_equal(f->node[0]->state, N_CLEAN);
	assert_int_equal(f->spec[0].starts, 0);
	assert_int_equal(f->node[1]->state, N_DONE);
	assert_int_equal(f->spec[1].runs, 1);
}

static void
test_inputs_before_dependents(void **state)
{
	struct fx *f = *state;

	/* A diamond: n0 -> n1, n2 -> n3, and n4 -> n3 from the other pool. */
	add(f, 0, &rule_pacs, 20);
	add(f, 1, &rule_pacs, 40);
	add(f, 2, &rule_local, 5);
	add(f, 3, &rule_local, 5);
	add(f, 4, &rule_pacs, 10);
	graph_edge(f->node[0], f->node[1]);
	graph_edge(f->node[0], f->node[2]);
	graph_edge(f->node[1], f->node[3]);
	graph_edge(f->node[2], f->node[3]);
	graph_edge(f->node[4], f->node[3]);
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	assert_int_equal(graph_count(&f->g, N_DONE), 5);
	for (int i = 0; i < f->g.n; i++)
		for (int j = 0; j < f->node[i]->nout; j++) {
			struct spec *d = f->node[i]->out[j]->obj;

			assert_true(f->spec[i].end_seq < d->start_seq);
		}
}

static void
test_local_pool_first(void **state)
{
	struct fx *f = *state;

	/* One at a time, the later stage (local) goes before the PACS. */
	add(f, 0, &rule_pacs, 0);
	add(f, 1, &rule_pacs, 0);
	add(f, 2, &rule_local, 0);
	f->o.jobs = 1;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	assert_true(f->spec[2].end_seq < f->spec[0].start_seq);
	assert_true(f->spec[0].end_seq < f->spec[1].start_seq);
}

static void
test_failure_blocks_dependents_keep_going(void **state)
{
	struct fx *f = *state;

	/* n0 fails; n1 needs it, n2 needs n1; n3 needs n0 and n4; n4, n5 free. */
	add(f, 0, &rule_pacs, 0)->fail = 1;
	add(f, 1, &rule_local, 0);
	add(f, 2, &rule_local, 0);
	add(f, 3, &rule_local, 0);
	add(f, 4, &rule_pacs, 20);
	add(f, 5, &rule_pacs, 20);
	graph_edge(f->node[0], f->node[1]);
	graph_edge(f->node[1], f->node[2]);
	graph_edge(f->node[0], f->node[3]);
	graph_edge(f->node[4], f->node[3]);
	f->o.jobs = 1;
	f->o.keep_going = 1;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), -1);
	assert_int_equal(f->node[0]->state, N_FAILED);
	assert_string_equal(f->node[0]->error, "run failed: n0");
	assert_int_equal(f->spec[0].finish_rc, -1);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(f->node[i]->state, N_BLOCKED);
		assert_int_equal(f->spec[i].starts, 0);
	}
	assert_int_equal(f->node[4]->state, N_DONE);
	assert_int_equal(f->node[5]->state, N_DONE);
	/* n0 failed first (one job at a time), yet n4 and n5 ran after it. */
	assert_true(f->spec[0].end_seq < f->spec[4].start_seq);
	assert_true(f->spec[0].end_seq < f->spec[5].start_seq);
}

static void
test_failure_stops_without_keep_going(void **state)
{
	struct fx *f = *state;

	/* Two at once: n0 fails at once while n1 runs; n2..n5 wait. */
	add(f, 0, &rule_pacs, 0)->fail = 1;
	add(f, 1, &rule_pacs, 100);
	for (int i = 2; i < 6; i++)
		add(f, i, &rule_pacs, 0);
	graph_edge(f->node[0], f->node[5]);
	f->o.jobs = 2;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), -1);
	assert_int_equal(f->node[0]->state, N_FAILED);
	/* What was running when it failed ends as it would have. */
	assert_int_equal(f->node[1]->state, N_DONE);
	assert_int_equal(f->spec[1].finishes, 1);
	/* Nothing new started, each left blocked. */
	for (int i = 2; i < 6; i++) {
		assert_int_equal(f->spec[i].starts, 0);
		assert_int_equal(f->node[i]->state, N_BLOCKED);
	}
}

static void
test_start_fails(void **state)
{
	struct fx *f = *state;

	add(f, 0, &rule_local, 0)->start = START_FAIL;
	add(f, 1, &rule_local, 0);
	add(f, 2, &rule_local, 0);
	graph_edge(f->node[0], f->node[1]);
	f->o.keep_going = 1;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), -1);
	assert_int_equal(f->node[0]->state, N_FAILED);
	assert_string_equal(f->node[0]->error, "start failed: n0");
	assert_int_equal(f->spec[0].runs, 0);
	/* finish is told, to free what start took. */
	assert_int_equal(f->spec[0].finishes, 1);
	assert_int_equal(f->spec[0].finish_rc, -1);
	assert_int_equal(f->node[1]->state, N_BLOCKED);
	assert_int_equal(f->node[2]->state, N_DONE);
}

static void
test_finish_fails(void **state)
{
	struct fx *f = *state;

	/* The work is done but cannot be recorded: that is a failure. */
	add(f, 0, &rule_local, 0)->finish_fails = 1;
	add(f, 1, &rule_local, 0);
	graph_edge(f->node[0], f->node[1]);
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), -1);
	assert_int_equal(f->spec[0].runs, 1);
	assert_int_equal(f->spec[0].finish_rc, 0);
	assert_int_equal(f->node[0]->state, N_FAILED);
	assert_string_equal(f->node[0]->error, "cannot record: n0");
	assert_int_equal(f->node[1]->state, N_BLOCKED);
	assert_int_equal(f->spec[1].starts, 0);
}

static void
test_pool_caps(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 24; i++)
		add(f, i, i < 12 ? &rule_pacs : &rule_local, 15);
	f->o.jobs = 5;
	f->o.cap[POOL_PACS] = 2;
	f->o.cap[POOL_LOCAL] = 5;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	assert_int_equal(graph_count(&f->g, N_DONE), 24);
	assert_int_equal(atomic_load(&max_pool[POOL_PACS]), 2);
	assert_int_equal(atomic_load(&max_running), 5);
}

static void
test_pool_cap_below_jobs(void **state)
{
	struct fx *f = *state;

	/* Only PACS work: the cap, not -j, is the limit; and -j bounds a
	 * pool whose cap is higher. */
	for (int i = 0; i < 10; i++)
		add(f, i, &rule_pacs, 15);
	for (int i = 10; i < 20; i++)
		add(f, i, &rule_local, 15);
	for (int i = 10; i < 20; i++)
		graph_edge(f->node[i - 10], f->node[i]);
	f->o.jobs = 3;
	f->o.cap[POOL_PACS] = 1;
	f->o.cap[POOL_LOCAL] = 8;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	assert_int_equal(graph_count(&f->g, N_DONE), 20);
	assert_int_equal(atomic_load(&max_pool[POOL_PACS]), 1);
	assert_true(atomic_load(&max_running) <= 3);
	assert_true(atomic_load(&max_pool[POOL_LOCAL]) <= 3);
	/* The PACS ones one after the other. */
	for (int i = 1; i < 10; i++)
		assert_true(f->spec[i - 1].end_seq < f->spec[i].start_seq);
}

static void
test_nothing_to_do_unblocks(void **state)
{
	struct fx *f = *state;

	add(f, 0, &rule_pacs, 0)->start = START_NOTHING;
	add(f, 1, &rule_local, 0);
	graph_edge(f->node[0], f->node[1]);
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	assert_int_equal(f->node[0]->state, N_DONE);
	assert_int_equal(f->spec[0].runs, 0);
	assert_int_equal(f->spec[0].finishes, 1);
	assert_int_equal(f->spec[0].finish_rc, 0);
	assert_int_equal(f->spec[0].nothing, 1);
	assert_int_equal(f->node[1]->state, N_DONE);
	assert_int_equal(f->spec[1].runs, 1);
	assert_int_equal(f->spec[1].nothing, 0);
}

static void
test_cancel_stops(void **state)
{
	struct fx *f = *state;

	/* n1 is interrupted (its run sees the cancel and stops) while n0
	 * runs on; n2.. and n1's dependent never start. */
	add(f, 0, &rule_pacs, 80);
	add(f, 1, &rule_pacs, 10)->cancel = 1;
	for (int i = 2; i < 6; i++)
		add(f, i, &rule_pacs, 0);
	graph_edge(f->node[1], f->node[5]);
	f->o.jobs = 2;
	f->o.keep_going = 1;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), -2);
	assert_int_equal(f->node[0]->state, N_DONE);
	/* Stopped, not failed: it runs again next time. */
	assert_int_equal(f->node[1]->state, N_BLOCKED);
	assert_null(f->node[1]->error);
	assert_int_equal(f->spec[1].finishes, 1);
	assert_int_equal(graph_count(&f->g, N_FAILED), 0);
	for (int i = 2; i < 6; i++) {
		assert_int_equal(f->spec[i].starts, 0);
		assert_int_equal(f->node[i]->state, N_BLOCKED);
	}
}

static void
test_borrow_idle_slots(void **state)
{
	struct fx *f = *state;

	atomic_store(&busy, 0);
	atomic_store(&max_busy, 0);
	atomic_store(&borrowed_most, 0);
	/* Alone under -j3: the two idle slots, no more. */
	add(f, 0, &rule_borrow, 30);
	f->o.jobs = 3;
	plan_all(f);
	assert_int_equal(sched_borrow(), 0);   /* outside a run: nothing */
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	assert_int_equal(atomic_load(&borrowed_most), 2);
	assert_int_equal(atomic_load(&max_busy), 3);
	assert_int_equal(sched_borrow(), 0);
}

static void
test_borrowed_slot_given_back(void **state)
{
	struct fx *f = *state;

	atomic_store(&busy, 0);
	atomic_store(&max_busy, 0);
	/* Under -j2 the borrower and n1 run; when n1 ends, its slot goes to
	 * the borrower or to n2 (ready then): the borrower gives it back
	 * when n2 waits for it.  Jobs and borrowed slots stay within -j. */
	add(f, 0, &rule_borrow, 60);
	add(f, 1, &rule_busy_pacs, 10);
	add(f, 2, &rule_busy_local, 10);
	graph_edge(f->node[1], f->node[2]);
	f->o.jobs = 2;
	plan_all(f);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), 0);
	assert_int_equal(graph_count(&f->g, N_DONE), 3);
	assert_int_equal(f->spec[2].runs, 1);
	/* n2 did not wait for the borrower's end. */
	assert_true(f->spec[2].start_seq < f->spec[0].end_seq);
	assert_true(atomic_load(&max_busy) <= 2);
}

static void
test_cancelled_before_start(void **state)
{
	struct fx *f = *state;

	add(f, 0, &rule_local, 0);
	plan_all(f);
	atomic_store(&f->ctx.cancel, 1);
	assert_int_equal(sched_run(&f->g, &f->ctx, &f->o), -2);
	assert_int_equal(f->spec[0].starts, 0);
	assert_int_equal(f->node[0]->state, N_BLOCKED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_independent_all_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_nodes_not_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inputs_before_dependents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_pool_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_blocks_dependents_keep_going, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_stops_without_keep_going, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_cap_below_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_to_do_unblocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled_before_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_borrow_idle_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_borrowed_slot_given_back, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
