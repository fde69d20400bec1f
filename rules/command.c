/*
 * command.c - the generic command rule: each [rule NAME] of thlhp.ini
 * (config-rule.c) is one instance, a descriptor made by command_rule_new
 * and listed after what it comes after (rules_declare).  A target runs
 * the rule's command, split into words when the config was read and its
 * placeholders filled per target (words.c), with no shell, through
 * spawn.c.  With output, the command writes {out}, a temp path next to
 * the output (created as a folder when the output template ends in '/'),
 * which becomes the output only once the command exited 0 and it is
 * fsynced.  Each target's record (target_rec: the input signature, the
 * command as run, the output's size, mtime and signature, the last
 * error) says when it is stale, as ninja's log does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include "fileio.h"
#include "names.h"
#include "rule.h"
#include "spawn.h"
#include "util.h"
#include "words.h"
#include "command-int.h"

static char *
cmd_label(const struct rule *ru, struct ctx *ctx, void *obj)
{
	char *out = output_of(ru, obj);

	if (out)
		return out;
	return ru->per == PER_SERIES ? series_label(ru, ctx, obj) :
	    xstrdup(((struct patient *)obj)->id);
}

/* Key's entry in c's records made r, new or not. */
static void
crec_set(struct cmd *c, const char *key, const struct target_rec *r)
{
	struct crec *e = htab_get(&c->recs, key);

	if (!e) {
		e = xcalloc(1, sizeof(*e));
		htab_put(&c->recs, xstrdup(key), e);
	}
	free(e->command);
	free(e->path);
	e->input = r->input_sig;
	e->command = xstrdup(r->settings);
	e->path = xstrdup(r->path);
	e->size = r->size;
	e->mtime = r->mtime;
	e->sig = r->hash;
	e->failed = r->error != NULL;
	e->none = 0;
}

/* crec_set, as state_load_targets calls back. */
static void
crec_put(void *arg, const char *key, const struct target_rec *r)
{
	crec_set(arg, key, r);
}

/* crec_set, as state_load_target calls back. */
struct reload {
	struct cmd *c;
	const char *key;
};

static void
crec_one(void *arg, const struct target_rec *r)
{
	struct reload *rl = arg;

	crec_set(rl->c, rl->key, r);
}

static void
recs_free(struct cmd *c)
{
	for (size_t i = 0; i < c->recs.cap; i++) {
		struct crec *e = c->recs.slot[i].val;

		if (!c->recs.slot[i].key)
			continue;
		free((char *)c->recs.slot[i].key);
		free(e->command);
		free(e->path);
		free(e);
	}
	htab_free(&c->recs);
	htab_init(&c->recs);
}

/* Two targets with one output would overwrite each other: each is told
 * of the other (output names what tells them apart, as {series} does). */
static void
find_shared(struct cmd *c, struct ctx *ctx)
{
	struct htab outs;

	for (size_t i = 0; i < c->shared.cap; i++) {
		free((char *)c->shared.slot[i].key);
		free(c->shared.slot[i].val);
	}
	htab_free(&c->shared);
	htab_init(&c->shared);
	if (!c->d->output)
		return;
	htab_init(&outs);
	for (int i = 0; i < ctx->cat->np; i++) {
		struct patient *p = ctx->cat->p[i];
		int n = c->rule.per == PER_SERIES ? p->nseries : 1;

		if (!select_patient(ctx->sel, p->id))
			continue;
		for (int j = 0; j < n; j++) {
			void *obj = c->rule.per == PER_SERIES ? (void *)p->series[j] : (void *)p;
			char *out, *first;

			if (c->rule.per == PER_SERIES && (p->series[j]->gone ||
			    !select_series(ctx->sel, p->series[j]->modality, p->series[j]->study_date)))
				continue;
			out = output_of(&c->rule, obj);
			if ((first = htab_get(&outs, out))) {
				htab_put(&c->shared, xstrdup(key_of(&c->rule, obj)), xstrdup(first));
				free(out);
				continue;
			}
			htab_put(&outs, out, xstrdup(key_of(&c->rule, obj)));
		}
	}
	/* The first of each pair learns of it too. */
	for (size_t i = 0; i < c->shared.cap; i++)
		if (c->shared.slot[i].key && !htab_get(&c->shared, c->shared.slot[i].val))
			htab_put(&c->shared, xstrdup(c->shared.slot[i].val),
			    xstrdup(c->shared.slot[i].key));
	for (size_t i = 0; i < outs.cap; i++) {
		free((char *)outs.slot[i].key);
		free(outs.slot[i].val);
	}
	htab_free(&outs);
}

static int
cmd_prepare(const struct rule *ru, struct ctx *ctx)
{
	struct cmd *c = cmd_of(ru);

	find_shared(c, ctx);
	recs_free(c);
	/* Without records every target reads as never built: slower, safe. */
	state_load_targets(ctx->st, ru->name, crec_put, c);
	return 0;
}

/* ---- the stage ---------------------------------------------------------- */

/* The signature a stamp records: its input and its command. */
static uint64_t
stamp_sig(uint64_t input, const char *line)
{
	return XXH3_64bits_withSeed(line, strlen(line), input);
}

/* The record of key as the store has it now: after a claim, another
 * worker may have made the target since prepare read the records. */
static void
crec_reload(struct cmd *c, struct ctx *ctx, const char *key)
{
	struct crec *e = htab_get(&c->recs, key);

	if (e) {
		/* Keys stay; the entry is replaced by crec_put's. */
		free(e->command);
		free(e->path);
		memset(e, 0, sizeof(*e));
		e->none = 1;
	}
	state_load_target(ctx->st, c->rule.name, key, crec_one, &(struct reload){ c, key });
}

static char *
cmd_plan(struct ctx *ctx, struct node *n)
{
	const struct rule *ru = n->rule;
	struct cmd *c = cmd_of(ru);
	const struct crec *e;
	const char *why = NULL;
	char **in, *line;
	uint64_t isig = 0, osig = 0;
	int64_t size, mtime;

	if (n->claimed)
		crec_reload(c, ctx, key_of(ru, n->obj));
	e = htab_get(&c->recs, key_of(ru, n->obj));
	if (htab_get(&c->shared, key_of(ru, n->obj)))
		return xstrdup("output shared with another target");
	if (n->force)
		return xstrdup("forced");
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->reason)
			return xasprintf("after %s (%s)", n->in[i]->rule->name, n->in[i]->reason);
	if (!e || e->none)
		return xstrdup("never built");
	if (e->failed)
		return xstrdup("failed last time");
	in = inputs_of(ru, n->obj, &isig);
	line = command_line(ru, n->obj, in);
	if (c->d->output) {
		/* The cheap check first; the content only when it changed. */
		if (!e->path || strcmp(e->path, n->label) != 0 || tree_stat(n->label, &size, &mtime) < 0)
			why = "output missing";
		else if ((size != e->size || mtime != e->mtime) &&
		    (tree_sig(n->label, &size, &mtime, &osig) < 0 || osig != e->sig))
			why = "output changed on disk";
	}
	if (!why && isig != e->input)
		why = "input changed";
	if (!why && strcmp(line, e->command ? e->command : "") != 0)
		why = "command changed";
	strv_free(in);
	free(line);
	return why ? xstrdup(why) : NULL;
}

/* The folder of path ("." for none); malloc'd. */
static char *
dirname_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? xasprintf("%.*s", (int)(slash == path ? 1 : slash - path), path) : xstrdup(".");
}

/* What one job runs, from start to finish. */
struct cin {
	char **argv;
	char *env[16];
	char *out, *tmp;          /* the output and its temp name; NULL for a stamp */
	char *log;
	char *line;               /* the command as recorded */
	uint64_t input;
	int64_t size, mtime;
	uint64_t sig;
};

static void
cin_free(struct cin *in)
{
	if (!in)
		return;
	strv_free(in->argv);
	for (int i = 0; in->env[i]; i++)
		free(in->env[i]);
	free(in->out);
	free(in->tmp);
	free(in->log);
	free(in->line);
	free(in);
}

static int
cmd_start(struct job *job)
{
	const struct rule *ru = job->rule;
	const struct cmd *c = cmd_of(ru);
	const struct crec *e = htab_get(&c->recs, key_of(ru, job->obj));
	struct cin *in = xcalloc(1, sizeof(*in));
	char **inputs = inputs_of(ru, job->obj, &in->input), *dir;
	int64_t size, mtime;

	job->in = in;
	if (htab_get(&c->shared, key_of(ru, job->obj))) {
		char *out = output_of(ru, job->obj);

		errf(job->err, sizeof(job->err), "%s is the output of another of its targets too "
		    "(%s): make [rule %s] output tell them apart, with {series} or {study}", out,
		    (char *)htab_get(&c->shared, key_of(ru, job->obj)), ru->name);
		free(out);
		strv_free(inputs);
		return -1;
	}
	if (!in->input) {
		errf(job->err, sizeof(job->err), "nothing to run on: its %s is not made", ru->after);
		strv_free(inputs);
		return -1;
	}
	in->out = output_of(ru, job->obj);
	in->line = command_line(ru, job->obj, inputs);
	/* Its inputs rebuilt to what they were: nothing to do (ninja's restat). */
	if (!job->force && e && !e->none && !e->failed && e->input == in->input &&
	    strcmp(in->line, e->command ? e->command : "") == 0 &&
	    (!in->out || (tree_stat(in->out, &size, &mtime) == 0 && size == e->size &&
	    mtime == e->mtime))) {
		strv_free(inputs);
		return 0;
	}
	if (in->out) {
		if (mkdirs((dir = dirname_of(in->out)), job->err, sizeof(job->err)) < 0) {
			free(dir);
			strv_free(inputs);
			return -1;
		}
		remove_dead_temps(dir);   /* of a run killed while it ran */
		free(dir);
		in->tmp = tmp_name(in->out);
	}
	in->argv = command_of(ru, job->obj, in->tmp ? in->tmp : "", inputs, in->env);
	strv_free(inputs);
	dir = xasprintf(".thlhp/log/%s", ru->name);
	if (mkdirs(dir, job->err, sizeof(job->err)) < 0) {
		free(dir);
		return -1;
	}
	in->log = xasprintf("%s/%s.log", dir, ru->per == PER_SERIES ?
	    ((struct series *)job->obj)->uid : ((struct patient *)job->obj)->name);
	free(dir);
	return 1;
}

/* The output made: fsynced, then in place of the old one. */
static int
put_output(struct job *job, struct cin *in)
{
	struct stat sb;
	char *old;
	int rc = -1;

	if (lstat(in->tmp, &sb) < 0 || (S_ISDIR(sb.st_mode) && rmdir(in->tmp) == 0)) {
		errf(job->err, sizeof(job->err), "the command exited 0 but produced no output "
		    "(nothing at {out}, which becomes %s)", in->out);
		return -1;
	}
	if (tree_fsync(in->tmp) < 0) {
		errf(job->err, sizeof(job->err), "%s: fsync: %s", in->tmp, strerror(errno));
		return -1;
	}
	old = xasprintf("%s.old", in->tmp);
	/* A folder cannot be renamed over another: the old one steps aside
	 * first, and is removed once the new one is in place. */
	if (rename(in->out, old) < 0 && errno != ENOENT) {
		errf(job->err, sizeof(job->err), "%s: %s", in->out, strerror(errno));
		goto out;
	}
	if (rename(in->tmp, in->out) < 0) {
		errf(job->err, sizeof(job->err), "%s: rename: %s", in->out, strerror(errno));
		rename(old, in->out);
		goto out;
	}
	if (remove_tree(old) < 0)
		warn("%s: cannot remove the older output:", old);
	if (fsync_parent(in->out, job->err, sizeof(job->err)) < 0)
		goto out;
	if (tree_sig(in->out, &in->size, &in->mtime, &in->sig) < 0) {
		errf(job->err, sizeof(job->err), "%s: %s", in->out, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(old);
	return rc;
}

static int
cmd_run(struct job *job)
{
	const struct rule_decl *d = cmd_of(job->rule)->d;
	struct cin *in = job->in;
	struct spawn_opts o = {
		.argv = in->argv, .env = in->env, .log = in->log,
		.timeout_ns = (int64_t)d->timeout * 1000000000, .cancel = &job->ctx->cancel,
	};
	struct spawn_result r;
	char err[512];

	if (in->tmp && d->output[strlen(d->output) - 1] == '/' && mkdir(in->tmp, 0755) < 0) {
		errf(job->err, sizeof(job->err), "%s: %s", in->tmp, strerror(errno));
		return -1;
	}
	if (spawn_run(&o, &r, err, sizeof(err)) < 0) {
		errf(job->err, sizeof(job->err), "%s", err);
		goto fail;
	}
	if (r.cancelled) {
		errf(job->err, sizeof(job->err), "interrupted");
		goto fail;
	}
	if (r.timed_out) {
		errf(job->err, sizeof(job->err), "%s: killed after its timeout of %d s; log %s",
		    in->argv[0], d->timeout, in->log);
		goto fail;
	}
	if (r.status != 0) {
		char tail[sizeof(r.tail)], *t = tail;

		/* The end of its log, one line: " | " between its lines. */
		for (const char *s = r.tail; *s && t < tail + sizeof(tail) - 4; s++)
			if (*s != '\n')
				*t++ = *s;
			else if (s[1])
				t += snprintf(t, 4, " | ");
		*t = '\0';
		if (r.signal)
			errf(job->err, sizeof(job->err), "%s: killed by signal %d (log %s)%s%s",
			    in->argv[0], r.signal, in->log, *tail ? ": " : "", tail);
		else
			errf(job->err, sizeof(job->err), "%s: exit %d (log %s)%s%s", in->argv[0],
			    r.status, in->log, *tail ? ": " : "", tail);
		goto fail;
	}
	if (in->tmp && put_output(job, in) < 0)
		goto fail;
	if (!in->tmp)
		in->sig = stamp_sig(in->input, in->line);
	job->summary = xasprintf("exit 0 in %.1f s", (double)r.elapsed_ns / 1e9);
	return 0;
fail:
	if (in->tmp && remove_tree(in->tmp) < 0)
		warn("%s: cannot remove:", in->tmp);
	return -1;
}

static int
cmd_finish(struct job *job, int rc)
{
	struct state *st = job->ctx->st;
	struct cin *in = job->in;
	struct target_rec r = { 0 };

	if (in && in->line && (rc == 0 || !job_cancelled(job)) && !(rc == 0 && !in->argv)) {
		if (rc == 0)
			r = (struct target_rec){ .input_sig = in->input, .settings = in->line,
			    .path = in->out, .size = in->size, .mtime = in->mtime, .hash = in->sig };
		else
			r = (struct target_rec){ .input_sig = in->input, .settings = in->line,
			    .error = job->err };
		/* What comes after it this run reads its record from here. */
		crec_set(cmd_of(job->rule), key_of(job->rule, job->obj), &r);
		if (state_begin(st) < 0 ||
		    state_save_target(st, job->rule->name, key_of(job->rule, job->obj), &r) < 0 ||
		    state_commit(st) < 0) {
			state_rollback(st);
			if (rc == 0) {
				errf(job->err, sizeof(job->err), "recording %s: %s", job->node->label,
				    st->err);
				rc = -1;
			} else {
				warn("%s %s: recording the failure: %s", job->rule->name,
				    job->node->label, st->err);
			}
		}
	}
	cin_free(in);
	job->in = NULL;
	return rc;
}

struct rule *
command_rule_new(const struct rule_decl *d, enum pool pool)
{
	struct cmd *c = xcalloc(1, sizeof(*c));

	c->d = d;
	htab_init(&c->recs);
	htab_init(&c->shared);
	c->rule = (struct rule){
		.name = d->name,
		.per = d->per_patient ? PER_PATIENT : PER_SERIES,
		.after = d->after,
		.pool = pool,
		.label = cmd_label,
		.prepare = cmd_prepare,
		.plan = cmd_plan,
		.start = cmd_start,
		.run = cmd_run,
		.finish = cmd_finish,
		.priv = c,
	};
	return &c->rule;
}
