/*
 * setup.h - what a build and the tools load first: the config, [select],
 * the state and the stored catalog, each failure said one way (for the
 * state: "thlhp.ini:7: [state] url: ...").
 */
#ifndef THLHP_SETUP_H
#define THLHP_SETUP_H

#include "build.h"
#include "catalog.h"
#include "config.h"
#include "select.h"
#include "state.h"

/* What a run loads; a tool's needs (tools.c). */
enum need {
	NEED_CONFIG = 1 << 0,     /* -f FILE */
	NEED_SELECT = 1 << 1,     /* [select] compiled (with NEED_CONFIG) */
	NEED_STATE = 1 << 2,      /* the state open, read-only */
	NEED_WRITE = 1 << 3,      /* ... for writing, unless -n (with NEED_STATE) */
	NEED_CATALOG = 1 << 4,    /* the stored catalog loaded (with NEED_STATE) */
	NEED_GRAPH = 1 << 5,      /* the targets planned as -n plans them (build_plan) */
};

struct setup {
	struct config cfg;
	struct select sel;
	struct state st;
	struct catalog cat;
	int have;                 /* NEED_* loaded, freed by setup_free */
};

/* Zero s, so that setup_free may follow anything. */
void setup_init(struct setup *s);
/* Load o->file and, with NEED_SELECT in need, compile its [select].
 * Returns 0, or -1 after a warning. */
int setup_config(struct setup *s, const struct options *o, int need);
/* Open the state with store flags (STORE_*) and, with NEED_CATALOG in
 * need, load the catalog.  Returns 0, or -1 after a warning. */
int setup_state(struct setup *s, int flags, int need);
/* Warn about the state's last error, naming [state] url. */
void setup_state_error(struct setup *s);
/* Everything of s that was loaded. */
void setup_free(struct setup *s);

#endif
