/* formsout.h - -t forms (formsout.c). */
#ifndef THLHP_FORMSOUT_H
#define THLHP_FORMSOUT_H

#include "build.h"

struct setup;

/* List the forms pulled, or print one's submissions (o->targets[0], its
 * asset uid) as o->format says (jsonl, the default, or csv); returns the
 * exit code. */
int tool_forms(const struct options *o, struct setup *s);

#endif
