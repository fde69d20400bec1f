/* formsout.h - -t forms (formsout.c). */
#ifndef THLHP_FORMSOUT_H
#define THLHP_FORMSOUT_H

#include <stdio.h>
#include "build.h"

struct setup;
struct state;

/* List the forms pulled, or print one's submissions (o->targets[0], its
 * asset uid) as o->format says (jsonl, the default, or csv); returns the
 * exit code. */
int tool_forms(const struct options *o, struct setup *s);
/* -t status's last line when the forms stage is on: the forms pulled and
 * their submissions, as the state holds them (the server is not asked).
 * 0, or -1 with a warning. */
int forms_status(struct state *st, FILE *fp);

#endif
