/*
 * progress.h - what the user sees while a build runs: one line per
 * finished job, and on a terminal below them one status line kept up to
 * date, like ninja's; there every line is cut to the width, so none wraps.
 * Errors always go to stderr.
 */
#ifndef THLHP_PROGRESS_H
#define THLHP_PROGRESS_H

#include <stddef.h>
#include "graph.h"

/* Write how node n is named on screen into buf (len bytes); verbose adds
 * what identifies it exactly (a UID). */
typedef void progress_title_fn(const struct node *n, int verbose, char *buf, size_t len);

/* Start counting a run of total jobs, named by title (NULL: by label);
 * with summary, progress_done says what was built. */
void progress_init(int total, progress_title_fn *title, int summary);
/* How often the loop should wake to redraw (ms), -1 when never. */
int progress_interval(void);
void progress_begin(struct node *n);
/* n finished: print its line (ok) or its error. */
void progress_end(struct node *n, int ok);
/* Redraw the status line from the running nodes. */
void progress_status(struct node **run, int n);
/* A message between job lines (clears the status line first). */
void progress_note(const char *fmt, ...);
/* The run is over: clear the status line and, with summary, print one
 * line saying what was done and built (in a pipe with a timestamp, for
 * logs). */
void progress_done(void);

#endif
