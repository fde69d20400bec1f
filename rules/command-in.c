/*
 * command-in.c - what one target of a declared rule reads, writes and
 * runs: the placeholders' values (file-name parts where they go into a
 * path), its inputs ({in}) and their signature, its output, and the
 * command with its THLHP_* environment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "command-int.h"
#include "fileio.h"
#include "util.h"
#include "words.h"

struct cmd *
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

const char *
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
char *
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

char **
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
char **
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
char *
command_line(const struct rule *ru, void *obj, char **in)
{
	char *out = output_of(ru, obj);
	char **argv = command_of(ru, obj, out ? out : "", in, NULL);
	char *line = words_join(argv);

	strv_free(argv);
	free(out);
	return line;
}
