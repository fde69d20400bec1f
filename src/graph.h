/*
 * graph.h - targets and edges.  A node is one target (a series download, a
 * series validation, a patient archive): the rule that makes it, the object
 * it is about, whether it is stale and why.  The graph knows nothing of DICOM.
 */
#ifndef THLHP_GRAPH_H
#define THLHP_GRAPH_H

#include <stdint.h>

struct rule;
struct job;

enum nstate {
	N_CLEAN,      /* up to date: nothing to run */
	N_STALE,      /* to run once its stale inputs are done */
	N_READY,      /* queued */
	N_WAITING,    /* its job is claimed by another process (lease.h) */
	N_RUNNING,
	N_DONE,       /* ran (or found nothing to do after all) */
	N_FAILED,     /* its job failed */
	N_BLOCKED,    /* an input failed, or the run stopped first */
};

struct node {
	const struct rule *rule;  /* how it is made */
	void *obj;                /* what it is about: a series or a patient */
	char *label;              /* target as the user sees it, e.g. "TH-01 1.2.3" */
	char *reason;             /* why stale (malloc'd), NULL when clean */
	int force;                /* -B named it */
	enum nstate state;
	struct node **in, **out;  /* inputs and dependents */
	int nin, nout;
	int nblock;               /* stale inputs not yet done */
	struct node *qnext;       /* ready queue link */
	struct job *job;          /* while running */
	char *error;              /* why it failed (malloc'd) */
	char *summary;            /* what its job said it did (malloc'd), or NULL */
	/* Shared stores (lease.h): */
	char *claim;              /* the job's claim name, once asked */
	int64_t claim_gen;        /* generation of our claim */
	int claimed;              /* we hold it */
	int elsewhere;            /* another process made it */
	int retakes;              /* times our claim was lost under it */
};

struct graph {
	struct node **node;       /* in the order added: inputs before dependents */
	int n;
};

void graph_init(struct graph *g);
void graph_free(struct graph *g);
/* Add a node; label is taken over (malloc'd). */
struct node *graph_add(struct graph *g, const struct rule *r, void *obj, char *label);
/* from must be made before to. */
void graph_edge(struct node *from, struct node *to);
/* Set n stale with reason (taken over), unless it has one or reason is NULL. */
void graph_stale(struct node *n, char *reason);
/* Count the nodes in state s. */
int graph_count(const struct graph *g, enum nstate s);

#endif
