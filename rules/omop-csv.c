/*
 * omop-csv.c - the omop stage's CSV, RFC 4180 both ways: a row as a line
 * (a field quoted when it holds a comma, a quote or a line break, quotes
 * doubled, CRLF between records), person_map read from a file, and with
 * [omop] dir the table files, <dir>/<table>.csv, written at the end of a
 * run from the rows the state keeps.
 *
 * A table file is written under a temp name in its folder, compared with
 * the file there (XXH3 and size), and only when it differs fsynced and
 * renamed over it: a run that changes no row leaves the file as it was,
 * same bytes, inode and mtime.  Its target record (stage omop, key the
 * file's path, which no patient key can be: those have no '/') holds the
 * file's size, mtime and hash, so a run that made nothing only stats it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include "fileio.h"
#include "omop-int.h"
#include "util.h"

/* A person_map record, at most, in bytes and fields. */
enum { REC_MAX = 4096, FIELDS_MAX = 64 };

char *
csv_line(char *const *vals, int n)
{
	size_t len = 1;
	char *line, *d;

	for (int i = 0; i < n; i++)
		len += (vals[i] ? 2 * strlen(vals[i]) + 2 : 0) + 1;
	d = line = xmalloc(len);
	for (int i = 0; i < n; i++) {
		const char *v = vals[i] ? vals[i] : "";
		int quote = v[strcspn(v, ",\"\r\n")] != '\0';

		if (i)
			*d++ = ',';
		if (quote)
			*d++ = '"';
		for (; *v; v++) {
			if (*v == '"')
				*d++ = '"';
			*d++ = *v;
		}
		if (quote)
			*d++ = '"';
	}
	*d = '\0';
	return line;
}

/* A CSV file read record by record. */
struct csvr {
	FILE *f;
	const char *path;
	long line;                /* lines read so far */
	long start;               /* the line the last record began on */
	char buf[REC_MAX];        /* its fields, each '\0'-terminated */
	char *fld[FIELDS_MAX];
	int nfld;
};

/* Append byte c to the record; -1 with err when it is too long. */
static int
rec_put(struct csvr *r, size_t *len, int c, char *err, size_t errlen)
{
	if (*len + 1 >= sizeof(r->buf)) {
		errf(err, errlen, "%s:%ld: record longer than %d bytes", r->path, r->start,
		    REC_MAX - 1);
		return -1;
	}
	r->buf[(*len)++] = (char)c;
	return 0;
}

/* End the field at len, start the next; -1 with err past FIELDS_MAX. */
static int
rec_field(struct csvr *r, size_t *len, char *err, size_t errlen)
{
	if (rec_put(r, len, '\0', err, errlen) < 0)
		return -1;
	if (r->nfld == FIELDS_MAX) {
		errf(err, errlen, "%s:%ld: more than %d fields", r->path, r->start, FIELDS_MAX);
		return -1;
	}
	r->fld[r->nfld++] = r->buf + *len;
	return 0;
}

/* The next record into r->fld: 1, 0 at the end of the file, -1 with err.
 * A record that is one empty line is skipped. */
static int
csv_record(struct csvr *r, char *err, size_t errlen)
{
	size_t len;
	int c, quoted, closed, any;

again:
	len = 0;
	quoted = closed = any = 0;
	r->start = r->line + 1;
	r->nfld = 1;
	r->fld[0] = r->buf;
	for (;;) {
		c = getc(r->f);
		if (c == EOF && ferror(r->f)) {
			errf(err, errlen, "%s:%ld: %s", r->path, r->start, strerror(errno));
			return -1;
		}
		if (quoted && !closed) {
			if (c == EOF) {
				errf(err, errlen, "%s:%ld: a quoted field is not closed", r->path, r->start);
				return -1;
			}
			if (c == '"') {
				if ((c = getc(r->f)) != '"') {
					ungetc(c, r->f);
					closed = 1;
					continue;
				}
			} else if (c == '\n') {
				r->line++;
			}
			if (rec_put(r, &len, c, err, errlen) < 0)
				return -1;
			continue;
		}
		if (c == '\r') {
			if ((c = getc(r->f)) != '\n') {
				errf(err, errlen, "%s:%ld: a carriage return not before a line feed",
				    r->path, r->start);
				return -1;
			}
		}
		if (c == EOF || c == '\n') {
			if (c == '\n')
				r->line++;
			if (c == EOF && !any)
				return 0;
			r->buf[len] = '\0';
			if (r->nfld == 1 && len == 0 && !quoted)
				goto again;
			return 1;
		}
		any = 1;
		if (c == ',') {
			if (rec_field(r, &len, err, errlen) < 0)
				return -1;
			quoted = closed = 0;
			continue;
		}
		if (closed || (c == '"' && r->fld[r->nfld - 1] != r->buf + len)) {
			errf(err, errlen, "%s:%ld: %s", r->path, r->start, closed ?
			    "text after a closing quote (a quote inside a quoted field is written \"\")" :
			    "a quote inside a field that does not begin with one");
			return -1;
		}
		if (c == '"')
			quoted = 1;
		else if (rec_put(r, &len, c, err, errlen) < 0)
			return -1;
	}
}

/* Open path for reading, a regular file only (a FIFO would block). */
static FILE *
open_regular(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	FILE *f;

	if (fd < 0 || fstat(fd, &sb) < 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(sb.st_mode) || !(f = fdopen(fd, "r"))) {
		errf(err, errlen, "%s: %s", path, S_ISREG(sb.st_mode) ? strerror(errno) :
		    "not a regular file");
		close(fd);
		return NULL;
	}
	return f;
}

/* Which of the header's fields are patient_id and person_id; -1 with err. */
static int
persons_header(struct csvr *r, int *ip, int *iq, char *err, size_t errlen)
{
	*ip = *iq = -1;
	for (int i = 0; i < r->nfld; i++) {
		int *k = strcmp(r->fld[i], "patient_id") == 0 ? ip :
		    strcmp(r->fld[i], "person_id") == 0 ? iq : NULL;

		if (k && *k >= 0) {
			errf(err, errlen, "%s:%ld: column %s twice", r->path, r->start, r->fld[i]);
			return -1;
		}
		if (k)
			*k = i;
	}
	if (*ip < 0 || *iq < 0) {
		errf(err, errlen, "%s:%ld: no column %s: the header must name the columns "
		    "patient_id and person_id", r->path, r->start, *ip < 0 ? "patient_id" : "person_id");
		return -1;
	}
	return 0;
}

int
csv_persons(const char *path, struct htab *map, char *err, size_t errlen)
{
	struct csvr *r = xcalloc(1, sizeof(*r));
	int ip, iq, rc = -1;
	long n = 0;

	r->path = path;
	if (!(r->f = open_regular(path, err, errlen)))
		goto out;
	/* A byte order mark, as spreadsheets write one. */
	if (getc(r->f) != 0xef || getc(r->f) != 0xbb || getc(r->f) != 0xbf)
		rewind(r->f);
	if ((rc = csv_record(r, err, errlen)) <= 0) {
		if (rc == 0)
			errf(err, errlen, "%s: empty: the header must name the columns patient_id "
			    "and person_id", path);
		rc = -1;
		goto out;
	}
	if ((rc = persons_header(r, &ip, &iq, err, errlen)) < 0)
		goto out;
	while ((rc = csv_record(r, err, errlen)) > 0) {
		rc = -1;
		if (++n > PERSONS_MAX) {
			errf(err, errlen, "%s: more than %d rows", path, PERSONS_MAX);
			goto out;
		}
		if (r->nfld <= ip || r->nfld <= iq) {
			errf(err, errlen, "%s:%ld: %d field%s, patient_id and person_id are fields %d "
			    "and %d", path, r->start, r->nfld, r->nfld == 1 ? "" : "s", ip + 1, iq + 1);
			goto out;
		}
		if (person_add(map, r->fld[ip], r->fld[iq], path, r->start, err, errlen) < 0)
			goto out;
	}
out:
	if (r->f)
		fclose(r->f);
	free(r);
	return rc;
}

/* A table file being written: where, and what went in so far. */
struct tfile {
	FILE *f;
	XXH3_state_t *h;
	int64_t size;
	int werr;                 /* errno of a write that failed, or 0 */
};

static int
tfile_put(struct tfile *t, const char *s)
{
	size_t n = strlen(s);

	XXH3_64bits_update(t->h, s, n);
	t->size += (int64_t)n;
	if (fwrite(s, 1, n, t->f) != n) {
		t->werr = errno;
		return -1;
	}
	return 0;
}

/* A row from the state into the file (state_omop_get's callback). */
static int
tfile_row(void *arg, const struct omop_row *r)
{
	struct tfile *t = arg;

	return tfile_put(t, r->line) < 0 || tfile_put(t, "\r\n") < 0 ? -1 : 0;
}

/* The record of a table file, as state_load_target calls back. */
static void
tfile_rec(void *arg, const struct target_rec *r)
{
	*(struct target_rec *)arg = (struct target_rec){ .size = r->size, .mtime = r->mtime,
		.hash = r->hash };
}

/* Write table tbl's file at path from the state, unless it would stay the
 * same; *rec gets what it is then.  0, or -1 with err. */
static int
table_write(struct ctx *ctx, enum omop_tbl tbl, const char *path, struct target_rec *rec,
    char *err, size_t errlen)
{
	const struct omop_table *ot = &omop_tables[tbl];
	struct tfile t = { .h = XXH3_createState() };
	char *tmp = tmp_name(path), hint[160];
	uint64_t hash, old = 0;
	int64_t oldsize = -1, oldmtime = -1;
	int fd, rc = -1, keep = 0;

	XXH3_64bits_reset(t.h);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || !(t.f = fdopen(fd, "w"))) {
		errf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	for (int i = 0; i < ot->ncol; i++)
		if ((i && tfile_put(&t, ",") < 0) || tfile_put(&t, ot->col[i].name) < 0)
			goto werr;
	if (tfile_put(&t, "\r\n") < 0)
		goto werr;
	if (state_omop_get(ctx->st, ot->name, NULL, tfile_row, &t) < 0) {
		if (t.werr) {
			errno = t.werr;
			goto werr;
		}
		errf(err, errlen, "%s: reading its rows: %s", path, ctx->st->err);
		goto out;
	}
	if (fflush(t.f) != 0)
		goto werr;
	hash = XXH3_64bits_digest(t.h);
	/* The file there already holds exactly this: it stays. */
	keep = hash_file(path, &old, &oldsize, &oldmtime, NULL, hint, sizeof(hint)) == 0 &&
	    old == hash && oldsize == t.size;
	if (!keep) {
		int closed;

		if (fsync(fileno(t.f)) != 0)
			goto werr;
		closed = fclose(t.f);
		t.f = NULL;
		if (closed != 0)
			goto werr;
		if (rename(tmp, path) < 0) {
			errf(err, errlen, "%s: rename: %s", path, strerror(errno));
			goto out;
		}
		if (fsync_parent(path, err, errlen) < 0 || (oldmtime = mtime_ns(path, &oldsize)) < 0) {
			if (oldmtime < 0)
				errf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
	}
	*rec = (struct target_rec){ .path = path, .size = oldsize, .mtime = oldmtime, .hash = hash };
	rc = 0;
	goto out;
werr:
	errf(err, errlen, "%s: %s%s", tmp, strerror(errno), write_hint(errno, hint, sizeof(hint)));
out:
	if (t.f)
		fclose(t.f);
	if (rc < 0 || keep)
		unlink(tmp);
	XXH3_freeState(t.h);
	free(tmp);
	return rc;
}

int
csv_write_tables(const struct rule *ru, struct ctx *ctx, int made)
{
	const char *dir = ctx->cfg->omop.dir;
	char err[JOB_ERR_MAX], detail[32];
	int rc = 0;

	if (mkdirs(dir, err, sizeof(err)) < 0) {
		warn("omop: %s", err);
		return -1;
	}
	remove_dead_temps(dir);
	for (int t = 0; t < NTBL; t++) {
		char *path = xasprintf("%s/%s.csv", dir, omop_tables[t].name);
		struct target_rec had = { .mtime = -1 }, now = { 0 };
		int64_t size = 0;

		/* Nothing made, and the file as written last: nothing to do. */
		if (state_load_target(ctx->st, ru->name, path, tfile_rec, &had) > 0 && !made &&
		    mtime_ns(path, &size) == had.mtime && size == had.size) {
			free(path);
			continue;
		}
		if (table_write(ctx, (enum omop_tbl)t, path, &now, err, sizeof(err)) < 0) {
			warn("omop: %s", err);
			rc = -1;
		} else if (now.size != had.size || now.mtime != had.mtime || now.hash != had.hash) {
			snprintf(detail, sizeof(detail), "%lld bytes", (long long)now.size);
			now.detail = detail;
			if (state_begin(ctx->st) < 0 || state_save_target(ctx->st, ru->name, path, &now) < 0 ||
			    state_commit(ctx->st) < 0) {
				state_rollback(ctx->st);
				warn("omop: recording %s: %s", path, ctx->st->err);
				rc = -1;
			}
		}
		free(path);
	}
	return rc;
}
