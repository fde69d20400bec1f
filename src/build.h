/*
 * build.h - one run: config -> catalog (state) -> query -> graph ->
 * scheduler -> results in state; and the plan alone, for the tools that
 * show it (report.c).
 */
#ifndef THLHP_BUILD_H
#define THLHP_BUILD_H

/* Exit codes of SPEC.md. */
enum { EXIT_OK = 0, EXIT_STALE = 1, EXIT_ERROR = 2 };

struct options {
	const char *file;         /* -f, default ./thlhp.ini */
	int dry_run;              /* -n */
	int question;             /* -q */
	int jobs;                 /* -j */
	int always;               /* -B */
	int keep_going;           /* -k */
	int offline;              /* --offline */
	int wait;                 /* --wait: for a run that holds the state */
	const char *tool;         /* -t */
	const char *format;       /* --format: "table" or "csv" */
	const char *since;        /* --since AGE, for -t qc */
	char **targets;           /* what is left of argv */
	int ntargets;
};

struct graph;
struct setup;

/* Shows a planned graph g (a tool of tools.c); returns the exit code. */
typedef int build_show_fn(const struct options *o, struct setup *s, const struct graph *g);

/* Build the targets; returns the exit code. */
int build_run(const struct options *o);
/* Plan the targets of o as -n does, from the stored catalog (the source
 * is not asked), loading what of s is not loaded yet (setup.h, read-only),
 * and hand the graph to show; returns the exit code. */
int build_plan(const struct options *o, struct setup *s, build_show_fn *show);
/* Run the tool o->tool (tools.c); returns the exit code. */
int tool_run(const struct options *o);

#endif
