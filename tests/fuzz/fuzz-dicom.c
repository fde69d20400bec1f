/*
 * fuzz-dicom.c - libFuzzer target for src/dicom.h (DCMTK, src/dicom.cc):
 * the input is a received file, written to a temp file and read as the
 * download does (dcm_read_header, which stops before PixelData) and as
 * the validate rule does (dcm_check_file, the whole file).  DCMTK itself
 * is not instrumented; its allocations and the bytes it hands back are.
 * What must hold: each call is 0 with an empty message or -1 with a
 * one-line one; a header that read holds SOP, series and study UIDs,
 * every field NUL-terminated in its array and trimmed of spaces (the
 * allocated number and description NULL or not empty, NULL after a
 * failure); when both read, they give the same UIDs.  (A file that checks
 * whole need not read as a header: DCMTK stops the header at the first
 * tag past PixelData, so an out-of-order (E54D,2198) before the UIDs hides
 * them; see corpus/dicom/header-stops-at-high-tag.)  The header as
 * DICOM JSON (dcm_json, as the metadata stage reads it): an object any JSON
 * reader takes (UTF-8, no \u0000, no bare NaN), or -1 with a message
 * naming the file; whenever the header reads, so does its JSON.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "dicom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz-dicom.c:%d: %s\n", __LINE__, #c); abort(); } } while (0)

static char path[4096];       /* the received file */

static void
cleanup(void)
{
	unlink(path);
}

static void
setup(void)
{
	int fd;

	dcm_init();
	snprintf(path, sizeof(path), "%s/fuzz-dicom-XXXXXX",
	    getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if ((fd = mkstemp(path)) < 0) {
		perror("fuzz-dicom.c: mkstemp");
		abort();
	}
	close(fd);
	atexit(cleanup);
}

/* A field: NUL-terminated within its array, no padding left at its ends. */
static void
check_field(const char *f, size_t size)
{
	size_t n;

	CHECK(memchr(f, '\0', size) != NULL);
	n = strlen(f);
	CHECK(n == 0 || (f[0] != ' ' && f[n - 1] != ' '));
}

static void
check_result(int rc, const struct dcm_header *h, const char *err)
{
	CHECK(rc == 0 || rc == -1);
	CHECK(memchr(err, '\0', DCM_ERR_MAX) != NULL);
	CHECK(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL);
	if (rc < 0) {
		CHECK(err[0] != '\0');
		CHECK(!h->series_number && !h->series_desc);   /* nothing to free */
		return;
	}
	CHECK(err[0] == '\0');
	check_field(h->patient_id, sizeof(h->patient_id));
	check_field(h->study_uid, sizeof(h->study_uid));
	check_field(h->series_uid, sizeof(h->series_uid));
	check_field(h->sop_uid, sizeof(h->sop_uid));
	check_field(h->sop_class, sizeof(h->sop_class));
	check_field(h->modality, sizeof(h->modality));
	check_field(h->study_date, sizeof(h->study_date));
	check_field(h->transfer_syntax, sizeof(h->transfer_syntax));
	CHECK(h->sop_uid[0] && h->series_uid[0] && h->study_uid[0]);
	/* Allocated, whole: NULL or a trimmed, non-empty string. */
	CHECK(!h->series_number || h->series_number[0]);
	CHECK(!h->series_desc || h->series_desc[0]);
	if (h->series_number)
		check_field(h->series_number, strlen(h->series_number) + 1);
	if (h->series_desc)
		check_field(h->series_desc, strlen(h->series_desc) + 1);
}

/* dcm_json of the file, whose header h read with rc. */
static void
check_json(int rc, const struct dcm_header *h)
{
	char err[DCM_ERR_MAX], *text = (char *)"unset";
	json_error_t jerr;
	json_t *j, *sop;
	int rcj;

	memset(err, 'X', sizeof(err));
	rcj = dcm_json(path, 4096, &text, err);
	CHECK(rcj == 0 || rcj == -1);
	CHECK(memchr(err, '\0', DCM_ERR_MAX) != NULL);
	CHECK(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL);
	if (rcj < 0) {
		CHECK(text == NULL && strncmp(err, path, strlen(path)) == 0);
		CHECK(rc < 0);
		return;
	}
	CHECK(err[0] == '\0' && text != NULL);
	/* Integers past 64 bits (UV) are JSON, just not jansson's. */
	j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
	if (j == NULL)
		fprintf(stderr, "fuzz-dicom.c: not JSON: %s at %d\n", jerr.text, jerr.position);
	CHECK(j != NULL && json_is_object(j));
	/* The same SOPInstanceUID, when it is plain text; the header's ends
	 * at a NUL in the value, the JSON's goes on without it. */
	sop = json_array_get(json_object_get(json_object_get(j, "00080018"), "Value"), 0);
	if (rc == 0 && strspn(h->sop_uid, "0123456789.") == strlen(h->sop_uid)) {
		const char *v = json_string_value(sop);

		CHECK(v != NULL);
		v += strspn(v, " ");
		CHECK(strncmp(v, h->sop_uid, strlen(h->sop_uid)) == 0);
	}
	json_decref(j);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dcm_header h, whole;
	char err[DCM_ERR_MAX], err2[DCM_ERR_MAX];
	int fd, rc, rc2;

	if (!path[0])
		setup();
	/* Overwritten, then cut: truncating to 0 first makes ext4 flush on
	 * close, ~1 ms each time. */
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, data, size, 0) == (ssize_t)size &&
	    ftruncate(fd, (off_t)size) == 0 && close(fd) == 0);

	memset(&h, 'X', sizeof(h));
	memset(err, 'X', sizeof(err));
	rc = dcm_read_header(path, &h, err);
	check_result(rc, &h, err);

	memset(&whole, 'X', sizeof(whole));
	memset(err2, 'X', sizeof(err2));
	rc2 = dcm_check_file(path, &whole, err2);
	check_result(rc2, &whole, err2);
	if (rc == 0 && rc2 == 0) {
		CHECK(strcmp(h.sop_uid, whole.sop_uid) == 0);
		CHECK(strcmp(h.series_uid, whole.series_uid) == 0);
		CHECK(strcmp(h.study_uid, whole.study_uid) == 0);
	}
	check_json(rc, &h);
	dcm_header_free(&h);
	dcm_header_free(&whole);
	return 0;
}
