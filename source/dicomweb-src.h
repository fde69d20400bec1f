/*
 * dicomweb-src.h - what the two halves of the DICOMweb source share:
 * dicomweb.c (state, requests, QIDO-RS) and dicomweb-fetch.c (WADO-RS).
 */
#ifndef THLHP_DICOMWEB_SRC_H
#define THLHP_DICOMWEB_SRC_H

#include <jansson.h>
#include <stddef.h>
#include "http.h"
#include "pace.h"
#include "source.h"

/* Bounds of a QIDO-RS answer: bytes of one page, pages of one query,
 * bytes and bracket depth of one element of its array. */
enum {
	QIDO_PAGE_MAX = 32 << 20,
	QIDO_PAGES_MAX = 10000,
	QIDO_VALUE_MAX = 1 << 20,
	QIDO_DEPTH_MAX = 64,
};

/* src->priv of the DICOMweb source. */
struct dicomweb {
	struct bucket bucket;     /* max_requests_per_minute, for every job */
	struct http *http;        /* the connection pool */
	char *base;               /* [pacs] url without a trailing '/' */
};

/* One GET within lim, after its token: 0, -1 with job->err, -2 for an
 * answer no retry can change, or -3 for a failure status (5xx, 408, 429)
 * a retry may change. */
int dw_get(struct job *job, const char *url, const char *accept, const struct http_limits *lim,
    http_body_fn *fn, void *arg);
/* GET a QIDO url (with '?' in it) page by page; fn for each object. */
int dw_qido(struct job *job, const char *url, int (*fn)(void *arg, json_t *obj), void *arg);
/* One QIDO-RS answer, n bytes of body from url: fn for each object of
 * its DICOM JSON array, none when the first is *first (the server ignored
 * the offset: a page seen already).  *first keeps the first page's first
 * object (json_decref it when done).  The array's length (0 for an empty
 * body or a page seen already), or -1: fn's -1, or err "GET url: not a
 * DICOM JSON array: ..." (fn not called), also for an element past
 * QIDO_VALUE_MAX or QIDO_DEPTH_MAX.  Memory: one element's tree at a
 * time.  What tests/fuzz/fuzz-dicomweb.c fuzzes. */
int dw_qido_page(const char *url, const char *body, size_t n, json_t **first,
    int (*fn)(void *arg, json_t *obj), void *arg, char *err, size_t errlen);
/* The values of attribute tag ("0020000D") of a DICOM JSON object,
 * backslash-joined, into out; "" when absent.  Numbers (IS) as integers. */
void dw_attr(json_t *obj, const char *tag, char *out, size_t len);
/* The same, whole however long: malloc'd, NULL when absent or "". */
char *dw_attr_dup(json_t *obj, const char *tag);
/* The fetch (dicomweb-fetch.c). */
int dw_fetch(struct source *src, struct job *job, struct fetch *f);

#endif
