/* pace.c - the token bucket and the backoff. */
#include <stdlib.h>
#include <time.h>
#include "pace.h"
#include "util.h"

enum { SLICE_NS = 100 * 1000 * 1000 };   /* recheck cancel every 100 ms */

void
bucket_init(struct bucket *b, int per_minute)
{
	pthread_mutex_init(&b->mu, NULL);
	/* No bursts: one token saved up at most, and the rest of the
	 * minute's worth spread evenly, so that any 60 s holds at most
	 * per_minute requests (1 + (per_minute - 1) refills). */
	b->burst = 1;
	b->per_ns = (per_minute > 1 ? per_minute - 1 : 1) / 60e9;
	b->tokens = b->burst;
	b->last = mono_ns();
}

void
bucket_free(struct bucket *b)
{
	pthread_mutex_destroy(&b->mu);
}

static int
nap(int64_t ns, atomic_int *cancel)
{
	struct timespec ts;

	if (atomic_load(cancel))
		return -1;
	if (ns > SLICE_NS)
		ns = SLICE_NS;
	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	nanosleep(&ts, NULL);
	return atomic_load(cancel) ? -1 : 0;
}

int
bucket_take(struct bucket *b, atomic_int *cancel)
{
	for (;;) {
		int64_t now = mono_ns(), wait;

		pthread_mutex_lock(&b->mu);
		b->tokens += (double)(now - b->last) * b->per_ns;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last = now;
		if (b->tokens >= 1) {
			b->tokens -= 1;
			pthread_mutex_unlock(&b->mu);
			return 0;
		}
		wait = (int64_t)((1 - b->tokens) / b->per_ns) + 1;
		pthread_mutex_unlock(&b->mu);
		if (nap(wait, cancel) < 0)
			return -1;
	}
}

int64_t
backoff_delay(int attempt)
{
	int64_t full = (int64_t)1000000000 << (attempt - 1 < 6 ? attempt - 1 : 6);
	unsigned seed = (unsigned)mono_ns();

	if (full > (int64_t)60 * 1000000000)
		full = (int64_t)60 * 1000000000;
	return full / 2 + (int64_t)((double)rand_r(&seed) / RAND_MAX * (double)(full / 2));
}

int
backoff_wait(int64_t ns, atomic_int *cancel)
{
	int64_t until = mono_ns() + ns;

	for (int64_t now; (now = mono_ns()) < until;)
		if (nap(until - now, cancel) < 0)
			return -1;
	return 0;
}
