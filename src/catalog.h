/*
 * catalog.h - what the project holds, in memory: patients, their series and
 * what is known of each on disk.  Loaded from state, updated by the query,
 * saved back by state_*().  Only the main thread changes it; a job reads the
 * series or patient it was given and returns its result separately.
 */
#ifndef THLHP_CATALOG_H
#define THLHP_CATALOG_H

#include <stdint.h>
#include "htab.h"

/* One instance file as last hashed: the git-index entry. */
struct instance {
	char *sop;          /* SOPInstanceUID; the file is <sop>.dcm */
	int64_t size;       /* bytes when hashed */
	int64_t mtime;      /* st_mtim in ns when hashed */
	uint64_t hash;      /* XXH3-64 of the content */
	int ok;             /* parsed and matched its series at this hash */
};

struct patient;

struct series {
	char *uid;                /* SeriesInstanceUID */
	/* Interned (catalog_intern): many series share each value. */
	const char *study;        /* StudyInstanceUID */
	const char *modality, *sop_class, *study_date; /* from the source; may be NULL */
	const char *number, *desc; /* SeriesNumber, SeriesDescription; NULL when unknown */
	struct patient *patient;
	int expected;             /* instances at the source */
	int gone;                 /* no longer at the source (kept, reported) */
	int seen;                 /* seen by this run's query */
	int dirty;                /* differs from what state holds */
	/* Known on disk, recorded after each job: */
	int ninst;                /* instances on disk at the last scan */
	uint64_t set_sig;         /* hash of sorted (sop, hash); 0 = none */
	uint64_t valid_sig;       /* set_sig at the last good validation; 0 = never */
	int64_t dir_mtime;        /* series dir mtime (ns) at the last scan; 0 = unknown */
	char *error;              /* last failure of a job on it, or NULL */
	/* Per run: */
	char *dir;                /* <dicom_dir>/<patient>/<study>/<series> */
	int disk_checked;         /* disk_count and dir_changed are known */
	int disk_count;           /* <sop>.dcm files in dir */
	int dir_changed;          /* dir mtime differs from dir_mtime */
};

/* The archive last built for a patient, as recorded. */
struct archive {
	char *path;               /* as written, relative to cwd as configured */
	int nseries;
	uint64_t sig;             /* content signature it was built from */
	const char *settings;     /* config_zip_settings() then; interned */
	char *series;             /* space-separated sorted series UIDs inside */
	int64_t size, mtime;      /* of the file when written */
	uint64_t hash;            /* XXH3-64 of the file */
};

struct patient {
	char *id;                 /* PatientID as the PACS has it */
	char *name;               /* name_encode(id) */
	struct series **series;   /* sorted by study, then series UID */
	int nseries;
	struct archive ar;        /* valid when has_ar */
	int has_ar;
	char *ar_error;           /* why the last zip failed, or NULL once one is built */
	int ar_dirty;             /* archive record differs from state */
	char *query_error;        /* why the last query saw it only in part (not
	                           * zipped until one sees it whole), or NULL */
	int query_dirty;          /* query_error differs from state */
	/* Per run: */
	struct series **want;     /* series the archive is to hold, sorted */
	int nwant;
	char **old;               /* other archives of it found in zip_dir (base names) */
	int nold;
};

struct catalog {
	struct patient **p;       /* sorted by id */
	int np;
	struct htab byid;         /* id -> patient */
	struct htab byuid;        /* series uid -> series */
	struct htab strs;         /* the interned strings (key = value) */
};

void catalog_init(struct catalog *c);
void catalog_free(struct catalog *c);
/* Find or add; the strings are copied. */
struct patient *catalog_patient(struct catalog *c, const char *id);
struct series *catalog_series(struct catalog *c, struct patient *p,
    const char *study, const char *uid);
struct series *catalog_find_series(const struct catalog *c, const char *uid);
struct patient *catalog_find_patient(const struct catalog *c, const char *id);
/* Sort patients and each patient's series; call after adding. */
void catalog_sort(struct catalog *c);
/* Set str field *dst to a copy of v if it differs; returns 1 if changed. */
int catalog_set(char **dst, const char *v);
/* The catalog's one copy of v (NULL for NULL), kept until catalog_free:
 * for the values that many series share, so that 100k series do not hold
 * 100k copies of a handful of SOP classes and dates. */
const char *catalog_intern(struct catalog *c, const char *v);
/* Set interned field *dst to v if it differs; returns 1 if changed. */
int catalog_iset(struct catalog *c, const char **dst, const char *v);

/* Series signature from instances sorted by SOP (sorts them in place). */
uint64_t catalog_set_sig(struct instance *inst, int n);
/* Archive signature: the series (study, uid, set_sig) and the settings. */
uint64_t catalog_archive_sig(struct series *const *v, int n, const char *settings);
/* Space-separated UIDs of the series, sorted; malloc'd. */
char *catalog_series_list(struct series *const *v, int n);
void instance_free(struct instance *inst, int n);
/* Look at s->dir once per run: count its files, note whether it changed
 * since the last scan (a stat when unchanged, a readdir otherwise). */
void series_check_disk(struct series *s);

#endif
