/* tools.c - -t TOOL: the table of tools, their one setup (setup.h), and
 * init, clean, qc and list; status, inventory, dag and targets print the
 * plan of build_plan() (report.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "build.h"
#include "catalog.h"
#include "config.h"
#include "fileio.h"
#include "formsout.h"
#include "metaout.h"
#include "names.h"
#include "report.h"
#include "setup.h"
#include "tools.h"
#include "units.h"
#include "util.h"

static int
tool_init(const struct options *o, struct setup *s)
{
	int fd;
	size_t len = strlen(config_sample);

	(void)s;

	if (o->dry_run) {
		if (access(o->file, F_OK) == 0) {
			warn("%s: exists already; -t init would not overwrite it", o->file);
			return EXIT_ERROR;
		}
		printf("would write %s, a commented sample config\n", o->file);
		return EXIT_OK;
	}
	fd = open(o->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		warn("%s: %s", o->file, errno == EEXIST ? "exists already; not overwritten" : strerror(errno));
		return EXIT_ERROR;
	}
	if (write(fd, config_sample, len) != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0) {
		warn("%s:", o->file);
		unlink(o->file);
		return EXIT_ERROR;
	}
	printf("wrote %s: set [pacs] and [select] for your project, then run thlhp-make -n\n", o->file);
	return EXIT_OK;
}

/* Remove temp files under dir; with dcm also every *.dcm, and then empty
 * folders.  Returns how many files went.  With dry, remove nothing: print
 * each temp file, and each folder's count of *.dcm, that would go. */
static int
clean_tree(const char *dir, int dcm, int dry, int *errors)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0, ndcm = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char *path;
		struct stat sb;
		size_t l = strlen(e->d_name);

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		path = xasprintf("%s/%s", dir, e->d_name);
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode) &&
		    strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
			/* A rule's output folder, left by a killed run. */
			if (dry)
				printf("would remove %s/\n", path);
			else if (remove_tree(path) < 0)
				warn("%s: cannot remove:", path), (*errors)++;
			n++;
		} else if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			n += clean_tree(path, dcm, dry, errors);
			if (dcm && !dry)
				rmdir(path);   /* only when empty: nothing of others goes */
		} else if (dry && strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
			printf("would remove %s\n", path);
			n++;
		} else if (dry && dcm && l > 4 && strcmp(e->d_name + l - 4, ".dcm") == 0) {
			ndcm++;
		} else if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0 ||
		    (dcm && l > 4 && strcmp(e->d_name + l - 4, ".dcm") == 0)) {
			if (unlink(path) == 0)
				n++;
			else {
				warn("%s: cannot remove:", path);
				(*errors)++;
			}
		}
		free(path);
	}
	closedir(d);
	if (ndcm)
		printf("would remove %d downloaded instance%s in %s\n", ndcm, ndcm == 1 ? "" : "s", dir);
	return n + ndcm;
}

/* -t clean [zip|download|all]: 1 when the downloads go too, 0 when only
 * the archives, -1 (with a warning) for another target. */
static int
clean_dcm(const struct options *o)
{
	int dcm = 0;

	for (int i = 0; i < o->ntargets; i++) {
		if (strcmp(o->targets[i], "download") == 0 || strcmp(o->targets[i], "all") == 0)
			dcm = 1;
		else if (strcmp(o->targets[i], "zip") != 0) {
			warn("-t clean: unknown target %s (zip, download or all)", o->targets[i]);
			return -1;
		}
	}
	return dcm;
}

static int
clean_args(const struct options *o)
{
	return clean_dcm(o) < 0 ? -1 : 0;
}

static int
tool_clean(const struct options *o, struct setup *s)
{
	struct config *cfg = &s->cfg;
	struct state *st = &s->st;
	struct catalog *cat = &s->cat;
	int dcm = clean_dcm(o), errors = 0, ntmp, nzip = 0, ndcm = 0;
	DIR *d;
	struct dirent *e;

	ntmp = clean_tree(cfg->output.zip_dir, 0, o->dry_run, &errors);
	/* The temp outputs of [rule NAME]s, under each output's fixed part. */
	for (int i = 0; i < cfg->nrules; i++) {
		const char *t = cfg->rules[i].output, *slash;
		char *root;

		if (!t || !(slash = memrchr(t, '/', strcspn(t, "{"))) || slash == t)
			continue;
		root = xasprintf("%.*s", (int)(slash - t), t);
		ntmp += clean_tree(root, 0, o->dry_run, &errors);
		free(root);
	}
	if ((d = opendir(cfg->output.zip_dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			int n;
			char *id = archive_parse(e->d_name, cfg->output.delimiter, &n), *path;

			if (!id)
				continue;
			free(id);
			path = xasprintf("%s/%s", cfg->output.zip_dir, e->d_name);
			if (o->dry_run)
				printf("would remove %s\n", path), nzip++;
			else if (unlink(path) == 0)
				nzip++;
			else
				warn("%s: cannot remove:", path), errors++;
			free(path);
		}
		closedir(d);
	}
	if (dcm)
		ndcm = clean_tree(cfg->output.dicom_dir, 1, o->dry_run, &errors);
	else
		ntmp += clean_tree(cfg->output.dicom_dir, 0, o->dry_run, &errors);
	if (o->dry_run) {
		/* Temp files among them were printed one by one and counted in ndcm. */
		printf("would remove %d archive%s, %d leftover temp file%s%s", nzip, nzip == 1 ? "" : "s",
		    ntmp, ntmp == 1 ? "" : "s", dcm ? "" : "\n");
		if (dcm)
			printf(" and the downloaded instances (%d file%s)\n", ndcm, ndcm == 1 ? "" : "s");
		return EXIT_OK;
	}
	/* Forget what was removed, so the next run builds it again. */
	if (state_begin(st) < 0)
		goto fail;
	for (int i = 0; i < cat->np; i++) {
		struct patient *p = cat->p[i];

		if (p->has_ar) {
			p->has_ar = 0;
			if (state_save_patient(st, p) < 0)
				goto bad;
		}
		for (int j = 0; dcm && j < p->nseries; j++) {
			struct series *se = p->series[j];

			se->ninst = 0;
			se->set_sig = se->valid_sig = 0;
			se->dir_mtime = 0;
			static const struct instance none;

			if (state_save_series(st, se, &none, 0) < 0)   /* drops its rows */
				goto bad;
		}
	}
	if (state_commit(st) < 0)
		goto bad;
	printf("removed %d archive%s, %d leftover temp file%s%s", nzip, nzip == 1 ? "" : "s",
	    ntmp, ntmp == 1 ? "" : "s", dcm ? "" : "\n");
	if (dcm)
		printf(", %d downloaded instance%s\n", ndcm, ndcm == 1 ? "" : "s");
	return errors ? EXIT_ERROR : EXIT_OK;
bad:
	state_rollback(st);
fail:
	setup_state_error(s);
	return EXIT_ERROR;
}

/* -t qc --since 48h DEST: copy the series downloaded in the last hours
 * into DEST/<patient>/<study>/<series>/, for a person to look at. */
static int
qc_args(const struct options *o)
{
	if ((o->since ? units_duration(o->since) : -1) < 0 || o->ntargets != 1) {
		warn("-t qc: say --since AGE (like 48h, 2d or 90m) and one DEST folder: "
		    "thlhp-make -t qc --since 48h DEST");
		return -1;
	}
	return 0;
}

static int
tool_qc(const struct options *o, struct setup *su)
{
	const struct config *cfg = &su->cfg;
	const struct catalog *cat = &su->cat;
	char e[512];
	long since = units_duration(o->since);
	int64_t cut, nbytes = 0;
	int nseries = 0, ninst = 0;
	const char *dest = o->targets[0];

	cut = now_ns() - (int64_t)since * 1000000000;
	for (int i = 0; i < cat->np; i++) {
		struct patient *p = cat->p[i];

		if (!select_patient(&su->sel, p->id))
			continue;
		for (int j = 0; j < p->nseries; j++) {
			struct series *s = p->series[j];
			char *dir, *to, **sops;
			int n, copied = 0;

			if (!select_series(&su->sel, s->modality, s->study_date))
				continue;
			dir = xasprintf("%s/%s/%s/%s", cfg->output.dicom_dir, p->name, s->study, s->uid);
			/* The folder changes when an instance lands in it. */
			if (mtime_ns(dir, NULL) < cut || !(sops = list_dcm(dir, &n, e, sizeof(e)))) {
				free(dir);
				continue;
			}
			to = xasprintf("%s/%s/%s/%s", dest, p->name, s->study, s->uid);
			if (n > 0 && mkdirs(to, e, sizeof(e)) < 0) {
				warn("%s", e);
				n = 0;
			}
			for (int k = 0; k < n; k++) {
				char *src = xasprintf("%s/%s.dcm", dir, sops[k]);
				char *dst = xasprintf("%s/%s.dcm", to, sops[k]);
				uint64_t h;
				int64_t size, mt;

				if (copy_file(src, dst, &h, &size, &mt, NULL, e, sizeof(e)) < 0)
					warn("%s", e);
				else
					copied++, nbytes += size;
				free(src);
				free(dst);
			}
			nseries += copied > 0;
			ninst += copied;
			strv_free(sops);
			free(dir);
			free(to);
		}
	}
	printf("copied %d series (%d instances, %.1f MB) downloaded in the last %s to %s\n",
	    nseries, ninst, (double)nbytes / 1e6, o->since, dest);
	return EXIT_OK;
}

/* Prints the plan as the report of the tool's name (report.c). */
static int
report_show(const struct options *o, struct setup *s, const struct graph *g)
{
	return report_print(report_kind(o->tool, o->format), g, &s->cat, &s->st, &s->cfg,
	    verbosity > 1, stdout) < 0 || fflush(stdout) != 0 ? EXIT_ERROR : EXIT_OK;
}

static int
tool_report(const struct options *o, struct setup *s)
{
	return build_plan(o, s, report_show);
}

static int tool_list(const struct options *, struct setup *);

/* Is w one of the space-separated words of list (NULL: none)? */
static int
word_in(const char *w, const char *list)
{
	size_t n = strlen(w);

	for (const char *p = list; p && *p; p += strcspn(p, " "), p += *p == ' ')
		if (strncmp(p, w, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* What a tool writes, and so what -n does with it. */
enum writes {
	WRITES_NOTHING,           /* -n changes nothing */
	WRITES_DRY,               /* writes; with -n says what it would, and does not */
	WRITES_REFUSE_DRY,        /* writes; refuses -n */
};

static const struct tool {
	const char *name;
	/* The arguments, checked before anything is loaded (NULL: any);
	 * 0, or -1 after a warning. */
	int (*args)(const struct options *o);
	/* Runs with s loaded as needs says; returns the exit code. */
	int (*run)(const struct options *o, struct setup *s);
	int needs;                /* NEED_*, loaded by tool_run */
	enum writes writes;
	const char *formats;      /* the --format values it takes, first the
	                           * default ("table csv"); NULL: none */
	const char *help;         /* lines after the name, the next ones indented */
} tool_table[] = {
#define REPORT NEED_CONFIG | NEED_SELECT | NEED_STATE | NEED_CATALOG | NEED_GRAPH
	{ "status", NULL, tool_report, REPORT, WRITES_NOTHING, "table csv",
	    "one row per patient: series, downloaded, validated, archive,\n"
	    "state (up to date, stale and why, failed and the last error);\n"
	    "--format csv; from the stored catalog (refresh it with `query`)" },
	{ "inventory", NULL, tool_report, REPORT, WRITES_NOTHING, NULL,
	    "CSV, one row per series: PatientID, StudyInstanceUID, StudyDate,\n"
	    "SeriesInstanceUID, SeriesNumber, Modality, SeriesDescription,\n"
	    "expected and downloaded instances, bytes, archive (when up to\n"
	    "date); from the stored catalog, like status" },
	{ "dag", NULL, tool_report, REPORT, WRITES_NOTHING, NULL,
	    "the targets as Graphviz DOT, coloured by state (dot -Tsvg)" },
	{ "targets", NULL, tool_report, REPORT, WRITES_NOTHING, NULL,
	    "every target name, one a line: the stages, then each patient's ID,\n"
	    "STAGE:ID and archive path" },
#undef REPORT
	{ "metadata", NULL, tool_metadata, NEED_CONFIG | NEED_SELECT | NEED_STATE | NEED_CATALOG |
	    NEED_GRAPH, WRITES_NOTHING, "jsonl csv",
	    "[KEYWORD...] the stored headers ([metadata]) of the targets'\n"
	    "series: JSON Lines, one instance a line (keys and header, or the\n"
	    "keywords given); --format csv: a column per keyword (default\n"
	    "PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID,\n"
	    "Modality, SeriesNumber, InstanceNumber), values joined by \\;\n"
	    "arguments that are no DICOM keyword are targets" },
	{ "forms", NULL, tool_forms, NEED_CONFIG | NEED_STATE, WRITES_NOTHING, "jsonl csv",
	    "[FORM] the submissions the forms stage ([kobo]) pulled of FORM (its\n"
	    "asset uid), not those deleted at the server: JSON Lines, each as\n"
	    "the server sent it; --format csv: a column per field; without\n"
	    "FORM, each form pulled with its count" },
	{ "qc", qc_args, tool_qc, NEED_CONFIG | NEED_SELECT | NEED_STATE | NEED_CATALOG,
	    WRITES_REFUSE_DRY, NULL,
	    "--since 48h DEST: copy the series downloaded in the last 48 hours\n"
	    "into DEST/<patient>/<study>/<series>/ for quality control" },
	{ "list", NULL, tool_list, 0, WRITES_NOTHING, NULL,
	    "list the tools" },
	{ "init", NULL, tool_init, 0, WRITES_DRY, NULL,
	    "write a commented sample config (-f FILE, default thlhp.ini)" },
	{ "clean", clean_args, tool_clean, NEED_CONFIG | NEED_STATE | NEED_WRITE | NEED_CATALOG,
	    WRITES_DRY, NULL,
	    "remove the archives and the leftovers of interrupted jobs;\n"
	    "`-t clean download` also removes the downloaded series;\n"
	    "with -n it lists what it would remove" },
};

/* The names of the tools that write as w, "init and clean", into buf. */
static void
tool_names(enum writes w, char *buf, size_t len)
{
	size_t off = 0;
	int n = 0, j = 0;

	for (size_t i = 0; i < LEN(tool_table); i++)
		n += tool_table[i].writes == w;
	buf[0] = '\0';
	for (size_t i = 0; i < LEN(tool_table) && off < len; i++)
		if (tool_table[i].writes == w)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", j == 0 ? "" :
			    j == n - 1 ? " and " : ", ", tool_table[i].name), j++;
}

void
tool_help(FILE *fp)
{
	char dry[128], refuse[128];

	for (size_t i = 0; i < LEN(tool_table); i++) {
		const char *h = tool_table[i].help;

		fprintf(fp, "  %-7s ", tool_table[i].name);
		for (const char *nl; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
			fprintf(fp, "%.*s\n%10s", (int)(nl - h), h, "");
		fprintf(fp, "%s\n", h);
	}
	tool_names(WRITES_DRY, dry, sizeof(dry));
	tool_names(WRITES_REFUSE_DRY, refuse, sizeof(refuse));
	fprintf(fp, "  With -n, %s say what they would write or remove, and do\n"
	    "          nothing; %s refuses -n, and no tool takes -q.\n", dry, refuse);
}

static int
tool_list(const struct options *o, struct setup *s)
{
	(void)o, (void)s;
	printf("thlhp-make tools (-t TOOL):\n");
	tool_help(stdout);
	return EXIT_OK;
}

int
tool_run(const struct options *o)
{
	const struct tool *t = NULL;
	struct setup s;
	int code = EXIT_ERROR;

	for (size_t i = 0; i < LEN(tool_table) && !t; i++)
		if (strcmp(tool_table[i].name, o->tool) == 0)
			t = &tool_table[i];
	if (!t) {
		warn("-t %s: unknown tool; -t list lists them", o->tool);
		return EXIT_ERROR;
	}
	if (o->question) {
		warn("-t %s: -q asks whether the build is up to date and goes with no tool "
		    "(-n shows what a tool would do)", o->tool);
		return EXIT_ERROR;
	}
	if (o->dry_run && t->writes == WRITES_REFUSE_DRY) {
		warn("-t %s: -n is not supported: run it without -n", t->name);
		return EXIT_ERROR;
	}
	if (o->format && !word_in(o->format, t->formats)) {
		if (t->formats)
			warn("-t %s --format %s: say one of %s", t->name, o->format, t->formats);
		else
			warn("-t %s takes no --format", t->name);
		return EXIT_ERROR;
	}
	if (t->args && t->args(o) < 0)
		return EXIT_ERROR;
	setup_init(&s);
	if ((t->needs & NEED_CONFIG) && setup_config(&s, o, t->needs) < 0)
		goto out;
	/* A plan's targets are parsed before the state opens (build_plan). */
	if ((t->needs & NEED_STATE) && !(t->needs & NEED_GRAPH) &&
	    setup_state(&s, (t->needs & NEED_WRITE) && !o->dry_run ? 0 : STORE_READONLY, t->needs) < 0)
		goto out;
	code = t->run(o, &s);
out:
	setup_free(&s);
	return code;
}
