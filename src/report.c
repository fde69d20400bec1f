/* report.c - -t status (table or CSV), -t inventory (CSV), -t dag
 * (Graphviz DOT) and -t targets. */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "formsout.h"
#include "report.h"
#include "rule.h"
#include "util.h"

enum { DAG_COLLAPSE = 200 };  /* more targets than this: a node per patient */

/* Does cfg ask for stage ru? */
static int
on(const struct rule *ru, const struct config *cfg)
{
	return !ru->enabled || ru->enabled(cfg);
}

int
report_kind(const char *tool, const char *format)
{
	int csv = format && strcmp(format, "csv") == 0;

	if (strcmp(tool, "status") == 0)
		return csv ? REPORT_STATUS_CSV : REPORT_STATUS;
	if (strcmp(tool, "inventory") == 0)
		return REPORT_INVENTORY;
	if (strcmp(tool, "dag") == 0)
		return REPORT_DAG;
	if (strcmp(tool, "targets") == 0)
		return REPORT_TARGETS;
	return -1;
}

void
csv_field(FILE *fp, const char *s)
{
	if (!s)
		s = "";
	if (!s[strcspn(s, ",\"\r\n")]) {
		fputs(s, fp);
		return;
	}
	putc('"', fp);
	for (; *s; s++) {
		if (*s == '"')
			putc('"', fp);
		putc(*s, fp);
	}
	putc('"', fp);
}

/* What one patient's targets add up to. */
struct prow {
	struct patient *p;
	int nseries, downloaded, validated;
	int stale[RULE_MAX];      /* stale targets, by rule_table index */
	const char *reason;       /* of the first stale target */
	const char *error;        /* a job's last failure, from state */
	char *archive, *state;
};

static struct patient *
node_patient(const struct node *n)
{
	return rule_patient(n);
}

static int
stage_of(const struct node *n)
{
	int k = 0;

	rule_find(n->rule->name, &k);
	return k;
}

/* "stale (download, validate): why" from w's counts. */
static char *
stale_state(const struct prow *w)
{
	char names[256] = "";
	size_t off = 0;

	for (int k = 0; rule_table[k] && off < sizeof(names); k++)
		if (w->stale[k])
			off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
			    off ? ", " : "", rule_table[k]->name);
	return xasprintf("stale (%s): %s", names, w->reason);
}

/* One row per patient that has targets, in catalog order. */
static struct prow *
rows(const struct graph *g, const struct catalog *c, int *nrows)
{
	struct prow *r = xcalloc((size_t)c->np + 1, sizeof(*r));
	struct htab at;
	int n = 0;

	htab_init(&at);
	for (int i = 0; i < g->n; i++) {
		struct patient *p = node_patient(g->node[i]);

		if (!htab_get(&at, p->id)) {
			r[n].p = p;
			htab_put(&at, p->id, &r[n++]);
		}
	}
	for (int i = 0; i < g->n; i++) {
		const struct node *nd = g->node[i];
		struct prow *w = htab_get(&at, node_patient(nd)->id);

		if (nd->reason) {
			if (!w->reason)
				w->reason = nd->reason;
			w->stale[stage_of(nd)]++;
		}
	}
	htab_free(&at);
	for (int i = 0; i < n; i++) {
		struct prow *w = &r[i];
		struct patient *p = w->p;
		const char *base;

		w->nseries = p->nwant;
		for (int j = 0; j < p->nwant; j++) {
			struct series *s = p->want[j];

			series_check_disk(s);
			w->downloaded += s->disk_count >= s->expected;
			w->validated += s->valid_sig && s->valid_sig == s->set_sig && !s->dir_changed;
			if (s->error && !w->error)
				w->error = s->error;
		}
		if (!w->error && p->ar_error)
			w->error = p->ar_error;
		base = p->has_ar && p->ar.path ? strrchr(p->ar.path, '/') : NULL;
		w->archive = xstrdup(!p->has_ar ? "-" : base ? base + 1 : p->ar.path);
		if (p->query_error)
			w->state = xasprintf("incomplete at the source, not zipped: %s", p->query_error);
		else if (w->error)
			w->state = xasprintf("failed: %s", w->error);
		else if (w->reason)
			w->state = stale_state(w);
		else
			w->state = xstrdup("up to date");
	}
	*nrows = n;
	return r;
}

static void
rows_free(struct prow *r, int n)
{
	for (int i = 0; i < n; i++) {
		free(r[i].archive);
		free(r[i].state);
	}
	free(r);
}

static int
status(const struct graph *g, const struct catalog *c, int csv, FILE *fp)
{
	int n, wid = 7, war = 7, uptodate = 0;
	struct prow *r = rows(g, c, &n);

	if (csv) {
		fputs("patient,series,downloaded,validated,archive,state\n", fp);
		for (int i = 0; i < n; i++) {
			csv_field(fp, r[i].p->id);
			fprintf(fp, ",%d,%d,%d,", r[i].nseries, r[i].downloaded, r[i].validated);
			csv_field(fp, r[i].archive);
			putc(',', fp);
			csv_field(fp, r[i].state);
			putc('\n', fp);
		}
		rows_free(r, n);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		int l = (int)strlen(r[i].p->id), a = (int)strlen(r[i].archive);

		wid = l > wid ? l : wid;
		war = a > war ? a : war;
	}
	wid = wid > 40 ? 40 : wid;
	war = war > 60 ? 60 : war;
	fprintf(fp, "%-*s  %6s  %10s  %9s  %-*s  %s\n", wid, "patient", "series", "downloaded",
	    "validated", war, "archive", "state");
	for (int i = 0; i < n; i++) {
		uptodate += strcmp(r[i].state, "up to date") == 0;
		fprintf(fp, "%-*s  %6d  %10d  %9d  %-*s  %s\n", wid, r[i].p->id, r[i].nseries,
		    r[i].downloaded, r[i].validated, war, r[i].archive, r[i].state);
	}
	fprintf(fp, "%d patient%s, %d up to date, %d not\n", n, n == 1 ? "" : "s", uptodate,
	    n - uptodate);
	rows_free(r, n);
	return 0;
}

/* The bytes state records on disk per series, for the inventory. */
struct sizes {
	const struct catalog *c;
	struct htab by;           /* series uid -> its sum in pool */
	int64_t *pool;            /* one per series of the catalog at most */
	size_t npool, cap;
};

static void
size_row(void *arg, const char *uid, int64_t n, int64_t bytes)
{
	struct sizes *z = arg;
	struct series *s = catalog_find_series(z->c, uid);

	(void)n;   /* downloaded is the series' own count, ninst */
	if (!s || z->npool == z->cap)
		return;   /* rows of no series of the catalog */
	z->pool[z->npool] = bytes;
	htab_put(&z->by, s->uid, &z->pool[z->npool++]);
}

/* The archive name of the inventory for p's series: the current archive
 * when its zip target is up to date (it then holds exactly p->want), or
 * NULL. */
static const char *
current_archive(const struct patient *p, const struct htab *zips)
{
	const struct node *z = htab_get(zips, p->id);
	const char *base;

	if (!z || z->reason || !p->has_ar)
		return NULL;
	base = strrchr(p->ar.path, '/');
	return base ? base + 1 : p->ar.path;
}

/* One CSV row per series of each patient planned, in catalog order
 * (patient, study, series), from the stored catalog and state's sums. */
static int
inventory(const struct graph *g, const struct catalog *c, struct state *st, FILE *fp)
{
	struct sizes z = { .c = c, .cap = c->byuid.len };
	struct htab zips;
	int rc = 0;

	htab_init(&z.by);
	htab_init(&zips);
	z.pool = xcalloc(z.cap + 1, sizeof(*z.pool));
	for (int i = 0; i < g->n; i++)
		if (g->node[i]->rule->product)
			htab_put(&zips, ((struct patient *)g->node[i]->obj)->id, g->node[i]);
	if (state_series_sizes(st, size_row, &z) < 0) {
		warn("%s", st->err);
		rc = -1;
		goto out;
	}
	fputs("PatientID,StudyInstanceUID,StudyDate,SeriesInstanceUID,SeriesNumber,Modality,"
	    "SeriesDescription,expected,downloaded,bytes,archive\n", fp);
	for (int i = 0; i < c->np; i++) {
		const struct patient *p = c->p[i];
		const char *ar = current_archive(p, &zips);

		for (int j = 0; j < p->nwant; j++) {
			const struct series *s = p->want[j];
			const int64_t *bytes = htab_get(&z.by, s->uid);
			const char *text[] = { p->id, s->study, s->study_date, s->uid, s->number,
			    s->modality, s->desc };

			for (size_t k = 0; k < sizeof(text) / sizeof(*text); k++) {
				if (k)
					putc(',', fp);
				csv_field(fp, text[k]);
			}
			fprintf(fp, ",%d,%d,%" PRId64 ",", s->expected, s->ninst, bytes ? *bytes : 0);
			csv_field(fp, ar);
			putc('\n', fp);
		}
	}
out:
	htab_free(&zips);
	htab_free(&z.by);
	free(z.pool);
	return rc;
}

/* s as the inside of a DOT string: quotes and backslashes escaped, control
 * bytes shown as '?'. */
static void
dot_str(FILE *fp, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			putc('\\', fp);
		putc(ch < 0x20 || ch == 0x7f ? '?' : ch, fp);
	}
}

static const char *
colour(int failed, int stale)
{
	return failed ? "#f4a6a6" : stale ? "#f7d08a" : "#b9e4b0";
}

/* A node and its index in the graph, sorted by address. */
struct nidx {
	const struct node *n;
	int i;
};

static int
cmp_nidx(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct nidx *)a)->n;
	uintptr_t y = (uintptr_t)((const struct nidx *)b)->n;

	return x < y ? -1 : x > y;
}

static int
node_index(const struct nidx *v, int n, const struct node *nd)
{
	struct nidx key = { nd, 0 }, *hit = bsearch(&key, v, (size_t)n, sizeof(*v), cmp_nidx);

	return hit ? hit->i : -1;
}

static int
dag(const struct graph *g, const struct catalog *c, int verbose, FILE *fp)
{
	int n, collapse = g->n > DAG_COLLAPSE && !verbose;
	struct prow *r = rows(g, c, &n);

	fputs("digraph thlhp {\n\trankdir=LR;\n\tnode [shape=box, style=filled, "
	    "fontname=\"Helvetica\", fontsize=10];\n", fp);
	fprintf(fp, "\tlabel=\"up to date: green; stale: orange; failed: red%s\";\n",
	    collapse ? " (one box per patient; -v draws every target)" : "");
	struct nidx *byaddr = NULL;
	int *order = NULL, *start = NULL;

	if (!collapse) {
		/* Nodes by patient row (counting sort, graph order within),
		 * and by address for the edges: names "n<graph index>", the
		 * same from run to run. */
		struct htab at;

		htab_init(&at);
		for (int i = 0; i < n; i++)
			htab_put(&at, r[i].p->id, &r[i]);
		order = xcalloc((size_t)g->n + 1, sizeof(*order));
		start = xcalloc((size_t)n + 2, sizeof(*start));
		byaddr = xcalloc((size_t)g->n + 1, sizeof(*byaddr));
		for (int j = 0; j < g->n; j++) {
			struct prow *w = htab_get(&at, node_patient(g->node[j])->id);

			order[j] = (int)(w - r);
			start[order[j] + 2]++;
			byaddr[j] = (struct nidx){ g->node[j], j };
		}
		htab_free(&at);
		for (int i = 2; i < n + 2; i++)
			start[i] += start[i - 1];
		{
			int *row = order;

			order = xcalloc((size_t)g->n + 1, sizeof(*order));
			for (int j = 0; j < g->n; j++)
				order[start[row[j] + 1]++] = j;
			free(row);
		}
		qsort(byaddr, (size_t)g->n, sizeof(*byaddr), cmp_nidx);
	}
	for (int i = 0; i < n; i++) {
		struct prow *w = &r[i];

		if (collapse) {
			fprintf(fp, "\t\"p%d\" [label=\"", i);
			dot_str(fp, w->p->id);
			fprintf(fp, "\\n%d series\\n", w->nseries);
			dot_str(fp, w->archive);
			fprintf(fp, "\", fillcolor=\"%s\"];\n", colour(w->error != NULL, w->reason != NULL));
			continue;
		}
		fprintf(fp, "\tsubgraph \"cluster_%d\" {\n\t\tlabel=\"", i);
		dot_str(fp, w->p->id);
		fputs("\";\n", fp);
		for (int o = start[i]; o < start[i + 1]; o++) {
			int j = order[o];
			const struct node *nd = g->node[j];
			const struct series *s = nd->rule->per == PER_SERIES ? nd->obj : NULL;

			fprintf(fp, "\t\t\"n%d\" [label=\"%s\\n", j, nd->rule->name);
			dot_str(fp, s ? s->uid : strrchr(nd->label, '/') ? strrchr(nd->label, '/') + 1 :
			    nd->label);
			if (nd->reason) {
				fputs("\\n", fp);
				dot_str(fp, nd->reason);
			}
			fprintf(fp, "\", fillcolor=\"%s\"];\n",
			    colour(s ? s->error != NULL : w->error != NULL, nd->reason != NULL));
		}
		fputs("\t}\n", fp);
	}
	for (int j = 0; !collapse && j < g->n; j++)
		for (int k = 0; k < g->node[j]->nout; k++)
			fprintf(fp, "\t\"n%d\" -> \"n%d\";\n", j, node_index(byaddr, g->n,
			    g->node[j]->out[k]));
	fputs("}\n", fp);
	free(byaddr);
	free(order);
	free(start);
	rows_free(r, n);
	return 0;
}


struct item_names {
	const char *stage;
	FILE *fp;
};

static void
item_name(void *arg, const char *key, const struct target_rec *r)
{
	struct item_names *in = arg;

	(void)r;
	fprintf(in->fp, "%s:%s\n", in->stage, key);
}

/* Every target name the command line takes, one a line: the stages, then
 * for each patient its ID, STAGE:ID and its archive's path, then the
 * targets of the stages that list their own (forms:UID) as the state
 * last recorded them. */
static int
targets(const struct graph *g, struct state *st, const struct config *cfg, FILE *fp)
{
	struct patient *last = NULL;

	fputs("all\n", fp);
	for (int k = 0; rule_table[k]; k++)
		if (on(rule_table[k], cfg))
			fprintf(fp, "%s\n", rule_table[k]->name);
	for (int i = 0; i < g->n; i++) {
		struct patient *p = node_patient(g->node[i]);

		if (p != last) {
			last = p;
			fprintf(fp, "%s\n", p->id);
			for (int k = 0; rule_table[k]; k++)
				if (rule_table[k]->per != PER_RUN && rule_table[k]->per != PER_ITEM &&
				    on(rule_table[k], cfg))
					fprintf(fp, "%s:%s\n", rule_table[k]->name, p->id);
		}
		if (g->node[i]->rule->product)
			fprintf(fp, "%s\n", g->node[i]->label);
	}
	for (int k = 0; rule_table[k] && st->db; k++) {
		struct item_names in = { rule_table[k]->name, fp };

		if (rule_table[k]->per == PER_ITEM && on(rule_table[k], cfg) &&
		    state_load_targets(st, rule_table[k]->name, item_name, &in) < 0) {
			warn("-t targets: %s", st->err);
			return -1;
		}
	}
	return 0;
}

int
report_print(enum report kind, const struct graph *g, const struct catalog *c,
    struct state *st, const struct config *cfg, int verbose, FILE *fp)
{
	const struct rule *ru;

	switch (kind) {
	case REPORT_STATUS:
		if (status(g, c, 0, fp) < 0)
			return -1;
		ru = rule_find("forms", NULL);
		return ru && on(ru, cfg) && st->db ? forms_status(st, fp) : 0;
	case REPORT_STATUS_CSV:
		return status(g, c, 1, fp);
	case REPORT_INVENTORY:
		return inventory(g, c, st, fp);
	case REPORT_DAG:
		return dag(g, c, verbose, fp);
	case REPORT_TARGETS:
		return targets(g, st, cfg, fp);
	}
	return -1;
}
