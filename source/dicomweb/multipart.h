/*
 * multipart.h - a streaming parser for multipart bodies (RFC 2046), as
 * WADO-RS returns a series: multipart/related; type="application/dicom".
 * It is fed the body in chunks as they come off the network and hands each
 * part's data on in pieces, so no part is ever held in memory whole.
 *
 * What it takes: a preamble before the first boundary, transport padding
 * (spaces, tabs) after a boundary, part headers (only Content-Type is
 * reported), a boundary delimiter split across any two chunks, an
 * epilogue after the close delimiter.  What it refuses: a body that ends
 * before the close delimiter (the part in progress ends incomplete, to be
 * discarded), part headers past MULTIPART_HEADER_MAX, a malformed
 * boundary line.  Delimiters are CRLF "--" boundary; a bare LF is
 * accepted in their place.
 */
#ifndef THLHP_MULTIPART_H
#define THLHP_MULTIPART_H

#include <stddef.h>

/* RFC 2046 allows 70 characters of boundary; Orthanc 1.10 sends 72, so
 * longer ones are taken, up to MULTIPART_BOUNDARY_MAX. */
enum { MULTIPART_HEADER_MAX = 16384, MULTIPART_BOUNDARY_MAX = 200 };

/* What the parser calls; each returns 0 to go on, -1 to stop (the feed
 * then fails with "stopped").  arg is multipart_new's. */
struct multipart_cb {
	/* A part begins; content_type is its Content-Type value, trimmed,
	 * or NULL when it has none. */
	int (*begin)(void *arg, const char *content_type);
	/* The next n bytes of the current part's body. */
	int (*data)(void *arg, const void *p, size_t n);
	/* The current part ended: complete 1 at its delimiter, 0 when the
	 * body ended or failed first (discard what data gave).  Called once
	 * for each begin that returned 0, never after one that returned -1. */
	int (*end)(void *arg, int complete);
};

struct multipart;

/* The boundary parameter of a Content-Type value such as
 * `multipart/related; type="application/dicom"; boundary="a b"`, quoted
 * or not, unescaped; malloc'd, or NULL with a message in err when the
 * type is not multipart or the boundary is missing or invalid (1 to
 * MULTIPART_BOUNDARY_MAX characters of RFC 2046's bchars, not ending in a
 * space). */
char *multipart_boundary(const char *content_type, char *err, size_t errlen);
/* A parser for a body with that boundary. */
struct multipart *multipart_new(const char *boundary, const struct multipart_cb *cb, void *arg);
/* Parse n more bytes of the body: 0, or -1 (multipart_error says why;
 * every later call fails the same way). */
int multipart_feed(struct multipart *mp, const void *p, size_t n);
/* The body has ended: 0 when its close delimiter was seen, else -1
 * ("missing final boundary", or the earlier error); a part in progress
 * ends with complete = 0. */
int multipart_finish(struct multipart *mp);
/* Parts that ended complete so far. */
int multipart_parts(const struct multipart *mp);
/* Why the last call failed. */
const char *multipart_error(const struct multipart *mp);
void multipart_free(struct multipart *mp);

#endif
