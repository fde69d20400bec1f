/*
 * omop-map.c - what the omop stage maps DICOM onto: person_map entries
 * (PatientID -> person_id; omop-csv.c reads a file, omop-pg.c a table)
 * and concepts from an OMOP vocabulary, an Athena CONCEPT.csv (tab-
 * separated, a header row, no quoting).
 *
 * Which concepts, after the OHDSI Medical Imaging WG's MI-CDM and its
 * DICOM vocabulary (github.com/paulnagy/DICOM2OMOP):
 *   modality_concept_id: the row of vocabulary_id 'DICOM' whose
 *     concept_code is the Modality (CT, MR, ...): the WG's vocabulary
 *     keeps DICOM's coded values with their codes as concept codes.
 *   anatomic_site_concept_id: the MI-CDM asks for a standard concept of
 *     the Spec Anatomic Site domain; BodyPartExamined is matched whole,
 *     ignoring case, to such a concept's name.
 * Rows whose invalid_reason is set are not used; when several rows
 * match, the smallest concept_id is taken, so the answer does not
 * depend on the file's order.  Unmatched: 0, the CDM's "no concept".
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "omop-int.h"
#include "util.h"

/* A vocabulary line, at most (Athena's longest is well under 1 KiB); the
 * lines read, at most (Athena's CONCEPT.csv has ~10 million); the
 * concepts kept, at most. */
enum { VLINE_MAX = 8192, VLINES_MAX = 100000000, VKEEP_MAX = 2000000 };

/* The columns of CONCEPT.csv read, by name. */
enum { C_ID, C_NAME, C_DOMAIN, C_VOCAB, C_STANDARD, C_CODE, C_INVALID, NC };
static const char *const vcols[NC] = {
	"concept_id", "concept_name", "domain_id", "vocabulary_id", "standard_concept",
	"concept_code", "invalid_reason",
};
_Static_assert(NC == LEN(((struct vocab *)0)->col), "struct vocab holds a place for each");

/* The one load of a run's vocabulary, by the first job that needs it. */
static pthread_mutex_t vocab_lock = PTHREAD_MUTEX_INITIALIZER;

struct concept {
	char *key;
	int64_t id;
};

/* A non-negative decimal integer, whole; -1 when s is not one. */
static int64_t
nonneg(const char *s)
{
	long v;

	return parse_int(s, 0, INT64_MAX, &v) == 0 && *s >= '0' && *s <= '9' ? v : -1;
}

int
person_add(struct htab *map, const char *patient, const char *id, const char *where,
    long line, char *err, size_t errlen)
{
	const struct person *had = htab_get(map, patient);
	struct person *p;
	char at[512];
	int64_t v;

	if (line)
		snprintf(at, sizeof(at), "%s:%ld", where, line);
	else
		snprintf(at, sizeof(at), "%s", where);
	if (!*patient) {
		errf(err, errlen, "%s: patient_id is empty", at);
		return -1;
	}
	if (had) {
		if (had->line)
			errf(err, errlen, "%s: patient_id '%s' again (first on line %ld)", at, patient,
			    had->line);
		else
			errf(err, errlen, "%s: patient_id '%s' twice", at, patient);
		return -1;
	}
	if ((v = nonneg(id)) < 0) {
		errf(err, errlen, "%s: person_id '%s' of patient_id '%s' is not a non-negative "
		    "integer", at, id, patient);
		return -1;
	}
	p = xcalloc(1, sizeof(*p));
	p->patient = xstrdup(patient);
	p->id = v;
	p->line = line;
	htab_put(map, p->patient, p);
	return 0;
}

void
persons_free(struct htab *map)
{
	for (size_t i = 0; i < map->cap; i++) {
		struct person *p = map->slot[i].val;

		if (map->slot[i].key && p) {
			free(p->patient);
			free(p);
		}
	}
	htab_free(map);
}

/* Split line at tabs into f[0..max); returns the number of fields. */
static int
tsv_split(char *line, char **f, int max)
{
	int n = 0;

	line[strcspn(line, "\r\n")] = '\0';
	for (char *p = line; n < max; p++) {
		f[n++] = p;
		if (!(p = strchr(p, '\t')))
			break;
		*p = '\0';
	}
	return n;
}

/* One line of f into buf (VLINE_MAX): 1, 0 at the end, -1 with err. */
static int
vocab_line(FILE *f, char *buf, const char *path, long line, char *err, size_t errlen)
{
	size_t len;

	if (!fgets(buf, VLINE_MAX, f)) {
		if (ferror(f)) {
			errf(err, errlen, "%s:%ld: %s", path, line, strerror(errno));
			return -1;
		}
		return 0;
	}
	len = strlen(buf);
	if (len == VLINE_MAX - 1 && buf[len - 1] != '\n') {
		errf(err, errlen, "%s:%ld: line longer than %d bytes: not an OMOP CONCEPT.csv?",
		    path, line, VLINE_MAX - 1);
		return -1;
	}
	return 1;
}

/* Read the header of f into v->col; -1 with err. */
static int
vocab_header(struct vocab *v, FILE *f, char *err, size_t errlen)
{
	char buf[VLINE_MAX], *fld[64];
	int n, rc = vocab_line(f, buf, v->path, 1, err, errlen);

	if (rc <= 0) {
		if (rc == 0)
			errf(err, errlen, "%s: empty: not an OMOP CONCEPT.csv", v->path);
		return -1;
	}
	n = tsv_split(buf, fld, (int)LEN(fld));
	for (int c = 0; c < NC; c++) {
		v->col[c] = -1;
		for (int i = 0; i < n; i++)
			if (strcmp(fld[i], vcols[c]) == 0)
				v->col[c] = i;
		if (v->col[c] < 0) {
			errf(err, errlen, "%s:1: no column %s: not an OMOP CONCEPT.csv (tab-separated, "
			    "with a header row, as Athena gives it)", v->path, vcols[c]);
			return -1;
		}
	}
	return 0;
}

int
vocab_check(struct vocab *v, const char *path, char *err, size_t errlen)
{
	struct stat sb;
	FILE *f;
	int fd, rc;

	vocab_free(v);
	if (!path)
		return 0;
	v->path = xstrdup(path);
	/* Not a FIFO or a device: prepare must not block. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0 || fstat(fd, &sb) < 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		errf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	v->size = sb.st_size;
	v->mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	if (!(f = fdopen(fd, "r"))) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	rc = vocab_header(v, f, err, errlen);
	fclose(f);
	return rc;
}

/* Keep (key, id) in h unless a smaller id has key; -1 past VKEEP_MAX. */
static int
keep(struct htab *h, const char *key, int64_t id, long *nkept)
{
	struct concept *c = htab_get(h, key);

	if (c) {
		if (id < c->id)
			c->id = id;
		return 0;
	}
	if (++*nkept > VKEEP_MAX)
		return -1;
	c = xcalloc(1, sizeof(*c));
	c->key = xstrdup(key);
	c->id = id;
	htab_put(h, c->key, c);
	return 0;
}

/* ASCII lower case of s, in place. */
static char *
lower(char *s)
{
	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

/* The concepts of v->path into its tables; -1 with v->err. */
static int
vocab_read(struct vocab *v)
{
	char buf[VLINE_MAX], *fld[64];
	struct stat sb;
	long line = 1, nkept = 0;
	int rc = -1, need = 0;
	FILE *f = fopen(v->path, "re");

	for (int c = 0; c < NC; c++)
		if (v->col[c] >= need)
			need = v->col[c] + 1;
	if (!f || fstat(fileno(f), &sb) < 0) {
		errf(v->err, sizeof(v->err), "%s: %s", v->path, strerror(errno));
		goto out;
	}
	if (sb.st_size != v->size ||
	    (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec != v->mtime) {
		errf(v->err, sizeof(v->err), "%s: changed while this run went on: run again",
		    v->path);
		goto out;
	}
	if (vocab_line(f, buf, v->path, line, v->err, sizeof(v->err)) <= 0)
		goto out;
	while ((rc = vocab_line(f, buf, v->path, ++line, v->err, sizeof(v->err))) > 0) {
		int n = tsv_split(buf, fld, (int)LEN(fld));
		int64_t id;

		rc = -1;
		if (line > VLINES_MAX) {
			errf(v->err, sizeof(v->err), "%s: more than %d lines", v->path, VLINES_MAX);
			goto out;
		}
		if (n == 1 && !*fld[0])
			continue;
		if (n < need) {
			errf(v->err, sizeof(v->err), "%s:%ld: %d fields, the header has at least %d",
			    v->path, line, n, need);
			goto out;
		}
		if ((id = nonneg(fld[v->col[C_ID]])) < 0) {
			errf(v->err, sizeof(v->err), "%s:%ld: concept_id '%s' is not a number",
			    v->path, line, fld[v->col[C_ID]]);
			goto out;
		}
		if (*fld[v->col[C_INVALID]])
			continue;
		if ((strcmp(fld[v->col[C_VOCAB]], "DICOM") == 0 && *fld[v->col[C_CODE]] &&
		    keep(&v->modality, fld[v->col[C_CODE]], id, &nkept) < 0) ||
		    (strcmp(fld[v->col[C_DOMAIN]], "Spec Anatomic Site") == 0 &&
		    strcmp(fld[v->col[C_STANDARD]], "S") == 0 && *fld[v->col[C_NAME]] &&
		    keep(&v->site, lower(fld[v->col[C_NAME]]), id, &nkept) < 0)) {
			errf(v->err, sizeof(v->err), "%s:%ld: more than %d concepts of DICOM or Spec "
			    "Anatomic Site", v->path, line, VKEEP_MAX);
			goto out;
		}
	}
out:
	if (f)
		fclose(f);
	return rc;
}

int
vocab_load(struct vocab *v, char *err, size_t errlen)
{
	int rc;

	if (!v->path)
		return 0;
	pthread_mutex_lock(&vocab_lock);
	if (v->state == 0)
		v->state = vocab_read(v) < 0 ? -1 : 1;
	rc = v->state < 0 ? -1 : 0;
	if (rc < 0)
		errf(err, errlen, "vocabulary %s", v->err);
	pthread_mutex_unlock(&vocab_lock);
	return rc;
}

/* s without the spaces around it, into buf (len); NULL when empty. */
static char *
trimmed(const char *s, char *buf, size_t len)
{
	size_t n;

	if (!s)
		return NULL;
	while (*s == ' ')
		s++;
	n = strlen(s);
	while (n && s[n - 1] == ' ')
		n--;
	if (n == 0 || n >= len)
		return NULL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

int64_t
vocab_modality(const struct vocab *v, const char *code)
{
	char buf[64];
	const struct concept *c;

	code = trimmed(code, buf, sizeof(buf));
	c = v->path && v->state > 0 && code ? htab_get(&v->modality, code) : NULL;
	return c ? c->id : 0;
}

int64_t
vocab_site(const struct vocab *v, const char *body_part)
{
	char buf[256], *name = trimmed(body_part, buf, sizeof(buf));
	const struct concept *c;

	c = v->path && v->state > 0 && name ? htab_get(&v->site, lower(name)) : NULL;
	return c ? c->id : 0;
}

static void
concepts_free(struct htab *h)
{
	for (size_t i = 0; i < h->cap; i++) {
		struct concept *c = h->slot[i].val;

		if (h->slot[i].key && c) {
			free(c->key);
			free(c);
		}
	}
	htab_free(h);
	htab_init(h);
}

void
vocab_free(struct vocab *v)
{
	concepts_free(&v->modality);
	concepts_free(&v->site);
	free(v->path);
	v->path = NULL;
	v->size = v->mtime = 0;
	v->state = 0;
	v->err[0] = '\0';
}
