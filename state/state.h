/*
 * state.h - the catalog and what is known on disk, kept in a store.  The
 * SQL lives here once, for every backend.  Every function returns 0 on
 * success or -1 with the message in st->err.
 */
#ifndef THLHP_STATE_H
#define THLHP_STATE_H

#include <stdint.h>
#include "catalog.h"
#include "store.h"

struct state {
	struct store *db;         /* NULL: no state yet (read-only run) */
	char err[STORE_ERR_MAX];
};

/* A file seen in a folder source, as last read. */
struct srcfile {
	char *path;
	int64_t size, mtime;
	char *sop, *series, *study, *patient, *modality, *date, *sop_class;
	char *error;              /* not DICOM: why; then the UIDs are NULL */
};

/* Open the store named by url and bring its schema up to date.  With
 * STORE_READONLY nothing is created or migrated; a missing store gives an
 * empty state (db NULL). */
int state_open(struct state *st, const char *url, int flags);
void state_close(struct state *st);
int state_begin(struct state *st);
int state_commit(struct state *st);
void state_rollback(struct state *st);

/* Load patients, series and archive records (not instances) into c. */
int state_load(struct state *st, struct catalog *c);
/* Instances recorded for one series; *inst malloc'd. */
int state_load_instances(struct state *st, const struct series *s,
    struct instance **inst, int *n);
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

/* The folder source's cache of file headers. */
int state_srcfile_load(struct state *st, void (*fn)(void *arg, struct srcfile *f), void *arg);
int state_srcfile_put(struct state *st, const struct srcfile *f);
int state_srcfile_delete(struct state *st, const char *path);

#endif
