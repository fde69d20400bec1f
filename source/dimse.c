/*
 * dimse.c - [pacs] protocol = dimse: the source's state, its checks of
 * thlhp.ini, and every C-FIND's way to the PACS (one token of the rate
 * limit each).  The query walk is dimse-walk.c; the fetch, C-GET or
 * C-MOVE, dimse-fetch.c and dimse-receive.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dimse-src.h"
#include "util.h"

void
dimse_peer_of(const struct config *cfg, struct dimse_peer *p)
{
	p->host = cfg->pacs.host;
	p->port = cfg->pacs.port;
	p->called_aet = cfg->pacs.called_aet;
	p->calling_aet = cfg->pacs.calling_aet;
	p->timeout = cfg->pacs.timeout;
	p->tls.on = cfg->pacs.tls;
	p->tls.ca = cfg->pacs.tls_ca;
	p->tls.cert = cfg->pacs.tls_cert;
	p->tls.key = cfg->pacs.tls_key;
}

static int
stop_job(void *job)
{
	return job_cancelled(job);
}

void
dimse_peer_stop(struct dimse_peer *p, struct job *job)
{
	p->stop = stop_job;
	p->stop_arg = job;
}

static int
dimse_open(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	struct dimse *d;
	struct dimse_peer peer;
	char terr[DCM_ERR_MAX];

	/* With tls = yes every association is TLS (see dimse.h); a file
	 * that cannot be used is an error now, not in each job. */
	dimse_peer_of(src->cfg, &peer);
	if (dimse_tls_check(&peer.tls, terr) < 0) {
		char *where = config_where(src->cfg, "pacs", "tls");

		errf(err, errlen, "%s: %s", where, terr);
		free(where);
		return -1;
	}
	if (!src->priv) {
		d = xcalloc(1, sizeof(*d));
		bucket_init(&d->bucket, src->cfg->pacs.max_requests_per_minute);
		pthread_mutex_init(&d->mu, NULL);
		src->priv = d;
	}
	return 0;
}

static void
dimse_close(struct source *src)
{
	struct dimse *d = src->priv;

	if (d) {
		if (d->scp)
			dimse_scp_stop(d->scp);
		bucket_free(&d->bucket);
		pthread_mutex_destroy(&d->mu);
		free(d->moving);
		free(d);
	}
	src->priv = NULL;
}

/* err += s, as far as it fits. */
static void
err_add(char err[DCM_ERR_MAX], const char *s)
{
	size_t n = strlen(err);

	snprintf(err + n, DCM_ERR_MAX - n, "%s", s);
}

/* Every request to the PACS goes through here: one token each. */
int
dimse_src_find_on(struct job *job, struct dimse_finder *fd, enum dimse_level lv,
    const struct dimse_keys *k, dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX])
{
	struct dimse *d = job->ctx->src->priv;
	struct dimse_peer peer;
	int rc;

	for (int again = 0;; again++) {
		if (bucket_take(&d->bucket, &job->ctx->cancel) < 0) {
			errf(err, DCM_ERR_MAX, "interrupted");
			return -1;
		}
		if (fd) {
			rc = dimse_finder_find(fd, lv, k, fn, arg, err);
		} else {
			dimse_peer_of(job->ctx->cfg, &peer);
			dimse_peer_stop(&peer, job);
			rc = dimse_find(&peer, lv, k, fn, arg, err);
		}
		if (rc != DIMSE_REJECTED)
			break;
		if (atomic_load(&d->reached)) {
			/* It has answered us before: only busy. */
			err_add(err, "; the PACS may be limiting associations (it is tried again)");
			break;
		}
		/* Before any answer, a rejection is our AE titles, unless the
		 * PACS was still closing an association (of another of our
		 * processes, or of the last run): once more, then no retry. */
		if (again == 0 && backoff_wait((int64_t)2000000000, &job->ctx->cancel) == 0)
			continue;
		err_add(err, "; check [pacs] called_aet (the PACS's AE title) and calling_aet "
		    "(ours, as the PACS knows it)");
		job->no_retry = 1;
		break;
	}
	if (rc == 0 || rc == DIMSE_FIND_REFUSED || rc == DIMSE_NO_PATIENT_ROOT)
		atomic_store(&d->reached, 1);
	/* The same certificate fails the same way on every try. */
	if (rc == DIMSE_UNVERIFIED) {
		job->no_retry = 1;
		rc = -1;
	}
	return rc;
}

int
dimse_src_find(struct job *job, enum dimse_level lv, const struct dimse_keys *k,
    dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX])
{
	return dimse_src_find_on(job, NULL, lv, k, fn, arg, err);
}

static int
dimse_query(struct source *src, struct job *job, struct query_result *r)
{
	return source_retry(job, dimse_walk, r);
}

static int
dimse_query_done(struct source *src, struct ctx *ctx, char *err, size_t errlen)
{
	return 0;
}

/* thlhp.ini: the storage SCP's address and peer, the C-MOVE destination,
 * TLS; defaults from the other keys. */
static char *
dimse_check(struct config *c)
{
	struct in_addr a;

	if (!c->pacs.move_destination)
		c->pacs.move_destination = xstrdup(c->pacs.calling_aet);
	/* Our storage SCP takes associations from the PACS only. */
	if (!c->pacs.peer_aet)
		c->pacs.peer_aet = xstrdup(c->pacs.called_aet);
	if (c->pacs.store_bind) {
		if (inet_pton(AF_INET, c->pacs.store_bind, &a) != 1)
			return config_err(c, "pacs", "store_bind", "'%s': not an IPv4 address (our storage "
			    "SCP listens on IPv4 only; 0.0.0.0 is every interface)", c->pacs.store_bind);
	} else {
		/* A PACS on this host reaches us on loopback: nobody else
		 * needs to. */
		const char *h = c->pacs.host;
		int lo = strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
		    (inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127);

		c->pacs.store_bind = xstrdup(lo ? "127.0.0.1" : "0.0.0.0");
	}
	/* For C-MOVE the PACS connects to our storage SCP, which then serves
	 * TLS only and must present a certificate. */
	if (c->pacs.tls && c->pacs.retrieve == RETRIEVE_MOVE && !c->pacs.tls_cert)
		return config_err(c, "pacs", "tls", "tls = yes with retrieve = move needs tls_cert "
		    "and tls_key (our storage SCP on store_port serves the PACS over TLS)");
	return NULL;
}

static const char *const dimse_needs[] = { "host", "port", "called_aet", NULL };

const struct source_ops source_dimse = {
	.name = "dimse",
	.needs = dimse_needs,
	.check = dimse_check,
	.open = dimse_open,
	.query = dimse_query,
	.query_done = dimse_query_done,
	.fetch = dimse_fetch,
	.close = dimse_close,
};
