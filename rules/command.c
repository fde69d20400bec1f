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

/* A target's record, by key (series UID or patient file-name id). */
struct crec {
	uint64_t input;           /* what it was made from */
	char *command;            /* the command as run */
	char *path;               /* its output, or NULL */
	int64_t size, mtime;
	uint64_t sig;             /* of the output; or of input and command for a stamp */
	int failed;
	int none;                 /* no record after all (crec_reload) */
};

/* One declared rule: its descriptor first, so a rule is its cmd. */
struct cmd {
	struct rule rule;
	const struct rule_decl *d;
	int folder;               /* the output is a folder (template ends in '/') */
	struct htab recs;         /* key -> struct crec */
	struct htab shared;       /* key -> the label of another target with its output */
};

static struct cmd *
cmd_of(const struct rule *ru)
{
	return (struct cmd *)ru->priv;
}

/* A value as a file-name part: [A-Za-z0-9._-], others '_', never "." or
 * ".." or hidden; "x" when empty. */
static char *
safe_part(const char *v)
{
	char *s = xstrdup(v && *v ? v : "x");

	for (char *c = s; *c; c++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *c))
			*c = '_';
	if (s[0] == '.')
		s[0] = '_';
	return s;
}

static const char *
key_of(const struct rule *ru, void *obj)
{
	return ru->per == PER_SERIES ? ((struct series *)obj)->uid : ((struct patient *)obj)->name;
}

/* The placeholders' values for obj: name, one value each (in and out
 * apart).  vals[i].v point into strs; both freed by values_free. */
struct values {
	struct word_value v[12];
	const char *one[12][2];
	char *own[12];
	size_t n;
};

static void
value_add(struct values *vs, const char *name, char *own)
{
	size_t i = vs->n++;

	vs->own[i] = own;
	vs->one[i][0] = own;
	vs->one[i][1] = NULL;
	vs->v[i].name = name;
	vs->v[i].v = vs->one[i];
}

/* With path, every value is a file-name part: {patient} too. */
static void
values_of(const struct rule *ru, void *obj, int path, struct values *vs)
{
	memset(vs, 0, sizeof(*vs));
	if (ru->per == PER_SERIES) {
		struct series *s = obj;

		value_add(vs, "patient", path ? safe_part(s->patient->id) : xstrdup(s->patient->id));
		value_add(vs, "patient_file", xstrdup(s->patient->name));
		value_add(vs, "study", safe_part(s->study));
		value_add(vs, "series", safe_part(s->uid));
		value_add(vs, "series_number", safe_part(s->number));
		value_add(vs, "series_description", safe_part(s->desc));
		value_add(vs, "modality", safe_part(s->modality));
		value_add(vs, "study_date", safe_part(s->study_date));
	} else {
		struct patient *p = obj;

		value_add(vs, "patient", path ? safe_part(p->id) : xstrdup(p->id));
		value_add(vs, "patient_file", xstrdup(p->name));
	}
}

static void
values_free(struct values *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		free(vs->own[i]);
	vs->n = 0;
}

/* The output path of obj's target, or NULL for a stamp rule. */
static char *
output_of(const struct rule *ru, void *obj)
{
	const struct cmd *c = cmd_of(ru);
	struct values vs;
	char *argv[2] = { c->d->output, NULL }, **w, *path;

	if (!c->d->output)
		return NULL;
	values_of(ru, obj, 1, &vs);
	w = words_expand(argv, vs.v, vs.n);
	values_free(&vs);
	path = xstrdup(w[0] ? w[0] : "");
	strv_free(w);
	/* "dir/" names a folder: the path is without the slash. */
	while (strlen(path) > 1 && path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = '\0';
	return path;
}

static char *
cmd_label(const struct rule *ru, struct ctx *ctx, void *obj)
{
	char *out = output_of(ru, obj);

	if (out)
		return out;
	return ru->per == PER_SERIES ? series_label(ru, ctx, obj) :
	    xstrdup(((struct patient *)obj)->id);
}

static void
crec_put(void *arg, const char *key, const struct target_rec *r)
{
	struct cmd *c = arg;
	struct crec *e = xcalloc(1, sizeof(*e));

	e->input = r->input_sig;
	e->command = xstrdup(r->settings);
	e->path = xstrdup(r->path);
	e->size = r->size;
	e->mtime = r->mtime;
	e->sig = r->hash;
	e->failed = r->error != NULL;
	htab_put(&c->recs, xstrdup(key), e);
}

/* crec_put for state_load_target: into the entry of key, new or not. */
struct reload {
	struct cmd *c;
	const char *key;
};

static void
crec_one(void *arg, const struct target_rec *r)
{
	struct reload *rl = arg;
	struct crec *e = htab_get(&rl->c->recs, rl->key);

	if (!e) {
		crec_put(rl->c, rl->key, r);
		return;
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

static void
cmd_prepare(const struct rule *ru, struct ctx *ctx)
{
	struct cmd *c = cmd_of(ru);

	find_shared(c, ctx);
	recs_free(c);
	/* Without records every target reads as never built: slower, safe. */
	state_load_targets(ctx->st, ru->name, crec_put, c);
}

/* What obj's target of ru reads ({in}, one entry per input) and a
 * signature of it as it is now (0: not made yet). */
static char **inputs_of(const struct rule *ru, void *obj, uint64_t *sig);

/* The input of a target of rule ru for obj: the series folder after
 * validate, the archive after zip, another rule's output (or, for a
 * stamp, what that rule read). */
static char **
input_one(const struct rule *up, void *obj, uint64_t *sig)
{
	if (up->priv) {
		const struct cmd *uc = cmd_of(up);
		const struct crec *e = htab_get(&uc->recs, key_of(up, obj));
		char *out = output_of(up, obj), **v;

		*sig = e && !e->failed ? e->sig : 0;
		if (!out)
			return inputs_of(up, obj, &(uint64_t){ 0 });
		v = xcalloc(2, sizeof(*v));
		v[0] = out;
		return v;
	}
	if (up->per == PER_SERIES) {
		struct series *s = obj;
		char **v = xcalloc(2, sizeof(*v));

		*sig = s->valid_sig;
		v[0] = xstrdup(s->dir ? s->dir : "");
		return v;
	} else {
		struct patient *p = obj;
		char **v = xcalloc(2, sizeof(*v));

		*sig = p->has_ar ? p->ar.hash : 0;
		v[0] = xstrdup(p->has_ar ? p->ar.path : "");
		return v;
	}
}

static char **
inputs_of(const struct rule *ru, void *obj, uint64_t *sig)
{
	const struct rule *up = rule_find(ru->after, NULL);
	struct patient *p = obj;
	XXH3_state_t *h;
	char **all = NULL;
	size_t n = 0;

	if (ru->per != PER_PATIENT || up->per != PER_SERIES)
		return input_one(up, obj, sig);
	/* A patient's target after a series stage: every series it holds. */
	h = XXH3_createState();
	XXH3_64bits_reset(h);
	for (int i = 0; i < p->nwant; i++) {
		uint64_t s = 0;
		char **one = input_one(up, p->want[i], &s);

		XXH3_64bits_update(h, &s, sizeof(s));
		for (char **o = one; *o; o++) {
			all = xreallocarray(all, n + 2, sizeof(*all));
			all[n++] = *o;
			all[n] = NULL;
		}
		free(one);
	}
	*sig = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return all ? all : xcalloc(1, sizeof(*all));
}

/* The command for obj's target, {out} as out (NULL: the output itself). */
static char **
command_of(const struct rule *ru, void *obj, const char *out, char **in, char **envp_out)
{
	const struct cmd *c = cmd_of(ru);
	struct values vs;
	const char *outv[2] = { out, NULL };
	char **argv;

	values_of(ru, obj, 0, &vs);
	vs.v[vs.n].name = "in";
	vs.v[vs.n++].v = (const char *const *)in;
	vs.v[vs.n].name = "out";
	vs.v[vs.n++].v = outv;
	argv = words_expand(c->d->argv, vs.v, vs.n);
	if (envp_out) {
		/* THLHP_PATIENT, THLHP_IN (inputs joined by newlines), ... */
		size_t k = 0;

		for (size_t i = 0; i < vs.n && k < 15; i++) {
			char up[40], *val = NULL;
			size_t j;

			for (j = 0; vs.v[i].name[j] && j < sizeof(up) - 1; j++)
				up[j] = (char)(vs.v[i].name[j] >= 'a' && vs.v[i].name[j] <= 'z' ?
				    vs.v[i].name[j] - 32 : vs.v[i].name[j]);
			up[j] = '\0';
			for (const char *const *v = vs.v[i].v; v && *v; v++) {
				char *t = xasprintf("%s%s%s", val ? val : "", val ? "\n" : "", *v);

				free(val);
				val = t;
			}
			envp_out[k++] = xasprintf("THLHP_%s=%s", up, val ? val : "");
			free(val);
		}
		envp_out[k] = NULL;
	}
	vs.n -= 2;
	values_free(&vs);
	return argv;
}

/* The command line as recorded: with {out} as the output, so that the
 * temp name does not change it. */
static char *
command_line(const struct rule *ru, void *obj, char **in)
{
	char *out = output_of(ru, obj);
	char **argv = command_of(ru, obj, out ? out : "", in, NULL);
	char *line = words_join(argv);

	strv_free(argv);
	free(out);
	return line;
}

/* ---- outputs: a file or a folder tree ---------------------------------- */

enum { TREE_DEPTH = 32 };

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk path (not following links): the total size and the latest mtime
 * of what is in it, and with h a hash of every name, kind, size and
 * content.  0, or -1 (errno). */
static int
tree_walk(const char *path, int depth, int64_t *size, int64_t *mtime, XXH3_state_t *h)
{
	struct stat sb;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	if (lstat(path, &sb) < 0)
		return -1;
	if ((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec > *mtime)
		*mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	if (!S_ISDIR(sb.st_mode)) {
		*size += sb.st_size;
		if (h && S_ISREG(sb.st_mode)) {
			uint64_t fh;
			int64_t fs, fm;
			char e[256];

			if (hash_file(path, &fh, &fs, &fm, NULL, e, sizeof(e)) < 0)
				return -1;
			XXH3_64bits_update(h, &fh, sizeof(fh));
		} else if (h) {
			char t[4096];
			ssize_t k = S_ISLNK(sb.st_mode) ? readlink(path, t, sizeof(t)) : 0;

			if (k > 0)
				XXH3_64bits_update(h, t, (size_t)k);
		}
		return 0;
	}
	if (depth > TREE_DEPTH || !(d = opendir(path))) {
		errno = depth > TREE_DEPTH ? ELOOP : errno;
		return -1;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char *sub = xasprintf("%s/%s", path, names[i]);

		if (h)
			XXH3_64bits_update(h, names[i], strlen(names[i]) + 1);
		if (rc == 0)
			rc = tree_walk(sub, depth + 1, size, mtime, h);
		free(sub);
		free(names[i]);
	}
	free(names);
	return rc;
}

/* size and mtime of an output; -1 when it is not there. */
static int
output_stat(const char *path, int64_t *size, int64_t *mtime)
{
	*size = *mtime = 0;
	return tree_walk(path, 0, size, mtime, NULL);
}

static int
output_sig(const char *path, int64_t *size, int64_t *mtime, uint64_t *sig)
{
	XXH3_state_t *h = XXH3_createState();
	int rc;

	XXH3_64bits_reset(h);
	*size = *mtime = 0;
	rc = tree_walk(path, 0, size, mtime, h);
	*sig = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return rc;
}

/* fsync every file and folder of path, the folders after their files. */
static int
fsync_tree(const char *path, int depth)
{
	struct stat sb;
	int fd, rc = 0;

	if (lstat(path, &sb) < 0)
		return -1;
	if (S_ISLNK(sb.st_mode))
		return 0;
	if (S_ISDIR(sb.st_mode) && depth <= TREE_DEPTH) {
		DIR *d = opendir(path);
		struct dirent *de;

		if (!d)
			return -1;
		while ((de = readdir(d))) {
			char *sub;

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			sub = xasprintf("%s/%s", path, de->d_name);
			if (fsync_tree(sub, depth + 1) < 0)
				rc = -1;
			free(sub);
		}
		closedir(d);
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (fsync(fd) < 0)
		rc = -1;
	close(fd);
	return rc;
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

	if (n->claimed)
		crec_reload(c, ctx, key_of(ru, n->obj));
	e = htab_get(&c->recs, key_of(ru, n->obj));
	const char *why = NULL;
	char **in, *line;
	uint64_t isig = 0, osig = 0;
	int64_t size, mtime;

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
		if (!e->path || strcmp(e->path, n->label) != 0 || output_stat(n->label, &size, &mtime) < 0)
			why = "output missing";
		else if ((size != e->size || mtime != e->mtime) &&
		    (output_sig(n->label, &size, &mtime, &osig) < 0 || osig != e->sig))
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
	    (!in->out || (output_stat(in->out, &size, &mtime) == 0 && size == e->size &&
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
	if (fsync_tree(in->tmp, 0) < 0) {
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
	if (output_sig(in->out, &in->size, &in->mtime, &in->sig) < 0) {
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
		crec_one(&(struct reload){ cmd_of(job->rule), key_of(job->rule, job->obj) }, &r);
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
