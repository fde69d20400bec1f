/* rules.c - the rule table, in stage order, and looking stages up. */
#include <stddef.h>
#include <string.h>
#include "rule.h"

extern const struct rule rule_query, rule_download, rule_validate, rule_zip, rule_checksum;

const struct rule *const rule_table[] = {
	&rule_query,
	&rule_download,
	&rule_validate,
	&rule_zip,
	&rule_checksum,
	NULL,
};

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
