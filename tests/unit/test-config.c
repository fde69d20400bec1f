/*
 * test-config.c - thlhp.ini read by config_load_string: values, defaults,
 * the exact "file:line: [section] key: what" of every error, ${VAR}
 * expansion and inline comments; the zip settings string; and [select]
 * applied by select_init/select_patient/select_series.
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
#include "config.h"
#include "util.h"
#include "names.h"
#include "select.h"
#include "util.h"

#define NAME "t.ini"

/* The smallest config that loads. */
#define MINIMAL "[pacs]\nprotocol = folder\npath = /srv/in\n"
/* The smallest DIMSE config (retrieve = move by default). */
#define DIMSE "[pacs]\nprotocol = dimse\nhost = h\nport = 104\ncalled_aet = X\n"

static const char full[] =
    "; every key of the table\n"                     /* 1 */
    "[pacs]\n"                                       /* 2 */
    "protocol = dimse\n"                             /* 3 */
    "host = pacs.example.org\n"                      /* 4 */
    "port = 104\n"                                   /* 5 */
    "called_aet = ORTHANC\n"                         /* 6 */
    "calling_aet = THLHP_TEST\n"                     /* 7 */
    "retrieve = get\n"                               /* 8 */
    "move_destination = MOVEDEST\n"                  /* 9 */
    "store_port = 11112\n"                           /* 10 */
    "max_associations = 8\n"                         /* 11 */
    "max_requests_per_minute = 300\n"                /* 12 */
    "timeout = 60\n"                                 /* 13 */
    "retries = 0\n"                                  /* 14 */
    "tls = yes\n"                                    /* 15 */
    "tls_ca = /etc/ssl/ca.pem\n"                     /* 16 */
    "tls_cert = /etc/ssl/cert.pem\n"                 /* 17 */
    "tls_key = /etc/ssl/key.pem\n"                   /* 18 */
    "url = http://127.0.0.1:8042/dicom-web\n"        /* 19 */
    "auth = bearer abc123\n"                         /* 20 */
    "path = /srv/incoming\n"                         /* 21 */
    "\n"                                             /* 22 */
    "[select]\n"                                     /* 23 */
    "patient_id = TH-* AB?\n"                        /* 24 */
    "patient_id_regex = ^P[0-9]+$\n"                 /* 25 */
    "patients_file = /etc/thlhp/ids.txt\n"           /* 26 */
    "modality = CT MR\n"                             /* 27 */
    "study_date = 20200101-20201231\n"               /* 28 */
    "\n"                                             /* 29 */
    "[output]\n"                                     /* 30 */
    "dicom_dir = out/dicom\n"                        /* 31 */
    "zip_dir = out/zip\n"                            /* 32 */
    "delimiter = __n\n"                              /* 33 */
    "compression = bzip2\n"                          /* 34 */
    "level = 9\n"                                    /* 35 */
    "keep_old = yes\n"                               /* 36 */
    "\n"                                             /* 37 */
    "[state]\n"                                      /* 38 */
    "url = sqlite:/var/lib/thlhp/state.db\n"         /* 39 */
    "\n"                                             /* 40 */
    "[notify]\n"                                     /* 41 */
    "ping_url = https://hc.example.org/ping/abc\n";  /* 42 */

/* Load text that must be valid. */
static void
load_ok(struct config *cfg, const char *text)
{
	char *err = NULL;

	if (config_load_string(cfg, NAME, text, &err) != 0)
		fail_msg("config rejected: %s", err ? err : "(no message)");
	assert_null(err);
}

/* Load text that must fail with exactly msg. */
static void
load_fails(const char *text, const char *msg)
{
	struct config cfg;
	char *err = NULL;

	if (config_load_string(&cfg, NAME, text, &err) != -1)
		fail_msg("config accepted, expected: %s", msg);
	assert_non_null(err);
	assert_string_equal(err, msg);
	free(err);
	/* On failure nothing is left to free. */
	assert_null(cfg.file);
	assert_null(cfg.output.dicom_dir);
}

/* Load text that must fail with a message starting with prefix and
 * containing part; returns the message (to free). */
static char *
load_fails_like(const char *text, const char *prefix, const char *part)
{
	struct config cfg;
	char *err = NULL;

	if (config_load_string(&cfg, NAME, text, &err) != -1)
		fail_msg("config accepted, expected an error starting %s", prefix);
	assert_non_null(err);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, part))
		fail_msg("error \"%s\": expected to start with \"%s\" and name \"%s\"", err, prefix, part);
	return err;
}

static void
test_full_config(void **state)
{
	struct config cfg;
	char *where;

	(void)state;
	load_ok(&cfg, full);
	assert_string_equal(cfg.file, NAME);
	assert_string_equal(cfg.pacs.protocol, "dimse");
	assert_string_equal(cfg.pacs.host, "pacs.example.org");
	assert_int_equal(cfg.pacs.port, 104);
	assert_string_equal(cfg.pacs.called_aet, "ORTHANC");
	assert_string_equal(cfg.pacs.calling_aet, "THLHP_TEST");
	assert_int_equal(cfg.pacs.retrieve, RETRIEVE_GET);
	assert_string_equal(cfg.pacs.move_destination, "MOVEDEST");
	assert_int_equal(cfg.pacs.store_port, 11112);
	assert_int_equal(cfg.pacs.max_associations, 8);
	assert_int_equal(cfg.pacs.max_requests_per_minute, 300);
	assert_int_equal(cfg.pacs.timeout, 60);
	assert_int_equal(cfg.pacs.retries, 0);
	assert_int_equal(cfg.pacs.tls, 1);
	assert_string_equal(cfg.pacs.tls_ca, "/etc/ssl/ca.pem");
	assert_string_equal(cfg.pacs.tls_cert, "/etc/ssl/cert.pem");
	assert_string_equal(cfg.pacs.tls_key, "/etc/ssl/key.pem");
	assert_string_equal(cfg.pacs.url, "http://127.0.0.1:8042/dicom-web");
	assert_string_equal(cfg.pacs.auth, "bearer abc123");
	assert_string_equal(cfg.pacs.path, "/srv/incoming");
	assert_int_equal(cfg.pacs.protocol_line, 3);
	assert_string_equal(cfg.select.patient_id, "TH-* AB?");
	assert_string_equal(cfg.select.patient_id_regex, "^P[0-9]+$");
	assert_string_equal(cfg.select.patients_file, "/etc/thlhp/ids.txt");
	assert_string_equal(cfg.select.modality, "CT MR");
	assert_string_equal(cfg.select.study_date, "20200101-20201231");
	assert_string_equal(cfg.output.dicom_dir, "out/dicom");
	assert_string_equal(cfg.output.zip_dir, "out/zip");
	assert_string_equal(cfg.output.delimiter, "__n");
	assert_int_equal(cfg.output.compression, COMP_BZIP2);
	assert_int_equal(cfg.output.level, 9);
	assert_int_equal(cfg.output.keep_old, 1);
	assert_string_equal(cfg.state.url, "sqlite:/var/lib/thlhp/state.db");
	assert_string_equal(cfg.notify.ping_url, "https://hc.example.org/ping/abc");

	/* Where each key was set, for messages about its value. */
	where = config_where(&cfg, "pacs", "port");
	assert_string_equal(where, NAME ":5: [pacs] port");
	free(where);
	where = config_where(&cfg, "output", "level");
	assert_string_equal(where, NAME ":35: [output] level");
	free(where);
	where = config_where(&cfg, "notify", "ping_url");
	assert_string_equal(where, NAME ":42: [notify] ping_url");
	free(where);
	config_free(&cfg);
}

static void
test_defaults(void **state)
{
	struct config cfg;
	char *where;

	(void)state;
	load_ok(&cfg, MINIMAL);
	assert_string_equal(cfg.pacs.protocol, "folder");
	assert_string_equal(cfg.pacs.path, "/srv/in");
	assert_null(cfg.pacs.host);
	assert_int_equal(cfg.pacs.port, 0);
	assert_null(cfg.pacs.called_aet);
	assert_string_equal(cfg.pacs.calling_aet, "THLHP");
	assert_int_equal(cfg.pacs.retrieve, RETRIEVE_MOVE);
	/* The DIMSE keys' defaults are the DIMSE source's to set. */
	assert_null(cfg.pacs.move_destination);
	assert_int_equal(cfg.pacs.store_port, 11113);
	assert_int_equal(cfg.pacs.max_associations, 4);
	assert_int_equal(cfg.pacs.max_requests_per_minute, 600);
	assert_int_equal(cfg.pacs.timeout, 30);
	assert_int_equal(cfg.pacs.retries, 5);
	assert_int_equal(cfg.state.lease, 60);
	assert_int_equal(cfg.pacs.tls, 0);
	assert_null(cfg.pacs.tls_ca);
	assert_null(cfg.pacs.url);
	assert_null(cfg.pacs.auth);
	assert_null(cfg.select.patient_id);
	assert_null(cfg.select.patient_id_regex);
	assert_null(cfg.select.patients_file);
	assert_null(cfg.select.modality);
	assert_null(cfg.select.study_date);
	assert_string_equal(cfg.output.dicom_dir, "data/dicom");
	assert_string_equal(cfg.output.zip_dir, "data/zip");
	assert_string_equal(cfg.output.delimiter, "__seriesCount");
	assert_int_equal(cfg.output.compression, COMP_DEFLATE);
	assert_int_equal(cfg.output.level, 1);
	assert_int_equal(cfg.output.keep_old, 0);
	assert_string_equal(cfg.state.url, "sqlite:.thlhp/state.db");
	assert_null(cfg.notify.ping_url);
	/* A key not in the file is named without a line. */
	where = config_where(&cfg, "pacs", "timeout");
	assert_string_equal(where, NAME ": [pacs] timeout");
	free(where);
	config_free(&cfg);

	/* With DIMSE, move_destination follows calling_aet, the storage
	 * SCP takes the PACS's AE title only and listens on loopback for a
	 * PACS on this host. */
	load_ok(&cfg, DIMSE "calling_aet = ME\n");
	assert_string_equal(cfg.pacs.move_destination, "ME");
	assert_string_equal(cfg.pacs.peer_aet, "X");
	assert_string_equal(cfg.pacs.store_bind, "0.0.0.0");
	config_free(&cfg);
	load_ok(&cfg, "[pacs]\nprotocol = dimse\nhost = 127.0.0.2\nport = 104\ncalled_aet = X\n");
	assert_string_equal(cfg.pacs.move_destination, "THLHP");
	assert_string_equal(cfg.pacs.store_bind, "127.0.0.1");
	config_free(&cfg);
}

static void
test_sample_config_loads(void **state)
{
	struct config cfg;

	(void)state;
	load_ok(&cfg, config_sample);
	assert_string_equal(cfg.pacs.protocol, "dimse");
	assert_string_equal(cfg.pacs.host, "127.0.0.1");
	assert_int_equal(cfg.pacs.port, 4242);
	/* Inline comments are not part of the value. */
	assert_string_equal(cfg.pacs.called_aet, "ORTHANC");
	assert_string_equal(cfg.select.patient_id, "*");
	assert_null(cfg.pacs.url);
	assert_null(cfg.pacs.path);
	assert_int_equal(cfg.output.compression, COMP_DEFLATE);
	assert_int_equal(cfg.output.level, 1);
	assert_string_equal(cfg.state.url, "sqlite:.thlhp/state.db");
	config_free(&cfg);
}

static void
test_inline_comments(void **state)
{
	struct config cfg;

	(void)state;
	load_ok(&cfg,
	    "; a comment line\n"
	    "# another\n"
	    "[pacs]   ; section comment\n"
	    "protocol = dimse ; dimse | dicomweb | folder\n"
	    "host = 10.0.0.1\t; tab before the comment\n"
	    "port = 4242        ; the port\n"
	    "called_aet = ORTHANC ; the PACS's AE title\n"
	    "auth = basic user:pa;ss\n"
	    "[output]\n"
	    "level = 3 ;\n");
	assert_string_equal(cfg.pacs.host, "10.0.0.1");
	assert_int_equal(cfg.pacs.port, 4242);
	assert_string_equal(cfg.pacs.called_aet, "ORTHANC");
	/* A ';' not after whitespace is part of the value (passwords). */
	assert_string_equal(cfg.pacs.auth, "basic user:pa;ss");
	assert_int_equal(cfg.output.level, 3);
	config_free(&cfg);
}

static void
test_crlf_lines(void **state)
{
	struct config cfg;

	(void)state;
	load_ok(&cfg, "[pacs]\r\nprotocol = folder\r\npath = /srv/in\r\n[output]\r\nlevel = 4\r\n");
	assert_string_equal(cfg.pacs.protocol, "folder");
	assert_string_equal(cfg.pacs.path, "/srv/in");
	assert_int_equal(cfg.output.level, 4);
	config_free(&cfg);
}

static void
test_unknown_key(void **state)
{
	(void)state;
	load_fails(MINIMAL "bogus = 1\n", NAME ":4: [pacs] bogus: unknown key");
	load_fails(MINIMAL "[output]\nlevel = 2\nzip = x\n", NAME ":6: [output] zip: unknown key");
	load_fails("port = 1\n" MINIMAL, NAME ":1: port: key outside any section");
}

static void
test_unknown_section(void **state)
{
	char *err;

	(void)state;
	err = load_fails_like(MINIMAL "[bogus]\nx = 1\n", NAME ":4: ", "[bogus]");
	assert_non_null(strstr(err, "unknown section"));
	free(err);
	/* An empty section is reported too, though no key is in it. */
	err = load_fails_like(MINIMAL "[bogus]\n", NAME ":4: ", "[bogus]");
	assert_non_null(strstr(err, "unknown section"));
	free(err);
	err = load_fails_like("[bogus]\n; nothing here\n" MINIMAL, NAME ":1: ", "[bogus]");
	assert_non_null(strstr(err, "unknown section"));
	free(err);
}

static void
test_duplicate_key(void **state)
{
	(void)state;
	load_fails(MINIMAL "path = /srv/other\n",
	    NAME ":4: [pacs] path: given twice (first on line 3)");
	/* Also across two blocks of the same section. */
	load_fails(MINIMAL "[output]\nlevel = 2\n[pacs]\nprotocol = dimse\n",
	    NAME ":7: [pacs] protocol: given twice (first on line 2)");
}

static void
test_port_range(void **state)
{
	struct config cfg;

	(void)state;
	load_fails("[pacs]\nprotocol = dimse\nhost = h\nport = 0\ncalled_aet = X\n",
	    NAME ":4: [pacs] port: '0' is not a whole number from 1 to 65535");
	load_fails("[pacs]\nprotocol = dimse\nhost = h\nport = 70000\ncalled_aet = X\n",
	    NAME ":4: [pacs] port: '70000' is not a whole number from 1 to 65535");
	load_fails("[pacs]\nprotocol = dimse\nhost = h\nport = 104x\ncalled_aet = X\n",
	    NAME ":4: [pacs] port: '104x' is not a whole number from 1 to 65535");
	load_fails(MINIMAL "store_port = -1\n",
	    NAME ":4: [pacs] store_port: '-1' is not a whole number from 1 to 65535");
	/* The bounds themselves are fine. */
	load_ok(&cfg, "[pacs]\nprotocol = dimse\nhost = h\nport = 65535\ncalled_aet = X\nstore_port = 1\n");
	assert_int_equal(cfg.pacs.port, 65535);
	assert_int_equal(cfg.pacs.store_port, 1);
	config_free(&cfg);
}

static void
test_ae_title(void **state)
{
	struct config cfg;

	(void)state;
	load_fails("[pacs]\nprotocol = dimse\nhost = h\nport = 104\ncalled_aet = ABCDEFGHIJKLMNOPQ\n",
	    NAME ":5: [pacs] called_aet: AE title 'ABCDEFGHIJKLMNOPQ' must be 1 to 16 characters");
	load_fails(MINIMAL "calling_aet = A\\B\n",
	    NAME ":4: [pacs] calling_aet: AE title 'A\\B' has a character DICOM does not allow");
	load_ok(&cfg, "[pacs]\nprotocol = dimse\nhost = h\nport = 104\ncalled_aet = ABCDEFGHIJKLMNOP\n");
	assert_string_equal(cfg.pacs.called_aet, "ABCDEFGHIJKLMNOP");
	config_free(&cfg);
}

static void
test_level_range(void **state)
{
	(void)state;
	load_fails(MINIMAL "[output]\nlevel = 0\n",
	    NAME ":5: [output] level: '0' is not a whole number from 1 to 9");
	load_fails(MINIMAL "[output]\nlevel = 10\n",
	    NAME ":5: [output] level: '10' is not a whole number from 1 to 9");
	load_fails(MINIMAL "[state]\nlease = 1\n",
	    NAME ":5: [state] lease: '1' is not a whole number from 2 to 86400");
	load_fails(MINIMAL "[state]\nlease = 86401\n",
	    NAME ":5: [state] lease: '86401' is not a whole number from 2 to 86400");
}

/* Every whole-number key at and past both of its limits, and far past. */
static char *
limit_config(const char *section, const char *key, const char *val)
{
	int pacs = strcmp(section, "pacs") == 0;

	return xasprintf("[pacs]\nprotocol = dimse\nhost = h\ncalled_aet = X\n%s%s%s%s%s"
	    "[%s]\n%s = %s\n", pacs && strcmp(key, "port") == 0 ? "" : "port = 104\n",
	    pacs ? key : "", pacs ? " = " : "", pacs ? val : "", pacs ? "\n" : "",
	    pacs ? "output" : section, pacs ? "level" : key, pacs ? "1" : val);
}

/* [rule NAME] sections: read, split, checked (config-rule.c). */
static void
test_rules(void **state)
{
	struct config cfg;

	(void)state;
	load_ok(&cfg, MINIMAL
	    "[rule nifti]\n"                                            /* 4 */
	    "for = series\n"
	    "after = validate\n"
	    "command = dcm2niix -z y -f '{series_number} x' -o {out} {in}\n"
	    "output = data/nifti/{patient_file}/{series}/\n"
	    "jobs = 2\n"
	    "timeout = 1h\n"
	    "[rule sync]\n"                                             /* 11 */
	    "for = patient\n"
	    "after = nifti\n"
	    "command = rsync -a {in} \"rsync://h/x y/\"\n");
	assert_int_equal(cfg.nrules, 2);
	assert_string_equal(cfg.rules[0].name, "nifti");
	assert_int_equal(cfg.rules[0].line, 4);
	assert_int_equal(cfg.rules[0].per_patient, 0);
	assert_int_equal(cfg.rules[0].jobs, 2);
	assert_int_equal(cfg.rules[0].timeout, 3600);
	assert_string_equal(cfg.rules[0].argv[4], "{series_number} x");
	assert_string_equal(cfg.rules[0].argv[6], "{out}");
	assert_null(cfg.rules[0].argv[8]);
	assert_int_equal(cfg.rules[1].per_patient, 1);
	assert_string_equal(cfg.rules[1].argv[3], "rsync://h/x y/");
	config_free(&cfg);

	load_fails(MINIMAL "[rule x]\nfor = series\nafter = validate\ncommand = true\nbogus = 1\n",
	    NAME ":8: [rule x] bogus: unknown key (a rule takes for, after, command, output, jobs, "
	    "timeout)");
	load_fails(MINIMAL "[rule x]\nfor = series\nafter = validat\ncommand = true\n",
	    NAME ":6: [rule x] after: no stage \"validat\" (validate, zip or a rule's name)");
	load_fails(MINIMAL "[rule a]\nfor = patient\nafter = b\ncommand = true\n"
	    "[rule b]\nfor = patient\nafter = a\ncommand = true\n",
	    NAME ":6: [rule a] after: rules that come after each other in a circle");
	load_fails(MINIMAL "[rule x]\nfor = series\nafter = validate\ncommand = echo {seris}\n",
	    NAME ":7: [rule x] command: unknown placeholder {seris}; known: {patient} "
	    "{patient_file} {in} {out} {study} {series} {series_number} {series_description} "
	    "{modality} {study_date}");
	load_fails(MINIMAL "[rule x]\nfor = series\nafter = validate\ncommand = cp {in} {out}\n",
	    NAME ":7: [rule x] command: {out} is where the command writes its output: say where "
	    "it goes with output =");
	load_fails(MINIMAL "[rule zip]\nfor = patient\nafter = validate\ncommand = true\n",
	    NAME ":4: [rule zip]: zip is a built-in stage's name: choose another");
	load_fails(MINIMAL "[rule x]\nfor = series\nafter = zip\ncommand = true\n",
	    NAME ":6: [rule x] after: zip is made per patient: a rule for = series cannot come "
	    "after it");
	load_fails(MINIMAL "[rule x]\nfor = series\nafter = validate\ncommand = echo 'open\n",
	    NAME ":7: [rule x] command: unterminated ' quote at column 6");
	load_fails(MINIMAL "[rule x]\nfor = series\nafter = validate\n",
	    NAME ":4: [rule x] command: required");
	load_fails(MINIMAL "[rule X1]\nfor = series\n",
	    NAME ":4: [rule X1]: a rule's name is a lowercase letter, then lowercase letters, "
	    "digits, '_' and '-' (at most 32)");
	load_fails(MINIMAL "[rule x]\nfor = series\nafter = validate\ncommand = true\n"
	    "output = ../out/{series}\n",
	    NAME ":8: [rule x] output: '../out/{series}' leaves the working directory by '..': "
	    "write an absolute path if that is meant");
}

/* [pacs] full_query_every: a duration; a day unless set; 0 is every run. */
static void
test_durations(void **state)
{
	static const struct { const char *v; int sec; } ok[] = {
		{ "0", 0 }, { "45s", 45 }, { "30s", 30 }, { "90m", 5400 }, { "12h", 43200 },
		{ "1d", 86400 }, { "366d", 366 * 86400 },
	};
	static const char *const bad[] = { "", "d", "1w", "-1d", "1.5h", "1 d", "1dd", "367d", "45",
		"99999999999999999999" };
	struct config cfg;
	char *text, *part;

	(void)state;
	load_ok(&cfg, DIMSE);
	assert_int_equal(cfg.pacs.full_query_every, 86400);
	assert_int_equal(cfg.pacs.max_results, 0);
	config_free(&cfg);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		text = xasprintf(DIMSE "full_query_every = %s\n", ok[i].v);
		load_ok(&cfg, text);
		assert_int_equal(cfg.pacs.full_query_every, ok[i].sec);
		config_free(&cfg);
		free(text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		text = xasprintf(DIMSE "full_query_every = %s\n", bad[i]);
		part = xasprintf("[pacs] full_query_every: '%s' is not a duration", bad[i]);
		free(load_fails_like(text, NAME ":", part));
		free(part);
		free(text);
	}
}

static void
test_every_number_limit(void **state)
{
	static const struct { const char *section, *key; long min, max; } lim[] = {
		{ "pacs", "port", 1, 65535 },
		{ "pacs", "store_port", 1, 65535 },
		{ "pacs", "max_associations", 1, 64 },
		{ "pacs", "max_requests_per_minute", 1, 1000000 },
		{ "pacs", "timeout", 1, 86400 },
		{ "pacs", "retries", 0, 100 },
		{ "pacs", "max_results", 0, 10000000 },
		{ "output", "level", 1, 9 },
		{ "state", "lease", 2, 86400 },
	};
	static const char *const bad[] = {
		"99999999999999999999", "-99999999999999999999", "0x10", "1e3", "5 5", "", "+",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		const long v[] = { lim[i].min, lim[i].max, lim[i].min - 1, lim[i].max + 1 };
		struct config cfg;
		char num[32], *text, *part;

		for (int j = 0; j < 4; j++) {
			snprintf(num, sizeof(num), "%ld", v[j]);
			text = limit_config(lim[i].section, lim[i].key, num);
			if (j < 2) {
				load_ok(&cfg, text);
				config_free(&cfg);
			} else {
				part = xasprintf("[%s] %s: '%ld' is not a whole number from %ld to %ld",
				    lim[i].section, lim[i].key, v[j], lim[i].min, lim[i].max);
				free(load_fails_like(text, NAME ":", part));
				free(part);
			}
			free(text);
		}
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			text = limit_config(lim[i].section, lim[i].key, bad[j]);
			part = xasprintf("[%s] %s: '%s' is not a whole number", lim[i].section,
			    lim[i].key, bad[j]);
			free(load_fails_like(text, NAME ":", part));
			free(part);
			free(text);
		}
	}
}

static void
test_max_instance_size(void **state)
{
	static const struct { const char *v; long long want; } good[] = {
		{ "1", 1 }, { "1048576", 1 << 20 }, { "512K", 512 << 10 }, { "1M", 1 << 20 },
		{ "4G", 4LL << 30 }, { "1T", 1LL << 40 },
	};
	static const char *const bad[] = { "0", "0K", "2T", "1P", "K", "-1K", "1.5G", "1 G", "" };
	struct config cfg;

	(void)state;
	load_ok(&cfg, MINIMAL);
	assert_true(cfg.pacs.max_instance_size == 4LL << 30);
	config_free(&cfg);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *text = xasprintf(MINIMAL "max_instance_size = %s\n", good[i].v);

		load_ok(&cfg, text);
		assert_true(cfg.pacs.max_instance_size == good[i].want);
		config_free(&cfg);
		free(text);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = xasprintf(MINIMAL "max_instance_size = %s\n", bad[i]);
		char *want = xasprintf("[pacs] max_instance_size: '%s' is not a size from 1 "
		    "bytes to 1T", bad[i]);

		free(load_fails_like(text, NAME ":4: ", want));
		free(want);
		free(text);
	}
}

static void
test_bad_numbers_and_enums(void **state)
{
	(void)state;
	load_fails(MINIMAL "max_associations = x\n",
	    NAME ":4: [pacs] max_associations: 'x' is not a whole number from 1 to 64");
	load_fails(MINIMAL "max_associations =\n",
	    NAME ":4: [pacs] max_associations: '' is not a whole number from 1 to 64");
	load_fails(MINIMAL "[output]\ncompression = zstd\n",
	    NAME ":5: [output] compression: 'zstd' is not one of store | deflate | bzip2");
	load_fails("[pacs]\nprotocol = ftp\n",
	    NAME ":2: [pacs] protocol: 'ftp' is not one of dimse | dicomweb | folder");
	load_fails(MINIMAL "retrieve = push\n",
	    NAME ":4: [pacs] retrieve: 'push' is not one of move | get");
	load_fails(MINIMAL "tls = maybe\n", NAME ":4: [pacs] tls: 'maybe' is not yes or no");
}

static void
test_protocol_required(void **state)
{
	char *err;

	(void)state;
	/* No line to point at: the key is absent; the message names it. */
	err = load_fails_like("[output]\nlevel = 3\n", NAME ":", "[pacs] protocol");
	assert_string_equal(err, NAME ": [pacs] protocol: required (dimse | dicomweb | folder)");
	free(err);
	err = load_fails_like("", NAME ":", "[pacs] protocol");
	free(err);
}

static void
test_protocol_needs_keys(void **state)
{
	(void)state;
	/* The line is the protocol's. */
	load_fails("[pacs]\n\nprotocol = folder\n",
	    NAME ":3: [pacs] path: required for protocol = folder");
	load_fails("[pacs]\nprotocol = dicomweb\n",
	    NAME ":2: [pacs] url: required for protocol = dicomweb");
	load_fails("[pacs]\nprotocol = dimse\nport = 104\ncalled_aet = X\n",
	    NAME ":2: [pacs] host: required for protocol = dimse");
	load_fails("[pacs]\nprotocol = dimse\nhost = h\ncalled_aet = X\n",
	    NAME ":2: [pacs] port: required for protocol = dimse");
	load_fails("[pacs]\nprotocol = dimse\nhost = h\nport = 104\n",
	    NAME ":2: [pacs] called_aet: required for protocol = dimse");
	load_fails(MINIMAL "path2 = x\n", NAME ":4: [pacs] path2: unknown key");
}

static void
test_combinations(void **state)
{
	(void)state;
	load_fails(MINIMAL "tls = yes\n", NAME ":4: [pacs] tls: tls = yes needs tls_ca");
	load_fails(MINIMAL "tls_cert = /c.pem\n", NAME ":4: [pacs] tls_cert: given without tls_key "
	    "(give our certificate and its private key, or neither)");
	load_fails(MINIMAL "tls = yes\ntls_ca = /ca.pem\ntls_key = /k.pem\n", NAME ":6: [pacs] tls_key: "
	    "given without tls_cert (give our certificate and its private key, or neither)");
	load_fails(DIMSE "tls = yes\ntls_ca = /ca.pem\n", NAME ":6: [pacs] tls: tls = yes with "
	    "retrieve = move needs tls_cert and tls_key (our storage SCP on store_port serves the "
	    "PACS over TLS)");
	load_fails(MINIMAL "[output]\ndelimiter = a/b\n",
	    NAME ":5: [output] delimiter: 'a/b': use letters, '.', '_' and '-' only");
	load_fails(MINIMAL "[output]\ndelimiter =\n",
	    NAME ":5: [output] delimiter: '': use letters, '.', '_' and '-' only");
	load_fails(MINIMAL "[output]\ndelimiter = __n%\n",
	    NAME ":5: [output] delimiter: '__n%': use letters, '.', '_' and '-' only");
	load_fails(MINIMAL "[output]\ndicom_dir = d\nzip_dir = d\n",
	    NAME ":6: [output] zip_dir: dicom_dir and zip_dir must differ");
	load_fails(MINIMAL "[output]\nzip_dir = data/dicom\n",
	    NAME ":5: [output] zip_dir: dicom_dir and zip_dir must differ");
	load_fails(MINIMAL "[output]\ndicom_dir =\n", NAME ":5: [output] dicom_dir: empty path");
}

/* The TLS combinations that are fine: no certificate of ours for C-GET
 * (the PACS may not ask for one), both for C-MOVE. */
static void
test_tls_ok(void **state)
{
	struct config cfg;

	(void)state;
	load_ok(&cfg, DIMSE "retrieve = get\ntls = yes\ntls_ca = /ca.pem\n");
	assert_int_equal(cfg.pacs.tls, 1);
	assert_null(cfg.pacs.tls_cert);
	config_free(&cfg);
	load_ok(&cfg, DIMSE "tls = yes\ntls_ca = /ca.pem\ntls_cert = /c.pem\ntls_key = /k.pem\n");
	assert_int_equal(cfg.pacs.retrieve, RETRIEVE_MOVE);
	assert_string_equal(cfg.pacs.tls_cert, "/c.pem");
	assert_string_equal(cfg.pacs.tls_key, "/k.pem");
	config_free(&cfg);
}

static void
test_syntax_error(void **state)
{
	char *err;

	(void)state;
	err = load_fails_like(MINIMAL "this is not a key value line\n", NAME ":4: ", "syntax error");
	free(err);
	err = load_fails_like(MINIMAL "[output\n", NAME ":4: ", "syntax error");
	free(err);
}

/* [omop]: its keys, its defaults, and check_omop's errors, each at the
 * line of the key it is about (the section's line when no key is). */
static void
test_omop(void **state)
{
	struct config cfg;

	(void)state;
	load_ok(&cfg, MINIMAL "[metadata]\n[omop]\nurl = postgresql://db/cdm\nperson_map = "
	    "cdm.persons\nvocabulary = /v/CONCEPT.csv\n");
	assert_int_equal(cfg.omop.on, 5);
	assert_string_equal(cfg.omop.url, "postgresql://db/cdm");
	assert_null(cfg.omop.dir);
	assert_string_equal(cfg.omop.schema, "omop");
	assert_string_equal(cfg.omop.person_map, "cdm.persons");
	assert_int_equal(cfg.omop.missing_person, MISSING_SKIP);
	assert_string_equal(cfg.omop.vocabulary, "/v/CONCEPT.csv");
	config_free(&cfg);
	load_ok(&cfg, MINIMAL "[metadata]\n[omop]\ndir = out/omop\nmissing_person = zero\n"
	    "schema = cdm_5_4\n");
	assert_string_equal(cfg.omop.dir, "out/omop");
	assert_int_equal(cfg.omop.missing_person, MISSING_ZERO);
	assert_null(cfg.omop.person_map);
	config_free(&cfg);

	load_fails(MINIMAL "[omop]\ndir = o\nmissing_person = zero\n", NAME ":4: [omop]: needs a "
	    "[metadata] section (its rows are made from the stored headers)");
	load_fails(MINIMAL "[metadata]\n[omop]\nmissing_person = zero\n", NAME ":5: [omop] url or "
	    "dir: required (a PostgreSQL URI to write into, or a folder for CSV files)");
	load_fails(MINIMAL "[metadata]\n[omop]\ndir = o\nurl = postgresql://db/x\nmissing_person = "
	    "zero\n", NAME ":7: [omop] url and dir: give one (a PostgreSQL URI to write into, or a "
	    "folder for CSV files)");
	load_fails(MINIMAL "[metadata]\n[omop]\nmissing_person = zero\nurl = mysql://db/x\n",
	    NAME ":7: [omop] url: 'mysql://db/x' is not a postgresql:// URI");
	load_fails(MINIMAL "[metadata]\n[omop]\ndir = o\nmissing_person = zero\nschema = Omop\n",
	    NAME ":8: [omop] schema: 'Omop': use lower-case letters, digits and '_'");
	load_fails(MINIMAL "[metadata]\n[omop]\ndir = o\nmissing_person = zero\nschema = 5x\n",
	    NAME ":8: [omop] schema: '5x': use lower-case letters, digits and '_'");
	load_fails(MINIMAL "[metadata]\n[omop]\ndir = o\n", NAME ":5: [omop] person_map: required "
	    "unless missing_person = zero (without it every patient would be skipped)");
	load_fails(MINIMAL "[metadata]\n[omop]\ndir = o\nmissing_person = maybe\n",
	    NAME ":7: [omop] missing_person: 'maybe' is not one of skip | zero");
	load_fails(MINIMAL "[metadata]\n[omop]\ndir =\n", NAME ":6: [omop] dir: empty path");
	load_fails(MINIMAL "[metadata]\n[omop]\nperson_map = p.csv\ntable = x\n",
	    NAME ":7: [omop] table: unknown key");
}

/*
 * Bugs found while writing these tests, fixed since.
 */

/* The first error of the file is reported: a syntax error inih finds is
 * lost when the handler errs on a later line. */
static void
test_bug_syntax_error_not_first(void **state)
{
	char *err;

	(void)state;
	/* Reported: "t.ini:2: protocol: key outside any section". */
	err = load_fails_like("[pacs\nprotocol = folder\npath = /x\n", NAME ":1: ", "syntax error");
	free(err);
	/* Reported: "t.ini:5: [pacs] port: '0' is not ...". */
	err = load_fails_like(MINIMAL "garbage\nport = 0\n", NAME ":4: ", "syntax error");
	free(err);
}

/* dicom_dir set to the default zip_dir: the message must point at the
 * line that set it, not at line 0 and a key that is not in the file. */
static void
test_bug_dirs_equal_line_0(void **state)
{
	char *err;

	(void)state;
	/* Reported: "t.ini:0: [output] zip_dir: must differ from dicom_dir". */
	err = load_fails_like(MINIMAL "[output]\ndicom_dir = data/zip\n", NAME ":5: ", "dicom_dir");
	free(err);
}

/* A delimiter the config accepts must give archive names that
 * archive_parse reads back. */
static void
test_bug_digit_delimiter(void **state)
{
	struct config cfg;
	char *err = NULL, *name, *id;
	int n = -1;

	(void)state;
	if (config_load_string(&cfg, NAME, MINIMAL "[output]\ndelimiter = 1\n", &err) < 0) {
		free(err);   /* rejecting it is a fix too */
		return;
	}
	name = archive_name("A", cfg.output.delimiter, 1);   /* "A11.zip" */
	id = archive_parse(name, cfg.output.delimiter, &n);  /* NULL */
	free(name);
	assert_non_null(id);
	assert_string_equal(id, "A");
	assert_int_equal(n, 1);
	free(id);
	name = archive_name("A1", cfg.output.delimiter, 15); /* "A1115.zip" */
	id = archive_parse(name, cfg.output.delimiter, &n);  /* "A11", 5 */
	free(name);
	assert_non_null(id);
	assert_string_equal(id, "A1");
	assert_int_equal(n, 15);
	free(id);
	config_free(&cfg);
}

/* MINIMAL with "path = " then value and rest of the line as given. */
static char *
with_path(const char *value, const char *rest)
{
	char *text;

	assert_true(asprintf(&text, "[pacs]\nprotocol = folder\npath = %s%s\n[output]\nlevel = 7\n",
	    value, rest) > 0);
	return text;
}

/* Debian's inih takes 200 bytes a line: longer lines are read whole all
 * the same, whatever byte falls at the cut, and the lines after them as
 * lines. */
static void
test_long_lines(void **state)
{
	struct config cfg;
	char value[5001], *text;

	(void)state;
	value[0] = '/';
	memset(value + 1, 'a', sizeof(value) - 2);
	value[sizeof(value) - 1] = '\0';
	text = with_path(value, "");
	load_ok(&cfg, text);
	assert_string_equal(cfg.pacs.path, value);
	assert_int_equal(cfg.output.level, 7);
	config_free(&cfg);
	free(text);

	/* A blank or ';' on either side of the cut, a comment at the end. */
	for (size_t at = 185; at < 215; at++) {
		for (const char *c = " ;"; *c; c++) {
			memset(value + 1, 'b', 400);
			value[401] = '\0';
			value[at - strlen("path = ")] = *c;
			text = with_path(value, "   ; a comment");
			load_ok(&cfg, text);
			assert_string_equal(cfg.pacs.path, value);
			assert_int_equal(cfg.output.level, 7);
			config_free(&cfg);
			free(text);
		}
	}

	/* A comment that starts before the cut takes the rest of the line. */
	memset(value, 'c', 300);
	value[300] = '\0';
	assert_true(asprintf(&text, "[pacs]\nprotocol = folder\npath = /short ; %s\n", value) > 0);
	load_ok(&cfg, text);
	assert_string_equal(cfg.pacs.path, "/short");
	config_free(&cfg);
	free(text);
}

static void
test_env_expansion(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(setenv("THLHP_TEST_ROOT", "/data/proj", 1), 0);
	assert_int_equal(setenv("THLHP_TEST_PORT", "4243", 1), 0);
	assert_int_equal(setenv("THLHP_TEST_TOKEN", "s3cr3t", 1), 0);
	load_ok(&cfg,
	    "[pacs]\n"
	    "protocol = dimse\n"
	    "host = h\n"
	    "port = ${THLHP_TEST_PORT}\n"
	    "called_aet = X\n"
	    "auth = bearer ${THLHP_TEST_TOKEN}\n"
	    "[output]\n"
	    "dicom_dir = ${THLHP_TEST_ROOT}/dicom\n"
	    "zip_dir = ${THLHP_TEST_ROOT}/zip-${THLHP_TEST_PORT}\n");
	assert_int_equal(cfg.pacs.port, 4243);
	assert_string_equal(cfg.pacs.auth, "bearer s3cr3t");
	assert_string_equal(cfg.output.dicom_dir, "/data/proj/dicom");
	assert_string_equal(cfg.output.zip_dir, "/data/proj/zip-4243");
	config_free(&cfg);

	/* A value longer than the text it replaces. */
	assert_int_equal(setenv("THLHP_TEST_LONG",
	    "/a/very/long/path/that/is/much/longer/than/the/reference/to/it", 1), 0);
	load_ok(&cfg, "[pacs]\nprotocol = folder\npath = ${THLHP_TEST_LONG}${THLHP_TEST_LONG}\n");
	assert_string_equal(cfg.pacs.path,
	    "/a/very/long/path/that/is/much/longer/than/the/reference/to/it"
	    "/a/very/long/path/that/is/much/longer/than/the/reference/to/it");
	config_free(&cfg);

	/* A lone '$' is kept. */
	load_ok(&cfg, MINIMAL "auth = basic u:pa$s\n");
	assert_string_equal(cfg.pacs.auth, "basic u:pa$s");
	config_free(&cfg);
}

static void
test_env_unset(void **state)
{
	(void)state;
	assert_int_equal(unsetenv("THLHP_TEST_UNSET"), 0);
	load_fails("[pacs]\nprotocol = folder\npath = ${THLHP_TEST_UNSET}/in\n",
	    NAME ":3: [pacs] path: environment variable THLHP_TEST_UNSET is not set");
	load_fails(MINIMAL "auth = ${THLHP_TEST_UNSET\n",
	    NAME ":4: [pacs] auth: unterminated or empty ${...}");
	load_fails(MINIMAL "auth = ${}\n", NAME ":4: [pacs] auth: unterminated or empty ${...}");
}

static void
test_zip_settings(void **state)
{
	struct config cfg;
	char *deflate1, *deflate9, *bzip9, *store1, *store9;

	(void)state;
	load_ok(&cfg, MINIMAL);
	deflate1 = config_zip_settings(&cfg);
	config_free(&cfg);
	load_ok(&cfg, MINIMAL "[output]\nlevel = 9\n");
	deflate9 = config_zip_settings(&cfg);
	config_free(&cfg);
	load_ok(&cfg, MINIMAL "[output]\nlevel = 9\ncompression = bzip2\n");
	bzip9 = config_zip_settings(&cfg);
	config_free(&cfg);
	load_ok(&cfg, MINIMAL "[output]\ncompression = store\n");
	store1 = config_zip_settings(&cfg);
	config_free(&cfg);
	load_ok(&cfg, MINIMAL "[output]\ncompression = store\nlevel = 9\n");
	store9 = config_zip_settings(&cfg);
	config_free(&cfg);

	assert_string_not_equal(deflate1, deflate9);
	assert_string_not_equal(deflate9, bzip9);
	assert_string_not_equal(deflate1, store1);
	/* Stored entries do not depend on a level: no rebuild for it. */
	assert_string_equal(store1, store9);
	/* The same settings give the same string. */
	load_ok(&cfg, MINIMAL "[output]\nlevel = 9\n");
	{
		char *again = config_zip_settings(&cfg);

		assert_string_equal(again, deflate9);
		free(again);
	}
	config_free(&cfg);
	free(deflate1);
	free(deflate9);
	free(bzip9);
	free(store1);
	free(store9);
}

/* A config with a [select] section of these lines, and select_init on it. */
static void
select_load(struct config *cfg, struct select *sel, const char *select_lines)
{
	char *text, *err = NULL;

	text = xasprintf(MINIMAL "[select]\n%s", select_lines);
	load_ok(cfg, text);
	free(text);
	if (select_init(sel, cfg, &err) != 0)
		fail_msg("select_init: %s", err ? err : "(no message)");
}

static void
select_done(struct config *cfg, struct select *sel)
{
	select_free(sel);
	config_free(cfg);
}

static void
test_select_all_by_default(void **state)
{
	struct config cfg;
	struct select sel;

	(void)state;
	select_load(&cfg, &sel, "");
	assert_int_equal(select_patient(&sel, "anyone"), 1);
	assert_int_equal(select_patient(&sel, ""), 1);
	assert_int_equal(select_series(&sel, "CT", "20200101"), 1);
	assert_int_equal(select_series(&sel, NULL, NULL), 1);
	select_done(&cfg, &sel);
}

static void
test_select_globs(void **state)
{
	struct config cfg;
	struct select sel;

	(void)state;
	select_load(&cfg, &sel, "patient_id = TH-* AB? [XY]1\n");
	assert_int_equal(select_patient(&sel, "TH-01"), 1);
	assert_int_equal(select_patient(&sel, "TH-"), 1);
	assert_int_equal(select_patient(&sel, "ABC"), 1);
	assert_int_equal(select_patient(&sel, "X1"), 1);
	assert_int_equal(select_patient(&sel, "Y1"), 1);
	assert_int_equal(select_patient(&sel, "AB"), 0);
	assert_int_equal(select_patient(&sel, "ABCD"), 0);
	assert_int_equal(select_patient(&sel, "th-01"), 0);
	assert_int_equal(select_patient(&sel, "XTH-01"), 0);
	assert_int_equal(select_patient(&sel, "Z1"), 0);
	/* What the source is asked: DICOM wildcards know * and ? only. */
	assert_int_equal(select_nwild(&sel), 3);
	assert_string_equal(select_wild(&sel, 0), "TH-*");
	assert_string_equal(select_wild(&sel, 1), "AB?");
	assert_string_equal(select_wild(&sel, 2), "*");
	select_done(&cfg, &sel);
}

static void
test_select_wildcards(void **state)
{
	struct config cfg;
	struct select sel;

	(void)state;
	select_load(&cfg, &sel, "patient_id = TH-0[1-4]-* A\\*B\n");
	assert_string_equal(select_wild(&sel, 0), "TH-0*");
	assert_string_equal(select_wild(&sel, 1), "A*");
	select_done(&cfg, &sel);
	select_load(&cfg, &sel, "patient_id_regex = ^TH\n");
	assert_int_equal(select_nwild(&sel), 1);
	assert_string_equal(select_wild(&sel, 0), "*");
	select_done(&cfg, &sel);
}

static void
test_select_regex(void **state)
{
	struct config cfg;
	struct select sel;

	(void)state;
	select_load(&cfg, &sel, "patient_id_regex = ^P[0-9]+$\n");
	assert_int_equal(select_patient(&sel, "P1"), 1);
	assert_int_equal(select_patient(&sel, "P0123"), 1);
	assert_int_equal(select_patient(&sel, "P"), 0);
	assert_int_equal(select_patient(&sel, "P1x"), 0);
	assert_int_equal(select_patient(&sel, "xP1"), 0);
	select_done(&cfg, &sel);

	/* Globs and a regex: either selects. */
	select_load(&cfg, &sel, "patient_id = A*\npatient_id_regex = ^B\n");
	assert_int_equal(select_patient(&sel, "A7"), 1);
	assert_int_equal(select_patient(&sel, "B7"), 1);
	assert_int_equal(select_patient(&sel, "C7"), 0);
	select_done(&cfg, &sel);
}

static void
test_select_bad_regex(void **state)
{
	struct config cfg;
	struct select sel;
	char *err = NULL;

	(void)state;
	load_ok(&cfg, MINIMAL "[select]\npatient_id_regex = (P[0-9]\n");
	assert_int_equal(select_init(&sel, &cfg, &err), -1);
	assert_non_null(err);
	if (strncmp(err, NAME ":5: [select] patient_id_regex: ", strlen(NAME ":5: [select] patient_id_regex: ")) != 0)
		fail_msg("unexpected message: %s", err);
	free(err);
	select_free(&sel);
	config_free(&cfg);
}

static void
test_select_patients_file(void **state)
{
	char path[] = "/tmp/thlhp-ids-XXXXXX", *text, *err = NULL;
	struct config cfg;
	struct select sel;
	int fd;
	FILE *fp;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs("P1\nP2\r\n\nP 3\nlast", fp);
	fclose(fp);
	text = xasprintf("patients_file = %s\n", path);
	select_load(&cfg, &sel, text);
	free(text);
	assert_int_equal(select_patient(&sel, "P1"), 1);
	assert_int_equal(select_patient(&sel, "P2"), 1);
	assert_int_equal(select_patient(&sel, "P 3"), 1);
	assert_int_equal(select_patient(&sel, "last"), 1);
	assert_int_equal(select_patient(&sel, "P4"), 0);
	assert_int_equal(select_patient(&sel, ""), 0);
	assert_int_equal(select_patient(&sel, "P"), 0);
	select_done(&cfg, &sel);

	/* A missing file names the key and the file. */
	unlink(path);
	text = xasprintf(MINIMAL "[select]\npatients_file = %s\n", path);
	load_ok(&cfg, text);
	free(text);
	assert_int_equal(select_init(&sel, &cfg, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, NAME ":5: [select] patients_file"));
	assert_non_null(strstr(err, path));
	free(err);
	select_free(&sel);
	config_free(&cfg);
}

static void
test_select_modality(void **state)
{
	struct config cfg;
	struct select sel;

	(void)state;
	select_load(&cfg, &sel, "modality = CT MR\n");
	assert_int_equal(select_series(&sel, "CT", "20200101"), 1);
	assert_int_equal(select_series(&sel, "MR", NULL), 1);
	assert_int_equal(select_series(&sel, "US", "20200101"), 0);
	assert_int_equal(select_series(&sel, "ct", "20200101"), 0);
	assert_int_equal(select_series(&sel, "C", NULL), 0);
	assert_int_equal(select_series(&sel, NULL, "20200101"), 0);
	/* Patients are not filtered by modality. */
	assert_int_equal(select_patient(&sel, "anyone"), 1);
	select_done(&cfg, &sel);
}

static void
test_select_date_from(void **state)
{
	struct config cfg;
	struct select sel;

	(void)state;
	select_load(&cfg, &sel, "study_date = 20200101-\n");
	assert_int_equal(select_series(&sel, "CT", "20200101"), 1);
	assert_int_equal(select_series(&sel, "CT", "20991231"), 1);
	assert_int_equal(select_series(&sel, "CT", "20191231"), 0);
	/* With a range, a series without a valid date is left out. */
	assert_int_equal(select_series(&sel, "CT", NULL), 0);
	assert_int_equal(select_series(&sel, "CT", ""), 0);
	assert_int_equal(select_series(&sel, "CT", "2020"), 0);
	assert_int_equal(select_series(&sel, "CT", "2020010x"), 0);
	select_done(&cfg, &sel);
}

static void
test_select_date_to(void **state)
{
	struct config cfg;
	struct select sel;

	(void)state;
	select_load(&cfg, &sel, "study_date = -20191231\n");
	assert_int_equal(select_series(&sel, "CT", "19700101"), 1);
	assert_int_equal(select_series(&sel, "CT", "20191231"), 1);
	assert_int_equal(select_series(&sel, "CT", "20200101"), 0);
	select_done(&cfg, &sel);
}

static void
test_select_date_range(void **state)
{
	struct config cfg;
	struct select sel;

	(void)state;
	select_load(&cfg, &sel, "study_date = 20200101-20201231\nmodality = CT\n");
	assert_int_equal(select_series(&sel, "CT", "20200101"), 1);
	assert_int_equal(select_series(&sel, "CT", "20200615"), 1);
	assert_int_equal(select_series(&sel, "CT", "20201231"), 1);
	assert_int_equal(select_series(&sel, "CT", "20191231"), 0);
	assert_int_equal(select_series(&sel, "CT", "20210101"), 0);
	/* Both filters apply. */
	assert_int_equal(select_series(&sel, "MR", "20200615"), 0);
	select_done(&cfg, &sel);

	/* A single date is a one-day range. */
	select_load(&cfg, &sel, "study_date = 20200315\n");
	assert_int_equal(select_series(&sel, "CT", "20200315"), 1);
	assert_int_equal(select_series(&sel, "CT", "20200314"), 0);
	assert_int_equal(select_series(&sel, "CT", "20200316"), 0);
	select_done(&cfg, &sel);
}

static void
test_select_bad_date_range(void **state)
{
	static const char *const bad[] = {
		"2020-", "-", "abc", "20200101-2020", "2020010-20201231", "202001011-",
		"20200101-20201231x", "2020010a-", "-2019123x", "20200101--20201231",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config cfg;
		struct select sel;
		char *text = xasprintf(MINIMAL "[select]\nstudy_date = %s\n", bad[i]), *err = NULL, *want;

		load_ok(&cfg, text);
		free(text);
		if (select_init(&sel, &cfg, &err) != -1)
			fail_msg("study_date = %s accepted", bad[i]);
		assert_non_null(err);
		want = xasprintf(NAME ":5: [select] study_date: '%s' is not a DICOM date range "
		    "(YYYYMMDD, YYYYMMDD-, -YYYYMMDD or YYYYMMDD-YYYYMMDD)", bad[i]);
		assert_string_equal(err, want);
		free(want);
		free(err);
		select_free(&sel);
		config_free(&cfg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_sample_config_loads),
		cmocka_unit_test(test_inline_comments),
		cmocka_unit_test(test_crlf_lines),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_port_range),
		cmocka_unit_test(test_ae_title),
		cmocka_unit_test(test_level_range),
		cmocka_unit_test(test_every_number_limit),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_max_instance_size),
		cmocka_unit_test(test_bad_numbers_and_enums),
		cmocka_unit_test(test_protocol_required),
		cmocka_unit_test(test_protocol_needs_keys),
		cmocka_unit_test(test_combinations),
		cmocka_unit_test(test_tls_ok),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_env_expansion),
		cmocka_unit_test(test_env_unset),
		cmocka_unit_test(test_zip_settings),
		cmocka_unit_test(test_select_all_by_default),
		cmocka_unit_test(test_select_globs),
		cmocka_unit_test(test_select_wildcards),
		cmocka_unit_test(test_select_regex),
		cmocka_unit_test(test_select_bad_regex),
		cmocka_unit_test(test_select_patients_file),
		cmocka_unit_test(test_select_modality),
		cmocka_unit_test(test_select_date_from),
		cmocka_unit_test(test_select_date_to),
		cmocka_unit_test(test_select_date_range),
		cmocka_unit_test(test_select_bad_date_range),
		cmocka_unit_test(test_omop),
		cmocka_unit_test(test_bug_syntax_error_not_first),
		cmocka_unit_test(test_bug_dirs_equal_line_0),
		cmocka_unit_test(test_bug_digit_delimiter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
