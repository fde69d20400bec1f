/*
 * metaout.c - -t metadata: the headers the metadata stage stored, for the
 * series of the planned targets (so [select] and targets choose them), as
 * JSON Lines (one instance a line: its patient, study, series and SOP
 * keys, and the header, or the keywords asked for) or CSV (a column per
 * keyword).  The arguments that are data dictionary keywords (or eight
 * hex digits) are the columns; the others are targets, as for a build.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "dicom.h"
#include "graph.h"
#include "metaout.h"
#include "rule.h"
#include "setup.h"
#include "util.h"

enum { MAX_KEYWORDS = 256 };

/* The columns of CSV without keywords. */
static const char *const default_keywords[] = {
	"PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality",
	"SeriesNumber", "InstanceNumber",
};

struct out {
	int csv;
	const char *kw[MAX_KEYWORDS];
	char tag[MAX_KEYWORDS][9];
	int nkw;
	const struct series *s;   /* the series being printed */
	long rows, bad;
	int werr;                 /* stdout failed: errno says why */
};

/* JSON text as jansson writes it: compact, and reals as short as they
 * read (DCMTK wrote DS values as they were, "0.8" not 0.80000000000000004). */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

static void
csv_field(const char *v, FILE *fp)
{
	if (!strpbrk(v, ",\"\r\n")) {
		fputs(v, fp);
		return;
	}
	fputc('"', fp);
	for (; *v; v++) {
		if (*v == '"')
			fputc('"', fp);
		fputc(*v, fp);
	}
	fputc('"', fp);
}

/* One value of an element as text: a string as it is, a number as JSON
 * writes it, a person name its Alphabetic part, an item its JSON. */
static void
value_text(json_t *v, FILE *fp)
{
	json_t *a;
	char *t;

	if (json_is_string(v)) {
		fputs(json_string_value(v), fp);
	} else if (json_is_object(v) && (a = json_object_get(v, "Alphabetic")) && json_is_string(a)) {
		fputs(json_string_value(a), fp);
	} else if (!json_is_null(v) && (t = json_dumps(v, DUMP_FLAGS | JSON_ENCODE_ANY))) {
		fputs(t, fp);
		free(t);
	}
}

/* Element el's values joined with '\', as DICOM joins them, into a
 * malloc'd string (for CSV quoting). */
static char *
element_text(json_t *el)
{
	json_t *vals = json_object_get(el, "Value"), *v;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *fp = open_memstream(&buf, &len);

	if (!fp)
		fatal("out of memory");
	if (json_is_array(vals)) {
		json_array_foreach(vals, i, v) {
			if (i)
				fputc('\\', fp);
			value_text(v, fp);
		}
	} else if ((v = json_object_get(el, "InlineBinary")) && json_is_string(v)) {
		fputs(json_string_value(v), fp);
	}
	fclose(fp);
	return buf;
}

/* The keys every line of JSONL starts with, from the catalog. */
static json_t *
keys_of(const struct series *s, const char *sop)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "PatientID", s->patient->id,
	    "StudyInstanceUID", s->study, "SeriesInstanceUID", s->uid, "SOPInstanceUID", sop);
}

static int
print_row(void *arg, const char *sop, const char *text)
{
	struct out *o = arg;
	json_error_t jerr;
	json_t *h = json_loads(text, 0, &jerr), *line;

	if (!json_is_object(h)) {
		warn("%s %s: stored header is no JSON object: %s", o->s->uid, sop, jerr.text);
		json_decref(h);
		o->bad++;
		return 0;
	}
	if (o->csv) {
		for (int k = 0; k < o->nkw; k++) {
			json_t *el = json_object_get(h, o->tag[k]);
			char *v = el ? element_text(el) : NULL;

			if (k)
				putchar(',');
			csv_field(v ? v : "", stdout);
			free(v);
		}
		putchar('\n');
	} else {
		line = keys_of(o->s, sop);
		if (o->nkw == 0) {
			json_object_set(line, "header", h);
		} else {
			for (int k = 0; k < o->nkw; k++) {
				json_t *el = json_object_get(h, o->tag[k]), *vals;

				vals = el ? json_object_get(el, "Value") : NULL;
				if (!vals && el)
					vals = json_object_get(el, "InlineBinary");
				json_object_set(line, o->kw[k], vals ? vals : json_null());
			}
		}
		json_dumpf(line, stdout, DUMP_FLAGS);
		putchar('\n');
		json_decref(line);
	}
	json_decref(h);
	o->rows++;
	return (o->werr = ferror(stdout) != 0);
}

static int
print_series(struct out *o, struct state *st, const struct series *s)
{
	o->s = s;
	return state_meta_get(st, s->uid, print_row, o);
}

static struct out *cur;       /* for metadata_show, which build_plan calls */

static int
metadata_show(const struct options *opt, struct setup *s, const struct graph *g)
{
	const struct rule *ru = rule_find("metadata", NULL);
	struct out *o = cur;
	long missing = 0;

	(void)opt;
	if (!s->cfg.metadata.on || !ru) {
		warn("%s: no [metadata] section: no headers are stored (add one and run "
		    "thlhp-make metadata)", s->cfg.file);
		return EXIT_ERROR;
	}
	if (o->csv) {
		for (int k = 0; k < o->nkw; k++)
			printf("%s", k ? "," : ""), csv_field(o->kw[k], stdout);
		putchar('\n');
	}
	for (int i = 0; i < g->n; i++) {
		const struct node *n = g->node[i];
		long before = o->rows;

		if (n->rule != ru)
			continue;
		if (s->st.db && print_series(o, &s->st, n->obj) < 0 && !o->werr) {
			setup_state_error(s);
			return EXIT_ERROR;
		}
		if (o->werr)
			break;
		missing += o->rows == before;
	}
	if (o->werr || fflush(stdout) != 0) {
		/* A reader that had enough (| head) is no trouble to report. */
		if (errno != EPIPE)
			warn("stdout:");
		return EXIT_ERROR;
	}
	if (missing)
		warn("%ld series have no headers stored yet: `thlhp-make metadata` stores them",
		    missing);
	return o->bad ? EXIT_ERROR : EXIT_OK;
}

int
tool_metadata(const struct options *opt, struct setup *s)
{
	struct out o = { .csv = opt->format && strcmp(opt->format, "csv") == 0 };
	struct options rest = *opt;
	char **targets = xcalloc((size_t)opt->ntargets + 1, sizeof(*targets));
	int code;

	rest.targets = targets;
	rest.ntargets = 0;
	for (int i = 0; i < opt->ntargets; i++) {
		if (dcm_tag_of(opt->targets[i], o.tag[o.nkw]) == 0) {
			if (o.nkw == MAX_KEYWORDS - 1) {
				warn("-t metadata: more than %d keywords", MAX_KEYWORDS - 1);
				free(targets);
				return EXIT_ERROR;
			}
			o.kw[o.nkw++] = opt->targets[i];
		} else {
			targets[rest.ntargets++] = opt->targets[i];
		}
	}
	if (o.csv && o.nkw == 0)
		for (size_t k = 0; k < LEN(default_keywords); k++) {
			dcm_tag_of(default_keywords[k], o.tag[o.nkw]);
			o.kw[o.nkw++] = default_keywords[k];
		}
	cur = &o;
	code = build_plan(&rest, s, metadata_show);
	cur = NULL;
	free(targets);
	return code;
}
