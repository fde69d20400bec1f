/* tools.h - `-t TOOL`: things that are not a build (tool_run in build.h). */
#ifndef THLHP_TOOLS_H
#define THLHP_TOOLS_H

#include <stdio.h>

/* The tools and what each does, for -t list and --help. */
void tool_help(FILE *fp);

#endif
