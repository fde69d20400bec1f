/* progress.c - the status line, the per-job lines and the summary. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "progress.h"
#include "rule.h"
#include "units.h"
#include "util.h"

enum { MAX_RULES = 16, LINE_MAX_BYTES = 1024 };

static struct {
	int tty;          /* stdout is a terminal: keep one status line */
	int total, done;  /* jobs */
	int failed;       /* jobs that failed */
	int shown;        /* a status line is on screen */
	int64_t start;    /* mono_ns() at init */
	progress_title_fn *title;
	int summary;      /* progress_done says what was built */
	struct {
		const char *name;
		int n;
	} ran[MAX_RULES]; /* jobs that did something, by rule */
	int nran;
	char **built;     /* base names of the products made (archives) */
	const char *noun; /* what they are (rule.product) */
	int nbuilt;
} pr;

void
progress_init(int total, progress_title_fn *title, int summary)
{
	for (int i = 0; i < pr.nbuilt; i++)
		free(pr.built[i]);
	free(pr.built);
	memset(&pr, 0, sizeof(pr));
	pr.tty = isatty(STDOUT_FILENO) && verbosity > 0;
	pr.total = total;
	pr.start = mono_ns();
	pr.title = title;
	pr.summary = summary;
}

int
progress_interval(void)
{
	return pr.tty ? 200 : -1;
}

static void
clear(void)
{
	if (pr.shown) {
		fputs("\r\033[K", stdout);
		pr.shown = 0;
	}
}

/* Columns of the terminal, 80 when it does not say. */
static int
columns(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

/* Bytes of s that fill at most cols columns (a UTF-8 sequence is one). */
static size_t
fit(const char *s, int cols)
{
	size_t i = 0;

	for (; s[i]; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && cols-- <= 0)
			break;
	return i;
}

/* Columns s takes. */
static int
width(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Print line on the terminal cut to its width (an ellipsis marks the
 * cut), without the newline. */
static void
put_cut(const char *line)
{
	int room = columns() - 1;

	if (width(line) <= room)
		fputs(line, stdout);
	else
		printf("%.*s\u2026", (int)fit(line, room - 1), line);
}

static void
title(const struct node *n, int verbose, char *buf, size_t len)
{
	if (pr.title)
		pr.title(n, verbose, buf, len);
	else
		snprintf(buf, len, "%s", n->label);
}

void
progress_begin(struct node *n)
{
	char t[LINE_MAX_BYTES];

	if (verbosity > 1) {
		clear();
		title(n, 1, t, sizeof(t));
		printf("start %-8s %s  (%s)\n", n->rule->name, t, n->reason ? n->reason : "");
		fflush(stdout);
	}
}

/* n did something: count it by rule, and keep the archives' names. */
static void
tally(const struct node *n)
{
	int i;

	for (i = 0; i < pr.nran && strcmp(pr.ran[i].name, n->rule->name) != 0; i++)
		;
	if (i == pr.nran && pr.nran < MAX_RULES)
		pr.ran[pr.nran++].name = n->rule->name;
	if (i < pr.nran)
		pr.ran[i].n++;
	if (n->rule->product) {
		const char *b = strrchr(n->label, '/');

		pr.noun = n->rule->product;
		pr.built = xreallocarray(pr.built, (size_t)pr.nbuilt + 1, sizeof(*pr.built));
		pr.built[pr.nbuilt++] = xstrdup(b ? b + 1 : n->label);
	}
}

void
progress_end(struct node *n, int ok)
{
	struct job *job = n->job;
	double secs = job ? (double)(job->end_ns - job->start_ns) / 1e9 : 0;
	int real = !n->elsewhere && !(job && job->nothing);
	char t[LINE_MAX_BYTES], line[LINE_MAX_BYTES + 512];

	pr.done++;
	clear();
	if (!ok) {
		pr.failed++;
		fflush(stdout);
		title(n, 1, t, sizeof(t));
		warn("%s %s: %s", n->rule->name, t, n->error ? n->error : "failed");
		return;
	}
	if (real) {
		tally(n);
		snprintf(line, sizeof(line), "[%d/%d] %s %s%s%s", pr.done, pr.total, n->rule->name,
		    n->label, job && job->summary ? "  " : "", job && job->summary ? job->summary : "");
		log_keep(line);
	}
	if (verbosity == 0)
		return;
	if (!real && verbosity < 2)
		return;
	title(n, verbosity > 1, t, sizeof(t));
	snprintf(line, sizeof(line), "[%d/%d] %-8s %s%s%s", pr.done, pr.total, n->rule->name, t,
	    n->elsewhere ? "  made by another worker" : job && job->nothing ? "  up to date after all" :
	    job && job->summary ? "  " : "", real && job && job->summary ? job->summary : "");
	if (pr.tty && verbosity < 2) {
		/* A line of its own that stays, above the status line. */
		put_cut(line);
		putchar('\n');
		fflush(stdout);
		return;
	}
	fputs(line, stdout);
	if (verbosity > 1)
		printf("  (%.2fs; %s)", secs, n->reason ? n->reason : "");
	putchar('\n');
	fflush(stdout);
}

void
progress_status(struct node **run, int n)
{
	char head[64], tail[160], rate[32] = "", eta[32] = "", t[LINE_MAX_BYTES];
	struct job *job;
	long done, total;
	double secs;
	int room;

	if (!pr.tty || n == 0)
		return;
	job = run[0]->job;
	secs = (double)(mono_ns() - job->start_ns) / 1e9;
	done = atomic_load(&job->done);
	total = atomic_load(&job->total);
	if (secs > 0.5 && atomic_load(&job->bytes) > 0) {
		rate[0] = ' ';
		units_bytes((double)atomic_load(&job->bytes) / secs, rate + 1, sizeof(rate) - 4);
		strcat(rate, "/s");
	}
	if (secs > 1 && done > 0 && total > done) {
		long left = (long)(secs * (double)(total - done) / (double)done + 0.5);

		snprintf(eta, sizeof(eta), " ETA %ld:%02ld", left / 60, left % 60);
	}
	snprintf(head, sizeof(head), "[%d/%d] %s ", pr.done, pr.total, run[0]->rule->name);
	snprintf(tail, sizeof(tail), " %ld/%ld%s%s", done, total, rate, eta);
	if (n > 1) {
		size_t l = strlen(tail);

		snprintf(tail + l, sizeof(tail) - l, " (+%d running)", n - 1);
	}
	/* One line that fits: the name gives way, ending in an ellipsis;
	 * then the tail, if the terminal is narrower still. */
	title(run[0], 0, t, sizeof(t));
	room = columns() - 1 - width(head) - width(tail);
	fputs("\r\033[K", stdout);
	if (room < 2) {
		char line[LINE_MAX_BYTES + 256];

		snprintf(line, sizeof(line), "%s%s", head, tail);
		put_cut(line);
	} else {
		fputs(head, stdout);
		if (width(t) <= room)
			fputs(t, stdout);
		else
			printf("%.*s\u2026", (int)fit(t, room - 1), t);
		fputs(tail, stdout);
	}
	fflush(stdout);
	pr.shown = 1;
}

void
progress_note(const char *fmt, ...)
{
	va_list ap;
	char *msg, *safe;

	clear();
	fflush(stdout);
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	safe = xescape(msg);
	fprintf(stderr, "%s: %s\n", argv0, safe);
	free(safe);
	free(msg);
}

/* "3 archives built: A.zip, B.zip, C.zip" after prefix into buf, naming
 * as many as fit in room columns (all of them when room < 0), then "and
 * N more". */
static void
built_list(char *buf, size_t len, const char *prefix, int room)
{
	size_t l;
	int i;

	snprintf(buf, len, "%s%d %s%s built: ", prefix, pr.nbuilt, pr.noun, pr.nbuilt == 1 ? "" : "s");
	for (i = 0; i < pr.nbuilt; i++) {
		char more[32];
		int w;

		l = strlen(buf);
		snprintf(more, sizeof(more), " and %d more", pr.nbuilt - i - 1);
		w = width(buf) + width(pr.built[i]) + 2 + (i + 1 < pr.nbuilt ? width(more) : 0);
		if (room >= 0 && i > 0 && w > room)
			break;
		snprintf(buf + l, len - l, "%s%s", i ? ", " : "", pr.built[i]);
	}
	l = strlen(buf);
	if (i < pr.nbuilt)
		snprintf(buf + l, len - l, " and %d more", pr.nbuilt - i);
}

void
progress_done(void)
{
	char line[1024], built[4096], stamp[40] = "";
	int tty = pr.tty && verbosity < 2;
	size_t l;

	clear();
	if (pr.summary && verbosity > 0 && pr.total > 0) {
		if (!pr.tty) {
			time_t now = time(NULL);
			struct tm tm;

			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S%z ", localtime_r(&now, &tm));
		}
		snprintf(line, sizeof(line), "%s%s: %d job%s done in %.1fs", stamp, argv0, pr.done,
		    pr.done == 1 ? "" : "s", (double)(mono_ns() - pr.start) / 1e9);
		for (int i = 0; i < pr.nran; i++) {
			l = strlen(line);
			snprintf(line + l, sizeof(line) - l, "%s%d %s", i ? ", " : " (", pr.ran[i].n,
			    pr.ran[i].name);
		}
		l = strlen(line);
		snprintf(line + l, sizeof(line) - l, "%s", pr.nran ? ")" : "");
		if (pr.failed) {
			l = strlen(line);
			snprintf(line + l, sizeof(line) - l, ", %d failed", pr.failed);
		}
		built[0] = '\0';
		if (pr.nbuilt)
			built_list(built, sizeof(built), tty ? "" : "; ", tty ? columns() - 1 : -1);
		if (tty) {
			/* Two lines, each cut to the width: a terminal shows the
			 * names best on a line of their own. */
			put_cut(line);
			putchar('\n');
			if (*built) {
				put_cut(built);
				putchar('\n');
			}
		} else {
			/* One line, for a log: grep finds when, what and which. */
			printf("%s%s\n", line, built);
		}
	}
	fflush(stdout);
	for (int i = 0; i < pr.nbuilt; i++)
		free(pr.built[i]);
	free(pr.built);
	pr.built = NULL;
	pr.nbuilt = 0;
}
