/*
 * build.h - one run: config -> catalog (state) -> query -> graph ->
 * scheduler -> results in state.  Also the tools that need the same setup.
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

/* Build the targets; returns the exit code. */
int build_run(const struct options *o);
/* Run the tool o->tool; returns the exit code. */
int tool_run(const struct options *o);

#endif
