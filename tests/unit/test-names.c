/*
 * test-names.c - PatientIDs as file names (name_encode/name_decode), archive
 * names (archive_name/archive_parse) and uid_is_safe.  What callers rely on:
 * an encoded name is one safe path component, the encoding is reversible
 * and canonical (one ID, one name), and an archive name gives back its ID
 * and series count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "names.h"

#define DELIM "__seriesCount"

/* IDs a PACS may hold, from plain to hostile. */
static const char *const ids[] = {
	"TH-01", "1234567", "abc.DEF_xyz-09", "John Doe", "M\xc3\xbcller",
	"a/b", "/", "//", "TH-../../x", "TH-a/b", "../../etc/passwd", ".", "..",
	"...", ".hidden", "a.", "a..b", "-", "_", "%", "%00", "%2F", "a%b",
	"100%", "a\\b", "a:b", "a\tb", "a\nb", " ", "  lead", "trail  ",
	"A" DELIM "3", DELIM, DELIM "5", "x" DELIM, "x.zip", "TH-01" DELIM "1.zip",
	"\x7f", "\xff\xfe", "\xe6\x97\xa5\xe6\x9c\xac",
};

/* encode must give exactly want, and decode must give id back. */
static void
check_encode(const char *id, const char *want)
{
	char *enc = name_encode(id), *dec;

	assert_string_equal(enc, want);
	dec = name_decode(enc);
	assert_non_null(dec);
	assert_string_equal(dec, id);
	free(dec);
	free(enc);
}

/* A name is one path component that is neither hidden, "." nor "..". */
static void
check_safe_component(const char *name)
{
	assert_true(name[0] != '\0');
	assert_true(name[0] != '.');
	assert_null(strchr(name, '/'));
	assert_string_not_equal(name, ".");
	assert_string_not_equal(name, "..");
	for (const char *c = name; *c; c++) {
		unsigned char u = (unsigned char)*c;

		assert_true((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') ||
		    (u >= '0' && u <= '9') || u == '.' || u == '_' || u == '-' || u == '%');
	}
}

/* decode(encode(id)) == id, and the name is a safe component. */
static void
check_roundtrip(const char *id)
{
	char *enc = name_encode(id), *dec;

	check_safe_component(enc);
	dec = name_decode(enc);
	assert_non_null(dec);
	assert_string_equal(dec, id);
	free(dec);
	free(enc);
}

static void
test_encode_plain_unchanged(void **state)
{
	(void)state;
	check_encode("TH-01", "TH-01");
	check_encode("1234567", "1234567");
	check_encode("abc.DEF_xyz-09", "abc.DEF_xyz-09");
	check_encode("1.2.840.10008.5.1.4", "1.2.840.10008.5.1.4");
	check_encode("a.", "a.");
	check_encode("a..b", "a..b");
	check_encode("-", "-");
}

static void
test_encode_escapes(void **state)
{
	(void)state;
	check_encode("a/b", "a%2Fb");
	check_encode("/", "%2F");
	check_encode("John Doe", "John%20Doe");
	check_encode("M\xc3\xbcller", "M%C3%BCller");
	check_encode("%", "%25");
	check_encode("100%", "100%25");
	check_encode("a\\b", "a%5Cb");
	check_encode("a:b", "a%3Ab");
	check_encode("\x7f", "%7F");
	check_encode("\xff", "%FF");
	check_encode("\x01", "%01");
}

static void
test_encode_leading_dot(void **state)
{
	(void)state;
	check_encode(".", "%2E");
	check_encode("..", "%2E.");
	check_encode("...", "%2E..");
	check_encode(".hidden", "%2Ehidden");
	check_encode("../x", "%2E.%2Fx");
}

static void
test_encode_empty(void **state)
{
	char *dec;

	(void)state;
	check_encode("", "%00");
	dec = name_decode("%00");
	assert_non_null(dec);
	assert_string_equal(dec, "");
	free(dec);
}

static void
test_roundtrip_many(void **state)
{
	char id[3];

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		check_roundtrip(ids[i]);
	/* Every single byte, and every byte after a '.' and before one. */
	for (int c = 1; c <= 255; c++) {
		id[0] = (char)c;
		id[1] = '\0';
		check_roundtrip(id);
		id[0] = '.';
		id[1] = (char)c;
		id[2] = '\0';
		check_roundtrip(id);
		id[0] = (char)c;
		id[1] = '.';
		check_roundtrip(id);
	}
}

static void
test_roundtrip_distinct(void **state)
{
	/* One ID, one name: different IDs never share a name. */
	size_t n = sizeof(ids) / sizeof(ids[0]);

	(void)state;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			char *a = name_encode(ids[i]), *b = name_encode(ids[j]);

			assert_string_not_equal(a, b);
			free(a);
			free(b);
		}
}

static void
test_roundtrip_long(void **state)
{
	enum { N = 4096 };
	char *id = malloc(N + 1), *enc, *dec;

	(void)state;
	assert_non_null(id);
	for (int i = 0; i < N; i++)
		id[i] = (char)(1 + (i * 37) % 255);
	id[N] = '\0';
	enc = name_encode(id);
	check_safe_component(enc);
	dec = name_decode(enc);
	assert_non_null(dec);
	assert_string_equal(dec, id);
	free(dec);
	free(enc);
	/* A long plain ID stays as it is. */
	memset(id, 'A', N);
	enc = name_encode(id);
	assert_string_equal(enc, id);
	free(enc);
	free(id);
}

static void
test_decode_rejects_noncanonical(void **state)
{
	static const char *const bad[] = {
		"%2f",        /* lower-case hex */
		"a%2fb",
		"%",          /* truncated escapes */
		"%2",
		"a%",
		"a%4",
		"%G0",        /* not hex */
		"%0G",
		"%%",
		"a/b",        /* raw bytes that encode escapes */
		"a b",
		"M\xc3\xbcller",
		"%41",        /* 'A' needs no escape */
		"a%2Eb",      /* '.' escaped where it need not be */
		".",          /* raw leading dot */
		"..",
		".x",
		"a%00b",      /* NUL cannot be in an ID */
		"%00%00",
		"",           /* "" is spelt %00 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dec = name_decode(bad[i]);

		if (dec)
			fail_msg("name_decode(\"%s\") accepted, gave \"%s\"", bad[i], dec);
	}
}

static void
test_archive_name(void **state)
{
	char *s;

	(void)state;
	s = archive_name("TH-01", DELIM, 3);
	assert_string_equal(s, "TH-01__seriesCount3.zip");
	free(s);
	s = archive_name("a/b", DELIM, 12);
	assert_string_equal(s, "a%2Fb__seriesCount12.zip");
	free(s);
	s = archive_name("", DELIM, 1);
	assert_string_equal(s, "%00__seriesCount1.zip");
	free(s);
	s = archive_name("P1", "-n", 7);
	assert_string_equal(s, "P1-n7.zip");
	free(s);
}

/* archive_parse(archive_name(id, delim, n)) gives id and n. */
static void
check_archive_roundtrip(const char *id, const char *delim, int n)
{
	char *name = archive_name(id, delim, n), *back;
	int got = -1;

	check_safe_component(name);
	back = archive_parse(name, delim, &got);
	if (!back)
		fail_msg("archive_parse(\"%s\", \"%s\") rejected its own name", name, delim);
	assert_string_equal(back, id);
	assert_int_equal(got, n);
	free(back);
	free(name);
}

static void
test_archive_roundtrip(void **state)
{
	static const char *const delims[] = { DELIM, "_", "-", "__", ".n" };
	static const int counts[] = { 1, 2, 5, 9, 10, 99, 100, 123456789 };

	(void)state;
	for (size_t d = 0; d < sizeof(delims) / sizeof(delims[0]); d++)
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
			for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++)
				check_archive_roundtrip(ids[i], delims[d], counts[k]);
	check_archive_roundtrip("", DELIM, 1);
}

static void
test_archive_delimiter_in_id(void **state)
{
	char *name, *id;
	int n = -1;

	(void)state;
	name = archive_name("A__seriesCount3", DELIM, 5);
	assert_string_equal(name, "A__seriesCount3__seriesCount5.zip");
	id = archive_parse(name, DELIM, &n);
	assert_non_null(id);
	assert_string_equal(id, "A__seriesCount3");
	assert_int_equal(n, 5);
	free(id);
	free(name);

	id = archive_parse("A__seriesCount__seriesCount12.zip", DELIM, &n);
	assert_non_null(id);
	assert_string_equal(id, "A__seriesCount");
	assert_int_equal(n, 12);
	free(id);
}

static void
test_archive_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"x.zip",                        /* no delimiter */
		"A__seriesCount.zip",           /* no count */
		"A__seriesCount05.zip",         /* leading zero */
		"A__seriesCount0.zip",
		"A__seriesCountx.zip",          /* not a number */
		"A__seriesCount3x.zip",
		"A__seriesCount-3.zip",
		"A__seriesCount 3.zip",
		"A__seriesCount1234567890.zip", /* more than 9 digits */
		"A__seriesCount3",              /* not a zip */
		"A__seriesCount3.ZIP",
		"A__seriesCount3.zip.tmp",
		".zip",
		"",
		"__seriesCount3.zip",           /* empty encoded ID */
		"a/b__seriesCount3.zip",        /* not a canonical encoding */
		"a%2fb__seriesCount3.zip",
		"John Doe__seriesCount3.zip",
		".hidden__seriesCount3.zip",
		".thlhp-tmp-123-A__seriesCount3.zip",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = -1;
		char *id = archive_parse(bad[i], DELIM, &n);

		if (id)
			fail_msg("archive_parse(\"%s\") accepted, gave \"%s\" %d", bad[i], id, n);
	}
}

static void
test_archive_hostile_ids(void **state)
{
	static const char *const hostile[] = {
		"TH-../../x", "TH-a/b", "../../etc/passwd", "..", ".", "/", "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		char *name = archive_name(hostile[i], DELIM, 4);

		assert_null(strchr(name, '/'));
		assert_true(name[0] != '.');
		free(name);
		check_archive_roundtrip(hostile[i], DELIM, 4);
	}
	{
		char *name = archive_name("TH-../../x", DELIM, 2);

		assert_string_equal(name, "TH-..%2F..%2Fx__seriesCount2.zip");
		free(name);
		name = archive_name("TH-a/b", DELIM, 2);
		assert_string_equal(name, "TH-a%2Fb__seriesCount2.zip");
		free(name);
	}
}

static void
test_uid_is_safe(void **state)
{
	char uid[80];

	(void)state;
	assert_int_equal(uid_is_safe("1.2.840.10008.5.1.4.1.1.2"), 1);
	assert_int_equal(uid_is_safe("1"), 1);
	assert_int_equal(uid_is_safe("ABC123"), 1);
	assert_int_equal(uid_is_safe("1.2.3.abc"), 1);
	memset(uid, '1', 64);
	uid[64] = '\0';
	assert_int_equal(uid_is_safe(uid), 1);
	uid[64] = '2';
	uid[65] = '\0';
	assert_int_equal(uid_is_safe(uid), 0);

	assert_int_equal(uid_is_safe(""), 0);
	assert_int_equal(uid_is_safe("."), 0);
	assert_int_equal(uid_is_safe(".."), 0);
	assert_int_equal(uid_is_safe("../1.2.3"), 0);
	assert_int_equal(uid_is_safe("1.2/3"), 0);
	assert_int_equal(uid_is_safe("/1.2.3"), 0);
	assert_int_equal(uid_is_safe("1.2 3"), 0);
	assert_int_equal(uid_is_safe("1.2.3\n"), 0);
	assert_int_equal(uid_is_safe("1.2\\3"), 0);
	assert_int_equal(uid_is_safe("1.2%2F3"), 0);
	assert_int_equal(uid_is_safe("\xc3\xbc"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_plain_unchanged),
		cmocka_unit_test(test_encode_escapes),
		cmocka_unit_test(test_encode_leading_dot),
		cmocka_unit_test(test_encode_empty),
		cmocka_unit_test(test_roundtrip_many),
		cmocka_unit_test(test_roundtrip_distinct),
		cmocka_unit_test(test_roundtrip_long),
		cmocka_unit_test(test_decode_rejects_noncanonical),
		cmocka_unit_test(test_archive_name),
		cmocka_unit_test(test_archive_roundtrip),
		cmocka_unit_test(test_archive_delimiter_in_id),
		cmocka_unit_test(test_archive_parse_rejects),
		cmocka_unit_test(test_archive_hostile_ids),
		cmocka_unit_test(test_uid_is_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
