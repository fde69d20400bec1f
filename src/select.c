/* select.c - patient globs, regex and list; modality and study date filters. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "select.h"
#include "util.h"

static char **
split(const char *s, int *n)
{
	char *copy = xstrdup(s ? s : ""), *tok, *save;
	char **v = NULL;

	*n = 0;
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		v = xreallocarray(v, (size_t)*n + 1, sizeof(*v));
		v[(*n)++] = xstrdup(tok);
	}
	free(copy);
	return v;
}

static int
valid_date(const char *d)
{
	if (strlen(d) != 8)
		return 0;
	for (int i = 0; i < 8; i++)
		if (d[i] < '0' || d[i] > '9')
			return 0;
	return 1;
}

static int
parse_range(struct select *s, const char *r)
{
	const char *dash = strchr(r, '-');

	if (!dash) {
		if (!valid_date(r))
			return -1;
		strcpy(s->from, r);
		strcpy(s->to, r);
		return 0;
	}
	if (dash > r) {
		if (dash - r != 8)
			return -1;
		memcpy(s->from, r, 8);
		if (!valid_date(s->from))
			return -1;
	}
	if (dash[1]) {
		if (!valid_date(dash + 1))
			return -1;
		strcpy(s->to, dash + 1);
	}
	if (s->from[0] && s->to[0] && strcmp(s->from, s->to) > 0)
		return -1;   /* reversed: would select nothing */
	return (dash == r && !dash[1]) ? -1 : 0;
}

static int
load_ids(struct select *s, const struct config *cfg, const char *file, char **err)
{
	FILE *fp = fopen(file, "r");
	char *line = NULL, *buf = NULL;
	size_t cap = 0, len = 0;
	ssize_t n;

	if (!fp) {
		char *where = config_where(cfg, "select", "patients_file");

		*err = xasprintf("%s: %s: %s", where, file, strerror(errno));
		free(where);
		return -1;
	}
	/* One buffer holds every ID so the table's keys live as long as it. */
	while ((n = getline(&line, &cap, fp)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		buf = xrealloc(buf, len + (size_t)n + 1);
		memcpy(buf + len, line, (size_t)n + 1);
		len += (size_t)n + 1;
	}
	free(line);
	fclose(fp);
	s->idbuf = buf;
	htab_init(&s->ids);
	for (size_t off = 0; off < len; off += strlen(buf + off) + 1)
		if (buf[off])
			htab_put(&s->ids, buf + off, buf + off);
	s->has_ids = 1;
	return 0;
}

/* A glob as a DICOM (and QIDO) wildcard, which knows only * and ?: cut
 * at the first [ or \ and end with *.  The PACS then returns more, and
 * select_patient matches the glob itself. */
static char *
dicom_wildcard(const char *glob)
{
	size_t n = strcspn(glob, "[\\");

	return glob[n] ? xasprintf("%.*s*", (int)n, glob) : xstrdup(glob);
}

int
select_init(struct select *s, const struct config *cfg, char **err)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->globs = split(cfg->select.patient_id, &s->nglobs);
	s->wilds = xcalloc((size_t)s->nglobs + 1, sizeof(*s->wilds));
	for (int i = 0; i < s->nglobs; i++)
		s->wilds[i] = dicom_wildcard(s->globs[i]);
	s->modalities = split(cfg->select.modality, &s->nmod);
	if (cfg->select.patient_id_regex && *cfg->select.patient_id_regex) {
		rc = regcomp(&s->re, cfg->select.patient_id_regex, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char msg[256];

			char *where = config_where(cfg, "select", "patient_id_regex");

			regerror(rc, &s->re, msg, sizeof(msg));
			*err = xasprintf("%s: %s", where, msg);
			free(where);
			return -1;
		}
		s->has_re = 1;
	}
	if (cfg->select.patients_file && *cfg->select.patients_file &&
	    load_ids(s, cfg, cfg->select.patients_file, err) < 0)
		return -1;
	if (cfg->select.study_date && *cfg->select.study_date &&
	    parse_range(s, cfg->select.study_date) < 0) {
		char *where = config_where(cfg, "select", "study_date");

		*err = xasprintf("%s: '%s' is not a DICOM date range "
		    "(YYYYMMDD, YYYYMMDD-, -YYYYMMDD or YYYYMMDD-YYYYMMDD)", where, cfg->select.study_date);
		free(where);
		return -1;
	}
	return 0;
}

void
select_free(struct select *s)
{
	for (int i = 0; i < s->nglobs; i++) {
		free(s->globs[i]);
		free(s->wilds[i]);
	}
	free(s->wilds);
	for (int i = 0; i < s->nmod; i++)
		free(s->modalities[i]);
	free(s->globs);
	free(s->modalities);
	if (s->has_re)
		regfree(&s->re);
	if (s->has_ids)
		htab_free(&s->ids);
	free(s->idbuf);
	memset(s, 0, sizeof(*s));
}

int
select_patient(const struct select *s, const char *id)
{
	if (s->nglobs == 0 && !s->has_re && !s->has_ids)
		return 1;
	for (int i = 0; i < s->nglobs; i++)
		if (fnmatch(s->globs[i], id, 0) == 0)
			return 1;
	if (s->has_re && regexec(&s->re, id, 0, NULL, 0) == 0)
		return 1;
	return s->has_ids && htab_get(&s->ids, id) != NULL;
}

int
select_series(const struct select *s, const char *modality, const char *study_date)
{
	if (s->nmod) {
		int i;

		for (i = 0; i < s->nmod; i++)
			if (modality && strcmp(modality, s->modalities[i]) == 0)
				break;
		if (i == s->nmod)
			return 0;
	}
	if (s->from[0] || s->to[0]) {
		if (!study_date || !valid_date(study_date))
			return 0;
		if (s->from[0] && strcmp(study_date, s->from) < 0)
			return 0;
		if (s->to[0] && strcmp(study_date, s->to) > 0)
			return 0;
	}
	return 1;
}

int
select_nwild(const struct select *s)
{
	if (s->has_re || (!s->nglobs && !s->has_ids))
		return 1;
	return s->nglobs;
}

const char *
select_wild(const struct select *s, int i)
{
	return s->has_re || !s->nglobs ? "*" : s->wilds[i];
}
