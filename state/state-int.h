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
#define SERIES_FIELDS "modality, sop_class, study_date, expected, gone, ninst," \
	" set_sig, valid_sig, dir_mtime, error, series_number, series_desc"
#define ARCHIVE_FIELDS "ar_path, ar_nseries, ar_sig, ar_settings, ar_series," \
	" ar_size, ar_mtime, ar_hash, ar_error, query_error"
void fill_series(struct catalog *c, struct series *s, const char *const *v);
void fill_archive(struct catalog *c, struct patient *p, const char *const *v);

#endif
