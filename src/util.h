/* util.h - errors, memory and small helpers shared by every module. */
#ifndef THLHP_UTIL_H
#define THLHP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

extern const char *argv0;   /* program name for messages */
extern int verbosity;       /* 0 quiet, 1 normal, 2 verbose */

/* Print "thlhp-make: msg" to stderr; a trailing ':' in fmt appends strerror(errno). */
void warn(const char *fmt, ...);
/* As warn(), then exit(2).  Only src/ may call it. */
_Noreturn void fatal(const char *fmt, ...);

void *xmalloc(size_t n);               /* malloc or die */
void *xcalloc(size_t n, size_t size);  /* calloc or die */
void *xrealloc(void *p, size_t n);     /* realloc or die */
void *xreallocarray(void *p, size_t n, size_t size); /* checked n*size */
char *xstrdup(const char *s);          /* strdup or die; NULL stays NULL */
char *xasprintf(const char *fmt, ...); /* vasprintf or die */
char *xvasprintf(const char *fmt, va_list ap);

/* The last LOG_KEEP lines the run said (warn() keeps each; the progress
 * lines too), for a failure report; thread-safe.  log_kept: malloc'd,
 * one line each, oldest first.  log_forget frees them. */
enum { LOG_KEEP = 100 };
void log_keep(const char *line);
char *log_kept(void);
void log_forget(void);

/* Format into buf of size n, never overflowing, escaped as str_escape
 * does; used for job errors. */
void errf(char *buf, size_t n, const char *fmt, ...);
/* Copy src into dst of size n (cut short if need be, never inside an
 * escape), every byte that is not printable text written as \xNN: C0
 * controls (tab and newline too), DEL, C1 controls and bytes that are not
 * UTF-8; valid UTF-8 text stays as it is.  Returns the length written.
 * warn(), fatal() and errf() pass every message through it. */
size_t str_escape(char *dst, size_t n, const char *src);
/* str_escape into a malloc'd string. */
char *xescape(const char *s);

/* Nanoseconds since the epoch, and monotonic nanoseconds. */
int64_t now_ns(void);
int64_t mono_ns(void);

/* Parse a whole decimal integer in [min,max]; 0 or -1. */
int parse_int(const char *s, long min, long max, long *out);

/* Hex of a 64-bit hash, 16 chars; and back (0 on bad input). */
void hex64(uint64_t v, char out[17]);
uint64_t unhex64(const char *s);

#endif
