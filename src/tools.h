/* tools.h - `-t TOOL`: things that are not a build (see build.h: tool_run). */
#ifndef THLHP_TOOLS_H
#define THLHP_TOOLS_H

/* One line per tool, for -t list and --help. */
extern const char tools_help[];

#endif
