/*
 * test-words.c - src/words.c: a [rule NAME] command split as sh(1) splits
 * it but with nothing expanded, its {placeholders} checked and filled in
 * with values that are never scanned again, and words_join giving a line
 * that splits back into the same words.  What callers rely on: no shell
 * ever sees a value, so a PatientID like TH-$(touch x) is one argument.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "fileio.h"
#include "words.h"

/* got must be exactly want (NULL-terminated). */
static void
assert_strv(char *const *got, const char *const *want)
{
	size_t i;

	assert_non_null(got);
	for (i = 0; want[i] && got[i]; i++)
		if (strcmp(got[i], want[i]) != 0)
			fail_msg("word %zu: got [%s], want [%s]", i, got[i], want[i]);
	if (want[i] || got[i])
		fail_msg("got %s words than wanted (word %zu: [%s])", want[i] ? "fewer" : "more",
		    i, want[i] ? want[i] : got[i]);
}

/* cmd must split into the words given after it, then NULL. */
static void
split_is(const char *cmd, ...)
{
	const char *want[32];
	char err[256] = "", **w;
	size_t n = 0;
	va_list ap;

	va_start(ap, cmd);
	while ((want[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	w = words_split(cmd, err, sizeof(err));
	if (!w)
		fail_msg("split [%s]: %s", cmd, err);
	assert_strv(w, want);
	strv_free(w);
}

/* cmd must not split, with exactly the message want. */
static void
split_fails(const char *cmd, const char *want)
{
	char err[256] = "", **w = words_split(cmd, err, sizeof(err));

	if (w)
		fail_msg("split [%s] gave %s, want error", cmd, w[0]);
	assert_string_equal(err, want);
}

static void
test_split_plain(void **state)
{
	(void)state;
	split_is("echo", "echo", NULL);
	split_is("echo hello world", "echo", "hello", "world", NULL);
	split_is("  a\t\tb   \t c  ", "a", "b", "c", NULL);
	split_is("\tdcm2niix -z y -o out", "dcm2niix", "-z", "y", "-o", "out", NULL);
}

static void
test_split_single_quotes(void **state)
{
	(void)state;
	split_is("'a b'  'c\"d\\e'", "a b", "c\"d\\e", NULL);
	split_is("'\\'", "\\", NULL);
	split_is("'  '", "  ", NULL);
	split_is("'$(touch x) `id` ${HOME} $1 * ~'", "$(touch x) `id` ${HOME} $1 * ~", NULL);
	/* Control bytes are only refused outside quotes. */
	split_is("'a\nb\tc'", "a\nb\tc", NULL);
}

static void
test_split_double_quotes(void **state)
{
	(void)state;
	split_is("\"a \\\" b\"", "a \" b", NULL);
	split_is("\"\\\\\"", "\\", NULL);
	split_is("\"\\$HOME\"", "$HOME", NULL);
	split_is("\"\\`id\\`\"", "`id`", NULL);
	split_is("\"$HOME `id`\"", "$HOME `id`", NULL);
	/* Any other backslash stays, as in sh. */
	split_is("\"\\n \\a \\{ \\' \\\"\"", "\\n \\a \\{ \\' \"", NULL);
	split_is("\"a'b\"", "a'b", NULL);
	/* A backslash-newline is a line continuation; a newline is kept. */
	split_is("\"a\\\nb\"", "ab", NULL);
	split_is("\"a\nb\"", "a\nb", NULL);
}

static void
test_split_backslash(void **state)
{
	(void)state;
	split_is("a\\ b", "a b", NULL);
	split_is("\\'x\\\"", "'x\"", NULL);
	split_is("\\\\", "\\", NULL);
	split_is("\\a\\$x\\*", "a$x*", NULL);
	split_is("a\\\tb", "a\tb", NULL);
	/* A backslash is no brace escape: the brace stays for words_check. */
	split_is("\\{in\\}", "{in}", NULL);
}

static void
test_split_adjacent(void **state)
{
	(void)state;
	split_is("a'b'\"c\"", "abc", NULL);
	split_is("x\"y z\"'w' v", "xy zw", "v", NULL);
	split_is("'it'\\''s'", "it's", NULL);
	split_is("--opt=\"a b\"", "--opt=a b", NULL);
}

static void
test_split_empty_words(void **state)
{
	(void)state;
	split_is("\"\"", "", NULL);
	split_is("''", "", NULL);
	split_is("a \"\" b '' c", "a", "", "b", "", "c", NULL);
	split_is("'' ''", "", "", NULL);
	/* An empty quote next to text adds nothing. */
	split_is("a\"\" ''b", "a", "b", NULL);
}

static void
test_split_no_expansion(void **state)
{
	(void)state;
	/* $, `, globs, ~ and sh's operators are plain characters: only
	 * blanks separate words, so $(...) is not even kept together. */
	split_is("echo TH-$(touch x)", "echo", "TH-$(touch", "x)", NULL);
	split_is("echo ${HOME} $HOME * ? ~ ~/x [a]", "echo", "${HOME}", "$HOME", "*", "?",
	    "~", "~/x", "[a]", NULL);
	split_is("a|b > c; d & #e `id`", "a|b", ">", "c;", "d", "&", "#e", "`id`", NULL);
	split_is("x=1 cmd", "x=1", "cmd", NULL);
}

static void
test_split_errors(void **state)
{
	char err[8], **w;

	(void)state;
	split_fails("echo 'abc", "unterminated ' quote at column 6");
	split_fails("echo \"abc", "unterminated \" quote at column 6");
	split_fails("\"a\\\"", "unterminated \" quote at column 1");
	split_fails("a 'b' \"c", "unterminated \" quote at column 7");
	split_fails("a b\\", "trailing backslash at column 4");
	split_fails("\\", "trailing backslash at column 1");
	split_fails("a\nb", "control byte 0x0a at column 2 (outside quotes)");
	split_fails("a\r", "control byte 0x0d at column 2 (outside quotes)");
	split_fails("ls \x1b[31m", "control byte 0x1b at column 4 (outside quotes)");
	split_fails("a\x7f", "control byte 0x7f at column 2 (outside quotes)");
	split_fails("a\\\nb", "control byte 0x0a at column 3 (outside quotes)");
	split_fails("", "empty command");
	split_fails("  \t ", "empty command");
	/* A short buffer is cut, never overrun. */
	w = words_split("echo 'abc", err, sizeof(err));
	assert_null(w);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

static const char *const known[] = { "patient", "in", "out", "series", NULL };

/* The words of cmd pass words_check (want NULL) or fail it with want. */
static void
check_is(const char *cmd, const char *want)
{
	char err[256] = "", **w = words_split(cmd, err, sizeof(err));
	int rc;

	if (!w)
		fail_msg("split [%s]: %s", cmd, err);
	rc = words_check(w, known, err, sizeof(err));
	strv_free(w);
	if (!want) {
		if (rc != 0)
			fail_msg("check [%s]: %s", cmd, err);
		return;
	}
	assert_int_equal(rc, -1);
	assert_string_equal(err, want);
}

static void
test_check(void **state)
{
	char err[16], *argv[] = { "{nope}", NULL };

	(void)state;
	check_is("cp {in} {out}", NULL);
	check_is("x{in}y{out}z -p={patient}:{series}", NULL);
	check_is("awk '{{print $1}}' {in}", NULL);
	check_is("echo {{in}} {{{in}}} }}{{", NULL);
	check_is("echo \"{in}\" '{patient}'", NULL);
	check_is("echo plain", NULL);
	check_is("cp {seris} x",
	    "unknown placeholder {seris}; known: {patient} {in} {out} {series}");
	check_is("\\{x\\}", "unknown placeholder {x}; known: {patient} {in} {out} {series}");
	/* What is no name at all was likely meant as braces. */
	check_is("awk '{print $1}'", "unknown placeholder {print $1}; known: {patient} {in} {out}"
	    " {series}; write {{ and }} for literal braces");
	check_is("cp {} x", "unknown placeholder {}; known: {patient} {in} {out} {series};"
	    " write {{ and }} for literal braces");
	check_is("cp {IN}", "unknown placeholder {IN}; known: {patient} {in} {out} {series}");
	/* The shell's ${NAME}: said so, not taken for a mistyped name. */
	check_is("cp {in} ${HOME}/x", "unknown placeholder {HOME}; known: {patient} {in} {out} "
	    "{series}; ${NAME} is not expanded in a command (it has the environment: inside "
	    "sh -c '...' write $NAME)");
	check_is("cp '{in }'", "unknown placeholder {in }; known: {patient} {in} {out} {series};"
	    " write {{ and }} for literal braces");
	check_is("echo a{", "'{' without '}' in word 2: write {{ for a literal brace");
	check_is("echo x }", "'}' without '{' in word 3: write }} for a literal brace");
	check_is("awk '{print $1'", "'{' without '}' in word 2: write {{ for a literal brace");
	check_is("a {{in}", "'}' without '{' in word 2: write }} for a literal brace");
	check_is("a {in}}", "'}' without '{' in word 2: write }} for a literal brace");
	check_is("a {x{in}", "'{' without '}' in word 2: write {{ for a literal brace");
	/* A short buffer is cut, never overrun. */
	assert_int_equal(words_check(argv, known, err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

static const char *const one_patient[] = { "TH-01", NULL };
static const char *const one_out[] = { "/tmp/o", NULL };
static const char *const three_in[] = { "a", "b c", "d", NULL };
static const char *const no_in[] = { NULL };

/* cmd split and expanded with vals must give the words after it. */
static void
expand_is(const char *cmd, const struct word_value *vals, size_t n, ...)
{
	const char *want[32];
	char err[256] = "", **w, **x;
	size_t i = 0;
	va_list ap;

	va_start(ap, n);
	while ((want[i] = va_arg(ap, const char *)) != NULL)
		i++;
	va_end(ap);
	w = words_split(cmd, err, sizeof(err));
	if (!w)
		fail_msg("split [%s]: %s", cmd, err);
	x = words_expand(w, vals, n);
	assert_strv(x, want);
	strv_free(x);
	strv_free(w);
}

static void
test_expand(void **state)
{
	const struct word_value many[] = {
		{ "patient", one_patient }, { "out", one_out }, { "in", three_in },
	};
	const struct word_value none[] = { { "in", no_in }, { "patient", one_patient } };

	(void)state;
	expand_is("conv -o {out}/x -p {patient}", many, 3, "conv", "-o", "/tmp/o/x", "-p",
	    "TH-01", NULL);
	expand_is("{patient}-{patient}", many, 3, "TH-01-TH-01", NULL);
	/* A whole-word {in} is one word per value, quoted or not. */
	expand_is("cp {in} dst", many, 3, "cp", "a", "b c", "d", "dst", NULL);
	expand_is("cp \"{in}\" dst", many, 3, "cp", "a", "b c", "d", "dst", NULL);
	expand_is("cp {in} {in}", many, 3, "cp", "a", "b c", "d", "a", "b c", "d", NULL);
	/* Inside a longer word the values are joined by single spaces. */
	expand_is("--in={in} {in}.", many, 3, "--in=a b c d", "a b c d.", NULL);
	/* No values: a whole word goes, a part of a word is empty. */
	expand_is("cp {in} dst", none, 2, "cp", "dst", NULL);
	expand_is("{in}", none, 2, NULL);
	expand_is("x{in}y {patient}", none, 2, "xy", "TH-01", NULL);
	/* {{ and }} are braces, in quotes or not; what they hold is text. */
	expand_is("awk '{{print $1}}' {in}", many, 3, "awk", "{print $1}", "a", "b c", "d", NULL);
	expand_is("{{in}} {{{out}}} }}{{", many, 3, "{in}", "{/tmp/o}", "}{", NULL);
	/* Unchecked: an unknown name is empty, a lone brace stays. */
	expand_is("a{nope}b {nope} a{b }", many, 3, "ab", "", "a{b", "}", NULL);
	expand_is("{patient}", NULL, 0, "", NULL);
}

static void
test_expand_values_are_text(void **state)
{
	static const char *const hostile[] = {
		"{in}", "{{x}}", "}", "{", "$(touch x)", "`id`", "${HOME}", "it's \"q\"",
		"a b", "", "\\", "*", "~", "-rf /", "a\nb",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const char *const v[] = { hostile[i], NULL };
		const char *const two[] = { hostile[i], hostile[i], NULL };
		const struct word_value vals[] = { { "patient", v }, { "in", two } };
		char *joined = NULL;

		expand_is("echo {patient}", vals, 2, "echo", hostile[i], NULL);
		expand_is("{in}", vals, 2, hostile[i], hostile[i], NULL);
		joined = malloc(2 * strlen(hostile[i]) + 4);
		assert_non_null(joined);
		sprintf(joined, "<%s %s>", hostile[i], hostile[i]);
		expand_is("<{in}>", vals, 2, joined, NULL);
		free(joined);
		joined = malloc(strlen(hostile[i]) + 3);
		assert_non_null(joined);
		sprintf(joined, "{%s}", hostile[i]);
		expand_is("{{{patient}}}", vals, 2, joined, NULL);
		free(joined);
	}
}

/* split(join(argv)) must be argv. */
static void
roundtrip(char *const *argv)
{
	char err[256] = "", *line = words_join(argv), **back;

	back = words_split(line, err, sizeof(err));
	if (!back)
		fail_msg("split of join [%s]: %s", line, err);
	assert_strv(back, (const char *const *)argv);
	strv_free(back);
	free(line);
}

/* words_join of the words after want, then NULL, must be want. */
static void
join_is(const char *want, ...)
{
	char *argv[32], *line;
	size_t n = 0;
	va_list ap;

	va_start(ap, want);
	while ((argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	line = words_join(argv);
	assert_string_equal(line, want);
	free(line);
	roundtrip(argv);
}

static void
test_join(void **state)
{
	char *none[] = { NULL }, *line;

	(void)state;
	join_is("echo a/b.c x=1 --o=v -j2 a,b:c@d%e+f_", "echo", "a/b.c", "x=1", "--o=v", "-j2",
	    "a,b:c@d%e+f_", NULL);
	join_is("'a=b' c=d", "a=b", "c=d", NULL);
	join_is("'a b' '' 'it'\\''s' ''\\'''", "a b", "", "it's", "'", NULL);
	join_is("'$HOME' '$(touch x)' '*' '~' '{in}' '\\' 'a\"b' '#x' '^'", "$HOME", "$(touch x)",
	    "*", "~", "{in}", "\\", "a\"b", "#x", "^", NULL);
	join_is("'a\nb' 'c\td' '\x1b[0m'", "a\nb", "c\td", "\x1b[0m", NULL);
	join_is("'\xc3\xbc'", "\xc3\xbc", NULL);
	join_is("''\\'''\\'''\\'''", "'''", NULL);
	line = words_join(none);
	assert_string_equal(line, "");
	free(line);
}

/* xorshift64: the same strings on every libc. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random printable commands, heavy in what the splitter treats specially:
 * split never crashes, and what it splits joins back into the same words. */
static void
test_split_random(void **state)
{
	static const char special[] = "'\"\\ \t{}$`ab";
	uint64_t seed = 0x9e3779b97f4a7c15u;
	char cmd[64], err[256];
	int ok = 0, bad = 0;

	(void)state;
	for (int t = 0; t < 20000; t++) {
		size_t len = rnd(&seed) % 40, i;
		char **w;

		for (i = 0; i < len; i++) {
			uint64_t r = rnd(&seed);

			cmd[i] = r & 1 ? special[(r >> 1) % (sizeof(special) - 1)] :
			    (char)(0x20 + (r >> 1) % 95);
		}
		cmd[len] = '\0';
		w = words_split(cmd, err, sizeof(err));
		if (!w) {
			assert_true(err[0] != '\0');
			bad++;
			continue;
		}
		ok++;
		roundtrip(w);
		strv_free(w);
	}
	/* Both paths taken often enough for the loop to mean something. */
	assert_true(ok > 2000);
	assert_true(bad > 2000);
}

/* Random words of any bytes but NUL, empty ones too: join, then split,
 * gives them back. */
static void
test_join_random(void **state)
{
	uint64_t seed = 42;
	char *argv[9], buf[8][16];

	(void)state;
	for (int t = 0; t < 5000; t++) {
		size_t n = 1 + rnd(&seed) % 8;

		for (size_t k = 0; k < n; k++) {
			size_t len = rnd(&seed) % 16;

			for (size_t i = 0; i < len; i++)
				buf[k][i] = (char)(1 + rnd(&seed) % 255);
			buf[k][len] = '\0';
			argv[k] = buf[k];
		}
		argv[n] = NULL;
		roundtrip(argv);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_plain),
		cmocka_unit_test(test_split_single_quotes),
		cmocka_unit_test(test_split_double_quotes),
		cmocka_unit_test(test_split_backslash),
		cmocka_unit_test(test_split_adjacent),
		cmocka_unit_test(test_split_empty_words),
		cmocka_unit_test(test_split_no_expansion),
		cmocka_unit_test(test_split_errors),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_expand_values_are_text),
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_split_random),
		cmocka_unit_test(test_join_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
