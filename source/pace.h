/*
 * pace.h - how fast and how often to ask the PACS: one token bucket per
 * process for max_requests_per_minute, and bounded exponential backoff with
 * jitter between retries.  Both wait in short slices so an interrupt stops
 * them at once.
 */
#ifndef THLHP_PACE_H
#define THLHP_PACE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct bucket {
	pthread_mutex_t mu;
	double tokens;            /* requests that may start now */
	double burst;             /* at most this many saved up */
	double per_ns;            /* tokens added per nanosecond */
	int64_t last;             /* mono_ns() of the last refill */
};

/* A bucket for per_minute requests a minute: never more in any 60 s,
 * evenly spaced (60 / (per_minute - 1) s apart), no bursts. */
void bucket_init(struct bucket *b, int per_minute);
void bucket_free(struct bucket *b);
/* Take one token, waiting for it; -1 if *cancel became set meanwhile. */
int bucket_take(struct bucket *b, atomic_int *cancel);

/* The wait before retry number attempt (1, 2, ...), in ns: 1 s doubling
 * to at most 60 s, each drawn between half and all of that. */
int64_t backoff_delay(int attempt);
/* Wait ns; -1 if cancelled meanwhile. */
int backoff_wait(int64_t ns, atomic_int *cancel);

#endif
