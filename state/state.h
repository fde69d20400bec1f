/*
 * state.h - the catalog and what is known on disk, kept in a store.  The
 * SQL lives here once, for every backend.  Every function returns 0 on
 * success or -1 with the message in st->err; where one also answers a
 * question (claimed or held, cut or not), its comment says with what.
 */
#ifndef THLHP_STATE_H
#define THLHP_STATE_H

#include <stdint.h>
#include "catalog.h"
#include "store.h"

struct state {
	struct store *db;         /* NULL: no state yet (read-only run) */
	int shared;               /* other processes work on it too: claim jobs */
	char err[STORE_ERR_MAX];
	/* state/'s own, set by state_fence_begin(): the claim the next
	 * state_commit() must still hold, job NULL once a commit used it
	 * (lost set when the claim had lapsed); armed until fence_end. */
	struct { const char *job, *owner; int64_t gen; int lost, armed; } fence;
};


/* A file seen in a folder source, as last read. */
struct srcfile {
	char *path;
	int64_t size, mtime;
	char *sop, *series, *study, *patient, *modality, *date, *sop_class;
	char *number, *desc;      /* SeriesNumber, SeriesDescription, or NULL */
	char *error;              /* not DICOM: why; then the UIDs are NULL */
};

/* Open the store named by url and bring its schema up to date.  With
 * STORE_READONLY nothing is created or migrated; a missing store gives an
 * empty state (db NULL).  hold_ms: how long a transaction may sit idle
 * before a shared store ends it (the lease: a worker frozen that long has
 * lost its claims anyway), 0 for no limit. */
int state_open(struct state *st, const char *url, int flags, int hold_ms);
void state_close(struct state *st);
int state_begin(struct state *st);
int state_commit(struct state *st);
void state_rollback(struct state *st);

/* Load patients, series and archive records (not instances) into c. */
int state_load(struct state *st, struct catalog *c);
/* Instances recorded for one series; *inst malloc'd. */
int state_load_instances(struct state *st, const struct series *s,
    struct instance **inst, int *n);
/* For each series with instance rows: fn(arg, series uid, rows, their
 * sizes summed), from one aggregate query over the whole store. */
int state_series_sizes(struct state *st,
    void (*fn)(void *arg, const char *uid, int64_t n, int64_t bytes), void *arg);
/* Write a series row; with inst != NULL also replace its instance rows. */
int state_save_series(struct state *st, const struct series *s,
    const struct instance *inst, int n);
/* Insert or replace some instance rows of a series. */
int state_put_instances(struct state *st, const struct series *s,
    const struct instance *inst, int n);
/* Write a patient row with its archive record. */
int state_save_patient(struct state *st, const struct patient *p);
/* Write every dirty series and patient of c, in one transaction. */
int state_save_catalog(struct state *st, struct catalog *c);

/*
 * One record per target, as samurai's .ninja_log entry: the table target
 * (schema 5), keyed by (stage, key), key the series UID for a series stage
 * and the patient's file-name id for a patient stage.  A new stage keeps
 * its record here: no migration, no catalog column.  The records of the
 * stages the catalog holds fields for (validate: series.valid_sig; zip:
 * the patient's archive record and ar_error) are read into those fields by
 * state_load() and the reloads, and written by state_save_series() and
 * state_save_patient().  Strings are borrowed; NULL or 0 for none.
 */
struct target_rec {
	uint64_t input_sig;       /* signature of the inputs it was made from */
	const char *settings;     /* the settings or command it was made with */
	const char *path;         /* the file it made */
	int64_t size, mtime;      /* of that file when made (ns) */
	uint64_t hash;            /* XXH3-64 of that file */
	const char *detail;       /* the stage's own text (zip: the series inside) */
	const char *error;        /* why it last failed, or NULL */
	int64_t made;             /* when recorded, ns since the epoch (set on save) */
};

/* Insert or replace the record of target (stage, key). */
int state_save_target(struct state *st, const char *stage, const char *key,
    const struct target_rec *r);
/* Drop the record of target (stage, key), if any. */
int state_delete_target(struct state *st, const char *stage, const char *key);
/* The record of target (stage, key): 1 and fn(arg, r) called with it (its
 * strings valid during the call), 0 when there is none. */
int state_load_target(struct state *st, const char *stage, const char *key,
    void (*fn)(void *arg, const struct target_rec *r), void *arg);
/* Every record of stage: fn(arg, key, r) for each (strings valid during
 * the call), one query for the whole stage. */
int state_load_targets(struct state *st, const char *stage,
    void (*fn)(void *arg, const char *key, const struct target_rec *r), void *arg);

/* Refresh from the store what other processes may have changed since
 * state_load(): a series' record of what is on disk (the catalog fields
 * too), a patient's archive record. */
int state_reload_series(struct state *st, struct catalog *c, struct series *s);
int state_reload_patient(struct state *st, struct catalog *c, struct patient *p);

/*
 * Claims (leases) on jobs, for stores several processes share.  A job is
 * a string such as "download:<series uid>"; owner names the process
 * ("<host> <pid> <nonce>").  The store's clock decides expiry, so hosts'
 * clocks need not agree.
 *
 * state_claim: take job for ms milliseconds if it is free, ours, or its
 * holder let the lease lapse.  1 when taken, with *gen the claim's
 * generation (every claim bumps it: the fencing token); 0 when another
 * process holds it, its owner string in holder; -1 on error.
 * state_renew: extend every lease owner holds by ms (the heartbeat).
 * state_release: let go of job if still held at gen; 1 released, 0 not
 * ours any more (someone took it over), -1 on error.  With a fence (below), the
 * same release runs inside state_commit(), so a job's result is committed
 * only together with the proof that its claim still held.
 * state_release_all: let go of everything owner holds.
 */
int state_claim(struct state *st, const char *job, const char *owner, int64_t ms,
    int64_t *gen, char *holder, size_t holderlen);
int state_renew(struct state *st, const char *owner, int64_t ms);
int state_release(struct state *st, const char *job, const char *owner, int64_t gen);
int state_release_all(struct state *st, const char *owner);

/*
 * Fencing a job's result with its claim.  state_fence_begin: the next
 * state_commit() releases job's claim (owner, gen) inside its transaction,
 * and when the claim is no longer held it fails (-1, the caller rolls
 * back), so a result is recorded only by the process whose claim held.
 * state_fence_end disarms the fence and says what became of it:
 * STATE_FENCE_UNUSED when no commit used it (the claim is still to be
 * released), STATE_FENCE_USED when a commit released the claim with it,
 * STATE_FENCE_LOST when a commit found the claim taken over.
 */
enum { STATE_FENCE_UNUSED, STATE_FENCE_USED, STATE_FENCE_LOST };
void state_fence_begin(struct state *st, const char *job, const char *owner, int64_t gen);
int state_fence_end(struct state *st);

/* Transactions lost with the connection (the server ended it, or one left
 * idle past the lease; shared stores reconnect): state_cut_mark is a mark
 * to compare with later, state_cut_since 1 when one was cut after mark,
 * 0 when none was. */
int state_cut_mark(const struct state *st);
int state_cut_since(const struct state *st, int mark);

/*
 * The metadata stage's rows (table metadata, schema 6): one per instance,
 * its header as DICOM JSON (jsonb in PostgreSQL), with the patient's
 * PatientID and the study's UID beside it for SQL.
 */
struct meta_row {
	const char *sop;          /* SOPInstanceUID */
	const char *json;         /* the header, DICOM JSON (dicom.h, dcm_json) */
};
/* Replace series s's rows by rows[0..n), in the caller's transaction. */
int state_meta_put(struct state *st, const struct series *s, const struct meta_row *rows, int n);
/* Drop series uid's rows, in the caller's transaction. */
int state_meta_delete(struct state *st, const char *series_uid);
/* fn(arg, sop, json) for each row of series uid, in SOP order (a non-zero
 * return stops it with -1); strings valid during the call. */
int state_meta_get(struct state *st, const char *series_uid,
    int (*fn)(void *arg, const char *sop, const char *json), void *arg);
/* As state_meta_get, for the first row only (a series' header, for what
 * all its instances share, without reading them all). */
int state_meta_first(struct state *st, const char *series_uid,
    int (*fn)(void *arg, const char *sop, const char *json), void *arg);

/*
 * The omop stage's ids and rows (tables omop_id and omop_row, schema 6).
 * An id, once given to (kind, uid) (kind "image_occurrence" and a series
 * UID, "procedure_occurrence" and a study UID), is that one's for good.
 * Each row made is kept as the CSV line it is, by (tbl, id), with the
 * patient it is of (the file-name id) and the UID it stands for.
 */
/* The id of (kind, uid): as recorded, else the kind's largest + 1, then
 * recorded; in the caller's transaction, which it serialises with other
 * processes' on a shared store. */
int state_omop_id(struct state *st, const char *kind, const char *uid, int64_t *id);
struct omop_row {
	const char *tbl;          /* the table: "image_occurrence", ... */
	int64_t id;
	const char *uid;          /* the series' or study's UID */
	const char *line;         /* the row as a CSV line, no newline */
};
/* Replace the rows of patient (every table) by rows[0..n). */
int state_omop_put(struct state *st, const char *patient, const struct omop_row *rows, int n);
/* fn(arg, row) for each row of tbl (of patient, or of all when NULL),
 * by id; a non-zero return stops it with -1. */
int state_omop_get(struct state *st, const char *tbl, const char *patient,
    int (*fn)(void *arg, const struct omop_row *r), void *arg);

/*
 * The entries of a patient's archive as written (table archive_entry,
 * schema 7), for the next archive to copy what did not change.
 */
struct zentry_rec {
	const char *name;         /* <study>/<series>/<sop>.dcm */
	uint64_t src_hash;        /* XXH3-64 of the file it was made from */
	uint32_t crc;             /* CRC-32 of the file */
	int64_t size;             /* the file's bytes */
	int64_t comp_size;        /* the entry's raw bytes in the archive */
	uint64_t comp_hash;       /* XXH3-64 of them */
};
/* Replace patient's records by rows[0..n), in the caller's transaction. */
int state_zentry_put(struct state *st, const char *patient, const struct zentry_rec *rows, int n);
/* fn(arg, row) for each record of patient; a non-zero return stops it with
 * -1; strings valid during the call. */
int state_zentry_get(struct state *st, const char *patient,
    int (*fn)(void *arg, const struct zentry_rec *r), void *arg);

/*
 * What runs did, for the digests (table notice, schema 8; notify.h has
 * struct notice).  pending: the channels (bits) still to send a notice.
 */
struct notice;
/* Record n in the caller's transaction, for the channels in pending. */
int state_notice_put(struct state *st, const struct notice *n, int pending);
/* fn(arg, notice) for each notice pending for channel, oldest first (a
 * non-zero return stops it with -1); strings valid during the call. */
int state_notice_get(struct state *st, int channel,
    int (*fn)(void *arg, const struct notice *n), void *arg);
/* Channel has sent the notices ids[0..n) (ascending, as read): clear its
 * bit, and drop the notices no channel waits for. */
int state_notice_sent(struct state *st, int channel, const int64_t *ids, int n);

/*
 * The forms stage's submissions (table form_sub, schema 8), by form (an
 * asset uid) and the server's _id.
 */
struct form_sub {
	int64_t id;               /* _id */
	const char *submitted;    /* _submission_time, or NULL */
	const char *json;         /* the submission as the server sent it */
	int64_t deleted;          /* when a full pull found it gone (ns), or 0 */
};
/* Insert or replace a submission (no longer deleted), in the caller's
 * transaction. */
int state_form_put(struct state *st, const char *form, const struct form_sub *s);
/* Mark submission id of form deleted at when (ns). */
int state_form_delete(struct state *st, const char *form, int64_t id, int64_t when);
/* How many submissions of form are stored and not deleted, and the
 * latest _submission_time of any (malloc'd, NULL when none). */
int state_form_stats(struct state *st, const char *form, int64_t *count, char **latest);
/* fn(arg, sub) for each submission of form, by _id, the deleted ones too
 * when deleted is set (a non-zero return stops it with -1); strings valid
 * during the call. */
int state_form_get(struct state *st, const char *form, int deleted,
    int (*fn)(void *arg, const struct form_sub *s), void *arg);

/* The folder source's cache of file headers. */
int state_srcfile_load(struct state *st, void (*fn)(void *arg, struct srcfile *f), void *arg);
int state_srcfile_put(struct state *st, const struct srcfile *f);
int state_srcfile_delete(struct state *st, const char *path);

#endif
