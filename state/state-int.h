/*
 * state-int.h - what state.c and shared.c share, and nothing outside
 * state/ sees: the statement macros, the row callbacks and the field
 * conversions.
 */
#ifndef THLHP_STATE_INT_H
#define THLHP_STATE_INT_H

#include <stdint.h>
#include "state.h"

/* Copy the backend's message to st->err; returns -1. */
int st_fail(struct state *st);

/* One statement with its parameters bound ($1, $2, ...): 0, or -1 with the
 * message in st->err.  QUERY calls fn(arg, ncol, values) for each row. */
#define EXEC(st, sql, ...) \
	((st)->db->ops->exec((st)->db, (sql), \
	    (int)(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *)), \
	    (const char *[]){ __VA_ARGS__ }) < 0 ? st_fail(st) : 0)
#define QUERY(st, sql, fn, arg, ...) \
	((st)->db->ops->query((st)->db, (sql), \
	    (int)(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *)), \
	    (const char *[]){ __VA_ARGS__ }, (fn), (arg)) < 0 ? st_fail(st) : 0)

/* Row callbacks: the first column as a long (-1 when NULL); count rows. */
int row_int(void *arg, int ncol, const char *const *val);
int row_count(void *arg, int ncol, const char *const *val);

/* A column as an integer (0 when NULL); parameters from integers and
 * hashes (NULL for hash 0, "none"). */
int64_t i64(const char *s);
const char *ints(int64_t v, char buf[24]);
const char *hexs(uint64_t v, char buf[17]);

/* The columns SERIES_FIELDS into s; the columns ARCHIVE_FIELDS into p's
 * archive record (none when a part is missing).  Strings go through c's
 * intern pool where catalog.h says so. */
/* The stages whose target records the catalog holds fields for: the
 * validate record is series.valid_sig, the zip record the archive. */
#define STAGE_VALID "validate"
#define STAGE_ARCHIVE "zip"
/* One column of the series' (patient's) record of stage, in a query
 * FROM series (patient). */
#define SERIES_REC(col, stage) "(SELECT " col " FROM target" \
	" WHERE stage = '" stage "' AND key = series.uid)"
#define PATIENT_REC(col, stage) "(SELECT " col " FROM target" \
	" WHERE stage = '" stage "' AND key = patient.id)"
/* valid: the column that is the validate record's input_sig. */
#define SERIES_COLS(valid) "series.modality, series.sop_class, series.study_date," \
	" series.expected, series.gone, series.ninst, series.set_sig, " valid "," \
	" series.dir_mtime, series.error, series.series_number, series.series_desc"
#define SERIES_FIELDS SERIES_COLS(SERIES_REC("input_sig", STAGE_VALID))
/* The second column is unused (the count is the series list's). */
#define ARCHIVE_FIELDS PATIENT_REC("out_path", STAGE_ARCHIVE) ", NULL," \
	" " PATIENT_REC("input_sig", STAGE_ARCHIVE) "," \
	" " PATIENT_REC("settings_sig", STAGE_ARCHIVE) "," \
	" " PATIENT_REC("detail", STAGE_ARCHIVE) "," \
	" " PATIENT_REC("out_size", STAGE_ARCHIVE) "," \
	" " PATIENT_REC("out_mtime", STAGE_ARCHIVE) "," \
	" " PATIENT_REC("out_hash", STAGE_ARCHIVE) "," \
	" " PATIENT_REC("error", STAGE_ARCHIVE) ", query_error"
void fill_series(struct catalog *c, struct series *s, const char *const *v);
void fill_archive(struct catalog *c, struct patient *p, const char *const *v);

#endif
