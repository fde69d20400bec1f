/* util.c - errors and memory, as samurai's util.c.  Every message passes
 * through str_escape: what a server sent (a Content-Type, a part header)
 * or a file name may hold an ESC sequence or a line break, and must reach
 * the terminal and the logs as text. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util.h"

const char *argv0 = "thlhp-make";
int verbosity = 1;

/* The last LOG_KEEP lines said, oldest first from ring[head]. */
static struct {
	pthread_mutex_t mu;
	char *line[LOG_KEEP];
	int head, n;
} kept = { .mu = PTHREAD_MUTEX_INITIALIZER };

void
log_keep(const char *line)
{
	char *copy = strdup(line);   /* not xstrdup: fatal() would come back here */

	if (!copy)
		return;
	pthread_mutex_lock(&kept.mu);
	if (kept.n == LOG_KEEP) {
		free(kept.line[kept.head]);
		kept.line[kept.head] = copy;
		kept.head = (kept.head + 1) % LOG_KEEP;
	} else {
		kept.line[(kept.head + kept.n++) % LOG_KEEP] = copy;
	}
	pthread_mutex_unlock(&kept.mu);
}

char *
log_kept(void)
{
	size_t len = 1, off = 0;
	char *s;

	pthread_mutex_lock(&kept.mu);
	for (int i = 0; i < kept.n; i++)
		len += strlen(kept.line[(kept.head + i) % LOG_KEEP]) + 1;
	s = xmalloc(len);
	for (int i = 0; i < kept.n; i++) {
		const char *l = kept.line[(kept.head + i) % LOG_KEEP];
		size_t n = strlen(l);

		memcpy(s + off, l, n);
		off += n;
		s[off++] = '\n';
	}
	s[off] = '\0';
	pthread_mutex_unlock(&kept.mu);
	return s;
}

void
log_forget(void)
{
	pthread_mutex_lock(&kept.mu);
	for (int i = 0; i < kept.n; i++)
		free(kept.line[(kept.head + i) % LOG_KEEP]);
	kept.n = kept.head = 0;
	pthread_mutex_unlock(&kept.mu);
}

/* The length of the UTF-8 sequence at s that is a printable character
 * (not a C1 control), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
	    c >= 0xf0 && c <= 0xf4 ? 4 : 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, surrogates, past U+10FFFF, and C1 controls. */
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f) ||
	    (c == 0xc2 && s[1] < 0xa0))
		return 0;
	return n;
}

size_t
str_escape(char *dst, size_t n, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (n == 0)
		return 0;
	while (*s) {
		size_t k = *s >= 0x20 && *s < 0x7f ? 1 : *s >= 0x80 ? utf8_len(s) : 0;

		if (k == 0) {
			if (o + 4 >= n)
				break;
			snprintf(dst + o, 5, "\\x%02x", *s++);
			o += 4;
			continue;
		}
		if (o + k >= n)
			break;
		memcpy(dst + o, s, k);
		o += k;
		s += k;
	}
	dst[o] = '\0';
	return o;
}

char *
xescape(const char *s)
{
	size_t n = 4 * strlen(s) + 1;
	char *d = xmalloc(n);

	str_escape(d, n, s);
	return d;
}

static void
vwarn(const char *fmt, va_list ap)
{
	int saved = errno;
	size_t n = strlen(fmt);
	char line[2048], safe[4 * sizeof(line)];
	int len;

	len = snprintf(line, sizeof(line), "%s: ", argv0);
	vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
	if (n > 0 && fmt[n - 1] == ':') {
		len = (int)strlen(line);
		snprintf(line + len, sizeof(line) - (size_t)len, " %s", strerror(saved));
	}
	str_escape(safe, sizeof(safe), line);
	fprintf(stderr, "%s\n", safe);
	log_keep(safe);
}

void
warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(2);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		fatal("malloc:");
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		fatal("calloc:");
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		fatal("realloc:");
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		fatal("reallocarray:");
	}
	return xrealloc(p, n * size);
}

char *
xstrdup(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		fatal("strdup:");
	return d;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		fatal("vasprintf:");
	return s;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void
errf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0) {
		va_start(ap, fmt);
		vsnprintf(buf, n, fmt, ap);
		va_end(ap);
		return;
	}
	str_escape(buf, n, s);
	free(s);
}

int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void
hex64(uint64_t v, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)v);
}

uint64_t
unhex64(const char *s)
{
	/* Not strtoull: called for every signature the state holds. */
	uint64_t v = 0;
	int n = 0;

	if (!s)
		return 0;
	for (; *s; s++, n++) {
		int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 :
		    *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;

		if (d < 0 || n == 16)
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	return v;
}
