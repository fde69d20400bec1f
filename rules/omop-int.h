/*
 * omop-int.h - what the omop stage's files share: omop.c (the stage:
 * plan, start, run, finish, its records), omop-rows.c (what a job makes:
 * headers read, rows built), omop-map.c (what it maps onto: person_map
 * entries and the vocabulary's concepts), omop-pg.c (the OMOP database:
 * rows upserted, a person_map table read) and omop-csv.c (CSV: lines, a
 * person_map file read, the table files written).
 */
#ifndef THLHP_OMOP_INT_H
#define THLHP_OMOP_INT_H

#include <stdint.h>
#include "rule.h"

/* The tables, in the order their rows are written (procedures first:
 * an image row may refer to its procedure by a foreign key). */
enum omop_tbl { T_PROCEDURE, T_IMAGE, NTBL };

/* A column of a table, as the CDM names it. */
struct omop_col {
	const char *name;
	/* We fill it; the others are NULL when a row is inserted and left
	 * alone when it is updated (a site may link visits later). */
	int ours;
};

struct omop_table {
	const char *name;         /* "image_occurrence": the CSV file's name, the kind of its ids */
	const struct omop_col *col;
	int ncol;                 /* col[0] is the id, col[1] the person_id */
};
extern const struct omop_table omop_tables[NTBL];

/* One row made: its column values as text (NULL: SQL NULL), all of
 * them, in the table's order, and the same as one CSV line. */
struct orow {
	enum omop_tbl tbl;
	int64_t id;
	const char *uid;          /* the series' or study's UID (the job's) */
	char **val;               /* ncol values, malloc'd */
	char *line;               /* RFC 4180, no line break */
};
void orow_free(struct orow *r);

/* ---- omop-rows.c: what a job makes ---------------------------------- */

struct vocab;

/* A series, as its header says. */
struct oser {
	char *uid, *study, *dir;
	char *modality, *body;    /* Modality, BodyPartExamined, or NULL */
	char date[11];            /* SeriesDate, else StudyDate, as YYYY-MM-DD; "" for none */
	int study_ix;             /* in oin.stu */
	int64_t id;               /* image_occurrence_id */
};

/* A study, as its series' headers say (the first with a StudyDate). */
struct ostudy {
	char *uid;
	char date[11], time[9];   /* StudyDate (YYYY-MM-DD), StudyTime (HH:MM:SS); "" for none */
	int64_t id;               /* procedure_occurrence_id */
};

/* The rows the state has of the patient, by table, by id. */
struct oprev {
	int64_t *id;
	char **line;
	int n;
};

/* What a job takes (start) and makes (run). */
struct oin {
	uint64_t input;           /* the record to be: input_sig, settings */
	char *settings;
	int skip;                 /* no person_id, missing_person = skip: no rows */
	int64_t person;
	int must;                 /* write even rows the state has as they are: -B, or
	                           * the rows went elsewhere (or nowhere yet) */
	struct oser *ser;
	int nser;
	struct ostudy *stu;
	int nstu;
	struct oprev prev[NTBL];
	/* run: */
	struct orow *rows;
	int nrows, nodate;
	int built;                /* rows made */
};

/* Read the stored header of each series of with[0..n) (sorted by study)
 * into in->ser, their studies into in->stu, and give each its id (those
 * with a date); -1 with err. */
int rows_gather(struct state *st, struct series *const *with, int n, struct oin *in, char *err,
    size_t errlen);
/* in's rows, by table, then id: concepts from v, wadors_uri from wado
 * ([pacs] url or NULL). */
void rows_build(struct oin *in, const struct vocab *v, const char *wado);
/* Are in's rows those the state had (in->prev)? */
int rows_same(const struct oin *in);
/* The ids of the state's rows of table t that in no longer has, into
 * gone (room for in->prev[t].n); how many. */
int rows_gone(const struct oin *in, int t, int64_t *gone);
void oin_free(struct oin *in);

/* ---- omop-map.c: person_map and the vocabulary ---------------------- */

/* The rows of a person_map, at most. */
enum { PERSONS_MAX = 1000000 };

/* A person_map entry, by PatientID. */
struct person {
	char *patient;            /* the key */
	int64_t id;
	long line;                /* where it was read (0: a table) */
};
/* Put (patient, id) into map, read at line of where; -1 with err when
 * patient is there already or id is not a person_id. */
int person_add(struct htab *map, const char *patient, const char *id, const char *where,
    long line, char *err, size_t errlen);
void persons_free(struct htab *map);

/* The vocabulary (an Athena CONCEPT.csv), checked by prepare (it opens,
 * its header is CONCEPT's) and read whole by the first job that needs a
 * concept, once per run: a no-op run never reads it. */
struct vocab {
	char *path;               /* NULL: no vocabulary (concepts are 0) */
	int64_t size, mtime;      /* as prepare found it: part of every target's settings */
	int col[7];               /* where each column vocab_load reads is, by the header */
	int state;                /* 0 not read, 1 read, -1 failed (err); under a lock */
	char err[512];
	struct htab modality;     /* DICOM Modality code -> struct concept */
	struct htab site;         /* lower-case name -> struct concept */
};
/* Prepare: look at path (NULL for none); -1 with err when it cannot be
 * read or is not a CONCEPT.csv. */
int vocab_check(struct vocab *v, const char *path, char *err, size_t errlen);
/* Any thread: read it, once; 0, or -1 with err (each caller gets it). */
int vocab_load(struct vocab *v, char *err, size_t errlen);
/* The concept of a Modality, of a BodyPartExamined; 0 for none. */
int64_t vocab_modality(const struct vocab *v, const char *code);
int64_t vocab_site(const struct vocab *v, const char *body_part);
void vocab_free(struct vocab *v);

/* ---- omop-csv.c ----------------------------------------------------- */

/* vals[0..n) as an RFC 4180 line (no line break); NULL as an empty field. */
char *csv_line(char *const *vals, int n);
/* person_map as a CSV file: its rows into map; 0, or -1 with err naming
 * path:line. */
int csv_persons(const char *path, struct htab *map, char *err, size_t errlen);
/* With [omop] dir, at the end of a run: <dir>/<table>.csv for each
 * table from the rows in the state, when made > 0 or the file is not as
 * recorded; a file whose content would not change is left as it is.  0,
 * or -1 after a warning. */
int csv_write_tables(const struct rule *ru, struct ctx *ctx, int made);

/* ---- omop-pg.c ------------------------------------------------------ */

/* The database url names, without its password: "user@host:port/db". */
char *pg_target(const char *url);
/* person_map as a table ("schema.table") of the database url; -1 with err. */
int pg_persons(const char *url, const char *table, struct htab *map, char *err, size_t errlen);
/* What a job writes: rows[0..n) upserted by id (a row as it is already
 * is not touched), and the ids in gone[tbl] (ngone[tbl] each) deleted,
 * in one transaction in schema of url.  Counts into written and removed;
 * 0, or -1 with err. */
struct pg_job {
	const char *url, *schema;
	const struct orow *rows;
	int n;
	const int64_t *gone[NTBL];
	int ngone[NTBL];
	const atomic_int *cancel; /* set: stop, and commit nothing */
	int written, removed;
};
int pg_write(struct pg_job *pj, char *err, size_t errlen);

#endif
