/*
 * source.h - where images come from: one interface, one file per protocol
 * (source/dimse.c, source/dicomweb.c, source/folder.c), found by its name.  The query and fetch
 * run on worker threads and touch neither the catalog nor state: the query
 * returns what it saw, the fetch returns what it wrote.
 * Every int function returns 0, or -1 with the message in err / job->err.
 */
#ifndef THLHP_SOURCE_H
#define THLHP_SOURCE_H

#include <stddef.h>
#include "catalog.h"
#include "htab.h"
#include "job.h"

/* One series as the query saw it. */
struct found {
	char *patient, *study, *uid;
	char *modality, *sop_class, *date;
	char *number, *desc;      /* SeriesNumber, SeriesDescription; NULL or "" when not said */
	int expected;             /* instances the source holds */
};

/* A patient the query could not see whole (the PACS failed a request
 * about it, or sent a record of it that cannot be used): its series are
 * kept as they were and its archive is not built this run. */
struct query_fail {
	char *patient;
	char *why;                /* the first reason */
};

struct query_result {
	struct found *v;
	int n, cap;
	int complete;             /* every selected patient was covered */
	struct query_fail *failed; /* patients seen only in part */
	int nfailed;
	char **notes;             /* what was left out and why, to warn of */
	int nnotes;
	struct htab studies;      /* StudyInstanceUID -> PatientID, once seen (query_study) */
};

/* A fetch makes what arrived durable together (writeback started as each
 * arrives, one syncfs, the renames, one fsync of the folder) at its end,
 * or once this many instances or bytes wait: a syncfs each would cost a
 * flush of the disk's cache each, and a kill -9 loses at most this much
 * work. */
#ifndef DURABLE_BATCH_FILES
#define DURABLE_BATCH_FILES 1000
#endif
#ifndef DURABLE_BATCH_BYTES
#define DURABLE_BATCH_BYTES (1LL << 30)
#endif

/* One download: the series, what is on disk, and what arrived. */
struct fetch {
	const struct series *s;
	const char *dir;          /* the series folder; exists */
	struct htab have;         /* SOP UIDs present on disk: skip them */
	int force;                /* fetch everything again */
	int listed;               /* instances the source listed when fetching; -1 unknown */
	struct instance *got;     /* written and hashed, in arrival order */
	int ngot, capgot;
};

struct source;

struct source_ops {
	const char *name;         /* [pacs] protocol */
	const char *const *needs; /* [pacs] keys it cannot do without; NULL-terminated */
	int local;                /* reads this host's files: -j, not max_associations, bounds it */
	/* Reading thlhp.ini: the protocol's own checks and the defaults it
	 * takes from other keys; NULL, or the trouble (config_err). */
	char *(*check)(struct config *cfg);
	/* What -n and -t status call the place it asks (NULL: "PACS"). */
	const char *(*label)(const struct config *cfg);
	/* Main thread, before the query: load what it needs (caches). */
	int (*open)(struct source *src, struct ctx *ctx, char *err, size_t errlen);
	/* Worker: ask the source what it holds for the selected patients. */
	int (*query)(struct source *src, struct job *job, struct query_result *r);
	/* Main thread, after the query: save caches (never in a dry run). */
	int (*query_done)(struct source *src, struct ctx *ctx, char *err, size_t errlen);
	/* Worker: bring the series' missing instances into f->dir. */
	int (*fetch)(struct source *src, struct job *job, struct fetch *f);
	void (*close)(struct source *src);
};

struct known;

struct source {
	const struct source_ops *ops;
	const struct config *cfg;
	void *priv;               /* the protocol's own state */
	struct known *known;      /* what earlier queries learnt (known.c) */
};

/* The protocol named name; NULL when there is none. */
const struct source_ops *source_find(const char *name);
/* Every protocol's name, "a | b | c". */
const char *source_names(void);
/* The source for cfg's protocol; NULL with err when not available. */
struct source *source_new(const struct config *cfg, char *err, size_t errlen);
void source_free(struct source *src);
/* Add a found series to r; strings copied. */
void query_add(struct query_result *r, const struct found *f);
/* Mark patient seen only in part, for the reason fmt says (kept only
 * when it is the patient's first). */
void query_fail(struct query_result *r, const char *patient, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether patient was marked by query_fail. */
int query_failed(const struct query_result *r, const char *patient);
/* A note on something the query left out, for the user. */
void query_note(struct query_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Study uid as listed under patient: 0 the first time, 1 when seen under
 * patient already; -1 when it was seen under another patient (both are
 * then marked failed: the PACS contradicts itself). */
int query_study(struct query_result *r, const char *patient, const char *uid);
void query_result_free(struct query_result *r);
/* Run once(job, arg), and again after a backoff while it returns -1, at
 * most [pacs] retries more times; -2 is an error no retry can mend (a
 * refused login): no retry.  The last error stays in job->err. */
int source_retry(struct job *job, int (*once)(struct job *, void *), void *arg);
/* A STUDY-level request for one PatientID glob, as a source makes it:
 * ask() sends it with StudyDate range (NULL: [select] study_date's) and
 * returns how many matches the PACS answered, kept pending, or < 0 with
 * job->err; keep() takes the pending matches into the walk, drop()
 * forgets them (the answer was capped). */
struct study_ask {
	int (*ask)(void *arg, const char *glob, const char *range);
	void (*keep)(void *arg);
	void (*drop)(void *arg);
	void *arg;
};
/* One wildcard for the IDs of a patients_file: their longest common
 * prefix (up to a wildcard character in one of them) and "*", so that
 * one STUDY-level request, filtered here, lists them all; NULL when they
 * share no prefix (or there is no patients_file): then each is asked. */
char *source_ids_glob(const struct select *sel);
/* The studies of glob: one request, or, while an answer holds [pacs]
 * max_results matches (a PACS that caps its answers), the same split by
 * StudyDate halves, then a capped day by PatientID prefix.  0, or < 0
 * with job->err (-2: capped beyond splitting, no retry helps). */
int source_ask_studies(struct job *job, struct query_result *r, const char *glob,
    const struct study_ask *a);

/*
 * What earlier queries learnt of each study (known.c): the counts of
 * series and instances the PACS gave for it when its series were last
 * walked.  A study listed again with the same counts has not changed and
 * its series are the catalog's: no request.  The query rule loads it on
 * the main thread before the query, the query's thread uses it, the rule
 * saves it after (never in a dry run).
 */
enum qlevel { Q_PATIENT, Q_STUDY, Q_SERIES, Q_IMAGE };  /* as enum dimse_level */

/* Load what is known; with force (-B query), or when the last full walk is
 * [pacs] full_query_every ago or none is recorded, this query is a full
 * walk.  0, or -1 with err. */
int known_load(struct source *src, struct ctx *ctx, int force, char *err, size_t errlen);
/* Whether this query walks every study's series. */
int known_full(const struct source *src);
/* Study of patient, listed with these counts (-1: not said): 1 when it is
 * as it was, its series then added to r from the catalog; 0 when its
 * series must be walked. */
int known_same(struct source *src, struct query_result *r, const char *patient, const char *study,
    int nseries, int ninstances);
/* The query walked study's series whole: keep its counts (when said). */
void known_walked(struct source *src, const char *patient, const char *study, int nseries,
    int ninstances);
/* Count one request the query made, at level. */
void known_request(struct source *src, enum qlevel level);
/* Studies the PACS listed without counts (each walked). */
int known_nocounts(const struct source *src);
/* Keep what this query learnt (not in a dry run).  0, or -1 with err. */
int known_save(struct source *src, struct ctx *ctx, const struct query_result *r, char *err,
    size_t errlen);
/* "3 requests (1 study-level, 2 series-level), 0.3 s; ..." (malloc'd), or NULL. */
char *known_summary(const struct source *src);
void known_free(struct source *src);

/* Record an instance written by a fetch; sop copied. */
void fetch_add(struct fetch *f, const char *sop, int64_t size, int64_t mtime, uint64_t hash);

#endif
