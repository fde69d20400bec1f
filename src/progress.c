/* progress.c - the status line and the per-job lines. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "progress.h"
#include "rule.h"
#include "util.h"

static struct {
	int tty;          /* stdout is a terminal: keep one status line */
	int total, done;  /* jobs */
	int shown;        /* a status line is on screen */
	int64_t start;    /* mono_ns() at init */
} pr;

void
progress_init(int total)
{
	pr.tty = isatty(STDOUT_FILENO) && verbosity > 0;
	pr.total = total;
	pr.done = 0;
	pr.shown = 0;
	pr.start = mono_ns();
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

void
progress_begin(struct node *n)
{
	if (verbosity > 1) {
		clear();
		printf("start %-8s %s  (%s)\n", n->rule->name, n->label, n->reason ? n->reason : "");
		fflush(stdout);
	}
}

static void
human_bytes(double b, char *buf, size_t len)
{
	const char *unit[] = { "B", "kB", "MB", "GB", "TB" };
	int i = 0;

	while (b >= 1000 && i < 4) {
		b /= 1000;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, unit[i]);
}

void
progress_end(struct node *n, int ok)
{
	struct job *job = n->job;
	double secs = job ? (double)(job->end_ns - job->start_ns) / 1e9 : 0;

	pr.done++;
	clear();
	if (!ok) {
		fflush(stdout);
		warn("%s %s: %s", n->rule->name, n->label, n->error ? n->error : "failed");
		return;
	}
	if (!n->elsewhere && !(job && job->nothing)) {
		char line[512];

		snprintf(line, sizeof(line), "[%d/%d] %s %s%s%s", pr.done, pr.total, n->rule->name,
		    n->label, job && job->summary ? "  " : "", job && job->summary ? job->summary : "");
		log_keep(line);
	}
	if (verbosity == 0)
		return;
	if (((job && job->nothing) || n->elsewhere) && verbosity < 2)
		return;
	if (pr.tty && verbosity < 2) {
		/* A terminal keeps one line: show what just finished on it. */
		printf("[%d/%d] %s %s%s%s", pr.done, pr.total, n->rule->name, n->label,
		    job && job->summary ? "  " : "", job && job->summary ? job->summary : "");
		fflush(stdout);
		pr.shown = 1;
		return;
	}
	printf("[%d/%d] %-8s %s", pr.done, pr.total, n->rule->name, n->label);
	if (n->elsewhere)
		printf("  made by another worker");
	else if (job && job->nothing)
		printf("  up to date after all");
	else if (job && job->summary)
		printf("  %s", job->summary);
	if (verbosity > 1)
		printf("  (%.2fs; %s)", secs, n->reason ? n->reason : "");
	putchar('\n');
	fflush(stdout);
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

void
progress_status(struct node **run, int n)
{
	char head[64], tail[160], rate[32] = "", eta[32] = "";
	struct job *job;
	long done, total;
	double secs;
	int room, llen;

	if (!pr.tty || n == 0)
		return;
	job = run[0]->job;
	secs = (double)(mono_ns() - job->start_ns) / 1e9;
	done = atomic_load(&job->done);
	total = atomic_load(&job->total);
	if (secs > 0.5 && atomic_load(&job->bytes) > 0) {
		rate[0] = ' ';
		human_bytes((double)atomic_load(&job->bytes) / secs, rate + 1, sizeof(rate) - 4);
		strcat(rate, "/s");
	}
	if (secs > 1 && done > 0 && total > done) {
		long left = (long)(secs * (double)(total - done) / (double)done + 0.5);

		snprintf(eta, sizeof(eta), " ETA %ld:%02ld", left / 60, left % 60);
	}
	snprintf(head, sizeof(head), "[%d/%d] %s ", pr.done, pr.total, run[0]->rule->name);
	snprintf(tail, sizeof(tail), " %ld/%ld%s%s%s", done, total, rate, eta, "");
	if (n > 1) {
		size_t l = strlen(tail);

		snprintf(tail + l, sizeof(tail) - l, " (+%d running)", n - 1);
	}
	/* One line that fits: the label gives way, ending in an ellipsis. */
	room = columns() - 1 - (int)strlen(head) - (int)strlen(tail);
	llen = (int)strlen(run[0]->label);
	fputs("\r\033[K", stdout);
	fputs(head, stdout);
	if (llen <= room)
		fputs(run[0]->label, stdout);
	else if (room > 1)
		printf("%.*s\u2026", room - 1, run[0]->label);
	fputs(tail, stdout);
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

void
progress_done(void)
{
	int shown = pr.shown;

	clear();
	if (shown && pr.total > 1)
		printf("%s: %d job%s done in %.1fs\n", argv0, pr.done, pr.done == 1 ? "" : "s",
		    (double)(mono_ns() - pr.start) / 1e9);
	fflush(stdout);
}
