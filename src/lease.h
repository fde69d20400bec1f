/*
 * lease.h - jobs shared by processes working on one store (state.h's
 * claims), as the scheduler sees them.  Before a job starts it is claimed;
 * while it runs the claim is renewed (the heartbeat); its result is
 * committed only together with the proof that the claim still held.  A
 * job that another process holds waits; once that process is done with it
 * (or died and its lease lapsed) the job is claimed and planned again from
 * what the store now says, and most often it is up to date by then.
 *
 * Only for stores with ops->shared (PostgreSQL); with SQLite one process
 * writes at a time and ctx->lease is NULL.
 */
#ifndef THLHP_LEASE_H
#define THLHP_LEASE_H

#include <stdint.h>
#include "graph.h"
#include "rule.h"

struct lease {
	struct state *st;
	char owner[320];          /* "<host> <pid> <nonce>": who we are in the store */
	int64_t ttl_ms;           /* [state] lease */
	int64_t renewed_ns;       /* mono_ns() of the last renewal that worked */
	int64_t tried_ns;         /* ... and of the last attempt */
	int failing;              /* renewals fail: said so once */
	int armed;                /* lease_fence() was called for the job finishing */
	int cut;                  /* state_cut_mark() then */
};

void lease_init(struct lease *l, struct state *st, int ttl_s);
/* The claim n's job takes ("download:<uid>", "zip:<patient>"), malloc'd;
 * NULL for nodes that take none (the query). */
char *lease_job(const struct node *n);

enum { LEASE_HELD = 0, LEASE_OURS = 1 };
/* Claim n's job: LEASE_OURS, LEASE_HELD with msg naming the holder (or
 * saying the claim was cut with the connection: it is tried again), or -1
 * with msg saying why not. */
int lease_take(struct lease *l, struct node *n, char *msg, size_t len);
/* After lease_take: reload from the store what n's rule reads and plan n
 * again.  Its reason (malloc'd), or NULL when it is up to date now -
 * another process made it.  Inputs count by what the store says, not by
 * whether this process ran them. */
char *lease_replan(struct lease *l, struct ctx *ctx, struct node *n);
/* Around rule->finish: fence arms state_commit() with n's claim; settle
 * lets go of the claim if finish did not commit, and returns 1 when the
 * result was not recorded because the claim had been lost, or because the
 * transaction recording it was lost with the connection (the server ends
 * one left idle past the lease): either way the job is claimed and
 * planned again. */
void lease_fence(struct lease *l, struct node *n);
int lease_settle(struct lease *l, struct node *n);
/* The heartbeat: renew our claims when a third of the lease has passed.
 * Returns the ms until it is due again. */
int lease_tick(struct lease *l);
/* Let go of every claim we hold (end of run, interrupted or not). */
void lease_release_all(struct lease *l);

#endif
