/*
 * dimse-walk.c - the DIMSE source's query: C-FIND down the PACS's
 * hierarchy, patients, their studies, the studies' series, on one
 * association; only the studies new or changed since the last query are
 * walked (known.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dimse-src.h"
#include "fileio.h"
#include "names.h"
#include "util.h"

/* A request of the query walk, counted for -v. */
static int
qfind(struct job *job, struct dimse_finder *fd, enum dimse_level lv, const struct dimse_keys *k,
    dimse_match_fn *fn, void *arg, char err[DCM_ERR_MAX])
{
	known_request(job->ctx->src, (enum qlevel)lv);
	return dimse_src_find_on(job, fd, lv, k, fn, arg, err);
}

enum { FIND_CUT = 0xFE00 };     /* C-FIND status: matching terminated (cancel) */

struct study {
	char *patient, *uid, *date, *classes;
	int nseries, ninstances;  /* as the STUDY-level answer said; -1: not said */
};

/* What the query learns, level by level. */
struct walk {
	const struct select *sel;
	struct query_result *r;
	struct dimse_finder *fd;  /* the walk's association */
	char **patients;          /* PatientIDs to ask the studies of */
	int npatients;
	struct htab pseen;
	const char *asked;        /* the patient of a STUDY-level query, or NULL */
	struct study *v;          /* the studies */
	int n;
	struct dimse_match *pend; /* a STUDY-level answer, before it is taken */
	int npend, cappend;
	int nanswered;            /* its matches, ours or not */
	struct job *job;
};

static void
add_patient(struct walk *w, const char *pid)
{
	char *id;

	/* An empty PatientID cannot be asked for: as a key it matches every
	 * study of the PACS. */
	if (!*pid || !select_patient(w->sel, pid) || htab_get(&w->pseen, pid))
		return;
	if (!name_fits(pid)) {
		query_note(w->r, "patient %s: skipped: its PatientID is too long for a file name", pid);
		return;
	}
	id = xstrdup(pid);
	w->patients = xreallocarray(w->patients, (size_t)w->npatients + 2, sizeof(*w->patients));
	w->patients[w->npatients++] = id;
	w->patients[w->npatients] = NULL;
	htab_put(&w->pseen, id, id);
}

static int
on_patient(void *arg, const struct dimse_match *m)
{
	struct walk *w = arg;

	if (m->bad[0]) {
		/* Whatever it is, it is no PatientID we could ask for. */
		query_note(w->r, "skipped a patient record the PACS sent: %s", m->bad);
		return 0;
	}
	add_patient(w, m->h.patient_id);
	return 0;
}

/* One match of a STUDY-level answer, kept until the answer is known not
 * to be capped. */
static int
on_study(void *arg, const struct dimse_match *m)
{
	struct walk *w = arg;
	const char *pid = m->h.patient_id;

	w->nanswered++;
	/* Not a patient of ours: counted (a cap counts every match), not
	 * kept; a record that names nobody is kept for its note. */
	if (!(m->bad[0] && !*pid) &&
	    ((w->asked && strcmp(pid, w->asked) != 0) || !select_patient(w->sel, pid)))
		return 0;
	if (w->npend == w->cappend) {
		w->cappend = w->cappend ? 2 * w->cappend : 64;
		w->pend = xreallocarray(w->pend, (size_t)w->cappend, sizeof(*w->pend));
	}
	w->pend[w->npend] = *m;
	w->pend[w->npend].h.series_number = w->pend[w->npend].h.series_desc = NULL;
	w->npend++;
	return 0;
}

/* A study the PACS listed: the walk's, when it is of a patient of ours. */
static void
take_study(struct walk *w, const struct dimse_match *m)
{
	const char *pid = m->h.patient_id;
	struct study *s;

	if (m->bad[0] && !*pid) {
		query_note(w->r, "skipped a study record the PACS sent%s%s%s%s%s: %s",
		    m->h.study_uid[0] ? " (study " : "", m->h.study_uid,
		    w->asked ? " in answer to patient " : "", w->asked ? w->asked : "",
		    m->h.study_uid[0] ? ")" : "", m->bad);
		return;
	}
	/* An empty or wildcard PatientID asked for matches others too. */
	if ((w->asked && strcmp(pid, w->asked) != 0) || !select_patient(w->sel, pid))
		return;
	if (!name_fits(pid)) {
		query_note(w->r, "patient %s: skipped: its PatientID is too long for a file name", pid);
		return;
	}
	if (m->bad[0]) {
		query_fail(w->r, pid, "a study record the PACS sent cannot be used: %s", m->bad);
		return;
	}
	if (!uid_is_safe(m->h.study_uid)) {
		query_fail(w->r, pid, "the PACS lists a study with an unusable StudyInstanceUID \"%s\"",
		    m->h.study_uid);
		return;
	}
	if (query_study(w->r, pid, m->h.study_uid) != 0)
		return;         /* seen already, or under another patient too */
	w->v = xreallocarray(w->v, (size_t)w->n + 1, sizeof(*w->v));
	s = &w->v[w->n++];
	s->patient = xstrdup(pid);
	s->uid = xstrdup(m->h.study_uid);
	s->date = xstrdup(m->h.study_date);
	s->classes = xstrdup(m->sop_classes);
	s->nseries = m->nseries;
	s->ninstances = m->nrelated;
}

static void
walk_free(struct walk *w)
{
	for (int i = 0; i < w->n; i++) {
		free(w->v[i].patient);
		free(w->v[i].uid);
		free(w->v[i].date);
		free(w->v[i].classes);
	}
	free(w->v);
	free(w->pend);
	strv_free(w->patients);
	htab_free(&w->pseen);
}

static void
keep_studies(void *arg)
{
	struct walk *w = arg;

	for (int i = 0; i < w->npend; i++)
		take_study(w, &w->pend[i]);
	w->npend = 0;
}

static void
drop_studies(void *arg)
{
	((struct walk *)arg)->npend = 0;
}

/* A request that failed with rc: "" or, when the PACS ended its answer
 * with 0xFE00 (matching terminated) though we cancelled nothing, as
 * Orthanc does past LimitFindResults, what to do. */
static const char *
cut_short(struct dimse_finder *fd, int rc)
{
	return rc == DIMSE_FIND_REFUSED && dimse_finder_status(fd) == FIND_CUT ?
	    " (the PACS cut its answer short, as at a cap on matches: set [pacs] max_results "
	    "to that cap)" : "";
}

/* The STUDY-level request for glob (source_ask_studies); the matches the
 * PACS answered, or < 0 with err in the job. */
static int
ask_studies(void *arg, const char *glob, const char *range)
{
	struct walk *w = arg;
	struct job *job = w->job;
	struct dimse_keys k = { .patient_id = glob,
		.study_date = range ? range : job->ctx->cfg->select.study_date };
	int cap = job->ctx->cfg->pacs.max_results, rc;
	char err[DCM_ERR_MAX];

	w->npend = w->nanswered = 0;
	rc = qfind(job, w->fd, DIMSE_STUDY, &k, on_study, w, err);
	/* An answer cut short is a capped one: asked again, split. */
	if (*cut_short(w->fd, rc) && cap > 0)
		return w->nanswered > cap ? w->nanswered : cap;
	if (rc < 0) {
		errf(job->err, sizeof(job->err), "%s:%d %s: study query: %s%s",
		    job->ctx->cfg->pacs.host, job->ctx->cfg->pacs.port,
		    job->ctx->cfg->pacs.called_aet, err, cut_short(w->fd, rc));
		return -1;
	}
	return w->nanswered;
}

/* One study's SERIES-level answer, before the counts are complete. */
struct series_q {
	struct query_result *r;   /* failures and notes go here */
	struct query_result pend; /* the series, counted or not */
	struct dimse_finder *fd;  /* the walk's association */
	const struct study *st;
	const struct select *sel;
};

static int
count_one(void *arg, const struct dimse_match *m)
{
	(*(int *)arg)++;
	return 0;
}

static int
on_series(void *arg, const struct dimse_match *m)
{
	struct series_q *q = arg;
	struct found f = {
		.patient = q->st->patient, .study = q->st->uid, .uid = (char *)m->h.series_uid,
		.modality = (char *)m->h.modality, .sop_class = q->st->classes, .date = q->st->date,
		.number = m->h.series_number, .desc = m->h.series_desc, .expected = m->nrelated,
	};

	if (m->bad[0]) {
		query_fail(q->r, q->st->patient, "a series record of study %s cannot be used: %s",
		    q->st->uid, m->bad);
		return 0;
	}
	if (!uid_is_safe(m->h.series_uid)) {
		query_fail(q->r, q->st->patient, "study %s lists a series with an unusable "
		    "SeriesInstanceUID \"%s\"", q->st->uid, m->h.series_uid);
		return 0;
	}
	if (select_series(q->sel, m->h.modality, q->st->date))
		query_add(&q->pend, &f);
	return 0;
}

/* The series of one study, each with its instance count: counted at
 * IMAGE level where the PACS gave none or 0, after the SERIES-level
 * association has ended (one association at a time).  A request the PACS
 * refuses spoils the patient, never the series list; 0, or -1 with err
 * when the PACS could not be asked at all. */
static int
study_series(struct job *job, struct series_q *q, char err[DCM_ERR_MAX])
{
	const struct study *st = q->st;
	struct dimse_keys k = { .patient_id = st->patient, .study_uid = st->uid };
	int rc = qfind(job, q->fd, DIMSE_SERIES, &k, on_series, q, err);

	if (rc == DIMSE_FIND_REFUSED) {
		query_fail(q->r, st->patient, "series query of study %s: %s", st->uid, err);
		return 0;
	}
	if (rc < 0)
		return -1;
	for (int i = 0; i < q->pend.n; i++) {
		struct found *f = &q->pend.v[i];
		int n = 0;

		if (f->expected <= 0) {
			/* Not said, or 0 (which a PACS says of a series it has
			 * not counted): count. */
			k.series_uid = f->uid;
			rc = qfind(job, q->fd, DIMSE_IMAGE, &k, count_one, &n, err);
			if (rc == DIMSE_FIND_REFUSED) {
				query_fail(q->r, st->patient, "counting the instances of series %s: %s",
				    f->uid, err);
				continue;
			}
			if (rc < 0)
				return -1;
			if (n == 0) {
				query_note(q->r, "patient %s: series %s (study %s) holds no instances "
				    "at the source; left out", st->patient, f->uid, st->uid);
				continue;
			}
			f->expected = n;
		}
		query_add(q->r, f);
	}
	return 0;
}

/* The patients to ask the studies of: those PATIENT-level C-FINDs find
 * (Patient Root; in a full walk only), and the IDs of patients_file as
 * they are.  1 when the wildcards go to STUDY level (not a full walk, the
 * PACS refused Patient Root, or [pacs] max_results says the PACS caps its
 * answers: a PATIENT-level answer, or one patient's studies, could not be
 * split as the STUDY-level answer to a wildcard is), 0, or -1 with err. */
static int
find_patients(struct job *job, struct walk *w, int full, int ids_by_glob, char err[DCM_ERR_MAX])
{
	const struct select *sel = w->sel;
	struct dimse *d = job->ctx->src->priv;

	if (job->ctx->cfg->pacs.max_results)
		full = 0;
	for (int i = 0; full && i < select_nwild(sel) && !atomic_load(&d->study_root); i++) {
		struct dimse_keys k = { .patient_id = select_wild(sel, i) };
		int rc = qfind(job, w->fd, DIMSE_PATIENT, &k, on_patient, w, err);

		if (rc == DIMSE_NO_PATIENT_ROOT) {
			atomic_store(&d->study_root, 1);
			if (verbosity > 0)
				warn("%s; querying with Study Root", err);
		} else if (rc < 0) {
			return -1;
		}
	}
	for (size_t i = 0; sel->has_ids && !ids_by_glob && i < sel->ids.cap; i++)
		if (sel->ids.slot[i].key)
			add_patient(w, sel->ids.slot[i].key);
	return !full || atomic_load(&d->study_root);
}

/* Patients, their studies, the studies' series: the catalog as the PACS
 * has it for [select].  Not a full walk, the studies come from one
 * STUDY-level C-FIND per wildcard, and only those new or whose counts
 * changed are walked (known.c).  A request the PACS answers with a
 * failure status spoils the patient it was about (query_fail); one it
 * cannot be asked fails the query, which is then retried. */
int
dimse_walk(struct job *job, void *arg)
{
	struct query_result *r = arg;
	const struct config *cfg = job->ctx->cfg;
	const struct select *sel = job->ctx->sel;
	struct walk w = { .sel = sel, .r = r, .job = job };
	struct dimse_peer peer;
	struct dimse_keys k = { .study_date = cfg->select.study_date };
	int rc = -1, study_root, full = known_full(job->ctx->src);
	/* A patients_file's IDs by one wildcard, where one fits them all,
	 * whenever the studies come from STUDY-level wildcards. */
	char *ids = !full || cfg->pacs.max_results ? source_ids_glob(sel) : NULL;
	char err[DCM_ERR_MAX];

	dimse_peer_of(cfg, &peer);
	dimse_peer_stop(&peer, job);
	query_result_free(r);     /* a retry starts over */
	htab_init(&w.pseen);
	w.fd = dimse_finder_new(&peer);
	if (!w.fd)
		fatal("out of memory");
	study_root = find_patients(job, &w, full, ids != NULL, err);
	if (study_root < 0) {
		errf(job->err, sizeof(job->err), "%s:%d %s: patient query: %s", peer.host,
		    peer.port, peer.called_aet, err);
		goto out;
	}
	for (int i = 0; study_root && i < select_nwild(sel) + (ids != NULL); i++) {
		struct study_ask a = { ask_studies, keep_studies, drop_studies, &w };
		const char *glob = i < select_nwild(sel) ? select_wild(sel, i) : ids;

		if ((rc = source_ask_studies(job, r, glob, &a)) < 0) {
			if (rc == -2)
				job->no_retry = 1;
			rc = -1;
			goto out;
		}
	}
	/* Each patient's studies (with Study Root: the listed ones'). */
	atomic_store(&job->total, w.npatients);
	for (int i = 0; i < w.npatients; i++) {
		if (job_cancelled(job)) {
			errf(job->err, sizeof(job->err), "interrupted");
			goto out;
		}
		k.patient_id = w.patients[i];
		w.asked = w.patients[i];
		w.npend = w.nanswered = 0;
		rc = qfind(job, w.fd, DIMSE_STUDY, &k, on_study, &w, err);
		keep_studies(&w);
		if (rc == DIMSE_FIND_REFUSED) {
			query_fail(r, w.patients[i], "study query: %s%s", err, cut_short(w.fd, rc));
		} else if (rc < 0) {
			errf(job->err, sizeof(job->err), "%s:%d %s: study query of a patient: %s",
			    peer.host, peer.port, peer.called_aet, err);
			rc = -1;
			goto out;
		}
		atomic_fetch_add(&job->done, 1);
	}
	w.asked = NULL;
	atomic_store(&job->done, 0);
	atomic_store(&job->total, w.n);
	for (int i = 0; i < w.n; i++) {
		const struct study *st = &w.v[i];
		struct series_q q = { .r = r, .fd = w.fd, .st = st, .sel = sel };

		if (job_cancelled(job)) {
			errf(job->err, sizeof(job->err), "interrupted");
			rc = -1;
			goto out;
		}
		if (!known_same(job->ctx->src, r, st->patient, st->uid, st->nseries, st->ninstances)) {
			rc = study_series(job, &q, err);
			query_result_free(&q.pend);
			if (rc < 0) {
				errf(job->err, sizeof(job->err), "%s:%d %s: series query of study %s: %s",
				    peer.host, peer.port, peer.called_aet, st->uid, err);
				goto out;
			}
			known_walked(job->ctx->src, st->patient, st->uid, st->nseries, st->ninstances);
		}
		atomic_fetch_add(&job->done, 1);
	}
	r->complete = 1;
	rc = 0;
out:
	free(ids);
	dimse_finder_free(w.fd);
	walk_free(&w);
	return rc;
}
