/*
 * zpack-int.h - what the making of entries (zpack.c) and the checking of
 * the archive written (zpack-check.c) share.
 */
#ifndef THLHP_ZPACK_INT_H
#define THLHP_ZPACK_INT_H

#include <pthread.h>
#include <xxhash.h>
#include "zpack.h"

enum { S_TODO, S_MAKING, S_READY, S_FAILED };

/* One entry's bytes on their way to libzip. */
struct slot {
	int state;
	int counted;              /* its size is in zp->ahead */
	int made;                 /* crc and len known (stays after close) */
	unsigned char *raw;       /* what libzip copies; freed on close */
	size_t len, pos;
	int zerr, serr;           /* libzip error code and errno, when it failed */
	int copy;                 /* it was a copy that failed */
	char *msg;                /* why, when it failed */
};

/* What one thread makes entries with. */
struct maker {
	struct libdeflate_compressor *c;
	struct libdeflate_decompressor *d;
	unsigned char *in, *chk;  /* the file; the entry inflated again */
	size_t incap, chkcap;
};

struct zpack {
	struct zpack_opts o;
	struct zpack_entry *e;
	int n;
	zip_t *old;
	struct slot *s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int next;                 /* no entry below it is left to make ahead */
	int64_t ahead;            /* bytes of files taken to make, not yet read */
	int stop;
	pthread_t t[ZPACK_THREADS];
	int nt;
	struct maker self;        /* libzip's thread's */
	struct zfd *out;          /* the writer, or NULL */
	_Atomic int64_t *off;     /* each entry's data offset in the archive, or -1 */
	struct sweep *live;       /* the writer's bytes as they went out */
	int live_whole;           /* ... which were all the file's, to its end */
	char err[512];
	int copy_failed;
};

/* The archive's bytes in file order, checked as they come: the file's
 * hash, and each entry's raw bytes at its offset against the hash of
 * what was handed to libzip (entries lie one after the other). */
struct sweep {
	XXH3_state_t *all, *one;
	int64_t at;               /* bytes seen */
	int k;                    /* the first entry not yet seen whole */
	char bad[512];            /* the first mismatch */
};

struct sweep *sweep_new(void);
void sweep_free(struct sweep *w);
/* zfd's watcher (zfd_watch), on the writer's thread: the new archive's
 * bytes into zp->live as they go out. */
void zpack_watch(void *arg, int64_t off, const unsigned char *p, size_t n);

#endif
