/*
 * dicom.h - the only door to DCMTK.  Plain C types, no exceptions: every
 * function returns 0 on success or -1 with a one-line message in err.
 * dicom.cc and dimse.cc (networking, dimse.h) are the only files that
 * include DCMTK headers.
 */
#ifndef THLHP_DICOM_H
#define THLHP_DICOM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { DCM_UID_MAX = 65, DCM_ID_MAX = 257, DCM_ERR_MAX = 256 };

/* The attributes the catalog and validation care about, trimmed of padding. */
struct dcm_header {
	char patient_id[DCM_ID_MAX];   /* (0010,0020); may be empty */
	char study_uid[DCM_UID_MAX];   /* (0020,000D) */
	char series_uid[DCM_UID_MAX];  /* (0020,000E) */
	char sop_uid[DCM_UID_MAX];     /* (0008,0018) */
	char sop_class[DCM_UID_MAX];   /* (0008,0016) */
	char modality[17];             /* (0008,0060) */
	char study_date[9];            /* (0008,0020) YYYYMMDD or empty */
	char transfer_syntax[DCM_UID_MAX]; /* from the meta header, or empty */
	/* Shown, never matched, so kept whole however long (a PACS may send
	 * more than the 12 and 64 characters allowed): malloc'd, NULL when
	 * absent or empty; dcm_header_free() frees them. */
	char *series_number;           /* (0020,0011) IS, as the text it is */
	char *series_desc;             /* (0008,103E) */
};

/* Once per process, before threads start: silence DCMTK's own logging and
 * set TCP_NODELAY=1 so DCMTK disables Nagle's algorithm. */
void dcm_init(void);
/* Format a one-line message into err (DCM_ERR_MAX bytes). */
void dcm_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read the header of path, stopping before PixelData.  Fails with
 * "not a DICOM file" when the file does not parse or lacks any of
 * SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID ("no SeriesInstanceUID"
 * when only some are missing).  Values too long for h are errors, never cut
 * (the number and description are allocated). */
int dcm_read_header(const char *path, struct dcm_header *h, char err[DCM_ERR_MAX]);

/* Parse the whole file, PixelData included, so a truncated or damaged file
 * fails; fill h as dcm_read_header does. */
int dcm_check_file(const char *path, struct dcm_header *h, char err[DCM_ERR_MAX]);

/* The header of the DICOM file at path (the dataset; the file meta
 * information left out) as DICOM JSON (PS3.18 F.2), one object, compact,
 * UTF-8, into *json (malloc'd): every element but bulk data: Pixel Data,
 * Float and Double Float Pixel Data, Waveform Data, overlay data
 * (60xx,3000), and any element whose value is longer than max_value bytes
 * (0: no limit; SpecificCharacterSet is always kept).  Sequences are
 * included, their items filtered alike.  As DCMTK writes it: IS and DS as
 * numbers (as strings when they are none, such as "1,5"), PN as
 * {"Alphabetic": ...} objects, OB/OW/UN as InlineBinary
 * (base64), private elements with their creators.  The file is read as
 * dcm_read_header reads it (no link, stopping before PixelData: what
 * follows it, such as padding or a signature, is not in the JSON).  What
 * JSON cannot hold is mended: text in another character set is converted
 * to UTF-8 (SpecificCharacterSet then says ISO_IR 192), bytes that stay
 * no UTF-8 become U+FFFD, NULs are dropped; an FL or FD with a NaN or an
 * infinity, and a US, UL, FL... shorter than one value, are left out.
 * 0, or -1 with err naming path. */
int dcm_json(const char *path, size_t max_value, char **json, char err[DCM_ERR_MAX]);

/* dcm_check_file and dcm_json in one pass: the header into h, and into
 * *json (malloc'd) the JSON dcm_json gives, or NULL when it cannot be
 * written (dcm_json then says why).  Fails as dcm_check_file does. */
int dcm_check_file_json(const char *path, struct dcm_header *h, size_t max_value,
    char **json, char err[DCM_ERR_MAX]);

/* The tag of a data dictionary keyword ("SliceThickness"), or of eight
 * hex digits ("00180050"), as DICOM JSON names it: eight upper-case hex
 * digits into tag.  0, or -1 when it is neither. */
int dcm_tag_of(const char *keyword, char tag[9]);

/* Free what h holds (not h), after a successful dcm_read_header or
 * dcm_check_file; after a failed one there is nothing to free, and a
 * call does no harm. */
void dcm_header_free(struct dcm_header *h);

#ifdef __cplusplus
}
#endif

#endif
