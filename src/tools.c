/* tools.c - -t list, init, clean, qc; status, inventory and dag plan first
 * (build.c). */
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
#include "names.h"
#include "report.h"
#include "select.h"
#include "state.h"
#include "tools.h"
#include "util.h"

const char tools_help[] =
	"  status  one row per patient: series, downloaded, validated, archive,\n"
	"          state (up to date, stale and why, failed and the last error);\n"
	"          --format csv; from the stored catalog (refresh it with `query`)\n"
	"  inventory  CSV, one row per series: PatientID, StudyInstanceUID, StudyDate,\n"
	"          SeriesInstanceUID, SeriesNumber, Modality, SeriesDescription,\n"
	"          expected and downloaded instances, bytes, archive (when up to\n"
	"          date); from the stored catalog, like status\n"
	"  dag     the targets as Graphviz DOT, coloured by state (dot -Tsvg)\n"
	"  targets every target name, one a line: the stages, then each patient's ID,\n"
	"          STAGE:ID and archive path\n"
	"  qc      --since 48h DEST: copy the series downloaded in the last 48 hours\n"
	"          into DEST/<patient>/<study>/<series>/ for quality control\n"
	"  list    list the tools\n"
	"  init    write a commented sample config (-f FILE, default thlhp.ini)\n"
	"  clean   remove the archives and the leftovers of interrupted jobs;\n"
	"          `-t clean download` also removes the downloaded series;\n"
	"          with -n it lists what it would remove\n"
	"  With -n, init and clean say what they would write or remove, and do\n"
	"          nothing; qc refuses -n, and no tool takes -q.\n";

static int
tool_init(const struct options *o)
{
	int fd;
	size_t len = strlen(config_sample);

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
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
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

static int
tool_clean(const struct options *o)
{
	struct config cfg;
	struct state st;
	struct catalog cat;
	char *err = NULL;
	int dcm = 0, errors = 0, ntmp, nzip = 0, ndcm = 0, code = EXIT_ERROR;
	DIR *d;
	struct dirent *e;

	for (int i = 0; i < o->ntargets; i++) {
		if (strcmp(o->targets[i], "download") == 0 || strcmp(o->targets[i], "all") == 0)
			dcm = 1;
		else if (strcmp(o->targets[i], "zip") != 0) {
			warn("-t clean: unknown target %s (zip, download or all)", o->targets[i]);
			return EXIT_ERROR;
		}
	}
	if (config_load(&cfg, o->file, &err) < 0) {
		warn("%s", err);
		free(err);
		return EXIT_ERROR;
	}
	catalog_init(&cat);
	if (state_open(&st, cfg.state.url, o->dry_run ? STORE_READONLY : 0, cfg.state.lease * 1000) < 0 ||
	    state_load(&st, &cat) < 0) {
		warn("%s: %s", cfg.file, st.err);
		goto out;
	}
	ntmp = clean_tree(cfg.output.zip_dir, 0, o->dry_run, &errors);
	if ((d = opendir(cfg.output.zip_dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			int n;
			char *id = archive_parse(e->d_name, cfg.output.delimiter, &n), *path;

			if (!id)
				continue;
			free(id);
			path = xasprintf("%s/%s", cfg.output.zip_dir, e->d_name);
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
		ndcm = clean_tree(cfg.output.dicom_dir, 1, o->dry_run, &errors);
	else
		ntmp += clean_tree(cfg.output.dicom_dir, 0, o->dry_run, &errors);
	if (o->dry_run) {
		/* Temp files among them were printed one by one and counted in ndcm. */
		printf("would remove %d archive%s, %d leftover temp file%s%s", nzip, nzip == 1 ? "" : "s",
		    ntmp, ntmp == 1 ? "" : "s", dcm ? "" : "\n");
		if (dcm)
			printf(" and the downloaded instances (%d file%s)\n", ndcm, ndcm == 1 ? "" : "s");
		code = EXIT_OK;
		goto out;
	}
	/* Forget what was removed, so the next run builds it again. */
	if (state_begin(&st) < 0)
		goto out;
	for (int i = 0; i < cat.np; i++) {
		struct patient *p = cat.p[i];

		if (p->has_ar) {
			p->has_ar = 0;
			if (state_save_patient(&st, p) < 0)
				goto bad;
		}
		for (int j = 0; dcm && j < p->nseries; j++) {
			struct series *s = p->series[j];

			s->ninst = 0;
			s->set_sig = s->valid_sig = 0;
			s->dir_mtime = 0;
			static const struct instance none;

			if (state_save_series(&st, s, &none, 0) < 0)   /* drops its rows */
				goto bad;
		}
	}
	if (state_commit(&st) < 0)
		goto bad;
	printf("removed %d archive%s, %d leftover temp file%s%s", nzip, nzip == 1 ? "" : "s",
	    ntmp, ntmp == 1 ? "" : "s", dcm ? "" : "\n");
	if (dcm)
		printf(", %d downloaded instance%s\n", ndcm, ndcm == 1 ? "" : "s");
	code = errors ? EXIT_ERROR : EXIT_OK;
	goto out;
bad:
	state_rollback(&st);
	warn("%s: %s", cfg.file, st.err);
out:
	catalog_free(&cat);
	state_close(&st);
	config_free(&cfg);
	return code;
}

/* "48h", "2d", "90m", "30s" in seconds; -1 when not one of those. */
static long
parse_since(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || v < 0 || end[0] == '\0' || end[1] != '\0')
		return -1;
	switch (*end) {
	case 's': return v;
	case 'm': return v * 60;
	case 'h': return v * 3600;
	case 'd': return v * 86400;
	}
	return -1;
}

/* -t qc --since 48h DEST: copy the series downloaded in the last hours
 * into DEST/<patient>/<study>/<series>/, for a person to look at. */
static int
tool_qc(const struct options *o)
{
	struct config cfg;
	struct select sel;
	struct state st;
	struct catalog cat;
	char *err = NULL, e[512];
	long since = o->since ? parse_since(o->since) : -1;
	int64_t cut, nbytes = 0;
	int code = EXIT_ERROR, nseries = 0, ninst = 0;
	const char *dest = o->ntargets == 1 ? o->targets[0] : NULL;

	if (since < 0 || !dest) {
		warn("-t qc: say --since AGE (like 48h, 2d or 90m) and one DEST folder: "
		    "thlhp-make -t qc --since 48h DEST");
		return EXIT_ERROR;
	}
	if (config_load(&cfg, o->file, &err) < 0) {
		warn("%s", err);
		free(err);
		return EXIT_ERROR;
	}
	if (select_init(&sel, &cfg, &err) < 0) {
		warn("%s", err);
		free(err);
		config_free(&cfg);
		return EXIT_ERROR;
	}
	catalog_init(&cat);
	if (state_open(&st, cfg.state.url, STORE_READONLY, cfg.state.lease * 1000) < 0 || state_load(&st, &cat) < 0) {
		warn("%s: %s", cfg.file, st.err);
		goto out;
	}
	cut = now_ns() - (int64_t)since * 1000000000;
	for (int i = 0; i < cat.np; i++) {
		struct patient *p = cat.p[i];

		if (!select_patient(&sel, p->id))
			continue;
		for (int j = 0; j < p->nseries; j++) {
			struct series *s = p->series[j];
			char *dir, *to, **sops;
			int n, copied = 0;

			if (!select_series(&sel, s->modality, s->study_date))
				continue;
			dir = xasprintf("%s/%s/%s/%s", cfg.output.dicom_dir, p->name, s->study, s->uid);
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
	code = EXIT_OK;
out:
	catalog_free(&cat);
	state_close(&st);
	select_free(&sel);
	config_free(&cfg);
	return code;
}

int
tool_run(const struct options *o)
{
	if (o->question) {
		warn("-t %s: -q asks whether the build is up to date and goes with no tool "
		    "(-n shows what a tool would do)", o->tool);
		return EXIT_ERROR;
	}
	if (o->dry_run && strcmp(o->tool, "qc") == 0) {
		warn("-t qc: -n is not supported; -t qc copies only, into DEST: run it without -n");
		return EXIT_ERROR;
	}
	if (strcmp(o->tool, "list") == 0) {
		printf("thlhp-make tools (-t TOOL):\n%s", tools_help);
		return EXIT_OK;
	}
	if (strcmp(o->tool, "init") == 0)
		return tool_init(o);
	if (strcmp(o->tool, "clean") == 0)
		return tool_clean(o);
	if (strcmp(o->tool, "qc") == 0)
		return tool_qc(o);
	if (report_kind(o->tool, o->format) >= 0)
		return build_run(o);
	warn("-t %s: unknown tool; -t list lists them", o->tool);
	return EXIT_ERROR;
}
