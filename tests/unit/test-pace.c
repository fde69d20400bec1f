/*
 * test-pace.c - source/pace.c, by the clock: the token bucket spaces requests
 * so that no window of time holds more than its rate allows (no burst,
 * not even after a pause), a cancel ends any wait within its 100 ms slice,
 * and backoff_delay draws from [half, all] of 1 s doubling to 60 s.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>
#include "pace.h"
#include "util.h"

#define MS ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* The slack allowed for rounding in the bucket's arithmetic: the takes
 * are timed by the clock read that granted them (b.last), so the check is
 * exact enough to see a rate of per_minute + 1. */
#define TOL ((int64_t)1000)

static void
sleep_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / SEC), (long)(ns % SEC) };

	nanosleep(&ts, NULL);
}

/* Any two takes i < j are at least (j - i) spacings apart: then any 60 s
 * holds at most 1 + 60 s / spacing = per_minute of them. */
static void
assert_spaced(const int64_t *t, int n, int64_t spacing)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (t[j] - t[i] < (j - i) * spacing - TOL)
				fail_msg("takes %d and %d %.1f ms apart, want >= %.1f ms", i, j,
				    (double)(t[j] - t[i]) / MS, (double)((j - i) * spacing) / MS);
}

static void
test_bucket_spacing(void **state)
{
	struct bucket b;
	atomic_int cancel = 0;
	int64_t t[10], t0, spacing = 60 * SEC / (1200 - 1);

	(void)state;
	bucket_init(&b, 1200);
	/* What the clock cannot tell apart from 1200 + 1 (a sleep overshoots
	 * by more than the difference), pace.h's own numbers say: one token
	 * saved up at most, one more every 60 s / 1199. */
	assert_true(b.burst == 1);
	assert_true(1 / b.per_ns >= (double)spacing);
	t0 = mono_ns();
	for (int i = 0; i < 10; i++) {
		assert_int_equal(bucket_take(&b, &cancel), 0);
		t[i] = b.last;
	}
	assert_true(t[9] <= mono_ns());
	bucket_free(&b);
	/* The first at once, the other nine a spacing (50 ms) apart. */
	assert_true(t[0] - t0 < 20 * MS);
	assert_true(t[9] - t0 >= 9 * spacing - TOL);
	assert_true(t[9] - t0 < 2 * SEC);
	assert_spaced(t, 10, spacing);
}

static void
test_bucket_no_burst_after_idle(void **state)
{
	struct bucket b;
	atomic_int cancel = 0;
	int64_t t[4], spacing = 60 * SEC / (1200 - 1);

	(void)state;
	bucket_init(&b, 1200);
	assert_int_equal(bucket_take(&b, &cancel), 0);
	/* Idle for six spacings: one token is saved up, not six. */
	sleep_ns(6 * spacing);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(bucket_take(&b, &cancel), 0);
		t[i] = b.last;
	}
	bucket_free(&b);
	assert_spaced(t, 4, spacing);
}

struct taker {
	struct bucket *b;
	atomic_int *cancel;
	int64_t t[5];
	pthread_t th;
};

static void *
taker_main(void *arg)
{
	struct taker *k = arg;

	for (int i = 0; i < 5; i++) {
		if (bucket_take(k->b, k->cancel) < 0)
			return NULL;
		k->t[i] = mono_ns();
	}
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* One bucket for the process: three threads taking at once share it. */
static void
test_bucket_threads(void **state)
{
	struct bucket b;
	atomic_int cancel = 0;
	struct taker k[3];
	int64_t all[15], spacing = 60 * SEC / (1200 - 1);

	(void)state;
	bucket_init(&b, 1200);
	for (int i = 0; i < 3; i++) {
		k[i] = (struct taker){ .b = &b, .cancel = &cancel };
		assert_int_equal(pthread_create(&k[i].th, NULL, taker_main, &k[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(k[i].th, NULL);
		for (int j = 0; j < 5; j++)
			all[i * 5 + j] = k[i].t[j];
	}
	bucket_free(&b);
	qsort(all, 15, sizeof(*all), cmp_i64);
	/* A take is stamped just after the token was given: allow the
	 * thread's scheduling delay between the two. */
	for (int i = 0; i < 15; i++)
		assert_true(all[i] > 0);
	assert_true(all[14] - all[0] >= 14 * spacing - 20 * MS);
}

struct canceller {
	atomic_int *cancel;
	int64_t after;
	pthread_t th;
};

static void *
canceller_main(void *arg)
{
	struct canceller *c = arg;

	sleep_ns(c->after);
	atomic_store(c->cancel, 1);
	return NULL;
}

static void
test_bucket_cancel(void **state)
{
	struct bucket b;
	atomic_int cancel = 0;
	struct canceller c = { .cancel = &cancel, .after = 150 * MS };
	int64_t t0, took;

	(void)state;
	/* One a minute: the second take would wait 60 s. */
	bucket_init(&b, 1);
	assert_int_equal(bucket_take(&b, &cancel), 0);
	t0 = mono_ns();
	assert_int_equal(pthread_create(&c.th, NULL, canceller_main, &c), 0);
	assert_int_equal(bucket_take(&b, &cancel), -1);
	took = mono_ns() - t0;
	pthread_join(c.th, NULL);
	assert_true(took >= 150 * MS);
	assert_true(took < 150 * MS + 400 * MS);
	/* Cancelled already: no wait at all. */
	t0 = mono_ns();
	assert_int_equal(bucket_take(&b, &cancel), -1);
	assert_true(mono_ns() - t0 < 50 * MS);
	bucket_free(&b);
}

static void
test_backoff_wait(void **state)
{
	atomic_int cancel = 0;
	struct canceller c = { .cancel = &cancel, .after = 100 * MS };
	int64_t t0, took;

	(void)state;
	t0 = mono_ns();
	assert_int_equal(backoff_wait(30 * MS, &cancel), 0);
	assert_true(mono_ns() - t0 >= 30 * MS);
	/* A minute's wait ends with the cancel. */
	t0 = mono_ns();
	assert_int_equal(pthread_create(&c.th, NULL, canceller_main, &c), 0);
	assert_int_equal(backoff_wait(60 * SEC, &cancel), -1);
	took = mono_ns() - t0;
	pthread_join(c.th, NULL);
	assert_true(took >= 100 * MS);
	assert_true(took < 100 * MS + 400 * MS);
}

static void
test_backoff_delay(void **state)
{
	(void)state;
	for (int attempt = 1; attempt <= 40; attempt++) {
		int64_t full = attempt <= 6 ? SEC << (attempt - 1) : 60 * SEC;
		int64_t lo = INT64_MAX, hi = 0;

		if (full > 60 * SEC)
			full = 60 * SEC;
		for (int i = 0; i < 200; i++) {
			int64_t d = backoff_delay(attempt);

			if (d < full / 2 || d > full)
				fail_msg("attempt %d: %lld ns, want [%lld, %lld]", attempt,
				    (long long)d, (long long)(full / 2), (long long)full);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* Jittered: retries of several jobs do not fall together. */
		assert_true(lo < hi);
	}
	/* The cap holds far out. */
	assert_true(backoff_delay(1000) <= 60 * SEC);
	assert_true(backoff_delay(1000) >= 30 * SEC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_spacing),
		cmocka_unit_test(test_bucket_no_burst_after_idle),
		cmocka_unit_test(test_bucket_threads),
		cmocka_unit_test(test_bucket_cancel),
		cmocka_unit_test(test_backoff_wait),
		cmocka_unit_test(test_backoff_delay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
