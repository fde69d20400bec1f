/*
 * report.h - the tools that show a planned graph instead of running it
 * (-t status, -t inventory, -t dag, -t targets).  build.c plans as for -n, from the
 * stored catalog, and hands the graph here.  Nothing is written.
 */
#ifndef THLHP_REPORT_H
#define THLHP_REPORT_H

#include <stdio.h>
#include "catalog.h"
#include "config.h"
#include "graph.h"
#include "state.h"

enum report {
	REPORT_STATUS,            /* one row per patient, aligned */
	REPORT_STATUS_CSV,        /* the same as CSV */
	REPORT_INVENTORY,         /* CSV, one row per series */
	REPORT_DAG,               /* Graphviz DOT, coloured by state */
	REPORT_TARGETS,           /* every target name, one a line */
};

/* The report named by a -t tool, or -1 when tool is not one of these. */
int report_kind(const char *tool, const char *format);
/* Print report kind of graph g (planned from catalog c, loaded from st,
 * which the inventory reads its byte counts from, for the project cfg,
 * whose stages -t targets lists) to fp; verbose draws every target even
 * in a large catalog (dag).  Returns 0 or -1 (with a warning). */
int report_print(enum report kind, const struct graph *g, const struct catalog *c,
    struct state *st, const struct config *cfg, int verbose, FILE *fp);
/* Write s as one CSV field: quoted when it holds a comma, quote, CR or
 * LF, quotes doubled (RFC 4180). */
void csv_field(FILE *fp, const char *s);

#endif
