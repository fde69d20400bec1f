/* rules.c - the rule table, in stage order. */
#include <stddef.h>
#include "rule.h"

const struct rule *const rule_table[] = {
	&rule_query,
	&rule_download,
	&rule_validate,
	&rule_zip,
	NULL,
};
