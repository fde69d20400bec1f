/* build.c - set up a run, query, plan the graph, print or run it. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build-int.h"
#include "dicom.h"
#include "fileio.h"
#include "lease.h"
#include "names.h"
#include "news.h"
#include "notify.h"
#include "plan.h"
#include "rule.h"
#include "sched.h"
#include "spawn.h"
#include "setup.h"
#include "source.h"
#include "util.h"

static int run_end(struct run *r);

/* Run the query as a one-node graph through the scheduler. */
static int
run_query(struct run *r)
{
	struct graph g;
	struct sched_opts so = { .jobs = 1, .cap = { 1, 1 } };
	struct node *n;
	int rc = 0, saved = verbosity;

	graph_init(&g);
	for (int k = 0; rule_table[k]; k++) {
		if (rule_table[k]->per != PER_RUN)
			continue;
		n = graph_add(&g, rule_table[k], NULL, rule_table[k]->label(rule_table[k], &r->ctx, NULL));
		n->force = r->force_query;
		graph_stale(n, n->rule->plan(&r->ctx, n));
	}
	r->ctx.verbose = verbosity > 1;
	if (r->o->dry_run || r->o->question)
		verbosity = verbosity > 1 ? 1 : 0;   /* a dry run prints only what is stale */
	if (g.n)
		rc = sched_run(&g, &r->ctx, &so);
	verbosity = saved;
	graph_free(&g);
	return rc;
}

/* A series as a person knows it, "#3 Thorax 1.0 B31f", with control
 * bytes shown as '?'; "" when the source gave neither. */
static void
series_title(const struct series *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s", s->number ? "#" : "", s->number ? s->number : "",
	    s->number && s->desc ? " " : "", s->desc ? s->desc : "");
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/* progress_title_fn: a series job as "TH-01-AA #3 Thorax 1.0 B31f" (and
 * its UID when verbose, or when the source gave no number nor
 * description); an archive by its path. */
static void
node_title(const struct node *n, int verbose, char *buf, size_t len)
{
	const struct series *s = n->rule->per == PER_SERIES ? n->obj : NULL;
	char t[256];

	if (s)
		series_title(s, t, sizeof(t));
	if (!s || !*t)
		snprintf(buf, len, "%s", n->label);
	else
		snprintf(buf, len, "%s %s%s%s", s->patient->name, t, verbose ? " " : "",
		    verbose ? s->uid : "");
}

/* Print the stale targets of g (-n), count them (-n, -q). */
static void
print_stale(struct run *r, const struct graph *g)
{
	int j;

	for (int i = 0; i < g->n; i++) {
		struct node *n = g->node[i];

		if (!n->reason)
			continue;
		r->nstale++;
		if (r->o->question)
			continue;
		printf("%-9s %s  %s\n", n->rule->name, n->label, n->reason);
		for (j = 0; j < r->nstale_by && strcmp(r->stale_by[j].name, n->rule->name) != 0; j++)
			;
		if (j == r->nstale_by && j < (int)LEN(r->stale_by))
			r->stale_by[r->nstale_by++].name = n->rule->name;
		if (j < r->nstale_by)
			r->stale_by[j].n++;
	}
}

/* -n's last line: "12 targets stale: 4 download, 4 validate, 4 zip". */
static void
print_stale_count(const struct run *r)
{
	printf("%d target%s stale", r->nstale, r->nstale == 1 ? "" : "s");
	for (int j = 0; j < r->nstale_by; j++)
		printf("%s%d %s", j ? ", " : ": ", r->stale_by[j].n, r->stale_by[j].name);
	putchar('\n');
}

/* -n and -t status say, on every run while it lasts, that a series is no
 * longer at the source (a build says it once, when the query finds out). */
static void
warn_gone(struct run *r, struct patient *p)
{
	for (int i = 0; i < p->nseries; i++) {
		struct series *s = p->series[i];

		if (!s->gone || !select_series(&r->s->sel, s->modality, s->study_date))
			continue;
		char t[256];

		series_title(s, t, sizeof(t));
		warn("%s: series %s%s%s%s is no longer at the source; %s", p->id, s->uid,
		    *t ? " (" : "", t, *t ? ")" : "", s->valid_sig ?
		    "the archive keeps what was downloaded of it" :
		    "nothing of it was downloaded, so the archive leaves it out");
	}
}

/* The stages made per patient, from all its series. */
static stages
patient_stages(void)
{
	stages m = 0;

	for (int k = 0; rule_table[k]; k++)
		if (rule_table[k]->per == PER_PATIENT)
			m |= (stages)1 << k;
	return m;
}

/* -n and -q run nothing: each patient's nodes are planned, reported and
 * freed before the next patient's, so memory stays that of the catalog
 * (at 100k series the whole graph would be two thirds of it). */
static void
check_patient(struct run *r, struct patient *p, struct want w)
{
	struct graph one;

	graph_init(&one);
	plan_patient(&r->ctx, &one, p, w.build, w.force);
	print_stale(r, &one);
	graph_free(&one);
	for (int i = 0; i < p->nwant; i++) {
		free(p->want[i]->dir);
		p->want[i]->dir = NULL;
	}
	/* Nor what only the plan needed: at 100k series, 1 MB of the peak. */
	free(p->want);
	p->want = NULL;
	p->nwant = 0;
	for (int i = 0; i < p->nold; i++)
		free(p->old[i]);
	free(p->old);
	p->old = NULL;
	p->nold = 0;
}

/* Does the run need the catalog: is a stage made from it asked for? */
static int
needs_catalog(const struct run *r)
{
	return r->query_only || r->nwants || (r->all.build & ~plan_item_stages());
}

/* The PER_ITEM stages' targets (plan.h); -n prints the stale ones here:
 * they belong to no patient.  The reports show the catalog's targets, and
 * asking a server is a build's. */
static int
build_items(struct run *r)
{
	int first = r->g.n;

	if (r->o->tool)
		return 0;
	if (plan_items(&r->ctx, &r->g, r->all.build, r->all.force, r->named, r->nnamed,
	    r->items, r->nitems) < 0)
		return -1;
	if (r->ctx.dry_run) {
		struct graph tail = { .node = r->g.node + first, .n = r->g.n - first };

		print_stale(r, &tail);
	}
	return 0;
}

static int
build_graph(struct run *r)
{
	for (int i = 0; i < r->nwants; i++) {
		const char *id = r->wanted_ids[i];
		struct patient *p = catalog_find_patient(&r->s->cat, id);

		struct want *w = htab_get(&r->one, id);

		/* The query asks only for the selected: check that first. */
		if (!select_patient(&r->s->sel, id)) {
			warn("%s: not selected by [select] in %s, so never asked of the source "
			    "(add it to patient_id, patient_id_regex or patients_file)", id, r->s->cfg.file);
			return -1;
		}
		if (!p || p->nseries == 0) {
			warn("%s: no such patient at the source%s", id,
			    r->ctx.queried ? "" : " (in the stored catalog; --offline)");
			return -1;
		}
		if (w->file && w->file_rule->label) {
			/* The file named must be the one its stage would make now. */
			char *cur, *b;

			plan_choose_series(&r->ctx, p);
			cur = w->file_rule->label(w->file_rule, &r->ctx, p);
			b = strrchr(w->file, '/');
			if (strcmp(b ? b + 1 : w->file, strrchr(cur, '/') ? strrchr(cur, '/') + 1 : cur)) {
				warn("%s: not the current %s of %s: the target is %s", w->file,
				    w->file_rule->product ? w->file_rule->product : "target", id, cur);
				free(cur);
				return -1;
			}
			free(cur);
		}
	}
	for (int k = 0; rule_table[k]; k++)
		if (rule_table[k]->prepare && rule_table[k]->prepare(rule_table[k], &r->ctx) < 0)
			return -1;
	r->ctx.npartial = 0;
	for (int i = 0; i < r->s->cat.np; i++) {
		struct patient *p = r->s->cat.p[i];
		struct want w = r->all, *one = htab_get(&r->one, p->id);

		if (!select_patient(&r->s->sel, p->id))
			continue;
		if (one) {
			w.build |= one->build;
			w.force |= one->force;
		}
		w.build &= ~plan_item_stages();   /* planned apart: build_items */
		w.force &= ~plan_item_stages();
		if (w.build && ((r->ctx.dry_run && !r->o->question && !r->o->tool) ||
		    (r->o->tool && strcmp(r->o->tool, "status") == 0)))
			warn_gone(r, p);
		if (p->query_error && (w.build & patient_stages()) && !r->o->tool) {
			/* This run's query said so already. */
			if (!r->ctx.queried && !r->o->question)
				warn("patient %s: not zipped: the last query saw it only in part (%s); "
				    "run without --offline once the PACS answers whole", p->id,
				    p->query_error);
			r->ctx.npartial++;
		}
		if (w.build && r->ctx.dry_run && !r->o->tool)
			check_patient(r, p, w);
		else if (w.build)
			plan_patient(&r->ctx, &r->g, p, w.build, w.force);
	}
	return build_items(r);
}

static void
run_free(struct run *r)
{
	if (r->ctx.lease)
		lease_release_all(r->ctx.lease);
	graph_free(&r->g);
	plan_items_free(r->items, r->nitems);
	free(r->named);
	source_free(r->ctx.src);
	free(r->ctx.settings);
	for (int i = 0; i < r->nwants; i++) {
		free(htab_get(&r->one, r->wanted_ids[i]));
		free(r->wanted_ids[i]);
	}
	free(r->wanted_ids);
	htab_free(&r->one);
}

/* A build (show NULL), or a plan for show (build_plan), from s: what of
 * it is not loaded yet is loaded here, the state after the targets are
 * parsed (a typo is said before the state is touched). */
static int
run(const struct options *o, struct setup *s, build_show_fn *show)
{
	struct run r = { .o = o, .s = s };
	struct sched_opts so;
	char serr[512];
	const char *ping = NULL;
	int rc, n, code = EXIT_ERROR, readonly = o->dry_run || o->question || show, built = 0;
	int64_t started = now_ns();

	htab_init(&r.one);
	graph_init(&r.g);
	if (!(s->have & NEED_CONFIG) && setup_config(s, o, NEED_SELECT) < 0)
		return EXIT_ERROR;
	r.ctx.cfg = &s->cfg;      /* file targets are checked against it */
	r.ctx.sel = &s->sel;
	if (build_targets(&r) < 0)
		goto out;
	/* A build that may write is what a heartbeat watches. */
	ping = !readonly ? s->cfg.notify.ping_url : NULL;
	notify_ping(ping, s->cfg.notify.include_ids, s->cfg.notify.timeout, NOTIFY_START);
	if (!(s->have & NEED_CATALOG) && setup_state(s, readonly ? STORE_READONLY :
	    o->wait ? STORE_WAIT : 0, NEED_CATALOG) < 0)
		goto out;
	r.ctx.src = source_new(&s->cfg, serr, sizeof(serr));
	if (!r.ctx.src) {
		warn("%s", serr);
		goto out;
	}
	r.ctx.st = &s->st;
	r.ctx.cat = &s->cat;
	r.ctx.settings = config_zip_settings(&s->cfg);
	r.ctx.dry_run = readonly;
	if (s->st.shared && !readonly) {
		lease_init(&r.lease, &s->st, s->cfg.state.lease);
		r.ctx.lease = &r.lease;
	}
	r.ctx.offline = o->offline;
	atomic_init(&r.ctx.cancel, 0);
	sched_signals(&r.ctx);

	/* DICOM is touched only by jobs: the dictionary (3/4 of a no-op run's
	 * instructions) is loaded before the first job thread, and only then. */
	if (!o->offline && !show && needs_catalog(&r)) {
		dcm_init();
		rc = run_query(&r);
		if (rc == -2) {
			warn("interrupted");
			goto out;
		}
		if (rc < 0) {
			warn("cannot read the catalog from the source; nothing built "
			    "(--offline works from the stored catalog)");
			goto out;
		}
	}
	if (r.query_only) {
		code = EXIT_OK;
		goto out;
	}
	if (o->offline && !show && s->cat.np == 0 && needs_catalog(&r)) {
		/* Not "up to date": nothing is known yet.  -q cannot answer. */
		if (o->question) {
			warn("--offline -q: no catalog yet, so no answer: no query has found a "
			    "patient (run thlhp-make without --offline first)");
			goto out;
		}
		if (verbosity > 0)
			printf("%s: nothing to do: no catalog yet, as no query has found a patient "
			    "(run thlhp-make without --offline first)\n", argv0);
		code = EXIT_OK;
		goto out;
	}
	if (!readonly)
		remove_dead_temps(s->cfg.output.zip_dir);
	/* What the commands of a run killed with -9 left running. */
	if (!readonly && s->cfg.nrules && (n = spawn_reap_orphans()) > 0)
		warn("killed %d process%s left by a thlhp-make that was killed", n, n == 1 ? "" : "es");
	if (build_graph(&r) < 0)
		goto out;
	if (show) {
		code = show(o, s, &r.g);
		goto out;
	}
	if (readonly) {
		if (!r.nstale && !o->question && verbosity > 0)
			printf("%s: nothing to do: everything is up to date\n", argv0);
		else if (r.nstale && !o->question)
			print_stale_count(&r);
		fflush(stdout);
		code = o->question && r.nstale ? EXIT_STALE : EXIT_OK;
		goto out;
	}
	dcm_init();
	so.jobs = o->jobs;
	so.cap[POOL_PACS] = r.ctx.src->ops->local ? o->jobs : s->cfg.pacs.max_associations;
	so.cap[POOL_LOCAL] = o->jobs;
	for (int i = 0; i < NPOOL - POOL_RULE0; i++)
		so.cap[POOL_RULE0 + i] = i < s->cfg.nrules && s->cfg.rules[i].jobs &&
		    s->cfg.rules[i].jobs < o->jobs ? s->cfg.rules[i].jobs : o->jobs;
	so.keep_going = o->keep_going;
	so.title = node_title;
	so.summary = 1;
	built = 1;
	rc = sched_run(&r.g, &r.ctx, &so);
	if (run_end(&r) < 0 && rc >= 0)
		rc = -3;
	if (rc == -3) {
		/* run_end said why. */
	} else if (rc == -2) {
		warn("interrupted: what finished is recorded; run again to go on");
	} else if (rc < 0) {
		int failed = graph_count(&r.g, N_FAILED), blocked = graph_count(&r.g, N_BLOCKED);

		warn("%d job%s failed, %d target%s not built%s", failed, failed == 1 ? "" : "s",
		    blocked, blocked == 1 ? "" : "s", o->keep_going || !blocked ? "" :
		    " (-k goes on with what does not depend on a failure)");
	} else {
		code = EXIT_OK;
		if (verbosity > 0 && graph_count(&r.g, N_DONE) == 0)
			printf("%s: nothing to do: everything is up to date\n", argv0);
	}
out:
	if ((code == EXIT_OK || code == EXIT_STALE) && r.ctx.npartial) {
		warn("%d patient%s not zipped: the PACS's answer about %s was incomplete (above)",
		    r.ctx.npartial, r.ctx.npartial == 1 ? "" : "s", r.ctx.npartial == 1 ? "it" : "them");
		code = EXIT_ERROR;
	}
	/* What a build did; a run that fails before it builds tells its failure. */
	if (!readonly && (s->have & NEED_CATALOG) && (built || code != EXIT_OK))
		news_send(&r.g, o, &s->cfg, &s->st, &s->cat, started, code != EXIT_OK);
	notify_ping(ping, s->cfg.notify.include_ids, s->cfg.notify.timeout, code == EXIT_OK ? NOTIFY_OK : NOTIFY_FAIL);
	run_free(&r);
	return code;
}

/* Each stage's run_end hook, with the count of its targets made. */
static int
run_end(struct run *r)
{
	int rc = 0;

	if (r->ctx.dry_run)
		return 0;
	for (int k = 0; rule_table[k]; k++) {
		const struct rule *ru = rule_table[k];
		int made = 0;

		if (!ru->run_end || (ru->enabled && !ru->enabled(r->ctx.cfg)))
			continue;
		for (int i = 0; i < r->g.n; i++)
			made += r->g.node[i]->rule == ru && r->g.node[i]->state == N_DONE;
		if (ru->run_end(ru, &r->ctx, made) < 0)
			rc = -1;
	}
	return rc;
}

int
build_run(const struct options *o)
{
	struct setup s;
	int code;

	setup_init(&s);
	code = run(o, &s, NULL);
	setup_free(&s);
	return code;
}

int
build_plan(const struct options *o, struct setup *s, build_show_fn *show)
{
	return run(o, s, show);
}
