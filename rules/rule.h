/*
 * rule.h - one interface for every stage, as tmux's cmd_entry: each
 * rules/X.c exports one const descriptor, listed in stage order in
 * rules/rules.c's rule_table.  The engine builds the graph, the claims,
 * the reports and the targets from the table alone, by what a descriptor
 * says (per, after, ...): no file outside rules/ names a stage.  A rule
 * never reaches into the scheduler; the scheduler only calls plan, start,
 * run and finish.
 */
#ifndef THLHP_RULE_H
#define THLHP_RULE_H

#include <stdatomic.h>
#include <stdint.h>
#include "job.h"

/* What a stage makes one target for. */
enum rule_per {
	PER_RUN,                  /* one for the run, first and alone: the query */
	PER_SERIES,               /* each series of a patient (obj: struct series) */
	PER_PATIENT,              /* each patient (obj: struct patient), from all
	                           * its series' targets of the stage before */
	PER_ITEM,                 /* each item the stage lists itself (obj:
	                           * struct item), apart from the catalog: a
	                           * form; named STAGE:KEY */
};

/* A target of a PER_ITEM stage. */
struct item {
	char *key;                /* its name after "STAGE:": a form's asset uid */
	char *title;              /* what it is, for people: the form's title */
	int64_t count;            /* what it holds at its source (submissions); -1 unknown */
};

struct rule {
	const char *name;         /* stage name: "download"; a target NAME or NAME:P */
	enum rule_per per;
	/* The stage its targets are made from, or NULL (the catalog): a
	 * series stage after a series stage gets an edge from the same
	 * series' target; a patient stage after a series stage fans in from
	 * all of the patient's. */
	const char *after;
	/* Whether cfg asks for it (NULL: always).  A stage that is off has
	 * no targets; no stage may come after it. */
	int (*enabled)(const struct config *cfg);
	enum pool pool;
	/* -B of a patient or of all leaves it alone (a download: the files
	 * are checked, not fetched again); only -B NAME or NAME:P redoes it. */
	int costly;
	/* What one target makes, when its file is the patient's deliverable,
	 * named by its label ("archive"): -t status and -t inventory show it,
	 * the end of a build lists those made, messages name it.  NULL for a
	 * stage whose targets are steps. */
	const char *product;
	/* Main thread: the target's label, malloc'd: the file it makes for
	 * a product, else "<patient> <series UID>" or what it reads. */
	char *(*label)(const struct rule *ru, struct ctx *ctx, void *obj);
	/* PER_ITEM, main thread, once before planning when the stage is
	 * asked for: its items into *v (malloc'd; the engine frees them and
	 * their strings), from its source, or with ctx->offline from what
	 * the state recorded.  0, or -1 after a warning: the run fails before
	 * any job. */
	int (*items)(const struct rule *ru, struct ctx *ctx, struct item **v, int *n);
	/* Main thread, once before planning (or NULL): look at what it
	 * needs for every target (the archives in zip_dir).  0, or -1 after
	 * a warning: what it needs cannot be read, and the run fails before
	 * any job. */
	int (*prepare)(const struct rule *ru, struct ctx *ctx);
	/* A file named as a target (a path): the PatientID (malloc'd) whose
	 * target of this stage it names, whatever its count; NULL when it is
	 * not one of this stage's names, or, with err, when it is but not
	 * where the stage puts them.  NULL for a stage that makes no file. */
	char *(*file_owner)(struct ctx *ctx, const char *file, char *err, size_t errlen);
	/* Main thread, planning: why the target for obj is stale, as a
	 * malloc'd reason, or NULL when up to date.  n is its node; its
	 * inputs are planned already.  Reads disk metadata, writes nothing. */
	char *(*plan)(struct ctx *ctx, struct node *n);
	/* Main thread, when the node's inputs are done: take from the catalog
	 * and state what the job needs into job->in.  Returns 1 to run, 0 when
	 * there is nothing to do after all (inputs rebuilt to the same
	 * content), -1 with job->err. */
	int (*start)(struct job *job);
	/* A worker thread: the work.  0, or -1 with job->err.  Checks
	 * ctx->cancel between items and leaves nothing under a final name
	 * that is not complete. */
	int (*run)(struct job *job);
	/* Main thread, right after run, or after start returned 0 or -1 (rc
	 * that result): record the result in the catalog and in state, one
	 * transaction; free job->in and ->out, whatever start got to.
	 * Returns -1 with job->err if it cannot record. */
	int (*finish)(struct job *job, int rc);
	/* Main thread, once the scheduler is done, in a run that is no dry
	 * run, when the stage is on (or NULL): what the stage does for the
	 * run as a whole, made the number of its targets made.  0, or -1
	 * after a warning (the run fails). */
	int (*run_end)(const struct rule *ru, struct ctx *ctx, int made);
	const void *priv;         /* a generic rule's settings */
};

/* Every stage, in stage order (each after the one its after names),
 * NULL-terminated; at most RULE_MAX: the built-in stages, then the rules
 * thlhp.ini declares (rules_declare). */
extern const struct rule *const *const rule_table;
enum { RULE_MAX = 32 };
/* Add cfg's [rule NAME] sections to rule_table, each after what it comes
 * after, as instances of the command rule (command.c); once, after the
 * config is read.  0, or -1 with err (more rules than RULE_MAX). */
int rules_declare(const struct config *cfg, char *err, size_t errlen);
/* A declared rule (command.c): the descriptor for d, its pool pool. */
struct rule *command_rule_new(const struct rule_decl *d, enum pool pool);
/* The stage named name, or NULL; its index in rule_table in *idx. */
const struct rule *rule_find(const char *name, int *idx);
/* The patient whose target n is (NULL for a PER_RUN one). */
struct patient *rule_patient(const struct node *n);

/* A series target's label, "<patient> <series UID>" (rule.label). */
char *series_label(const struct rule *ru, struct ctx *ctx, void *obj);


#endif
