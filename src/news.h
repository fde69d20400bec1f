/*
 * news.h - what a build did, told (notify.h): read off the graph of a run
 * that may write, at its end.
 */
#ifndef THLHP_NEWS_H
#define THLHP_NEWS_H

#include <stdint.h>

struct graph;
struct options;
struct config;
struct state;
struct catalog;

/* The notices of graph g, built for o's targets since started (ns since
 * the epoch), the run failed or not, recorded in st and sent as due;
 * nothing when cfg has no mail or webhook.  Warnings only. */
void news_send(const struct graph *g, const struct options *o, const struct config *cfg,
    struct state *st, const struct catalog *cat, int64_t started, int failed);

#endif
