/*
 * kobo-int.h - what kobo.c (requests, listings) and kobo-page.c (reading
 * one page) share.
 */
#ifndef THLHP_KOBO_INT_H
#define THLHP_KOBO_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "kobo.h"

/* One page being read, and what reading it gives. */
struct page {
	const char *url, *body;
	size_t n;
	const char *noun;         /* what "results" holds, for messages */
	/* Each element of results: 0, -1 with err, or 1 when the caller's
	 * fn stopped (err as fn left it).  take 0: only check it. */
	int (*elem)(void *arg, const struct page *p, json_t *x, const char *what, int take,
	    char *err, size_t errlen);
	void *arg;
	int64_t count;            /* -1 until read */
	char *next;               /* malloc'd; NULL: the last page */
	int nres;                 /* elements of results so far; -1: none seen */
	const char *raw;          /* the element being handed on, as it came */
	size_t rawlen;
};

/* A submission for fn. */
struct subs {
	int (*fn)(void *arg, const struct kobo_sub *sub);
	void *arg;
	int stopped;              /* fn said stop: err is fn's */
};

/* Read p's page: checked whole, then each element of results to p->elem
 * for good.  The number of results, with *count and *next (malloc'd, NULL
 * at the last page), or -1: err, or as fn left it. */
int kobo_page_read(struct page *p, int64_t *count, char **next, char *err, size_t errlen);
/* p->elem for submissions (p->arg a struct subs). */
int kobo_on_sub(void *arg, const struct page *p, json_t *x, const char *what, int take,
    char *err, size_t errlen);

#endif
