/*
 * test-util.c - str_escape, which every message passes through (warn,
 * fatal, errf): what a server or a file name holds must reach the terminal
 * as one line of text.  What callers rely on: printable ASCII and valid
 * UTF-8 text stay as they are; C0 controls, DEL, C1 controls (raw or as
 * UTF-8) and bytes that are not UTF-8 become \xNN; the output is cut short
 * to fit, never inside an escape or a character.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "util.h"

static void
escapes(const char *in, const char *want)
{
	char out[256];

	str_escape(out, sizeof(out), in);
	assert_string_equal(out, want);
}

static void
test_text_stays(void **state)
{
	(void)state;
	escapes("", "");
	escapes("GET http://x/studies?PatientID=TH-*: HTTP 404", "GET http://x/studies?PatientID=TH-*: HTTP 404");
	escapes("a\\b ~", "a\\b ~");
	escapes("M\xc3\xbcller \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc2\xa0", "M\xc3\xbcller \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc2\xa0");
}

static void
test_controls_escaped(void **state)
{
	(void)state;
	escapes("text/evil\x1b[31mRED\r\nX", "text/evil\\x1b[31mRED\\x0d\\x0aX");
	escapes("\x01\t\x1f\x7f", "\\x01\\x09\\x1f\\x7f");
	/* C1 raw (not UTF-8) and as UTF-8 (U+009B, CSI). */
	escapes("a\x9b" "b", "a\\x9bb");
	escapes("a\xc2\x9b" "b", "a\\xc2\\x9bb");
}

static void
test_not_utf8_escaped(void **state)
{
	(void)state;
	escapes("\xff\xfe", "\\xff\\xfe");
	escapes("\xc3", "\\xc3");                     /* cut short at the end */
	escapes("\xc3(", "\\xc3(");                   /* no continuation byte */
	escapes("\xc0\xaf", "\\xc0\\xaf");            /* overlong '/' */
	escapes("\xe0\x80\xaf", "\\xe0\\x80\\xaf");   /* overlong, 3 bytes */
	escapes("\xed\xa0\x80", "\\xed\\xa0\\x80");   /* a surrogate */
	escapes("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
}

static void
test_cut_to_fit(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(str_escape(out, sizeof(out), "abcdefghij"), 7);
	assert_string_equal(out, "abcdefg");
	/* "ab" and one escape fit in 7; a second would not: not half of it. */
	assert_int_equal(str_escape(out, sizeof(out), "ab\x1b\x1b"), 6);
	assert_string_equal(out, "ab\\x1b");
	/* A character is never split. */
	assert_int_equal(str_escape(out, sizeof(out), "abcde\xe6\x97\xa5"), 5);
	assert_string_equal(out, "abcde");
}

static void
test_errf_escapes(void **state)
{
	char buf[64], *s;

	(void)state;
	errf(buf, sizeof(buf), "the server sent %s, not multipart", "a\x1b]0;x\x07");
	assert_string_equal(buf, "the server sent a\\x1b]0;x\\x07, not multipart");
	s = xescape("\n");
	assert_string_equal(s, "\\x0a");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_stays),
		cmocka_unit_test(test_controls_escaped),
		cmocka_unit_test(test_not_utf8_escaped),
		cmocka_unit_test(test_cut_to_fit),
		cmocka_unit_test(test_errf_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
