/*
 * forms.c - with a [kobo] section, each KoboToolbox form's submissions in
 * the state (table form_sub; jsonb in PostgreSQL), one target per form
 * (forms:UID), apart from the PACS.  A form is stale when the server
 * counts other than the state holds; its pull asks only for what was
 * submitted after the latest stored (_submission_time), and a full pull
 * (-B forms:UID, the first, or the server counting fewer than stored:
 * some were deleted there) takes them all and marks deleted what the
 * server no longer has.  Each pull is recorded in one transaction, after
 * the whole of it came: a pull cut short records nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kobo.h"
#include "rule.h"
#include "util.h"

extern const struct rule rule_forms;

/* The run's client: made by the first forms_items, freed at run end. */
static struct kobo *client;

/* Bytes of submissions one pull may hold before it is recorded. */
enum { PULL_MAX = 1 << 30 };

static int
forms_enabled(const struct config *cfg)
{
	return cfg->kobo.on != 0;
}

static char *
forms_label(const struct rule *ru, struct ctx *ctx, void *obj)
{
	const struct item *it = obj;
	char *t = xescape(it->title ? it->title : ""), *l;

	(void)ru, (void)ctx;
	l = *t ? xasprintf("%s (%s)", it->key, t) : xstrdup(it->key);
	free(t);
	return l;
}

struct known {
	struct item *v;
	int n;
};

static void
known_form(void *arg, const char *key, const struct target_rec *r)
{
	struct known *k = arg;

	k->v = xreallocarray(k->v, (size_t)k->n + 1, sizeof(*k->v));
	k->v[k->n].key = xstrdup(key);
	k->v[k->n].title = xstrdup(r->detail ? r->detail : "");
	k->v[k->n++].count = -1;
}

static int
forms_items(const struct rule *ru, struct ctx *ctx, struct item **v, int *n)
{
	struct kobo_form *f = NULL;
	char err[KOBO_ERR_MAX];
	int nf = 0, rc;

	*v = NULL;
	*n = 0;
	if (ctx->offline) {
		/* What the pulls before recorded; nothing is pulled offline. */
		struct known k = { NULL, 0 };

		if (ctx->st->db && state_load_targets(ctx->st, ru->name, known_form, &k) < 0) {
			warn("forms: %s", ctx->st->err);
			return -1;
		}
		*v = k.v;
		*n = k.n;
		return 0;
	}
	if (!client && !(client = kobo_new(ctx->cfg, err, sizeof(err)))) {
		warn("%s", err);
		return -1;
	}
	if ((rc = kobo_forms(client, &ctx->cancel, &f, &nf, err, sizeof(err))) < 0) {
		warn("%s%s", err, rc == KOBO_AUTH ? "" : " (the forms are not pulled)");
		return -1;
	}
	*v = xcalloc((size_t)nf + 1, sizeof(**v));
	for (int i = 0; i < nf; i++) {
		(*v)[i].key = xstrdup(f[i].uid);
		(*v)[i].title = xstrdup(f[i].name ? f[i].name : "");
		(*v)[i].count = f[i].count;
	}
	*n = nf;
	kobo_forms_free(f, nf);
	return 0;
}

/* Whether form has a record of a pull. */
static void
seen_rec(void *arg, const struct target_rec *r)
{
	(void)r;
	*(int *)arg = 1;
}

static char *
forms_plan(struct ctx *ctx, struct node *n)
{
	const struct item *it = n->obj;
	int64_t stored = 0;
	char *latest = NULL;
	int pulled = 0;

	if (ctx->offline)
		return NULL;   /* nothing can be pulled */
	if (ctx->st->db && (state_load_target(ctx->st, n->rule->name, it->key, seen_rec,
	    &pulled) < 0 || state_form_stats(ctx->st, it->key, &stored, &latest) < 0))
		return xasprintf("the state cannot say what was pulled: %s", ctx->st->err);
	free(latest);
	if (!pulled)
		return it->count >= 0 ? xasprintf("never pulled (%" PRId64 " submission%s at the "
		    "server)", it->count, it->count == 1 ? "" : "s") : xstrdup("never pulled");
	if (n->force)
		return xstrdup("forced: every submission pulled again");
	if (it->count < 0)
		return xstrdup("the server does not say how many submissions it has");
	if (it->count > stored)
		return xasprintf("%" PRId64 " new submission%s at the server", it->count - stored,
		    it->count - stored == 1 ? "" : "s");
	if (it->count < stored)
		return xasprintf("%" PRId64 " submission%s fewer at the server than stored: "
		    "deleted there (a full pull marks them)", stored - it->count,
		    stored - it->count == 1 ? "" : "s");
	return NULL;
}

/* What a pull takes and brings. */
struct pull {
	char *uid, *title;
	char *since;              /* latest stored _submission_time; NULL: a full pull */
	int full;
	int64_t stored;           /* not deleted, before */
	struct form_sub *subs;    /* pulled, strings malloc'd */
	int nsubs;
	size_t bytes;
};

static int
forms_start(struct job *job)
{
	const struct item *it = job->obj;
	struct state *st = job->ctx->st;
	struct pull *p = xcalloc(1, sizeof(*p));
	int pulled = 0;

	job->in = p;
	p->uid = xstrdup(it->key);
	p->title = xstrdup(it->title ? it->title : "");
	if (state_load_target(st, job->rule->name, it->key, seen_rec, &pulled) < 0 ||
	    state_form_stats(st, it->key, &p->stored, &p->since) < 0) {
		errf(job->err, sizeof(job->err), "%s", st->err);
		return -1;
	}
	/* All again when asked, the first time, and when some were deleted. */
	p->full = job->force || !pulled || !p->since || (it->count >= 0 && it->count < p->stored);
	if (p->full) {
		free(p->since);
		p->since = NULL;
	}
	return 1;
}

static int
take_sub(void *arg, const struct kobo_sub *s)
{
	struct job *job = arg;
	struct pull *p = job->in;
	size_t len = strlen(s->json);
	struct form_sub *c;

	if (p->bytes + len > PULL_MAX) {
		errf(job->err, sizeof(job->err), "form %s: more than %d MB of submissions in one "
		    "pull", p->uid, PULL_MAX >> 20);
		return -1;
	}
	p->subs = xreallocarray(p->subs, (size_t)p->nsubs + 1, sizeof(*p->subs));
	c = &p->subs[p->nsubs++];
	c->id = s->id;
	c->submitted = xstrdup(s->submitted);
	c->json = xstrdup(s->json);
	c->deleted = 0;
	p->bytes += len;
	atomic_fetch_add(&job->done, 1);
	atomic_fetch_add(&job->bytes, (long long)len);
	return 0;
}

static int
forms_run(struct job *job)
{
	struct pull *p = job->in;
	char err[KOBO_ERR_MAX] = "";
	int rc;

	job->err[0] = '\0';
	rc = kobo_pull(client, p->uid, p->since, &job->ctx->cancel, take_sub, job, err,
	    sizeof(err));
	if (rc < 0) {
		if (!job->err[0])
			errf(job->err, sizeof(job->err), "%s", err);
		if (rc == KOBO_AUTH)
			job->no_retry = 1;
		return -1;
	}
	return 0;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

struct ids {
	int64_t *v;
	int n;
};

static int
take_id(void *arg, const struct form_sub *s)
{
	struct ids *ids = arg;

	ids->v = xreallocarray(ids->v, (size_t)ids->n + 1, sizeof(*ids->v));
	ids->v[ids->n++] = s->id;
	return 0;
}

/* Record the pull: every submission upserted; after a full pull, what
 * the server no longer has marked deleted; the form's record. */
static int
record(struct job *job, struct pull *p, int *ndeleted)
{
	struct state *st = job->ctx->st;
	struct target_rec r = { .detail = p->title };
	struct ids had = { NULL, 0 };
	int64_t *got = NULL, now = now_ns();
	int rc = -1;

	*ndeleted = 0;
	if (state_begin(st) < 0)
		return -1;
	for (int i = 0; i < p->nsubs; i++)
		if (state_form_put(st, p->uid, &p->subs[i]) < 0)
			goto out;
	if (p->full) {
		if (state_form_get(st, p->uid, 0, take_id, &had) < 0)
			goto out;
		got = xcalloc((size_t)p->nsubs + 1, sizeof(*got));
		for (int i = 0; i < p->nsubs; i++)
			got[i] = p->subs[i].id;
		qsort(got, (size_t)p->nsubs, sizeof(*got), cmp_id);
		for (int i = 0; i < had.n; i++) {
			if (bsearch(&had.v[i], got, (size_t)p->nsubs, sizeof(*got), cmp_id))
				continue;
			if (state_form_delete(st, p->uid, had.v[i], now) < 0)
				goto out;
			(*ndeleted)++;
		}
	}
	if (state_save_target(st, job->rule->name, p->uid, &r) < 0 || state_commit(st) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		state_rollback(st);
	free(had.v);
	free(got);
	return rc;
}

static int
forms_finish(struct job *job, int rc)
{
	struct pull *p = job->in;
	int ndeleted = 0;

	if (p && rc == 0) {
		if (record(job, p, &ndeleted) < 0) {
			errf(job->err, sizeof(job->err), "recording form %s: %s", p->uid,
			    job->ctx->st->err);
			rc = -1;
		} else {
			char del[64] = "";

			if (ndeleted)
				snprintf(del, sizeof(del), ", %d marked deleted", ndeleted);
			job->summary = xasprintf("%d %ssubmission%s%s%s", p->nsubs, p->full ? "" :
			    "new ", p->nsubs == 1 ? "" : "s", p->full ? " (a full pull)" : "", del);
		}
	}
	if (p) {
		for (int i = 0; i < p->nsubs; i++) {
			free((char *)p->subs[i].submitted);
			free((char *)p->subs[i].json);
		}
		free(p->subs);
		free(p->uid);
		free(p->title);
		free(p->since);
		free(p);
	}
	job->in = NULL;
	return rc;
}

static int
forms_run_end(const struct rule *ru, struct ctx *ctx, int made)
{
	(void)ru, (void)ctx, (void)made;
	kobo_free(client);
	client = NULL;
	return 0;
}

const struct rule rule_forms = {
	.name = "forms",
	.per = PER_ITEM,
	.enabled = forms_enabled,
	.pool = POOL_LOCAL,
	.label = forms_label,
	.items = forms_items,
	.plan = forms_plan,
	.start = forms_start,
	.run = forms_run,
	.finish = forms_finish,
	.run_end = forms_run_end,
};
