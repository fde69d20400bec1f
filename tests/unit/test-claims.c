/*
 * test-claims.c - claims on jobs and the fence on a job's result
 * (state.h), through the SQLite store: one process plays every owner, as
 * the statements are the same for both dialects but the clock and the row
 * lock.  A lapsed claim is made by claiming for a negative time.  The
 * PostgreSQL side, with processes racing and a frozen one, is
 * tests/integration/t-workers.sh.
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
#include "state.h"
#include "util.h"

#define JOB "download:1.2.826.0.1.1.1"
#define A "hosta 100 0000000a"
#define B "hostb 200 0000000b"

struct fx {
	char root[64];
	struct state st;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char *url;

	strcpy(f->root, "/tmp/thlhp-claims-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	url = xasprintf("sqlite:%s/.thlhp/state.db", f->root);
	if (state_open(&f->st, url, 0, 0) != 0) {
		fprintf(stderr, "state_open: %s\n", f->st.err);
		free(url);
		return -1;
	}
	free(url);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	state_close(&f->st);
	rmtree(f->root);
	free(f);
	return 0;
}

/* Claim job for owner: state_claim's answer, *gen and the holder. */
static int
claim(struct fx *f, const char *owner, int64_t ms, int64_t *gen, char *holder)
{
	int rc = state_claim(&f->st, JOB, owner, ms, gen, holder, 320);

	if (rc < 0)
		fail_msg("state_claim: %s", f->st.err);
	return rc;
}

/* Free, held, ours again, let go; a stale generation releases nothing. */
static void
test_claim_release(void **state)
{
	struct fx *f = *state;
	char holder[320] = "";
	int64_t g1 = 0, g2 = 0, g;

	assert_int_equal(claim(f, A, 60000, &g1, holder), 1);
	assert_int_equal(claim(f, B, 60000, &g, holder), 0);
	assert_string_equal(holder, A);
	/* Claimed again by its holder: a new generation. */
	assert_int_equal(claim(f, A, 60000, &g2, holder), 1);
	assert_true(g2 > g1);
	assert_int_equal(state_renew(&f->st, A, 60000), 0);
	assert_int_equal(claim(f, B, 60000, &g, holder), 0);
	assert_int_equal(state_release(&f->st, JOB, A, g1), 0);
	assert_int_equal(state_release(&f->st, JOB, B, g2), 0);
	assert_int_equal(state_release(&f->st, JOB, A, g2), 1);
	assert_int_equal(claim(f, B, 60000, &g, holder), 1);
	assert_int_equal(state_release_all(&f->st, B), 0);
	assert_int_equal(claim(f, A, 60000, &g, holder), 1);
}

/* A lease that lapsed is taken over; renewing it in time keeps it. */
static void
test_lapse(void **state)
{
	struct fx *f = *state;
	char holder[320] = "";
	int64_t ga = 0, gb = 0;

	assert_int_equal(claim(f, A, -1000, &ga, holder), 1);
	assert_int_equal(state_renew(&f->st, A, 60000), 0);
	assert_int_equal(claim(f, B, 60000, &gb, holder), 0);
	assert_int_equal(state_renew(&f->st, A, -1000), 0);
	assert_int_equal(claim(f, B, 60000, &gb, holder), 1);
	assert_true(gb > ga);
}

/* A commit under the fence releases the claim with the result; one whose
 * claim was taken over fails and records nothing; no commit: unused. */
static void
test_fence(void **state)
{
	struct fx *f = *state;
	char holder[320] = "";
	int64_t ga = 0, gb = 0, g;

	/* Unused: the claim is still A's to let go. */
	assert_int_equal(claim(f, A, 60000, &ga, holder), 1);
	state_fence_begin(&f->st, JOB, A, ga);
	assert_int_equal(state_fence_end(&f->st), STATE_FENCE_UNUSED);
	assert_int_equal(claim(f, B, 60000, &g, holder), 0);

	/* Used: committed and let go in one transaction. */
	state_fence_begin(&f->st, JOB, A, ga);
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_commit(&f->st), 0);
	assert_int_equal(state_fence_end(&f->st), STATE_FENCE_USED);
	assert_int_equal(state_release(&f->st, JOB, A, ga), 0);

	/* Lost: A's lease lapsed, B took the job over, A's commit fails. */
	assert_int_equal(claim(f, A, -1000, &ga, holder), 1);
	assert_int_equal(claim(f, B, 60000, &gb, holder), 1);
	state_fence_begin(&f->st, JOB, A, ga);
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_commit(&f->st), -1);
	assert_non_null(strstr(f->st.err, "took it over"));
	state_rollback(&f->st);
	assert_int_equal(state_fence_end(&f->st), STATE_FENCE_LOST);
	/* B's claim is untouched, and the fence is gone for the next commit. */
	assert_int_equal(claim(f, A, 60000, &g, holder), 0);
	assert_string_equal(holder, B);
	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_commit(&f->st), 0);
	assert_int_equal(state_fence_end(&f->st), STATE_FENCE_UNUSED);
}

/* SQLite never loses a transaction with a connection. */
static void
test_cut(void **state)
{
	struct fx *f = *state;
	int mark = state_cut_mark(&f->st);

	assert_int_equal(state_begin(&f->st), 0);
	assert_int_equal(state_commit(&f->st), 0);
	assert_int_equal(state_cut_since(&f->st, mark), 0);
	assert_int_equal(state_cut_since(&f->st, mark - 1), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claim_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lapse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
