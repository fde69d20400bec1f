/*
 * test-omop.c - what the omop stage reads and writes as text: a row as an
 * RFC 4180 line, person_map read from a CSV file (quoting, a byte order
 * mark, CRLF, and each error with its file:line), and the concepts taken
 * from an Athena CONCEPT.csv.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "omop-int.h"
#include "rmtree.h"
#include "util.h"

static char dir[] = "/tmp/test-omop.XXXXXX";

/* dir/name with content text; the path, malloc'd. */
static char *
put(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_csv_line(void **state)
{
	char *vals[] = { "1", NULL, "a,b", "say \"hi\"", "two\nlines", "" };
	char *line;

	(void)state;
	line = csv_line(vals, 6);
	assert_string_equal(line, "1,,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",");
	free(line);
}

/* person_map text that must read, and what it maps. */
static void
test_persons_ok(void **state)
{
	struct htab map;
	char err[256], *path;
	const struct person *p;

	(void)state;
	htab_init(&map);
	path = put("ok.csv", "\xef\xbb\xbfsite,person_id,patient_id\r\n"
	    "\"Leiden, \"\"A\"\"\",7,TH-1\r\n"
	    "\r\n"
	    "x,0,\"TH-2\nwith a line break\"\r\n"
	    "y,9223372036854775807,TH-3");
	assert_int_equal(csv_persons(path, &map, err, sizeof(err)), 0);
	assert_int_equal(map.len, 3);
	p = htab_get(&map, "TH-1");
	assert_non_null(p);
	assert_int_equal(p->id, 7);
	assert_int_equal(p->line, 2);
	p = htab_get(&map, "TH-2\nwith a line break");
	assert_non_null(p);
	assert_int_equal(p->id, 0);
	assert_int_equal(p->line, 4);
	p = htab_get(&map, "TH-3");
	assert_non_null(p);
	assert_int_equal(p->id, INT64_MAX);
	assert_int_equal(p->line, 6);
	persons_free(&map);
	free(path);
}

/* person_map text that must fail with exactly msg after "<path>". */
static void
persons_fail(const char *text, const char *msg)
{
	struct htab map;
	char err[512], *path = put("bad.csv", text), *want = xasprintf("%s%s", path, msg);

	htab_init(&map);
	assert_int_equal(csv_persons(path, &map, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	persons_free(&map);
	free(want);
	free(path);
}

static void
test_persons_bad(void **state)
{
	char *long_line = xmalloc(5000);

	(void)state;
	persons_fail("", ": empty: the header must name the columns patient_id and person_id");
	persons_fail("patient,person_id\n", ":1: no column patient_id: the header must name "
	    "the columns patient_id and person_id");
	persons_fail("patient_id,person_id,person_id\n", ":1: column person_id twice");
	persons_fail("patient_id,person_id\nA,1\nB\n", ":3: 1 field, patient_id and person_id "
	    "are fields 1 and 2");
	persons_fail("patient_id,person_id\nA,-1\n", ":2: person_id '-1' of patient_id 'A' is "
	    "not a non-negative integer");
	persons_fail("patient_id,person_id\nA, 1\n", ":2: person_id ' 1' of patient_id 'A' is "
	    "not a non-negative integer");
	persons_fail("patient_id,person_id\nA,9223372036854775808\n", ":2: person_id "
	    "'9223372036854775808' of patient_id 'A' is not a non-negative integer");
	persons_fail("patient_id,person_id\n,1\n", ":2: patient_id is empty");
	persons_fail("patient_id,person_id\nA,1\n\n\"A\",2\n", ":4: patient_id 'A' again "
	    "(first on line 2)");
	persons_fail("patient_id,person_id\n\"A,1\n", ":2: a quoted field is not closed");
	persons_fail("patient_id,person_id\n\"A\"x,1\n", ":2: text after a closing quote (a quote "
	    "inside a quoted field is written \"\")");
	persons_fail("patient_id,person_id\nA\"B,1\n", ":2: a quote inside a field that does not "
	    "begin with one");
	persons_fail("patient_id,person_id\rA,1\n", ":1: a carriage return not before a line feed");
	memset(long_line, 'x', 4999);
	memcpy(long_line, "patient_id,person_id\n", 21);
	long_line[4999] = '\0';
	persons_fail(long_line, ":2: record longer than 4095 bytes");
	free(long_line);
}

static const char concept_header[] = "concept_id\tconcept_name\tdomain_id\tvocabulary_id\t"
    "concept_class_id\tstandard_concept\tconcept_code\tvalid_start_date\tvalid_end_date\t"
    "invalid_reason\n";

static void
test_vocab(void **state)
{
	struct vocab v = { 0 };
	char err[512], *text, *path;

	(void)state;
	text = xasprintf("%s"
	    "30\tComputed Tomography\tMeas Value\tDICOM\tDICOM Value Sets\t\tCT\t19930101\t20991231\t\n"
	    "20\tComputed Tomography\tMeas Value\tDICOM\tDICOM Value Sets\t\tCT\t19930101\t20991231\t\n"
	    "10\tComputed Tomography\tMeas Value\tDICOM\tDICOM Value Sets\t\tCT\t19930101\t20201231\tD\n"
	    "40\tCT\tProcedure\tSNOMED\tProcedure\tS\tCT\t19700101\t20991231\t\n"
	    "50\tBrain\tSpec Anatomic Site\tSNOMED\tBody Structure\tS\t12738006\t19700101\t20991231\t\n"
	    "5\tBrain\tSpec Anatomic Site\tSNOMED\tBody Structure\t\t1\t19700101\t20991231\t\r\n"
	    "\n", concept_header);
	path = put("CONCEPT.csv", text);
	free(text);
	assert_int_equal(vocab_check(&v, path, err, sizeof(err)), 0);
	assert_int_equal(vocab_load(&v, err, sizeof(err)), 0);
	/* The smallest valid id; not another vocabulary's code. */
	assert_int_equal(vocab_modality(&v, "CT"), 20);
	assert_int_equal(vocab_modality(&v, " CT "), 20);
	assert_int_equal(vocab_modality(&v, "ct"), 0);
	assert_int_equal(vocab_modality(&v, "MR"), 0);
	assert_int_equal(vocab_modality(&v, NULL), 0);
	/* A standard concept's whole name, any case. */
	assert_int_equal(vocab_site(&v, "BRAIN"), 50);
	assert_int_equal(vocab_site(&v, "brain"), 50);
	assert_int_equal(vocab_site(&v, "BRAINSTEM"), 0);
	vocab_free(&v);
	free(path);

	/* No vocabulary: every concept is 0. */
	assert_int_equal(vocab_check(&v, NULL, err, sizeof(err)), 0);
	assert_int_equal(vocab_load(&v, err, sizeof(err)), 0);
	assert_int_equal(vocab_modality(&v, "CT"), 0);

	path = put("notconcept.csv", "concept_id,concept_name\n1,x\n");
	assert_int_equal(vocab_check(&v, path, err, sizeof(err)), -1);
	text = xasprintf("%s:1: no column concept_id: not an OMOP CONCEPT.csv (tab-separated, "
	    "with a header row, as Athena gives it)", path);
	assert_string_equal(err, text);
	free(text);
	free(path);
	vocab_free(&v);

	/* A bad line is found when the file is read, with its line. */
	text = xasprintf("%s1\tx\tMeas Value\tDICOM\tc\t\tCT\t1\t2\t\nx1\tx\td\tDICOM\tc\t\tMR\t1\t2\t\n",
	    concept_header);
	path = put("badline.csv", text);
	free(text);
	assert_int_equal(vocab_check(&v, path, err, sizeof(err)), 0);
	assert_int_equal(vocab_load(&v, err, sizeof(err)), -1);
	text = xasprintf("vocabulary %s:3: concept_id 'x1' is not a number", path);
	assert_string_equal(err, text);
	/* Every job that asks gets the same answer, without reading again. */
	assert_int_equal(vocab_load(&v, err, sizeof(err)), -1);
	assert_string_equal(err, text);
	free(text);
	free(path);
	vocab_free(&v);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	return rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_line),
		cmocka_unit_test(test_persons_ok),
		cmocka_unit_test(test_persons_bad),
		cmocka_unit_test(test_vocab),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
