/*
 * dicom.cc - the only file that includes DCMTK.  Implements dicom.h:
 * plain C in, plain C out, no exception ever leaves this file.
 *
 * Thread safety: every call works on its own DcmFileFormat.  The shared
 * state DCMTK touches while parsing is the data dictionary (loaded once in
 * dcm_init, then only read under DCMTK's own read lock) and the logger
 * (configured once in dcm_init).
 */
#include <cstdlib>
#include "dicom.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/oflog/oflog.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

std::once_flag init_once;
bool dict_ok = false;

void do_init()
{
	OFLog::configure(OFLogger::OFF_LOG_LEVEL);
	dict_ok = dcmDataDict.isDictionaryLoaded();
}

/* Where v is, trimmed of spaces and NULs: [*b, *e). */
void trim(const OFString &v, size_t *b, size_t *e)
{
	*b = 0;
	*e = v.length();
	while (*b < *e && (v[*b] == ' ' || v[*b] == '\0'))
		(*b)++;
	while (*e > *b && (v[*e - 1] == ' ' || v[*e - 1] == '\0'))
		(*e)--;
}

/* Fetch tag from item as a string trimmed of spaces and NULs (the whole
 * value, all components), then copy it into buf.  A missing or empty
 * attribute gives "".  Returns -1 if it does not fit. */
int get(DcmItem *item, const DcmTagKey &tag, const char *name,
	char *buf, size_t size, char *err)
{
	buf[0] = '\0';
	OFString v;
	if (item == NULL || item->findAndGetOFStringArray(tag, v).bad())
		return 0;
	size_t b, e;
	trim(v, &b, &e);
	/* Retired ACR-NEMA date "YYYY.MM.DD" -> "YYYYMMDD". */
	if (tag == DCM_StudyDate && e - b == 10 && v[b + 4] == '.' && v[b + 7] == '.') {
		v = v.substr(b, 4) + v.substr(b + 5, 2) + v.substr(b + 8, 2);
		b = 0;
		e = 8;
	}
	if (e - b >= size) {
		dcm_errf(err, "%s too long (%zu bytes)", name, e - b);
		return -1;
	}
	memcpy(buf, v.data() + b, e - b);
	buf[e - b] = '\0';
	return 0;
}

/* Fetch tag as get() does, whole however long, into *out: malloc'd, NULL
 * when missing or empty.  -1 when out of memory. */
int get_dup(DcmItem *item, const DcmTagKey &tag, const char *name, char **out, char *err)
{
	*out = NULL;
	OFString v;
	if (item == NULL || item->findAndGetOFStringArray(tag, v).bad())
		return 0;
	size_t b, e;
	trim(v, &b, &e);
	if (e == b)
		return 0;
	*out = static_cast<char *>(malloc(e - b + 1));
	if (*out == NULL) {
		dcm_errf(err, "%s: out of memory (%zu bytes)", name, e - b);
		return -1;
	}
	memcpy(*out, v.data() + b, e - b);
	(*out)[e - b] = '\0';
	return 0;
}

/* Do the first n bytes of a file look like DICOM: a 128-byte preamble
 * and "DICM" (PS3.10), or a dataset without one that starts with a data
 * element of an even group (either byte order)?  DCMTK reads anything,
 * and reads a zero-filled file as (0000,0000) elements to its end, which
 * for gigabytes takes minutes. */
bool dicom_start(const unsigned char *b, ssize_t n)
{
	if (n >= 132 && memcmp(b + 128, "DICM", 4) == 0)
		return true;
	if (n < 8)
		return false;
	unsigned le = b[0] | b[1] << 8, be = b[0] << 8 | b[1];
	return (le % 2 == 0 && le >= 0x0002 && le <= 0x7fe0) ||
	       (be % 2 == 0 && be >= 0x0002 && be <= 0x7fe0);
}

int fill(DcmFileFormat &ff, struct dcm_header *h, char *err)
{
	DcmItem *ds = ff.getDataset();
	if (get(ds, DCM_PatientID, "PatientID", h->patient_id, sizeof h->patient_id, err) ||
	    get(ds, DCM_StudyInstanceUID, "StudyInstanceUID", h->study_uid, sizeof h->study_uid, err) ||
	    get(ds, DCM_SeriesInstanceUID, "SeriesInstanceUID", h->series_uid, sizeof h->series_uid, err) ||
	    get(ds, DCM_SOPInstanceUID, "SOPInstanceUID", h->sop_uid, sizeof h->sop_uid, err) ||
	    get(ds, DCM_SOPClassUID, "SOPClassUID", h->sop_class, sizeof h->sop_class, err) ||
	    get(ds, DCM_Modality, "Modality", h->modality, sizeof h->modality, err) ||
	    get(ds, DCM_StudyDate, "StudyDate", h->study_date, sizeof h->study_date, err) ||
	    get(ff.getMetaInfo(), DCM_TransferSyntaxUID, "TransferSyntaxUID",
		h->transfer_syntax, sizeof h->transfer_syntax, err))
		return -1;
	if (!h->sop_uid[0] && !h->series_uid[0] && !h->study_uid[0]) {
		dcm_errf(err, "not a DICOM file");
		return -1;
	}
	const char *missing = !h->sop_uid[0] ? "SOPInstanceUID"
			    : !h->series_uid[0] ? "SeriesInstanceUID"
			    : !h->study_uid[0] ? "StudyInstanceUID" : NULL;
	if (missing) {
		dcm_errf(err, "no %s", missing);
		return -1;
	}
	/* Last, so that nothing is allocated when the header is refused. */
	if (get_dup(ds, DCM_SeriesNumber, "SeriesNumber", &h->series_number, err) ||
	    get_dup(ds, DCM_SeriesDescription, "SeriesDescription", &h->series_desc, err)) {
		dcm_header_free(h);
		return -1;
	}
	return 0;
}

int load(const char *path, struct dcm_header *h, char *err, bool full)
{
	memset(h, 0, sizeof *h);
	err[0] = '\0';
	try {
		std::call_once(init_once, do_init);
		if (!dict_ok) {
			dcm_errf(err, "DICOM data dictionary not loaded (check DCMDICTPATH)");
			return -1;
		}
		/* DCMTK's own open error would read as "not a DICOM file".
		 * Never through a link, never blocking (a FIFO waits for a
		 * writer forever, deaf to SIGTERM). */
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
		if (fd < 0) {
			if (errno == ELOOP)
				dcm_errf(err, "a symbolic link, not a regular file");
			else
				dcm_errf(err, "cannot open: %s", strerror(errno));
			return -1;
		}
		struct stat st;
		bool reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
		unsigned char head[132];
		ssize_t n = reg ? pread(fd, head, sizeof head, 0) : 0;
		close(fd);
		if (!reg) {
			dcm_errf(err, "not a regular file");
			return -1;
		}
		if (!dicom_start(head, n)) {
			dcm_errf(err, "not a DICOM file (starts with neither a DICOM preamble nor a DICOM group)");
			return -1;
		}

		DcmFileFormat ff;
		OFCondition c = full
			? ff.loadFile(OFFilename(path))
			: ff.loadFileUntilTag(OFFilename(path), EXS_Unknown, EGL_noChange,
					      DCM_MaxReadLength, ERM_autoDetect, DCM_PixelData);
		if (c.bad()) {
			/* Something that never produced a SOPInstanceUID is not
			 * DICOM; one that did but then broke is damaged.  Only
			 * its length field is looked at: the value (and so
			 * getLength() or isEmpty()) would be loaded, and the
			 * length may be the damage (4 GB, past the end of the
			 * file). */
			DcmElement *uid = NULL;
			if (ff.getDataset()->findAndGetElement(DCM_SOPInstanceUID, uid).bad() ||
			    uid == NULL || uid->getLengthField() == 0)
				dcm_errf(err, "not a DICOM file");
			else
				dcm_errf(err, "truncated or damaged: %s", c.text());
			return -1;
		}
		if (fill(ff, h, err) != 0) {
			memset(h, 0, sizeof *h);
			/* Reading "until PixelData" stops at the first tag at
			 * or past it: a high tag out of order before the UIDs
			 * hides them.  Read all before saying they are missing. */
			return full ? -1 : load(path, h, err, true);
		}
		return 0;
	} catch (const std::exception &e) {
		dcm_errf(err, "DCMTK error: %s", e.what());
	} catch (...) {
		dcm_errf(err, "DCMTK error: unknown exception");
	}
	dcm_header_free(h);	/* h was zeroed first: safe whatever threw */
	memset(h, 0, sizeof *h);
	return -1;
}

} /* namespace */

extern "C" void dcm_init(void)
{
	/* DCMTK turns Nagle's algorithm off only when TCP_NODELAY is set;
	 * without it DIMSE transfers are ~20x slower.  Set here, before any
	 * thread starts (setenv is not thread-safe); a user's value wins. */
	setenv("TCP_NODELAY", "1", 0);
	try {
		std::call_once(init_once, do_init);
	} catch (...) {
		/* load() reports the missing dictionary. */
	}
}

extern "C" int dcm_read_header(const char *path, struct dcm_header *h,
			       char err[DCM_ERR_MAX])
{
	return load(path, h, err, false);
}

extern "C" int dcm_check_file(const char *path, struct dcm_header *h,
			      char err[DCM_ERR_MAX])
{
	return load(path, h, err, true);
}

extern "C" void dcm_header_free(struct dcm_header *h)
{
	free(h->series_number);
	free(h->series_desc);
	h->series_number = NULL;
	h->series_desc = NULL;
}

extern "C" void dcm_errf(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, DCM_ERR_MAX, fmt, ap);
	va_end(ap);
	/* DCMTK condition texts may span lines; keep the message on one. */
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}
