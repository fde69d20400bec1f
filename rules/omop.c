/*
 * omop.c - with an [omop] section, each patient's images as rows of the
 * OMOP CDM's Medical Imaging extension (OHDSI Medical Imaging WG, MI-CDM):
 * one image_occurrence per series and one procedure_occurrence (CDM 5.4)
 * per study, made from the headers the metadata stage stored (each
 * series' first instance) and written into a PostgreSQL schema ([omop]
 * url, omop-pg.c) or kept for CSV files ([omop] dir, written at the end of
 * the run, omop-csv.c).  person_map gives each PatientID its person_id;
 * the vocabulary, if any, the concepts (omop-map.c).
 *
 * Ids never change: state_omop_id gives each series and study its own,
 * once.  The rows made are kept in the state (omop_row) by patient, as
 * CSV lines: a job compares what it makes with them (rows as they were
 * are not written again), deletes from the database the ids the patient
 * no longer has, and the CSV files are written from them.  The target
 * record holds what the rows were made from (the series whose headers are
 * stored, and their content: input_sig) and with (settings: where they
 * go, the patient's person_id, the vocabulary's size and mtime, ...), so
 * that a run in which none of it changed does nothing, and -n says which
 * did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>
#include "omop-int.h"
#include "util.h"

/* A patient's record, by its file-name id. */
struct orec {
	char *key;
	uint64_t input;           /* the series and their content then */
	char *settings;
	int failed;
};

/* What prepare reads for the whole run. */
static struct htab persons;   /* PatientID -> struct person */
static struct vocab vocab;
static struct htab recs;      /* file-name id -> struct orec */
static char *target;          /* where rows go, for the settings (no password) */
static char *wado;            /* [pacs] url for wadors_uri, or NULL */

extern const struct rule rule_omop;

static int
omop_enabled(const struct config *cfg)
{
	return cfg->omop.on != 0;
}

static char *
omop_label(const struct rule *ru, struct ctx *ctx, void *obj)
{
	(void)ru, (void)ctx;
	return xstrdup(((struct patient *)obj)->id);
}

static void
orec_put(void *arg, const char *key, const struct target_rec *r)
{
	struct orec *o;

	(void)arg;
	if (strchr(key, '/'))
		return;   /* a CSV file's record (omop-csv.c) */
	o = xcalloc(1, sizeof(*o));
	o->key = xstrdup(key);
	o->input = r->input_sig;
	o->settings = xstrdup(r->settings ? r->settings : "");
	o->failed = r->error != NULL;
	htab_put(&recs, o->key, o);
}

static void
statics_free(void)
{
	for (size_t i = 0; i < recs.cap; i++) {
		struct orec *o = recs.slot[i].val;

		if (recs.slot[i].key && o) {
			free(o->key);
			free(o->settings);
			free(o);
		}
	}
	htab_free(&recs);
	persons_free(&persons);
	vocab_free(&vocab);
	free(target);
	free(wado);
	target = wado = NULL;
}

/* Does person_map name a table: no such file, and schema.table? */
static int
is_table(const char *pm)
{
	const char *id = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
	const char *dot = strchr(pm, '.');
	struct stat sb;

	return stat(pm, &sb) < 0 && dot && dot > pm && strspn(pm, id) == (size_t)(dot - pm) &&
	    dot[1] && strspn(dot + 1, id) == strlen(dot + 1);
}

/* [pacs] url without user:password@ and a trailing '/', for wadors_uri. */
static char *
wado_base(const char *url)
{
	const char *host = strstr(url, "://"), *at, *path;
	char *b;
	size_t n;

	host = host ? host + 3 : url;
	path = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(path - host));
	b = xasprintf("%.*s%s", (int)(host - url), url, at ? at + 1 : host);
	n = strlen(b);
	while (n && b[n - 1] == '/')
		b[--n] = '\0';
	return b;
}

static int
omop_prepare(const struct rule *ru, struct ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	const char *pm = cfg->omop.person_map;
	char err[JOB_ERR_MAX], *where;
	int rc;

	statics_free();
	if (!omop_enabled(cfg))
		return 0;
	if (cfg->omop.url) {
		char *t = pg_target(cfg->omop.url);

		target = xasprintf("postgresql://%s schema %s", t, cfg->omop.schema);
		free(t);
	} else {
		target = xasprintf("dir %s", cfg->omop.dir);
	}
	if (strcmp(cfg->pacs.protocol, "dicomweb") == 0 && cfg->pacs.url)
		wado = wado_base(cfg->pacs.url);
	if (vocab_check(&vocab, cfg->omop.vocabulary, err, sizeof(err)) < 0) {
		where = config_where(cfg, "omop", "vocabulary");
		warn("%s: %s", where, err);
		free(where);
		return -1;
	}
	if (pm) {
		if (!is_table(pm))
			rc = csv_persons(pm, &persons, err, sizeof(err));
		else if (cfg->omop.url)
			rc = pg_persons(cfg->omop.url, pm, &persons, err, sizeof(err));
		else {
			errf(err, sizeof(err), "%s: no such file; as a schema.table it is read from "
			    "[omop] url, which is not set", pm);
			rc = -1;
		}
		if (rc < 0) {
			where = config_where(cfg, "omop", "person_map");
			warn("%s: %s", where, err);
			free(where);
			return -1;
		}
	}
	/* Without the records every patient reads as never written: slower,
	 * the same rows; a store that cannot be read fails the run elsewhere. */
	state_load_targets(ctx->st, ru->name, orec_put, NULL);
	return 0;
}

/* What p's rows are made from: its series, each with the content its
 * headers were stored from.  That is its valid_sig: whenever this is
 * asked (the plan, once every metadata target of p is up to date; start,
 * once each is made), the metadata stage has stored each series' headers
 * from the content validate recorded, so its own records need not be read. */
static uint64_t
input_sig(const struct patient *p)
{
	XXH3_state_t *h = XXH3_createState();
	uint64_t sig;

	XXH3_64bits_reset(h);
	for (int i = 0; i < p->nwant; i++) {
		const struct series *s = p->want[i];

		XXH3_64bits_update(h, s->study, strlen(s->study) + 1);
		XXH3_64bits_update(h, s->uid, strlen(s->uid) + 1);
		XXH3_64bits_update(h, &s->valid_sig, sizeof(s->valid_sig));
	}
	sig = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return sig;
}

/* The settings p's rows are made with, one "key=value" line each, in
 * the order of settings_keys. */
static const struct { const char *key, *why; } settings_keys[] = {
	{ "target", "[omop] url or dir changed" },
	{ "person_id", "person_map changed" },
	{ "missing_person", "missing_person changed" },
	{ "vocabulary", "vocabulary changed" },
	{ "local_path", "dicom_dir changed" },
	{ "wadors_uri", "[pacs] url changed" },
};

static char *
settings(const struct ctx *ctx, const struct patient *p)
{
	const struct person *pe = htab_get(&persons, p->id);
	char person[48], voc[64];

	if (pe)
		snprintf(person, sizeof(person), "%lld", (long long)pe->id);
	else
		snprintf(person, sizeof(person), "none\nmissing_person=%s",
		    ctx->cfg->omop.missing_person == MISSING_ZERO ? "zero" : "skip");
	if (vocab.path)
		snprintf(voc, sizeof(voc), "%lld bytes, mtime %lld", (long long)vocab.size,
		    (long long)vocab.mtime);
	else
		snprintf(voc, sizeof(voc), "none");
	return xasprintf("target=%s\nperson_id=%s\nvocabulary=%s\nlocal_path=%s\nwadors_uri=%s",
	    target, person, voc, ctx->cfg->output.dicom_dir, wado ? wado : "");
}

/* The line "key=..." of settings s, its length in *len; NULL if none. */
static const char *
setting(const char *s, const char *key, size_t *len)
{
	size_t k = strlen(key);

	for (; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL)
		if (strncmp(s, key, k) == 0 && s[k] == '=') {
			*len = strcspn(s, "\n");
			return s;
		}
	return NULL;
}

/* Is key set the same in both? */
static int
same_setting(const char *a, const char *b, const char *key)
{
	size_t la = 0, lb = 0;
	const char *x = setting(a, key, &la), *y = setting(b, key, &lb);

	return (!x && !y) || (x && y && la == lb && memcmp(x, y, la) == 0);
}

static char *
omop_plan(struct ctx *ctx, struct node *n)
{
	struct patient *p = n->obj;
	const struct orec *r = htab_get(&recs, p->name);
	char *want;
	const char *why = NULL;

	if (n->force)
		return xstrdup("forced");
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->reason)
			return xasprintf("after %s (%s)", n->rule->after, n->in[i]->reason);
	if (!r)
		return xstrdup("never written");
	if (r->failed)
		return xstrdup("failed last time");
	if (r->input != input_sig(p))
		return xstrdup("series changed");
	want = settings(ctx, p);
	for (size_t k = 0; k < LEN(settings_keys) && !why; k++)
		if (!same_setting(want, r->settings, settings_keys[k].key))
			why = settings_keys[k].why;
	if (!why && strcmp(want, r->settings) != 0)
		why = "settings changed";
	free(want);
	return why ? xstrdup(why) : NULL;
}

static int
prev_cb(void *arg, const struct omop_row *r)
{
	struct oprev *pv = arg;

	pv->id = xreallocarray(pv->id, (size_t)pv->n + 1, sizeof(*pv->id));
	pv->line = xreallocarray(pv->line, (size_t)pv->n + 1, sizeof(*pv->line));
	pv->id[pv->n] = r->id;
	pv->line[pv->n++] = xstrdup(r->line);
	return 0;
}

static int
omop_start(struct job *job)
{
	struct ctx *ctx = job->ctx;
	struct patient *p = job->obj;
	const struct person *pe = htab_get(&persons, p->id);
	const struct orec *r = htab_get(&recs, p->name);
	struct oin *in = xcalloc(1, sizeof(*in));

	job->in = in;
	in->input = input_sig(p);
	in->settings = settings(ctx, p);
	/* What it comes after was made again, to the same content. */
	if (!job->force && r && !r->failed && r->input == in->input &&
	    strcmp(r->settings, in->settings) == 0)
		return 0;
	in->skip = !pe && ctx->cfg->omop.missing_person == MISSING_SKIP;
	in->person = pe ? pe->id : 0;
	in->must = job->force || !r || !same_setting(r->settings, in->settings, "target");
	if (!in->skip && rows_gather(ctx->st, p->want, p->nwant, in, job->err, sizeof(job->err)) < 0)
		return -1;
	for (int t = 0; t < NTBL; t++)
		if (state_omop_get(ctx->st, omop_tables[t].name, p->name, prev_cb, &in->prev[t]) < 0) {
			errf(job->err, sizeof(job->err), "%s", ctx->st->err);
			return -1;
		}
	return 1;
}

static int
omop_run(struct job *job)
{
	const struct config *cfg = job->ctx->cfg;
	struct oin *in = job->in;
	struct pg_job pj = { .url = cfg->omop.url, .schema = cfg->omop.schema,
		.cancel = &job->ctx->cancel };
	int64_t *gone[NTBL] = { NULL };
	char how[64] = "", nodate[48] = "";
	int same, nimg = 0, rc = -1;

	if (!in->skip && vocab_load(&vocab, job->err, sizeof(job->err)) < 0)
		return -1;
	rows_build(in, &vocab, wado);
	same = rows_same(in);
	for (int t = 0; t < NTBL; t++) {
		gone[t] = xcalloc((size_t)in->prev[t].n + 1, sizeof(*gone[t]));
		pj.ngone[t] = rows_gone(in, t, gone[t]);
		pj.gone[t] = gone[t];
	}
	pj.rows = in->rows;
	pj.n = in->nrows;
	if (cfg->omop.url && (in->must || !same) && pg_write(&pj, job->err, sizeof(job->err)) < 0)
		goto out;
	for (int i = 0; i < in->nrows; i++)
		nimg += in->rows[i].tbl == T_IMAGE;
	if (cfg->omop.url && same && !in->must)
		snprintf(how, sizeof(how), ", unchanged");
	else if (cfg->omop.url)
		snprintf(how, sizeof(how), ", %d written, %d removed", pj.written, pj.removed);
	if (in->nodate)
		snprintf(nodate, sizeof(nodate), ", %d series left out (no date)", in->nodate);
	if (in->skip)
		job->summary = xasprintf("skipped: no person_id in person_map%s",
		    in->prev[T_IMAGE].n + in->prev[T_PROCEDURE].n ? " (its earlier rows removed)" : "");
	else
		job->summary = xasprintf("%d image_occurrence, %d procedure_occurrence%s%s", nimg,
		    in->nrows - nimg, how, nodate);
	in->built = 1;
	rc = 0;
out:
	for (int t = 0; t < NTBL; t++)
		free(gone[t]);
	return rc;
}

/* The rows and the record, one transaction; -1 with st->err. */
static int
record(struct job *job, struct oin *in, int rc)
{
	struct state *st = job->ctx->st;
	struct patient *p = job->obj;
	struct omop_row *rows = xcalloc((size_t)in->nrows + 1, sizeof(*rows));
	char detail[64];
	struct target_rec r = { .input_sig = in->input, .settings = in->settings,
		.detail = detail };
	int ok;

	if (rc < 0)
		r = (struct target_rec){ .error = job->err };
	else if (in->skip)
		snprintf(detail, sizeof(detail), "skipped: no person_id");
	else
		snprintf(detail, sizeof(detail), "%d series, %d stud%s", in->nser, in->nstu,
		    in->nstu == 1 ? "y" : "ies");
	for (int i = 0; i < in->nrows; i++)
		rows[i] = (struct omop_row){ .tbl = omop_tables[in->rows[i].tbl].name,
			.id = in->rows[i].id, .uid = in->rows[i].uid, .line = in->rows[i].line };
	ok = state_begin(st) == 0 && (rc < 0 || state_omop_put(st, p->name, rows, in->nrows) == 0) &&
	    state_save_target(st, job->rule->name, p->name, &r) == 0 && state_commit(st) == 0;
	if (!ok)
		state_rollback(st);
	free(rows);
	return ok ? 0 : -1;
}

static int
omop_finish(struct job *job, int rc)
{
	struct oin *in = job->in;

	if (in && ((rc == 0 && in->built) || (rc < 0 && !job_cancelled(job))) &&
	    record(job, in, rc) < 0) {
		if (rc == 0) {
			errf(job->err, sizeof(job->err), "recording the rows of %s: %s",
			    job->node->label, job->ctx->st->err);
			rc = -1;
		} else {
			warn("omop %s: recording the failure: %s", job->node->label, job->ctx->st->err);
		}
	}
	if (in)
		oin_free(in);
	job->in = NULL;
	return rc;
}

static int
omop_run_end(const struct rule *ru, struct ctx *ctx, int made)
{
	return ctx->cfg->omop.dir ? csv_write_tables(ru, ctx, made) : 0;
}

const struct rule rule_omop = {
	.name = "omop",
	.per = PER_PATIENT,
	.after = "metadata",
	.enabled = omop_enabled,
	.label = omop_label,
	.prepare = omop_prepare,
	.pool = POOL_LOCAL,
	.plan = omop_plan,
	.start = omop_start,
	.run = omop_run,
	.finish = omop_finish,
	.run_end = omop_run_end,
};
