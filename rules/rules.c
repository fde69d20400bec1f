/* rules.c - the rule table, in stage order, and looking stages up. */
#include <stddef.h>
#include <string.h>
#include "rule.h"
#include "util.h"

extern const struct rule rule_query, rule_download, rule_validate, rule_zip, rule_checksum,
    rule_metadata, rule_omop, rule_forms;

static const struct rule *table[RULE_MAX + 1] = {
	&rule_query,
	&rule_download,
	&rule_validate,
	&rule_zip,
	&rule_checksum,
	&rule_metadata,
	&rule_omop,
	&rule_forms,
	NULL,
};
const struct rule *const *const rule_table = table;

int
rules_declare(const struct config *cfg, char *err, size_t errlen)
{
	static int declared;
	int n = 0, placed[RULE_MAX] = { 0 }, progress = 1;

	if (declared++)
		return 0;
	while (table[n])
		n++;
	if (n + cfg->nrules > RULE_MAX) {
		errf(err, errlen, "%s: %d rules declared: at most %d", cfg->file, cfg->nrules,
		    RULE_MAX - n);
		return -1;
	}
	/* Each after what it comes after (config_rule_check refused cycles). */
	while (progress) {
		progress = 0;
		for (int i = 0; i < cfg->nrules; i++) {
			const struct rule_decl *d = &cfg->rules[i];

			if (placed[i] || !rule_find(d->after, NULL))
				continue;
			table[n] = command_rule_new(d, (enum pool)(POOL_RULE0 + i));
			table[++n] = NULL;
			placed[i] = progress = 1;
		}
	}
	return 0;
}

const struct rule *
rule_find(const char *name, int *idx)
{
	for (int i = 0; rule_table[i]; i++)
		if (strcmp(rule_table[i]->name, name) == 0) {
			if (idx)
				*idx = i;
			return rule_table[i];
		}
	return NULL;
}

struct patient *
rule_patient(const struct node *n)
{
	switch (n->rule->per) {
	case PER_SERIES:
		return ((struct series *)n->obj)->patient;
	case PER_PATIENT:
		return n->obj;
	default:
		return NULL;
	}
}
