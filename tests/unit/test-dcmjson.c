/*
 * test-dcmjson.c - dcm_json (src/dicom.cc): a file's header as DICOM JSON
 * (PS3.18 F.2), read back with jansson.  Real files (pydicom's test files:
 * CT, MR, RT Plan, SR, ECG waveform, JPEG 2000) for what DCMTK writes, with
 * values read by pydicom; files written here for what dcm_json adds: the
 * bulk data left out at any depth, values over max_value left out (kept
 * with 0), and what JSON cannot hold mended (a DS of "5.", NaN, a UL of
 * two bytes, bytes that are no UTF-8, NULs).  Then the refusals: a missing file, a file that is
 * not DICOM, a symbolic link, each -1 with a message naming the path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "dicom.h"

/* Debian's python3-pydicom; tests/run.sh installs it. */
#ifndef PYDICOM_FILES
#define PYDICOM_FILES "/usr/lib/python3/dist-packages/pydicom/data/test_files"
#endif

static char tmpdir[] = "/tmp/test-dcmjson.XXXXXX";

/* The JSON of path, which must be an object, as dcm_json gives it. */
static json_t *
load(const char *path, size_t max_value)
{
	char err[DCM_ERR_MAX], *text = NULL;
	json_error_t jerr;
	json_t *j;

	if (dcm_json(path, max_value, &text, err) != 0)
		fail_msg("dcm_json %s: %s", path, err);
	assert_non_null(text);
	j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		fail_msg("%s: not JSON: %s at %d: %.200s", path, jerr.text, jerr.position, text);
	free(text);
	assert_true(json_is_object(j));
	return j;
}

static json_t *
pydicom_file(const char *name, size_t max_value)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", PYDICOM_FILES, name);
	if (access(path, R_OK) != 0)
		fail_msg("%s: %s (install python3-pydicom)", path, strerror(errno));
	return load(path, max_value);
}

/* The element tag ("GGGGEEEE") of o, which must have the VR vr. */
static json_t *
elem(json_t *o, const char *tag, const char *vr)
{
	json_t *e = json_object_get(o, tag);

	if (e == NULL)
		fail_msg("%s absent", tag);
	if (!json_is_string(json_object_get(e, "vr")) ||
	    strcmp(json_string_value(json_object_get(e, "vr")), vr) != 0)
		fail_msg("%s: vr %s, want %s", tag,
		    json_string_value(json_object_get(e, "vr")), vr);
	return e;
}

/* Value[i] of the element tag of o. */
static json_t *
value(json_t *o, const char *tag, const char *vr, size_t i)
{
	json_t *v = json_object_get(elem(o, tag, vr), "Value");

	if (!json_is_array(v) || json_array_size(v) <= i)
		fail_msg("%s: no Value[%zu]", tag, i);
	return json_array_get(v, i);
}

static void
assert_string_value(json_t *o, const char *tag, const char *vr, size_t i, const char *want)
{
	json_t *v = value(o, tag, vr, i);

	if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
		fail_msg("%s Value[%zu]: %s, want \"%s\"", tag, i,
		    json_is_string(v) ? json_string_value(v) : "not a string", want);
}

static void
assert_number_value(json_t *o, const char *tag, const char *vr, size_t i, double want)
{
	json_t *v = value(o, tag, vr, i);

	if (!json_is_number(v))
		fail_msg("%s Value[%zu]: not a number", tag, i);
	if (fabs(json_number_value(v) - want) > 1e-9 * fmax(1, fabs(want)))
		fail_msg("%s Value[%zu]: %g, want %g", tag, i, json_number_value(v), want);
}

/* PS3.18 F.2.2: a PN value is an object of component groups. */
static void
assert_pn(json_t *o, const char *tag, const char *alphabetic)
{
	json_t *v = value(o, tag, "PN", 0);

	assert_true(json_is_object(v));
	assert_string_equal(json_string_value(json_object_get(v, "Alphabetic")), alphabetic);
}

/* The items of the sequence tag of o, which must be n objects. */
static json_t *
items(json_t *o, const char *tag, size_t n)
{
	json_t *v = json_object_get(elem(o, tag, "SQ"), "Value");
	size_t i;

	if (!json_is_array(v) || json_array_size(v) != n)
		fail_msg("%s: %zu items, want %zu", tag, json_array_size(v), n);
	for (i = 0; i < n; i++)
		assert_true(json_is_object(json_array_get(v, i)));
	return v;
}

static void
assert_absent(json_t *o, const char *tag)
{
	if (json_object_get(o, tag) != NULL)
		fail_msg("%s present", tag);
}

static void
test_ct(void **state)
{
	json_t *j = pydicom_file("CT_small.dcm", 4096), *seq;

	(void)state;
	assert_absent(j, "7FE00010");
	assert_absent(j, "00020010");	/* no file meta information */
	assert_string_value(j, "00080060", "CS", 0, "CT");
	assert_string_value(j, "00080008", "CS", 2, "AXIAL");
	assert_string_value(j, "00080018", "UI", 0,
	    "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322");
	assert_pn(j, "00100010", "CompressedSamples^CT1");
	assert_string_value(j, "00100020", "LO", 0, "1CT1");
	assert_number_value(j, "00180050", "DS", 0, 5.0);	/* SliceThickness */
	assert_number_value(j, "00180060", "DS", 0, 120);	/* KVP */
	assert_number_value(j, "00200032", "DS", 2, -75.699997);
	assert_number_value(j, "00280010", "US", 0, 128);
	/* OtherPatientIDsSequence */
	seq = items(j, "00101002", 2);
	assert_string_value(json_array_get(seq, 0), "00100020", "LO", 0, "ABCD1234");
	assert_string_value(json_array_get(seq, 1), "00100020", "LO", 0, "1234ABCD");
	/* Private: the creator, and an 80-byte OB as base64 */
	assert_string_value(j, "00430010", "LO", 0, "GEMS_PARM_01");
	assert_true(json_is_string(json_object_get(elem(j, "00431028", "OB"), "InlineBinary")));
	assert_int_equal(strlen(json_string_value(json_object_get(elem(j, "00431028", "OB"),
	    "InlineBinary"))), 108);
	/* (0043,1029) OB is 2068 bytes */
	elem(j, "00431029", "OB");
	json_decref(j);
	j = pydicom_file("CT_small.dcm", 2000);
	assert_absent(j, "00431029");
	elem(j, "00431028", "OB");
	json_decref(j);
	j = pydicom_file("CT_small.dcm", 0);
	assert_int_equal(strlen(json_string_value(json_object_get(elem(j, "00431029", "OB"),
	    "InlineBinary"))), (2068 + 2) / 3 * 4);
	json_decref(j);
}

static void
test_mr(void **state)
{
	json_t *j = pydicom_file("MR_small.dcm", 4096);

	(void)state;
	assert_absent(j, "7FE00010");
	assert_string_value(j, "00080060", "CS", 0, "MR");
	assert_pn(j, "00100010", "CompressedSamples^MR1");
	assert_number_value(j, "00180050", "DS", 0, 0.8);
	assert_number_value(j, "00180081", "DS", 0, 240);	/* EchoTime */
	assert_number_value(j, "00200011", "IS", 0, 1);	/* SeriesNumber */
	assert_number_value(j, "00200032", "DS", 1, -91.2);
	json_decref(j);
	/* The same image big endian, and implicit VR */
	j = pydicom_file("MR_small_bigendian.dcm", 4096);
	assert_absent(j, "7FE00010");
	assert_number_value(j, "00280010", "US", 0, 64);
	assert_pn(j, "00100010", "CompressedSamples^MR1");
	json_decref(j);
	j = pydicom_file("MR_small_implicit.dcm", 4096);
	assert_absent(j, "7FE00010");
	assert_number_value(j, "00180050", "DS", 0, 0.8);
	json_decref(j);
}

static void
test_sequences(void **state)
{
	json_t *j, *seq, *cp;

	(void)state;
	/* JPEG 2000: SourceImageSequence, pixel data encapsulated */
	j = pydicom_file("JPEG2000.dcm", 4096);
	assert_absent(j, "7FE00010");
	seq = items(j, "00082112", 1);
	assert_string_value(json_array_get(seq, 0), "00081150", "UI", 0,
	    "1.2.840.10008.5.1.4.1.1.7");
	assert_string_value(json_array_get(seq, 0), "00081155", "UI", 0,
	    "1.3.6.1.4.1.5962.1.1.8.1.1.20040826185059.5457");
	json_decref(j);
	/* RT Plan: BeamSequence > ControlPointSequence */
	j = pydicom_file("rtplan.dcm", 4096);
	assert_string_value(j, "00080060", "CS", 0, "RTPLAN");
	assert_pn(j, "00100010", "Last^First^mid^pre");
	seq = items(j, "300A00B0", 1);
	assert_string_value(json_array_get(seq, 0), "300A00C2", "LO", 0, "Field 1");
	cp = items(json_array_get(seq, 0), "300A0111", 2);
	assert_number_value(json_array_get(cp, 0), "300A0114", "DS", 0, 6);
	assert_number_value(json_array_get(cp, 0), "300A011E", "DS", 0, 0);
	items(j, "300A0010", 2);
	json_decref(j);
	/* SR: ContentSequence of 5, an empty sequence */
	j = pydicom_file("test-SR.dcm", 4096);
	assert_string_value(j, "00080060", "CS", 0, "SR");
	assert_pn(j, "00100010", "Test^S R");
	seq = items(j, "0040A730", 5);
	assert_string_value(json_array_get(seq, 1), "0040A040", "CS", 0, "CONTAINER");
	assert_string_value(json_array_get(json_object_get(elem(json_array_get(seq, 0),
	    "0040A043", "SQ"), "Value"), 0), "00080104", "LO", 0, "Some UID");
	assert_null(json_object_get(elem(j, "00081111", "SQ"), "Value"));
	json_decref(j);
	/* ECG: Waveform Data left out inside WaveformSequence's items */
	j = pydicom_file("waveform_ecg.dcm", 0);
	seq = items(j, "54000100", 2);
	assert_number_value(json_array_get(seq, 0), "003A0005", "US", 0, 12);
	assert_number_value(json_array_get(seq, 0), "003A0010", "UL", 0, 10000);
	assert_absent(json_array_get(seq, 0), "54001010");
	assert_absent(json_array_get(seq, 1), "54001010");
	items(j, "0040B020", 77);
	json_decref(j);
}

/* A DICOM file written here: explicit VR little endian. */
struct buf {
	unsigned char b[32768];
	size_t n;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof b->b);
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void
put16(struct buf *b, unsigned v)
{
	unsigned char x[2] = { v & 0xff, v >> 8 & 0xff };

	put(b, x, 2);
}

static void
put32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = { v & 0xff, v >> 8 & 0xff, v >> 16 & 0xff, v >> 24 & 0xff };

	put(b, x, 4);
}

/* Is vr one of the space-separated list? */
static int
vr_in(const char *vr, const char *list)
{
	for (; *list; list += list[2] ? 3 : 2)
		if (list[0] == vr[0] && list[1] == vr[1])
			return 1;
	return 0;
}

/* An element: odd values padded (text with a space, UI and binary with a
 * NUL), the length field 4 bytes long for the VRs that have one. */
static void
el(struct buf *b, unsigned g, unsigned e, const char *vr, const void *v, size_t n)
{
	size_t pad = n % 2;

	put16(b, g);
	put16(b, e);
	put(b, vr, 2);
	if (vr_in(vr, "OB OD OF OL OV OW SQ SV UC UN UR UT UV")) {
		put16(b, 0);
		put32(b, (uint32_t)(n + pad));
	} else {
		put16(b, (unsigned)(n + pad));
	}
	put(b, v, n);
	if (pad)
		put(b, vr_in(vr, "AE AS CS DA DS DT IS LO LT PN SH ST TM UC UR UT") ? " " : "", 1);
}

static void
el_str(struct buf *b, unsigned g, unsigned e, const char *vr, const char *s)
{
	el(b, g, e, vr, s, strlen(s));
}

/* A sequence of the n items of it[], each with a defined length. */
static void
el_seq(struct buf *b, unsigned g, unsigned e, const struct buf *it, size_t n)
{
	size_t len = 0, i;

	for (i = 0; i < n; i++)
		len += 8 + it[i].n;
	put16(b, g);
	put16(b, e);
	put(b, "SQ", 2);
	put16(b, 0);
	put32(b, (uint32_t)len);
	for (i = 0; i < n; i++) {
		put16(b, 0xfffe);
		put16(b, 0xe000);
		put32(b, (uint32_t)it[i].n);
		put(b, it[i].b, it[i].n);
	}
}

/* Write the dataset ds under name in tmpdir, with preamble and meta
 * information, into path. */
static void
write_dicom(const char *name, const struct buf *ds, char *path, size_t size)
{
	static struct buf meta, file;
	FILE *f;

	meta.n = file.n = 0;
	el(&meta, 0x0002, 0x0001, "OB", "\0\1", 2);
	el_str(&meta, 0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.7");
	el_str(&meta, 0x0002, 0x0003, "UI", "1.2.3.4.5.6.7");
	el_str(&meta, 0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1");
	memset(file.b, 0, 128);
	file.n = 128;
	put(&file, "DICM", 4);
	put16(&file, 0x0002);
	put16(&file, 0x0000);
	put(&file, "UL", 2);
	put16(&file, 4);
	put32(&file, (uint32_t)meta.n);
	put(&file, meta.b, meta.n);
	put(&file, ds->b, ds->n);
	snprintf(path, size, "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(file.b, 1, file.n, f), file.n);
	assert_int_equal(fclose(f), 0);
}

/* The start of a dataset, in tag order up to (0008,0060). */
static void
ds_start(struct buf *ds, const char *charset)
{
	ds->n = 0;
	if (charset)
		el_str(ds, 0x0008, 0x0005, "CS", charset);
	el_str(ds, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.7");
	el_str(ds, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7");
	el_str(ds, 0x0008, 0x0060, "CS", "OT");
}

static void
test_written(void **state)
{
	static struct buf ds, it[2], icon;
	static unsigned char big[10000], ov[64], px[32];
	char path[512];
	double nan_inf[2] = { 1.0, INFINITY }, fd = 1.5, nan = NAN;
	json_t *j, *seq;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)i;
	ds_start(&ds, NULL);
	/* a NUL inside a value; a Latin-1 byte with no character set */
	el(&ds, 0x0008, 0x1030, "LO", "AB\0CD", 5);
	el_str(&ds, 0x0008, 0x103e, "LO", "M\xfcller");
	/* ReferencedImageSequence of 2 */
	it[0].n = it[1].n = 0;
	el_str(&it[0], 0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.2");
	el_str(&it[0], 0x0008, 0x1155, "UI", "1.2.3.1");
	el_str(&it[1], 0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.2");
	el_str(&it[1], 0x0008, 0x1155, "UI", "1.2.3.2");
	el_seq(&ds, 0x0008, 0x1140, it, 2);
	el_str(&ds, 0x0010, 0x0010, "PN", "Doe^Jane");
	el_str(&ds, 0x0018, 0x0050, "DS", "5.");	/* DICOM, not JSON */
	el_str(&ds, 0x0018, 0x0088, "DS", "-.5\\2.e1\\+3");
	el_str(&ds, 0x0018, 0x1050, "DS", "1,5");	/* no number: a string */
	/* a private 10 KB OB */
	el_str(&ds, 0x0029, 0x0010, "LO", "THLHP TEST");
	el(&ds, 0x0029, 0x1010, "OB", big, sizeof big);
	el(&ds, 0x0040, 0x9224, "FD", &fd, sizeof fd);
	el(&ds, 0x0040, 0x9225, "FD", nan_inf, sizeof nan_inf);
	el(&ds, 0x0040, 0x9226, "FD", &nan, sizeof nan);
	el(&ds, 0x0040, 0xa0b0, "UL", "\1\0", 2);	/* shorter than one UL */
	/* IconImageSequence: an item with its own Pixel Data */
	icon.n = 0;
	el(&icon, 0x0028, 0x0010, "US", "\x04\0", 2);
	el(&icon, 0x7fe0, 0x0010, "OW", px, sizeof px);
	el_seq(&ds, 0x0088, 0x0200, &icon, 1);
	el(&ds, 0x6000, 0x0010, "US", "\x08\0", 2);
	el(&ds, 0x6000, 0x3000, "OW", ov, sizeof ov);
	el(&ds, 0x6002, 0x3000, "OB", ov, sizeof ov);
	el(&ds, 0x7fe0, 0x0010, "OW", px, sizeof px);
	write_dicom("written.dcm", &ds, path, sizeof path);

	j = load(path, 4096);
	assert_string_value(j, "00080060", "CS", 0, "OT");
	assert_string_value(j, "00081030", "LO", 0, "ABCD");
	assert_string_value(j, "0008103E", "LO", 0, "M\xef\xbf\xbdller");
	seq = items(j, "00081140", 2);
	assert_string_value(json_array_get(seq, 1), "00081155", "UI", 0, "1.2.3.2");
	assert_pn(j, "00100010", "Doe^Jane");
	assert_number_value(j, "00180050", "DS", 0, 5);
	assert_number_value(j, "00180088", "DS", 0, -0.5);
	assert_number_value(j, "00180088", "DS", 1, 20);
	assert_number_value(j, "00180088", "DS", 2, 3);
	assert_string_value(j, "00181050", "DS", 0, "1,5");
	assert_string_value(j, "00290010", "LO", 0, "THLHP TEST");
	assert_absent(j, "00291010");
	assert_number_value(j, "00409224", "FD", 0, 1.5);
	assert_absent(j, "00409225");
	assert_absent(j, "00409226");
	assert_absent(j, "0040A0B0");
	seq = items(j, "00880200", 1);
	assert_number_value(json_array_get(seq, 0), "00280010", "US", 0, 4);
	assert_absent(json_array_get(seq, 0), "7FE00010");
	assert_number_value(j, "60000010", "US", 0, 8);
	assert_absent(j, "60003000");
	assert_absent(j, "60023000");
	assert_absent(j, "7FE00010");
	json_decref(j);

	/* No limit: the 10 KB element is kept, the bulk data is not */
	j = load(path, 0);
	assert_int_equal(strlen(json_string_value(json_object_get(elem(j, "00291010", "OB"),
	    "InlineBinary"))), (sizeof big + 2) / 3 * 4);
	assert_absent(j, "60003000");
	assert_absent(j, "7FE00010");
	json_decref(j);

	/* A limit below the UIDs: they go, SpecificCharacterSet stays */
	ds_start(&ds, "ISO_IR 100");
	el_str(&ds, 0x0010, 0x0010, "PN", "M\xfcller^J\xf6rg");
	write_dicom("latin1.dcm", &ds, path, sizeof path);
	j = load(path, 8);
	assert_absent(j, "00080018");
	assert_string_value(j, "00080060", "CS", 0, "OT");
	assert_true(json_object_get(j, "00080005") != NULL);
	json_decref(j);
	/* Latin-1 converted to UTF-8 */
	j = load(path, 4096);
	assert_pn(j, "00100010", "M\xc3\xbcller^J\xc3\xb6rg");
	assert_string_value(j, "00080005", "CS", 0, "ISO_IR 192");
	json_decref(j);
	/* Pure ASCII in Latin-1: nothing to convert, the value stays */
	ds_start(&ds, "ISO_IR 100");
	el_str(&ds, 0x0010, 0x0010, "PN", "Muller^Jorg");
	write_dicom("ascii.dcm", &ds, path, sizeof path);
	j = load(path, 4096);
	assert_string_value(j, "00080005", "CS", 0, "ISO_IR 100");
	json_decref(j);
}

static void
assert_refused(const char *path, const char *why)
{
	char err[DCM_ERR_MAX], *text = (char *)"unset";

	assert_int_equal(dcm_json(path, 4096, &text, err), -1);
	assert_null(text);
	if (strstr(err, path) == NULL || strstr(err, why) == NULL)
		fail_msg("%s: \"%s\", want the path and \"%s\"", path, err, why);
}

static void
test_refused(void **state)
{
	char path[512], link[512], dcm[512];
	FILE *f;

	(void)state;
	snprintf(path, sizeof path, "%s/missing.dcm", tmpdir);
	assert_refused(path, "No such file");
	snprintf(path, sizeof path, "%s/notes.txt", tmpdir);
	assert_non_null(f = fopen(path, "w"));
	for (int i = 0; i < 40; i++)
		fputs("hello, this is no DICOM file at all\n", f);
	assert_int_equal(fclose(f), 0);
	assert_refused(path, "not a DICOM file");
	/* a symbolic link to a good file */
	snprintf(dcm, sizeof dcm, "%s/CT_small.dcm", PYDICOM_FILES);
	snprintf(link, sizeof link, "%s/link.dcm", tmpdir);
	assert_int_equal(symlink(dcm, link), 0);
	assert_refused(link, "symbolic link");
	assert_refused(tmpdir, "not a regular file");
	/* truncated: the header ends in the middle of a value */
	snprintf(path, sizeof path, "%s/rtplan_truncated.dcm", PYDICOM_FILES);
	assert_refused(path, "truncated");
}

static int
setup(void **state)
{
	(void)state;
	dcm_init();
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	const char *names[] = { "written.dcm", "latin1.dcm", "ascii.dcm", "notes.txt", "link.dcm" };
	char path[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof names / sizeof *names; i++) {
		snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ct),
		cmocka_unit_test(test_mr),
		cmocka_unit_test(test_sequences),
		cmocka_unit_test(test_written),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
