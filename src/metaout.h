/* metaout.h - -t metadata (metaout.c). */
#ifndef THLHP_METAOUT_H
#define THLHP_METAOUT_H

#include "build.h"

struct setup;

/* Print the stored headers of the series o's targets plan, as o->format
 * says (jsonl, the default, or csv); returns the exit code. */
int tool_metadata(const struct options *o, struct setup *s);

#endif
