/* lease.c - claims on jobs for processes that share a store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "lease.h"
#include "state.h"
#include "util.h"

void
lease_init(struct lease *l, struct state *st, int ttl_s)
{
	char host[256] = "?";
	unsigned int nonce = 0;

	memset(l, 0, sizeof(*l));
	l->st = st;
	l->ttl_ms = (int64_t)ttl_s * 1000;
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, " ")] = '\0';
	/* A pid is reused, on another host or after a reboot; the nonce is not. */
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
		nonce = (unsigned int)now_ns();
	snprintf(l->owner, sizeof(l->owner), "%s %ld %08x", host, (long)getpid(), nonce);
	l->renewed_ns = l->tried_ns = mono_ns();
}

char *
lease_job(const struct node *n)
{
	switch (n->rule->per) {
	case PER_PATIENT:
		return xasprintf("%s:%s", n->rule->name, ((const struct patient *)n->obj)->name);
	case PER_SERIES:
		return xasprintf("%s:%s", n->rule->name, ((const struct series *)n->obj)->uid);
	case PER_ITEM:
		return xasprintf("%s:%s", n->rule->name, ((const struct item *)n->obj)->key);
	default:
		return NULL;
	}
}

/* "pid 123 on host h" from an owner string. */
static void
describe(const char *owner, char *buf, size_t len)
{
	char host[256];
	long pid;

	if (sscanf(owner, "%255s %ld", host, &pid) == 2)
		snprintf(buf, len, "pid %ld on host %s", pid, host);
	else
		snprintf(buf, len, "%s", owner);
}

int
lease_take(struct lease *l, struct node *n, char *msg, size_t len)
{
	char holder[320];
	int rc, cut = state_cut_mark(l->st);

	if (!n->claim && !(n->claim = lease_job(n)))
		return LEASE_OURS;
	rc = state_claim(l->st, n->claim, l->owner, l->ttl_ms, &n->claim_gen, holder, sizeof(holder));
	if (rc < 0 && state_cut_since(l->st, cut)) {
		/* Cut with the connection, now back: wait and claim again. */
		snprintf(msg, len, "claiming the job: %s", l->st->err);
		return LEASE_HELD;
	}
	if (rc < 0) {
		snprintf(msg, len, "claiming the job: %s", l->st->err);
		return -1;
	}
	if (rc == 0) {
		char who[320];

		describe(holder, who, sizeof(who));
		snprintf(msg, len, "held by %s", who);
		return LEASE_HELD;
	}
	n->claimed = 1;
	return LEASE_OURS;
}

char *
lease_replan(struct lease *l, struct ctx *ctx, struct node *n)
{
	struct node **in = n->in;
	char **saved = xcalloc((size_t)n->nin + 1, sizeof(*saved)), *why;
	int rc = 0;

	if (n->rule->per == PER_PATIENT) {
		struct patient *p = n->obj;

		rc = state_reload_patient(l->st, ctx->cat, p);
		for (int i = 0; rc == 0 && i < p->nwant; i++)
			rc = state_reload_series(l->st, ctx->cat, p->want[i]);
	} else if (n->rule->per == PER_SERIES) {
		rc = state_reload_series(l->st, ctx->cat, n->obj);
	}
	if (rc < 0) {
		/* Plan on what we know: at worst the job runs again. */
		warn("%s %s: %s", n->rule->name, n->label, l->st->err);
	}
	for (int i = 0; i < n->nin; i++) {
		saved[i] = in[i]->reason;
		in[i]->reason = NULL;
	}
	why = n->rule->plan(ctx, n);
	for (int i = 0; i < n->nin; i++)
		in[i]->reason = saved[i];
	free(saved);
	return why;
}

void
lease_fence(struct lease *l, struct node *n)
{
	if (!n->claimed)
		return;
	state_fence_begin(l->st, n->claim, l->owner, n->claim_gen);
	l->armed = 1;
	l->cut = state_cut_mark(l->st);
}

int
lease_settle(struct lease *l, struct node *n)
{
	int lost = 0, fence;

	if (!n->claimed)
		return 0;
	fence = state_fence_end(l->st);
	if (fence != STATE_FENCE_UNUSED)
		lost = fence == STATE_FENCE_LOST;  /* a commit used the fence */
	else if (state_release(l->st, n->claim, l->owner, n->claim_gen) == 0)
		lost = 1;                   /* nothing committed: let go here */
	else if (l->armed && state_cut_since(l->st, l->cut))
		lost = 1;                   /* its transaction went with the connection */
	l->armed = 0;
	n->claimed = 0;
	return lost;
}

int
lease_tick(struct lease *l)
{
	int64_t now = mono_ns(), every = l->ttl_ms * 1000000 / 3;
	int64_t due = l->tried_ns + (l->failing ? 1000000000 : every);

	if (now < due)
		return (int)((due - now) / 1000000) + 1;
	l->tried_ns = now;
	if (state_renew(l->st, l->owner, l->ttl_ms) < 0) {
		if (!l->failing)
			warn("cannot renew this worker's claims (%s); retrying every second", l->st->err);
		l->failing = 1;
		return 1000;
	}
	if (l->failing)
		warn("claims renewed again after %.1fs", (double)(now - l->renewed_ns) / 1e9);
	l->failing = 0;
	l->renewed_ns = now;
	return (int)(every / 1000000) + 1;
}

void
lease_release_all(struct lease *l)
{
	if (state_release_all(l->st, l->owner) < 0)
		warn("letting go of this worker's claims: %s", l->st->err);
}
