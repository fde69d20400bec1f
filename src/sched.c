/* sched.c - the job loop.  Workers report on a pipe; signals on another. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lease.h"
#include "progress.h"
#include "sched.h"
#include "util.h"

enum { WAIT_RETRY_MS = 1000, MAX_RETAKES = 3 };

static int sigpipe[2] = { -1, -1 };
static struct ctx *sigctx;
static volatile sig_atomic_t signo;   /* the first SIGINT or SIGTERM */

/* The slots of -j not taken by a job or a borrower, whether a ready job
 * waits for one, and the loop's done pipe (a NULL there wakes it). */
static atomic_int free_slots, wanted;
static int wake_fd = -1;

static void
on_signal(int sig)
{
	int saved = errno;

	if (!signo)
		signo = sig;
	if (sigctx && atomic_exchange(&sigctx->cancel, 1)) {
		/* Second signal: the user means it. */
		signal(sig, SIG_DFL);
		raise(sig);
	}
	if (write(sigpipe[1], "", 1) < 0) {
		/* the pipe is full: the loop is awake already */
	}
	errno = saved;
}

int
sched_signal(void)
{
	return signo;
}

void
sched_signals(struct ctx *ctx)
{
	struct sigaction sa;

	if (sigpipe[0] < 0 && pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("pipe:");
	sigctx = ctx;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

struct worker {
	struct job *job;
	pthread_t t;              /* joined when reaped: nothing outlives the run */
	int fd;                   /* write end of the done pipe */
	int rc;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t all;

	/* Signals go to the main thread only. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	w->rc = w->job->rule->run(w->job);
	w->job->end_ns = mono_ns();
	while (write(w->fd, &w, sizeof(w)) < 0 && errno == EINTR)
		;
	return NULL;
}

struct loop {
	struct graph *g;
	struct ctx *ctx;
	const struct sched_opts *o;
	struct node *head[NPOOL], *tail[NPOOL]; /* ready queues per pool */
	int running, inpool[NPOOL];
	int failed;
	struct node *waiting;     /* held by other processes, linked by qnext */
	int64_t retry_ns;         /* when to claim them again */
	int done_fd[2];
	struct node **run;        /* the running nodes, l->running of them */
};

static void
enqueue(struct loop *l, struct node *n)
{
	int p = n->rule->pool;

	n->state = N_READY;
	n->qnext = NULL;
	if (l->tail[p])
		l->tail[p]->qnext = n;
	else
		l->head[p] = n;
	l->tail[p] = n;
}

/* The pool of the next job to start, or -1.  Later stages first, so
 * archives finish while downloads go on: the local pool (validate, zip)
 * before the PACS pool. */
static int
ready(const struct loop *l)
{
	for (int p = NPOOL - 1; p >= 0; p--)
		if (l->head[p] && l->inpool[p] < l->o->cap[p])
			return p;
	return -1;
}

static struct node *
dequeue(struct loop *l, int p)
{
	struct node *n = l->head[p];

	l->head[p] = n->qnext;
	if (!l->head[p])
		l->tail[p] = NULL;
	return n;
}

/* A failed or blocked node blocks everything that depends on it. */
static void
block(struct node *n)
{
	for (int i = 0; i < n->nout; i++) {
		struct node *d = n->out[i];

		if (d->state == N_STALE || d->state == N_READY) {
			d->state = N_BLOCKED;
			block(d);
		}
	}
}

static void
finished(struct loop *l, struct node *n, int ok)
{
	n->state = ok ? N_DONE : N_FAILED;
	if (!ok) {
		l->failed++;
		block(n);
		return;
	}
	for (int i = 0; i < n->nout; i++) {
		struct node *d = n->out[i];

		if (d->state == N_STALE && --d->nblock == 0)
			enqueue(l, d);
	}
}

/* n's job is another process's for now: try again in a while. */
static void
wait_for(struct loop *l, struct node *n, const char *why)
{
	if (verbosity > 1 && n->state != N_WAITING)
		progress_note("wait %s %s: %s", n->rule->name, n->label, why);
	if (!l->waiting)
		l->retry_ns = mono_ns() + (int64_t)WAIT_RETRY_MS * 1000000;
	n->state = N_WAITING;
	n->qnext = l->waiting;
	l->waiting = n;
}

static void
retry_waiting(struct loop *l)
{
	struct node *n = l->waiting, *next;

	if (!n || mono_ns() < l->retry_ns)
		return;
	l->waiting = NULL;
	for (; n; n = next) {
		next = n->qnext;
		enqueue(l, n);
	}
}

static void
job_free(struct job *job)
{
	struct node *n = job->node;

	/* What it did stays with its node, for the news (news.c). */
	if (n && !n->summary)
		n->summary = job->summary;
	else
		free(job->summary);
	free(job);
}

static int
slot_take(void)
{
	int f = atomic_load(&free_slots);

	while (f > 0)
		if (atomic_compare_exchange_weak(&free_slots, &f, f - 1))
			return 1;
	return 0;
}

int
sched_borrow(void)
{
	return !atomic_load(&wanted) && slot_take();
}

int
sched_wanted(void)
{
	return atomic_load(&wanted);
}

void
sched_giveback(void)
{
	void *none = NULL;

	atomic_fetch_add(&free_slots, 1);
	if (atomic_load(&wanted))
		while (write(wake_fd, &none, sizeof(none)) < 0 && errno == EINTR)
			;
}

/* Start n: on the main thread ask the rule what to do, then a thread. */
static void
launch(struct loop *l, struct node *n)
{
	struct lease *lease = l->ctx->lease;
	struct job *job;
	struct worker *w;
	int rc;

	if (lease) {
		char msg[512];

		rc = lease_take(lease, n, msg, sizeof(msg));
		if (rc == LEASE_HELD) {
			wait_for(l, n, msg);
			return;
		}
		if (rc < 0) {
			n->error = xstrdup(msg);
			progress_end(n, 0);
			finished(l, n, 0);
			return;
		}
		if (n->claimed) {
			char *why = lease_replan(lease, l->ctx, n);

			if (!why) {
				lease_settle(lease, n);
				n->elsewhere = 1;
				progress_end(n, 1);
				finished(l, n, 1);
				return;
			}
			free(n->reason);
			n->reason = why;
		}
	}
	job = xcalloc(1, sizeof(*job));
	job->rule = n->rule;
	job->stage = n->rule->name;
	job->node = n;
	job->ctx = l->ctx;
	job->obj = n->obj;
	job->force = n->force;
	job->start_ns = mono_ns();
	n->job = job;
	rc = n->rule->start(job);
	if (rc <= 0) {
		/* Nothing to run after all, or it could not start: finish
		 * records that and frees what start took. */
		job->nothing = rc == 0;
		job->end_ns = mono_ns();
		if (lease)
			lease_fence(lease, n);
		if (n->rule->finish(job, rc) < 0)
			rc = -1;
		if (lease)
			lease_settle(lease, n);
		if (rc < 0)
			n->error = xstrdup(job->err);
		progress_end(n, rc == 0);
		n->job = NULL;
		job_free(job);
		finished(l, n, rc == 0);
		return;
	}
	w = xmalloc(sizeof(*w));
	w->job = job;
	w->fd = l->done_fd[1];
	w->rc = -1;
	n->state = N_RUNNING;
	l->run[l->running++] = n;
	l->inpool[n->rule->pool]++;
	progress_begin(n);
	if ((rc = pthread_create(&w->t, NULL, worker_main, w)) != 0) {
		errno = rc;
		fatal("pthread_create:");
	}
}

static void
reap(struct loop *l, struct worker *w)
{
	struct job *job = w->job;
	struct node *n = job->node;
	struct lease *lease = l->ctx->lease;
	int rc = w->rc, lost = 0;

	/* It has written w to the pipe and is returning: a join now costs
	 * nothing, and its thread-local state (OpenSSL's) is gone before the
	 * process exits. */
	pthread_join(w->t, NULL);
	free(w);
	for (int i = 0; i < l->running; i++)
		if (l->run[i] == n) {
			l->run[i] = l->run[--l->running];
			break;
		}
	l->inpool[n->rule->pool]--;
	atomic_fetch_add(&free_slots, 1);
	if (lease)
		lease_fence(lease, n);
	if (n->rule->finish(job, rc) < 0)
		rc = -1;
	if (lease && (lost = lease_settle(lease, n)) && n->retakes++ < MAX_RETAKES) {
		/* Someone else has the job now: what they make counts, and
		 * if they do not make it, it is claimed and run again. */
		progress_note("%s %s: %s", n->rule->name, n->label, job->err);
		n->job = NULL;
		job_free(job);
		wait_for(l, n, "taken over");
		return;
	}
	if (rc < 0 && atomic_load(&l->ctx->cancel)) {
		/* Stopped, not failed: it runs again next time. */
		n->state = N_BLOCKED;
		n->job = NULL;
		job_free(job);
		return;
	}
	if (rc < 0)
		n->error = xstrdup(job->err[0] ? job->err : "failed");
	progress_end(n, rc == 0);
	n->job = NULL;
	job_free(job);
	finished(l, n, rc == 0);
}

/* The shorter of two poll timeouts in ms, -1 being forever. */
static int
sooner(int a, int b)
{
	if (a < 0)
		return b;
	return b >= 0 && b < a ? b : a;
}


int
sched_run(struct graph *g, struct ctx *ctx, const struct sched_opts *o)
{
	struct loop l = { .g = g, .ctx = ctx, .o = o };
	struct node *n;
	int total = 0, stopping = 0, said = 0;

	/* Kept as they start and end: the status line would otherwise scan
	 * every node after every job, quadratic in a first build of 100k. */
	l.run = xcalloc((size_t)o->jobs + 1, sizeof(*l.run));

	if (pipe2(l.done_fd, O_CLOEXEC) < 0)
		fatal("pipe:");
	wake_fd = l.done_fd[1];
	atomic_store(&free_slots, o->jobs);
	atomic_store(&wanted, 0);
	for (int i = 0; i < g->n; i++) {
		n = g->node[i];
		if (n->state != N_STALE)
			continue;
		total++;
		n->nblock = 0;
		for (int j = 0; j < n->nin; j++)
			n->nblock += n->in[j]->state == N_STALE || n->in[j]->state == N_READY;
		if (n->nblock == 0)
			enqueue(&l, n);
	}
	progress_init(total, o->title, o->summary);
	for (;;) {
		struct pollfd pfd[2];
		int tmo;

		if (atomic_load(&ctx->cancel))
			stopping = 1;
		if (l.failed && !o->keep_going)
			stopping = 1;
		if (!stopping)
			retry_waiting(&l);
		for (int p; !stopping && (p = ready(&l)) >= 0;) {
			if (!slot_take()) {
				atomic_store(&wanted, 1);
				break;
			}
			atomic_store(&wanted, 0);
			n = dequeue(&l, p);
			launch(&l, n);
			if (n->state != N_RUNNING)
				atomic_fetch_add(&free_slots, 1);
		}
		if (stopping || ready(&l) < 0)
			atomic_store(&wanted, 0);
		if (l.running == 0 && (stopping || !l.waiting))
			break;
		tmo = progress_interval();
		if (ctx->lease)
			tmo = sooner(tmo, lease_tick(ctx->lease));
		if (l.waiting) {
			int64_t left = (l.retry_ns - mono_ns()) / 1000000 + 1;

			tmo = sooner(tmo, left > 0 ? (int)left : 0);
		}
		pfd[0] = (struct pollfd){ .fd = l.done_fd[0], .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = sigpipe[0], .events = POLLIN };
		if (poll(pfd, sigpipe[0] >= 0 ? 2 : 1, tmo) < 0 && errno != EINTR)
			fatal("poll:");
		if (sigpipe[0] >= 0 && (pfd[1].revents & POLLIN)) {
			char buf[16];

			while (read(sigpipe[0], buf, sizeof(buf)) > 0)
				;
			if (!said++ && atomic_load(&ctx->cancel))
				progress_note("interrupted: stopping %d running job%s (again to kill)",
				    l.running, l.running == 1 ? "" : "s");
		}
		if (pfd[0].revents & POLLIN) {
			struct worker *w;

			/* NULL: a borrowed slot came back. */
			if (read(l.done_fd[0], &w, sizeof(w)) == sizeof(w) && w)
				reap(&l, w);
		}
		progress_status(l.run, l.running);
	}
	progress_done();
	atomic_store(&free_slots, 0);
	atomic_store(&wanted, 0);
	wake_fd = -1;
	close(l.done_fd[0]);
	close(l.done_fd[1]);
	free(l.run);
	/* Whatever is still waiting did not run. */
	for (int i = 0; i < g->n; i++)
		if (g->node[i]->state == N_STALE || g->node[i]->state == N_READY ||
		    g->node[i]->state == N_WAITING)
			g->node[i]->state = N_BLOCKED;
	if (atomic_load(&ctx->cancel))
		return -2;
	return l.failed || graph_count(g, N_BLOCKED) ? -1 : 0;
}
