/* main.c - the command line of SPEC.md. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "build.h"
#include "rule.h"
#include "sched.h"
#include "tools.h"
#include "util.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: thlhp-make [OPTION]... [TARGET]...\n"
"Build each patient's <PatientID>__seriesCount<N>.zip from a PACS, like make.\n"
"\n"
"Targets (default all):\n"
"  all                    every stage for every selected patient\n"
"  query                  refresh the catalog from the PACS\n"
"  STAGE                  every patient, up to and including that stage\n"
"  STAGE:PATIENT_ID       one stage for one patient, e.g. zip:TH-01-AA\n"
"  PATIENT_ID             every stage for that patient\n"
"  DIR/ID__seriesCountN.zip  that archive\n"
"  forms, forms:UID       with [kobo]: every form's new submissions, one form's\n"
"Stages, in order:");
	for (int k = 0; rule_table[k]; k++)
		if (rule_table[k]->per != PER_RUN)
			fprintf(fp, " %s%s", rule_table[k]->name,
			    rule_table[k]->enabled ? " (when the config asks for it)" : "");
	fprintf(fp, ";\n  then each [rule NAME] of thlhp.ini, after the stage it names\n"
"\n"
"Options:\n"
"  -f, --file FILE        config file (default ./thlhp.ini)\n"
"  -C, --directory DIR    change to DIR first\n"
"  -n, --dry-run          print each stale target and why; run nothing, write nothing\n"
"                         (the PACS is still queried, read-only, unless --offline)\n"
"  -q, --question         run and print nothing; exit 0 if up to date, 1 if stale\n"
"  -j, --jobs N           run up to N jobs at once (default: online CPUs);\n"
"                         PACS connections are capped by [pacs] max_associations\n"
"  -B, --always-make      rebuild the named targets even if up to date\n"
"  -k, --keep-going       after a failure go on with what does not depend on it\n"
"      --offline          do not contact the PACS; work from the stored catalog\n"
"      --wait             when another run holds the state, wait for it (else exit 2)\n"
"  -v, --verbose          each job's reason and timing\n"
"      --quiet            only errors\n"
"  -t TOOL                run a tool instead of a build (-t list)\n"
"      --format FMT       -t status as a table (default) or csv;\n"
"                         -t metadata and -t forms as jsonl (default) or csv\n"
"      --since AGE        -t qc: what was downloaded in the last AGE (48h, 2d, 90m)\n"
"      --version          print the version\n"
"  -h, --help             this help\n"
"\n"
"Tools:\n");
	tool_help(fp);
	fprintf(fp, "\n"
"Exit status: 0 done or up to date; 1 -q found stale targets; 2 any error;\n"
"130 or 143 interrupted by SIGINT or SIGTERM (what finished is recorded).\n");
}

enum { OPT_OFFLINE = 256, OPT_QUIET, OPT_VERSION, OPT_FORMAT, OPT_WAIT, OPT_SINCE };

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "directory", required_argument, NULL, 'C' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "question", no_argument, NULL, 'q' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "always-make", no_argument, NULL, 'B' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "offline", no_argument, NULL, OPT_OFFLINE },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct options o = { .file = "thlhp.ini" };
	long n;
	int c, rc;

	/* Past RLIMIT_FSIZE (ulimit -f) a write fails with EFBIG and the job
	 * reports the file; by default SIGXFSZ would kill the whole run. */
	signal(SIGXFSZ, SIG_IGN);
	o.jobs = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (o.jobs < 1)
		o.jobs = 1;
	while ((c = getopt_long(argc, argv, "f:C:nqj:Bkvt:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.file = optarg;
			break;
		case 'C':
			if (chdir(optarg) < 0)
				fatal("-C %s:", optarg);
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'q':
			o.question = 1;
			break;
		case 'j':
			if (parse_int(optarg, 1, 1024, &n) < 0)
				fatal("-j %s: not a number of jobs from 1 to 1024", optarg);
			o.jobs = (int)n;
			break;
		case 'B':
			o.always = 1;
			break;
		case 'k':
			o.keep_going = 1;
			break;
		case OPT_OFFLINE:
			o.offline = 1;
			break;
		case 'v':
			verbosity = 2;
			break;
		case OPT_QUIET:
			verbosity = 0;
			break;
		case 't':
			o.tool = optarg;
			break;
		case OPT_WAIT:
			o.wait = 1;
			break;
		case OPT_SINCE:
			o.since = optarg;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "csv") != 0 && strcmp(optarg, "table") != 0 &&
			    strcmp(optarg, "jsonl") != 0)
				fatal("--format %s: say table, csv or jsonl", optarg);
			o.format = optarg;
			break;
		case OPT_VERSION:
			printf("thlhp-make %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			fprintf(stderr, "Try 'thlhp-make --help'.\n");
			return EXIT_ERROR;
		}
	}
	if (o.question)
		verbosity = 0;
	o.targets = argv + optind;
	o.ntargets = argc - optind;
	rc = o.tool ? tool_run(&o) : build_run(&o);
	if (sched_signal()) {
		/* End as killed by it, as SPEC.md says a shell should see
		 * (130, 143): what finished is recorded already. */
		int sig = sched_signal();

		fflush(NULL);
		signal(sig, SIG_DFL);
		raise(sig);
	}
	return rc;
}
