/*
 * formsout.c - -t forms: what the forms stage pulled.  Without FORM, one
 * line per form pulled (uid, submissions, deleted, title); with FORM (an
 * asset uid), its submissions not marked deleted, by _id, as JSON Lines
 * (each as the server sent it) or CSV (a column per top-level key, in the
 * order they first appear; a string as it is, anything else as compact
 * JSON).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "formsout.h"
#include "report.h"
#include "setup.h"
#include "util.h"

struct form_line {
	char *key, *title;
};

struct forms_list {
	struct form_line *v;
	int n;
};

static void
list_form(void *arg, const char *key, const struct target_rec *r)
{
	struct forms_list *l = arg;

	l->v = xreallocarray(l->v, (size_t)l->n + 1, sizeof(*l->v));
	l->v[l->n].key = xstrdup(key);
	l->v[l->n++].title = xescape(r->detail ? r->detail : "");
}

static int
count_deleted(void *arg, const struct form_sub *s)
{
	*(int64_t *)arg += s->deleted != 0;
	return 0;
}

static void
forms_list_free(struct forms_list *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].title);
	}
	free(l->v);
}

int
forms_status(struct state *st, FILE *fp)
{
	struct forms_list l = { NULL, 0 };
	int64_t subs = 0;
	int rc = state_load_targets(st, "forms", list_form, &l);

	for (int i = 0; rc == 0 && i < l.n; i++) {
		int64_t n = 0;
		char *latest = NULL;

		rc = state_form_stats(st, l.v[i].key, &n, &latest);
		subs += n;
		free(latest);
	}
	if (rc < 0)
		warn("-t status: %s", st->err);
	else
		fprintf(fp, "forms: %d pulled, %" PRId64 " submission%s (-t forms lists them)\n",
		    l.n, subs, subs == 1 ? "" : "s");
	forms_list_free(&l);
	return rc < 0 ? -1 : 0;
}

/* One line per form pulled. */
static int
list_forms(struct state *st)
{
	struct forms_list l = { NULL, 0 };
	int rc = 0;

	if (state_load_targets(st, "forms", list_form, &l) < 0) {
		warn("-t forms: %s", st->err);
		return EXIT_ERROR;
	}
	for (int i = 0; i < l.n; i++) {
		int64_t n = 0, deleted = 0;
		char *latest = NULL;

		if (rc == 0 && (state_form_stats(st, l.v[i].key, &n, &latest) < 0 ||
		    state_form_get(st, l.v[i].key, 1, count_deleted, &deleted) < 0)) {
			warn("-t forms: %s", st->err);
			rc = -1;
		}
		if (rc == 0)
			printf("%-24s %8" PRId64 " submission%s %6" PRId64 " deleted  %s\n",
			    l.v[i].key, n, n == 1 ? " " : "s", deleted, l.v[i].title);
		free(latest);
	}
	forms_list_free(&l);
	return rc < 0 || fflush(stdout) != 0 ? EXIT_ERROR : EXIT_OK;
}

/* The submissions, parsed, for CSV. */
struct subs {
	json_t **v;
	int n;
	int bad;                  /* stored text that does not parse */
};

static int
print_line(void *arg, const struct form_sub *s)
{
	(void)arg;
	/* Stored as it came, one line: compact JSON has no raw newline. */
	fputs(s->json, stdout);
	fputc('\n', stdout);
	return ferror(stdout) ? -1 : 0;
}

static int
take_sub(void *arg, const struct form_sub *s)
{
	struct subs *l = arg;
	json_t *o = json_loads(s->json, 0, NULL);

	if (!json_is_object(o)) {
		json_decref(o);
		l->bad++;
		return 0;
	}
	l->v = xreallocarray(l->v, (size_t)l->n + 1, sizeof(*l->v));
	l->v[l->n++] = o;
	return 0;
}

static int
print_csv(struct state *st, const char *form)
{
	struct subs l = { NULL, 0, 0 };
	json_t *cols = json_array(), *seen = json_object();
	const char *k;
	json_t *val;
	size_t i;

	if (state_form_get(st, form, 0, take_sub, &l) < 0) {
		warn("-t forms: %s", st->err);
		json_decref(cols);
		json_decref(seen);
		return EXIT_ERROR;
	}
	for (int r = 0; r < l.n; r++)
		json_object_foreach(l.v[r], k, val)
			if (!json_object_get(seen, k)) {
				json_object_set_new(seen, k, json_true());
				json_array_append_new(cols, json_string(k));
			}
	json_array_foreach(cols, i, val) {
		if (i)
			fputc(',', stdout);
		csv_field(stdout, json_string_value(val));
	}
	fputc('\n', stdout);
	for (int r = 0; r < l.n; r++) {
		json_array_foreach(cols, i, val) {
			json_t *v = json_object_get(l.v[r], json_string_value(val));

			if (i)
				fputc(',', stdout);
			if (json_is_string(v)) {
				csv_field(stdout, json_string_value(v));
			} else if (v && !json_is_null(v)) {
				char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

				csv_field(stdout, t ? t : "");
				free(t);
			}
		}
		fputc('\n', stdout);
		json_decref(l.v[r]);
	}
	free(l.v);
	json_decref(cols);
	json_decref(seen);
	if (l.bad)
		warn("-t forms %s: %d stored submission%s that %s not a JSON object, left out",
		    form, l.bad, l.bad == 1 ? "" : "s", l.bad == 1 ? "is" : "are");
	return fflush(stdout) != 0 || ferror(stdout) ? EXIT_ERROR : EXIT_OK;
}

int
tool_forms(const struct options *o, struct setup *s)
{
	struct state *st = &s->st;
	const char *form;
	int64_t n = 0;
	char *latest = NULL;
	int any;

	if (!s->cfg.kobo.on) {
		warn("-t forms: %s has no [kobo] section, so no forms are pulled", s->cfg.file);
		return EXIT_ERROR;
	}
	if (o->ntargets > 1) {
		warn("-t forms: one form at a time (its asset uid; -t forms alone lists them)");
		return EXIT_ERROR;
	}
	if (!st->db) {
		warn("-t forms: nothing pulled yet (run thlhp-make forms)");
		return o->ntargets ? EXIT_ERROR : EXIT_OK;
	}
	if (!o->ntargets)
		return list_forms(st);
	form = o->targets[0];
	if (strncmp(form, "forms:", 6) == 0)
		form += 6;
	if (state_form_stats(st, form, &n, &latest) < 0) {
		warn("-t forms: %s", st->err);
		return EXIT_ERROR;
	}
	any = n || latest;
	free(latest);
	if (!any) {
		warn("-t forms: no form %s pulled (-t forms lists those that were)", form);
		return EXIT_ERROR;
	}
	if (o->format && strcmp(o->format, "csv") == 0)
		return print_csv(st, form);
	if (state_form_get(st, form, 0, print_line, NULL) < 0) {
		warn("-t forms: %s", ferror(stdout) ? strerror(errno) : st->err);
		return EXIT_ERROR;
	}
	return fflush(stdout) != 0 ? EXIT_ERROR : EXIT_OK;
}
