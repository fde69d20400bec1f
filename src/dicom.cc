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
#include <dcmtk/dcmdata/dcjson.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dctag.h>
#include <dcmtk/dcmdata/dcvrds.h>
#include <dcmtk/oflog/oflog.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>
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

/* Is path a regular file (never through a link) that starts as DICOM
 * does?  DCMTK's own open error would read as "not a DICOM file", and it
 * follows links.  Opened without blocking: a FIFO waits for a writer
 * forever, deaf to SIGTERM. */
int open_check(const char *path, char *err)
{
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
	return 0;
}

/* Has ff's dataset a SOPInstanceUID?  Only its length field is looked
 * at: the value (and so getLength() or isEmpty()) would be loaded, and
 * the length may be the damage (4 GB, past the end of the file). */
bool has_sop_uid(DcmFileFormat &ff)
{
	DcmElement *uid = NULL;
	return ff.getDataset()->findAndGetElement(DCM_SOPInstanceUID, uid).good() &&
	       uid != NULL && uid->getLengthField() != 0;
}

/* Why loading ff failed with c: something that never produced a
 * SOPInstanceUID is not DICOM; one that did but then broke is damaged. */
void load_failed(DcmFileFormat &ff, const OFCondition &c, char *err)
{
	if (!has_sop_uid(ff))
		dcm_errf(err, "not a DICOM file");
	else
		dcm_errf(err, "truncated or damaged: %s", c.text());
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

int json_of(DcmDataset *ds, size_t max_value, char **json, char *why);

int load(const char *path, struct dcm_header *h, char *err, bool full,
	 size_t max_value = 0, char **json = NULL)
{
	memset(h, 0, sizeof *h);
	err[0] = '\0';
	try {
		std::call_once(init_once, do_init);
		if (!dict_ok) {
			dcm_errf(err, "DICOM data dictionary not loaded (check DCMDICTPATH)");
			return -1;
		}
		if (open_check(path, err) != 0)
			return -1;

		DcmFileFormat ff;
		OFCondition c = full
			? ff.loadFile(OFFilename(path))
			: ff.loadFileUntilTag(OFFilename(path), EXS_Unknown, EGL_noChange,
					      DCM_MaxReadLength, ERM_autoDetect, DCM_PixelData);
		if (c.bad()) {
			load_failed(ff, c, err);
			return -1;
		}
		if (fill(ff, h, err) != 0) {
			memset(h, 0, sizeof *h);
			/* Reading "until PixelData" stops at the first tag at
			 * or past it: a high tag out of order before the UIDs
			 * hides them.  Read all before saying they are missing. */
			return full ? -1 : load(path, h, err, true);
		}
		/* The same pass's header as JSON, for whoever stores it; one
		 * that cannot be written is none, and the reader says why. */
		char why[DCM_ERR_MAX];
		if (json && json_of(ff.getDataset(), max_value, json, why) != 0)
			*json = NULL;
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

/* Is tag bulk data, left out whatever its length: Pixel Data, Float and
 * Double Float Pixel Data, Waveform Data, Overlay Data (60xx,3000)? */
bool json_bulk(const DcmTagKey &t)
{
	return t == DCM_PixelData || t == DCM_FloatPixelData || t == DCM_DoubleFloatPixelData ||
	       t == DCM_WaveformData ||
	       ((t.getGroup() & 0xff01) == 0x6000 && t.getElement() == 0x3000);
}

/* Are all of el's FL or FD values finite?  JSON has no NaN nor infinity,
 * and DCMTK 3.6.7 writes a NaN first value as the bare word nan. */
bool json_finite(DcmElement *el)
{
	unsigned long vm = el->getVM();
	for (unsigned long i = 0; i < vm; i++) {
		Float32 f = 0;
		Float64 d = 0;
		if (el->ident() == EVR_FL ? el->getFloat32(f, i).bad() : el->getFloat64(d, i).bad())
			return false;
		if (!std::isfinite(el->ident() == EVR_FL ? f : d))
			return false;
	}
	return true;
}

/* Where v has a period with no digit after it, or npos. */
size_t json_bare_period(const OFString &v)
{
	for (size_t p = v.find('.'); p != OFString_npos; p = v.find('.', p + 1))
		if (p + 1 == v.size() || v[p + 1] < '0' || v[p + 1] > '9')
			return p;
	return OFString_npos;
}

/* DCMTK 3.6.7 writes a DS of "5." or "5.e3", valid DICOM, as a JSON
 * number that JSON does not allow (DCMTK 3.6.8 appends the 0 as done
 * here).  Values that are no DS at all DCMTK writes as strings: untouched. */
void json_fix_ds(DcmElement *el)
{
	OFString all, v, fixed;
	if (el->getOFStringArray(all).bad() || json_bare_period(all) == OFString_npos)
		return;
	unsigned long vm = el->getVM();
	for (unsigned long i = 0; i < vm; i++) {
		if (el->getOFString(v, i).bad())
			return;
		size_t p = json_bare_period(v);
		if (p != OFString_npos && DcmDecimalString::checkStringValue(v, "1").good())
			v = v.substr(0, p + 1) + "0" + v.substr(p + 1);
		if (i > 0)
			fixed += '\\';
		fixed += v;
	}
	el->putOFStringArray(fixed);
}

/* Leave out of item, and of the items of its sequences, the bulk data and
 * the values longer than max (0: no limit), and what DCMTK cannot write
 * as JSON (FL, FD not finite; a US, UL, FL... shorter than one value);
 * mend the DS DCMTK would write wrong.
 * SpecificCharacterSet stays whatever max: it says how to read the rest. */
void json_strip(DcmItem *item, size_t max)
{
	std::vector<DcmObject *> out;
	for (DcmObject *o = item->nextInContainer(NULL); o; o = item->nextInContainer(o)) {
		DcmEVR vr = o->ident();
		if (json_bulk(o->getTag())) {
			out.push_back(o);
		} else if (vr == EVR_SQ) {
			DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(o);
			for (DcmObject *i = sq->nextInContainer(NULL); i; i = sq->nextInContainer(i))
				if (i->ident() == EVR_item)
					json_strip(static_cast<DcmItem *>(i), max);
		} else if (max > 0 && o->getLengthField() > max &&
			   o->getTag() != DCM_SpecificCharacterSet) {
			out.push_back(o);
		} else if (o->getLengthField() > 0 && static_cast<DcmElement *>(o)->getVM() == 0) {
			/* a binary number shorter than one: DCMTK fails */
			out.push_back(o);
		} else if ((vr == EVR_FL || vr == EVR_FD) && !json_finite(static_cast<DcmElement *>(o))) {
			out.push_back(o);
		} else if (vr == EVR_DS) {
			json_fix_ds(static_cast<DcmElement *>(o));
		}
	}
	for (DcmObject *o : out)
		delete item->remove(o);
}

/* The length of the well-formed UTF-8 sequence (RFC 3629) at p, of n
 * bytes left, or 0. */
size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1
		   : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
		   : (p[0] & 0xf0) == 0xe0 ? 3
		   : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) ||	/* overlong */
	    (p[0] == 0xed && p[1] > 0x9f) ||	/* a surrogate */
	    (p[0] == 0xf0 && p[1] < 0x90) ||	/* overlong */
	    (p[0] == 0xf4 && p[1] > 0x8f))	/* past U+10FFFF */
		return 0;
	return len;
}

/* DCMTK's JSON as UTF-8 text any JSON reader takes, malloc'd: DCMTK
 * copies string bytes as they are, so a byte that is not UTF-8 (a
 * character set DCMTK cannot convert, or values that break their own
 * character set) becomes U+FFFD; and a NUL it writes as \u0000, which
 * PostgreSQL's jsonb refuses, is dropped.  Outside strings DCMTK writes
 * ASCII without backslashes, so each backslash starts an escape. */
char *json_text(const std::string &s)
{
	std::string t;
	t.reserve(s.size());
	const unsigned char *p = reinterpret_cast<const unsigned char *>(s.data());
	for (size_t i = 0, n = s.size(); i < n;) {
		size_t k;
		if (p[i] == '\\') {
			size_t e = i + 1 < n && s[i + 1] == 'u' ? 6 : 2;
			if (s.compare(i, 6, "\\u0000") != 0)
				t.append(s, i, e);
			i += e;
		} else if ((k = utf8_len(p + i, n - i)) == 0) {
			t += "\xef\xbf\xbd";
			i++;
		} else {
			t.append(s, i, k);
			i += k;
		}
	}
	char *r = static_cast<char *>(malloc(t.size() + 1));
	if (r != NULL)
		memcpy(r, t.c_str(), t.size() + 1);
	return r;
}

/* dcm_json into why (without the path). */
int json_load(const char *path, size_t max_value, char **json, char *why)
{
	if (open_check(path, why) != 0)
		return -1;
	/* Values that may be kept are read with the header, in one pass;
	 * longer ones DCMTK leaves in the file, and they are dropped unread. */
	Uint32 maxread = max_value > 0xffffffffu ? 0xffffffffu
		       : max_value > DCM_MaxReadLength ? static_cast<Uint32>(max_value)
		       : DCM_MaxReadLength;
	DcmFileFormat ff;
	for (int full = 0; full < 2; full++) {
		OFCondition c = full
			? ff.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, maxread)
			: ff.loadFileUntilTag(OFFilename(path), EXS_Unknown, EGL_noChange,
					      maxread, ERM_autoDetect, DCM_PixelData);
		if (c.bad()) {
			load_failed(ff, c, why);
			return -1;
		}
		/* As in load(): a high tag out of order hides the rest. */
		if (has_sop_uid(ff))
			break;
	}
	return json_of(ff.getDataset(), max_value, json, why);
}

/* ds as dcm_json writes it, into *json (malloc'd); ds is changed (bulk
 * data dropped, text converted).  0, or -1 with why. */
int json_of(DcmDataset *ds, size_t max_value, char **json, char *why)
{
	if (ds->card() == 0) {
		dcm_errf(why, "not a DICOM file (no data elements)");
		return -1;
	}
	/* What follows Pixel Data (Data Set Trailing Padding, Digital
	 * Signatures) is left out: json_load stops there and never reads
	 * it, and validate's full pass must hand over the same header. */
	std::vector<DcmObject *> past;
	for (DcmObject *o = ds->nextInContainer(NULL); o; o = ds->nextInContainer(o))
		if (o->getTag() > DCM_PixelData)
			past.push_back(o);
	for (DcmObject *o : past)
		delete ds->remove(o);
	json_strip(ds, max_value);
	/* JSON is UTF-8.  Only a dataset with bytes past ASCII in its text
	 * needs converting (which sets SpecificCharacterSet to ISO_IR 192,
	 * as DCMTK's dcm2json does); one DCMTK cannot convert (ISO 2022 IR
	 * 87, say) is written as it is, and json_text() mends the bytes. */
	OFString cs;
	if (ds->containsExtendedCharacters(OFFalse) &&
	    (ds->findAndGetOFStringArray(DCM_SpecificCharacterSet, cs).bad() || cs != "ISO_IR 192"))
		(void)ds->convertToUTF8();
	std::ostringstream os;
	DcmJsonFormatCompact format(OFFalse);
	OFCondition c = ds->writeJsonExt(os, format, OFTrue, OFFalse);
	if (c.bad()) {
		dcm_errf(why, "cannot write as DICOM JSON: %s", c.text());
		return -1;
	}
	if ((*json = json_text(os.str())) == NULL) {
		dcm_errf(why, "out of memory (%zu bytes of JSON)", os.str().size());
		return -1;
	}
	return 0;
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

extern "C" int dcm_check_file_json(const char *path, struct dcm_header *h,
				   size_t max_value, char **json, char err[DCM_ERR_MAX])
{
	*json = NULL;
	return load(path, h, err, true, max_value, json);
}

extern "C" int dcm_json(const char *path, size_t max_value, char **json,
			char err[DCM_ERR_MAX])
{
	char why[DCM_ERR_MAX] = "";
	*json = NULL;
	err[0] = '\0';
	try {
		std::call_once(init_once, do_init);
		if (!dict_ok)
			dcm_errf(why, "DICOM data dictionary not loaded (check DCMDICTPATH)");
		else if (json_load(path, max_value, json, why) == 0)
			return 0;
	} catch (const std::exception &e) {
		dcm_errf(why, "DCMTK error: %s", e.what());
	} catch (...) {
		dcm_errf(why, "DCMTK error: unknown exception");
	}
	dcm_errf(err, "%s: %s", path, why);
	return -1;
}

extern "C" int dcm_tag_of(const char *keyword, char tag[9])
{
	size_t n = strlen(keyword);
	if (n == 8 && strspn(keyword, "0123456789abcdefABCDEF") == 8) {
		for (size_t i = 0; i < 8; i++)
			tag[i] = static_cast<char>(toupper(static_cast<unsigned char>(keyword[i])));
		tag[8] = '\0';
		return 0;
	}
	try {
		std::call_once(init_once, do_init);
		DcmTag t;
		/* Only a keyword: findTagFromName also takes "0018,0050". */
		if (!dict_ok || n == 0 || strchr(keyword, ',') ||
		    DcmTag::findTagFromName(keyword, t).bad())
			return -1;
		snprintf(tag, 9, "%04X%04X", t.getGroup(), t.getElement());
		return 0;
	} catch (...) {
		return -1;
	}
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
