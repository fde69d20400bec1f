/*
 * config-rule.c - the [rule NAME] sections of thlhp.ini: stages users
 * declare, each running a program (SPEC.md "Rules of your own").  Read as
 * strictly as the rest: the command is split into words when read
 * (words.c), every placeholder is checked, and what a rule comes after
 * must exist and not lead back to it.
 */
#include <stdlib.h>
#include <string.h>
#include "config-int.h"
#include "fileio.h"
#include "rule.h"
#include "units.h"
#include "util.h"
#include "words.h"

/* The keys of a [rule NAME] section, indexed like struct rule_decl's lines. */
static const char *const rule_keys[] = { "for", "after", "command", "output", "jobs", "timeout" };
enum { RK_FOR, RK_AFTER, RK_COMMAND, RK_OUTPUT, RK_JOBS, RK_TIMEOUT };

/* Placeholders by what a target is: a series, or a patient. */
static const char *const series_ph[] = { "patient", "patient_file", "in", "out", "study", "series",
	"series_number", "series_description", "modality", "study_date", NULL };
static const char *const patient_ph[] = { "patient", "patient_file", "in", "out", NULL };

int
config_rule_section(const char *section, const char **name)
{
	if (strncmp(section, "rule", 4) != 0 || (section[4] != ' ' && section[4] != '\t'))
		return 0;
	*name = section + 4 + strspn(section + 4, " \t");
	return 1;
}

static struct rule_decl *
decl_of(struct config *c, const char *name)
{
	for (int i = 0; i < c->nrules; i++)
		if (strcmp(c->rules[i].name, name) == 0)
			return &c->rules[i];
	return NULL;
}

void
config_rule_begin(struct parse *p, const char *name, size_t n)
{
	struct config *c = p->cfg;
	struct rule_decl *d;
	char *id = xasprintf("%.*s", (int)n, name);

	/* A name is a target and a file-name part: [a-z][a-z0-9_-]*. */
	if (!n || n > 32 || id[0] < 'a' || id[0] > 'z' ||
	    strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n) {
		config_perr(p, "[rule %s]: a rule's name is a lowercase letter, then lowercase letters, "
		    "digits, '_' and '-' (at most 32)", id);
		goto out;
	}
	if (rule_find(id, NULL) || strcmp(id, "all") == 0 || strcmp(id, "metadata") == 0) {
		config_perr(p, "[rule %s]: %s is a built-in stage's name: choose another", id, id);
		goto out;
	}
	if ((d = decl_of(c, id))) {
		config_perr(p, "[rule %s]: declared twice (first on line %d)", id, d->line);
		goto out;
	}
	c->rules = xreallocarray(c->rules, (size_t)c->nrules + 1, sizeof(*c->rules));
	d = &c->rules[c->nrules++];
	memset(d, 0, sizeof(*d));
	d->name = id;
	d->line = p->line;
	return;
out:
	free(id);
}

int
config_rule_key(struct parse *p, const char *name, const char *key, const char *value)
{
	struct rule_decl *d = decl_of(p->cfg, name);
	size_t k;
	long n;

	if (!d)                   /* its section line was refused */
		return -1;
	for (k = 0; k < LEN(rule_keys); k++)
		if (strcmp(rule_keys[k], key) == 0)
			break;
	if (k == LEN(rule_keys)) {
		config_perr(p, "[rule %s] %s: unknown key (a rule takes for, after, command, output, "
		    "jobs, timeout)", name, key);
		return -1;
	}
	if (d->lines[k]) {
		config_perr(p, "[rule %s] %s: given twice (first on line %d)", name, key, d->lines[k]);
		return -1;
	}
	d->lines[k] = p->line;
	switch (k) {
	case RK_FOR:
		if (strcmp(value, "series") != 0 && strcmp(value, "patient") != 0) {
			config_perr(p, "[rule %s] for: '%s' is not one of series | patient", name, value);
			return -1;
		}
		d->per_patient = strcmp(value, "patient") == 0;
		return 0;
	case RK_AFTER:
		d->after = xstrdup(value);
		return 0;
	case RK_COMMAND: {
		char err[512];

		d->command = xstrdup(value);
		if (!(d->argv = words_split(value, err, sizeof(err)))) {
			config_perr(p, "[rule %s] command: %s", name, err);
			return -1;
		}
		return 0;
	}
	case RK_OUTPUT:
		if (!*value) {
			config_perr(p, "[rule %s] output: empty path", name);
			return -1;
		}
		d->output = xstrdup(value);
		return 0;
	case RK_JOBS:
		if (parse_int(value, 1, 1024, &n) < 0) {
			config_perr(p, "[rule %s] jobs: '%s' is not a whole number from 1 to 1024", name, value);
			return -1;
		}
		d->jobs = (int)n;
		return 0;
	case RK_TIMEOUT:
		if ((n = units_duration(value)) < 0) {
			config_perr(p, "[rule %s] timeout: '%s' is not a duration (like 30s, 90m, 12h or "
			    "1d; 0 for none)", name, value);
			return -1;
		}
		d->timeout = (int)n;
		return 0;
	}
	return -1;
}

/* Whether the output template (no {in}, no {out}) names only what its
 * targets have. */
static int
check_output(struct parse *p, struct rule_decl *d, const char *const *known)
{
	const char *const *ok = known;
	char *v[2] = { d->output, NULL }, err[512];
	const char *out_known[16];
	int n = 0;

	for (; *ok; ok++)
		if (strcmp(*ok, "in") != 0 && strcmp(*ok, "out") != 0)
			out_known[n++] = *ok;
	out_known[n] = NULL;
	p->line = d->lines[RK_OUTPUT];
	if (words_check(v, out_known, err, sizeof(err)) < 0) {
		config_perr(p, "[rule %s] output: %s", d->name, err);
		return -1;
	}
	/* Inside the working directory, unless the user says otherwise by
	 * an absolute path: the values put in are file-name parts, so only
	 * the template itself could climb out. */
	for (const char *c = d->output; *c; c = c + strcspn(c, "/") + (c[strcspn(c, "/")] != 0))
		if (strncmp(c, "..", 2) == 0 && (c[2] == '/' || !c[2])) {
			config_perr(p, "[rule %s] output: '%s' leaves the working directory by '..': "
			    "write an absolute path if that is meant", d->name, d->output);
			return -1;
		}
	return 0;
}

/* What each rule needs, what it comes after, and no cycle. */
void
config_rule_check(struct parse *p)
{
	struct config *c = p->cfg;

	for (int i = 0; i < c->nrules && !p->err; i++) {
		struct rule_decl *d = &c->rules[i];
		const char *const *known = d->per_patient ? patient_ph : series_ph;
		const char *need[] = { "for", "after", "command" };
		const int have[] = { d->lines[RK_FOR], d->lines[RK_AFTER], d->lines[RK_COMMAND] };
		char err[512];

		p->line = d->line;
		for (size_t k = 0; k < LEN(need); k++)
			if (!have[k]) {
				config_perr(p, "[rule %s] %s: required", d->name, need[k]);
				return;
			}
		if (words_check(d->argv, known, err, sizeof(err)) < 0) {
			p->line = d->lines[RK_COMMAND];
			config_perr(p, "[rule %s] command: %s", d->name, err);
			return;
		}
		if (!d->output && strstr(d->command, "{out}")) {
			p->line = d->lines[RK_COMMAND];
			config_perr(p, "[rule %s] command: {out} is where the command writes its output: "
			    "say where it goes with output =", d->name);
			return;
		}
		if (d->output && check_output(p, d, known) < 0)
			return;
		/* What it comes after: a stage with something to give {in}. */
		p->line = d->lines[RK_AFTER];
		{
			const struct rule *r = rule_find(d->after, NULL);
			struct rule_decl *up = decl_of(c, d->after);

			if (!r && !up) {
				config_perr(p, "[rule %s] after: no stage \"%s\" (validate, zip or a rule's "
				    "name)", d->name, d->after);
				return;
			}
			/* What {in} is: a validated series folder, an archive, or
			 * another rule's output. */
			if (r && strcmp(r->name, "validate") != 0 && strcmp(r->name, "zip") != 0) {
				config_perr(p, "[rule %s] after: %s gives a rule nothing to run on: come "
				    "after validate (a series folder), zip (an archive) or a rule",
				    d->name, d->after);
				return;
			}
			if (!d->per_patient && ((r && r->per == PER_PATIENT) || (up && up->per_patient))) {
				config_perr(p, "[rule %s] after: %s is made per patient: a rule for = series "
				    "cannot come after it", d->name, d->after);
				return;
			}
		}
		/* Following after from d must end at a built-in stage. */
		{
			const struct rule_decl *at = d;

			for (int steps = 0; at; steps++) {
				if (steps > c->nrules) {
					config_perr(p, "[rule %s] after: rules that come after each other in a "
					    "circle", d->name);
					return;
				}
				at = decl_of(c, at->after);
			}
		}
	}
}

void
config_rule_free(struct config *c)
{
	for (int i = 0; i < c->nrules; i++) {
		struct rule_decl *d = &c->rules[i];

		free(d->name);
		free(d->after);
		free(d->command);
		strv_free(d->argv);
		free(d->output);
	}
	free(c->rules);
	c->rules = NULL;
	c->nrules = 0;
}
