/*
 * test-notify.c - what a digest says (notify-text.c), without a server:
 * with include_ids = no no PatientID is in the text or the subject, in
 * whatever form (as the PACS has it, as a file name) and wherever it was
 * (an archive's name, a failure's reason), while the counts and sizes
 * stay; with include_ids = yes each archive and series is named; every
 * line is shorter than 998 bytes whatever a reason holds; and when a
 * daily digest is due (notify_last_time).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "notify.h"

#define NS 1000000000LL

static const struct notice news[] = {
	{ 0, 1796400000 * NS, NOTICE_PRODUCT, "TH-01-AA", "TH-01-AA__seriesCount8.zip", "archive", 8, 1200000000 },
	{ 0, 1796400000 * NS, NOTICE_PRODUCT, "A%2FB", "A%2FB__seriesCount1.zip", "archive", 1, 5000 },
	{ 0, 1796400000 * NS, NOTICE_SERIES, "TH-01-AA", "1.2.3.4", "CT", 0, 0 },
	{ 0, 1796400000 * NS, NOTICE_SERIES, "A%2FB", "1.2.3.5", "MR", 0, 0 },
	{ 0, 1796400000 * NS, NOTICE_FAILURE, "A%2FB", "download A%2FB 1.2.3.5",
	  "data/dicom/A%2FB: patient A/B is refused (A/B, not A/BC)", 0, 0 },
	{ 0, 1796400000 * NS, NOTICE_ITEM, NULL, "forms aBaseline0001 (Baseline visit)",
	  "5 new submissions", 0, 0 },
	{ 0, 1796400000 * NS, NOTICE_RUN, NULL, "all", "failed", 65000, 0 },
};
enum { NNEWS = sizeof(news) / sizeof(news[0]) };

static void
test_no_ids(void **state)
{
	char *subject, *text = notify_digest(news, NNEWS, 0, "host", "proj", &subject);

	(void)state;
	assert_null(strstr(text, "TH-01-AA"));
	assert_null(strstr(text, "A%2FB"));
	assert_null(strstr(text, "A/B,"));
	assert_null(strstr(text, "A/B is"));
	assert_null(strstr(subject, "TH-01"));
	/* Counts and sizes are what it says instead. */
	assert_non_null(strstr(subject, "2 archives built, 2 new series, 1 pulled, 1 failure"));
	assert_non_null(strstr(text, "Archives built: 2, 1.20 GB in all"));
	assert_non_null(strstr(text, "  patient 1      8 series"));
	assert_non_null(strstr(text, "New series: 2, of 2 patients"));
	assert_non_null(strstr(text, "  MR       1"));
	/* The reason stays, its patient replaced; a longer ID is another. */
	assert_non_null(strstr(text, "download (patient 2): data/dicom/patient 2: patient patient 2 "
	    "is refused (patient 2, not A/BC)"));
	assert_non_null(strstr(text, "1 run from "));
	assert_non_null(strstr(text, "1 min 5 s of work; the last failed."));
	/* A form's title and counts name nobody: as they are. */
	assert_non_null(strstr(text, "Pulled: 1\n  forms aBaseline0001 (Baseline visit): "
	    "5 new submissions\n"));
	free(subject);
	free(text);
}

static void
test_ids(void **state)
{
	char *subject, *text = notify_digest(news, NNEWS, 1, "host", "proj", &subject);

	(void)state;
	assert_non_null(strstr(text, "  TH-01-AA__seriesCount8.zip"));
	assert_non_null(strstr(text, "  TH-01-AA         CT       1.2.3.4"));
	assert_non_null(strstr(text, "  download A%2FB 1.2.3.5: data/dicom/A%2FB: patient A/B is refused"));
	assert_non_null(strstr(text, "  forms aBaseline0001 (Baseline visit): 5 new submissions"));
	free(subject);
	free(text);
}

static void
test_lines_short(void **state)
{
	char reason[5000], *subject, *text;
	struct notice n = { 0, 1796400000 * NS, NOTICE_FAILURE, "P", "zip P", reason, 0, 0 };

	(void)state;
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	/* A UTF-8 character across the cut is not split. */
	memcpy(reason + 880, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 16);
	text = notify_failures(&n, 1, 1, "host", "proj", &subject);
	for (char *l = text, *e; *l; l = e + 1) {
		assert_non_null(e = strchr(l, '\n'));
		assert_true(e - l < 998);
		for (char *c = l; c < e; c++)
			if (((unsigned char)*c & 0xe0) == 0xc0)
				assert_true(c + 1 < e && ((unsigned char)c[1] & 0xc0) == 0x80);
	}
	assert_non_null(strstr(text, "..."));
	free(subject);
	free(text);
}

static void
test_last_time(void **state)
{
	/* 2026-12-05 09:30:00 UTC */
	const int64_t now = 1796463000;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(notify_last_time("07:00", now), now - 2 * 3600 - 30 * 60);
	assert_int_equal(notify_last_time("09:30", now), now);
	assert_int_equal(notify_last_time("09:30:01", now), now + 1 - 86400);
	assert_int_equal(notify_last_time("23:59:59", now), now - 9 * 3600 - 30 * 60 - 1);
	assert_int_equal(notify_last_time("24:00", now), -1);
	assert_int_equal(notify_last_time("7", now), -1);
	assert_int_equal(notify_last_time("07:00x", now), -1);
	assert_int_equal(notify_last_time("07:60", now), -1);
	assert_int_equal(notify_last_time(NULL, now), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_ids),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_lines_short),
		cmocka_unit_test(test_last_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
