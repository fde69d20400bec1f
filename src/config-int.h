/*
 * config-int.h - what config.c (reading thlhp.ini) and config-check.c
 * (what no single key can check) share; private to them.
 */
#ifndef THLHP_CONFIG_INT_H
#define THLHP_CONFIG_INT_H

#include <stddef.h>
#include <stdio.h>
#include "config.h"

enum { CONFIG_MAX_KEYS = 96 };  /* as struct config's lines[] */

enum ktype { K_STR, K_INT, K_BOOL, K_ENUM, K_AE, K_PATH, K_SIZE, K_PROTO, K_DUR };

struct key {
	const char *section, *name;
	enum ktype type;
	size_t off;               /* offsetof(struct config, ...) */
	long min, max;            /* K_INT and K_SIZE range */
	const char *const *names; /* K_ENUM values, index = enum value */
};

/* Every key; struct config's lines[] is indexed like this table. */
extern const struct key config_keys[];
extern const size_t config_nkeys;
/* The names of [output] encrypt, by enum value. */
extern const char *const config_encrypts[];

/* What the reader and the handler share while one file is parsed. */
struct parse {
	struct config *cfg;
	const char *name;     /* file name for messages */
	const char *text;     /* config_load_string: remaining text */
	FILE *fp;
	int line;             /* line the reader handed out last */
	int seen[CONFIG_MAX_KEYS]; /* line each key was set on, 0 if not */
	char *err;            /* first error */
	int err_line;         /* its line */
	int secret_line;      /* a password written in the file itself, or 0 */
	const struct key *secret;
	char *whole;          /* the line read last, whole (getline's buffer) */
	size_t wholecap;
	const char *rest;     /* the part of a long line inih was not handed, or NULL */
	const char *cut;      /* where inih's copy of that line was cut */
};

/* Keep the first error, as "file:line: message", line p->line. */
void config_perr(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* [rule NAME] sections (config-rule.c).  Whether section is one, its NAME
 * in *name; a section line [rule NAME] read; a key of it (0, or -1 with
 * p->err); what each rule needs, after all is read; freeing them. */
int config_rule_section(const char *section, const char **name);
void config_rule_begin(struct parse *p, const char *name, size_t n);
int config_rule_key(struct parse *p, const char *name, const char *key, const char *value);
void config_rule_check(struct parse *p);
void config_rule_free(struct config *c);

/* What no single key can check: keys a protocol needs, and combinations;
 * the first trouble in p->err. */
void config_check(struct parse *p);

#endif
