/*
 * progress.h - what the user sees while a build runs.  On a terminal one
 * status line kept up to date, like ninja's; otherwise one plain line per
 * finished job.  Errors always go to stderr.
 */
#ifndef THLHP_PROGRESS_H
#define THLHP_PROGRESS_H

#include "graph.h"

/* Start counting a run of total jobs. */
void progress_init(int total);
/* How often the loop should wake to redraw (ms), -1 when never. */
int progress_interval(void);
void progress_begin(struct node *n);
/* n finished: print its line (ok) or its error. */
void progress_end(struct node *n, int ok);
/* Redraw the status line from the running nodes. */
void progress_status(struct node **run, int n);
/* A message between job lines (clears the status line first). */
void progress_note(const char *fmt, ...);
void progress_done(void);

#endif
