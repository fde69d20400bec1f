/*
 * command-int.h - what the command rule's two files share: command.c (the
 * stage: plan, start, run, finish, its records) and command-in.c (what a
 * target reads, writes and runs: placeholders, inputs, output, command).
 */
#ifndef THLHP_COMMAND_INT_H
#define THLHP_COMMAND_INT_H

#include <stdint.h>
#include "rule.h"

/* A target's record, by key (series UID or patient file-name id). */
struct crec {
	uint64_t input;           /* what it was made from */
	char *command;            /* the command as run */
	char *path;               /* its output, or NULL */
	int64_t size, mtime;
	uint64_t sig;             /* of the output; or of input and command for a stamp */
	int failed;
	int none;                 /* no record after all (crec_reload) */
};

/* One declared rule: its descriptor first, so a rule is its cmd. */
struct cmd {
	struct rule rule;
	const struct rule_decl *d;
	int folder;               /* the output is a folder (template ends in '/') */
	struct htab recs;         /* key -> struct crec */
	struct htab shared;       /* key -> the label of another target with its output */
};

/* The declared rule a descriptor is. */
struct cmd *cmd_of(const struct rule *ru);
/* A target's key in its records: the series UID, or the patient's
 * file-name id. */
const char *key_of(const struct rule *ru, void *obj);
/* The output path of obj's target (malloc'd), or NULL for a stamp rule. */
char *output_of(const struct rule *ru, void *obj);
/* What obj's target of ru reads ({in}, one entry per input; strv_free)
 * and a signature of it as it is now (0: not made yet). */
char **inputs_of(const struct rule *ru, void *obj, uint64_t *sig);
/* The command for obj's target with {out} as out and {in} as in; with
 * env, its THLHP_* variables there too (NULL-terminated, at most 15). */
char **command_of(const struct rule *ru, void *obj, const char *out, char **in, char **env);
/* The command line as recorded, {out} as the output itself (malloc'd). */
char *command_line(const struct rule *ru, void *obj, char **in);

#endif
