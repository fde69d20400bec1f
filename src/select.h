/* select.h - [select]: which patients and series belong to the project. */
#ifndef THLHP_SELECT_H
#define THLHP_SELECT_H

#include <regex.h>
#include "config.h"
#include "htab.h"

struct select {
	char **globs; int nglobs;      /* patient_id */
	char **wilds;                  /* each glob as a DICOM wildcard */
	regex_t re; int has_re;        /* patient_id_regex */
	struct htab ids; char *idbuf; int has_ids; /* patients_file */
	char **modalities; int nmod;   /* modality */
	char from[9], to[9];           /* study_date range, "" = open */
};

/* 0, or -1 with a malloc'd message naming the key. */
int select_init(struct select *s, const struct config *cfg, char **err);
void select_free(struct select *s);
/* 1 if the patient belongs to the project. */
int select_patient(const struct select *s, const char *id);
/* 1 if a series of this modality in a study of this date belongs. */
int select_series(const struct select *s, const char *modality, const char *study_date);

/* How many wildcard queries of PatientID the selection needs at the
 * source: one per glob (DICOM wildcards, matched by the source), one with
 * "*" when a regex is matched here or nothing is selected, none for a
 * patients_file alone. */
int select_nwild(const struct select *s);
/* The i-th of them. */
const char *select_wild(const struct select *s, int i);

#endif
