/*
 * dicomweb-fetch.c - the DICOMweb source's fetch, WADO-RS.
 *
 * /studies/{study}/series/{series}/instances lists the series; the whole
 * series comes from /studies/{study}/series/{series} when nothing of it is
 * on disk, else each missing instance from .../instances/{sop}.  Either
 * is multipart/related; type="application/dicom" with transfer-syntax=*
 * (as stored, never transcoded), each part streamed to a temp file while
 * it is hashed (source/dicomweb/multipart.h), at most [pacs] max_instance_size bytes,
 * then checked (it parses, it is of this series, it was listed) and held.
 * Held parts are made durable together, up to DURABLE_BATCH_FILES or
 * DURABLE_BATCH_BYTES (source.h) at a time and at the end: writeback is
 * started as each part ends, one syncfs waits for all of them (an fsync
 * each cost a journal commit each: 20k small instances took seconds, in
 * the way of a SIGTERM), then they are renamed and the folder fsynced.
 * Nothing is under its final name before it is durable.  As for DIMSE,
 * what arrived is compared with what was listed, whatever the status
 * said.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <xxhash.h>
#include "dicom.h"
#include "dicomweb-src.h"
#include "fileio.h"
#include "multipart.h"
#include "names.h"
#include "util.h"

static const char ACCEPT_DICOM[] = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

enum {
	REFUSED_MAX = 100,        /* parts not asked for, past those asked for */
};

/* A part checked and waiting under its temp name for its batch's sync. */
struct held {
	char *tmp;
	const char *sop;          /* a key of want */
	uint64_t hash;
};

/* ---- WADO-RS: multipart ----------------------------------------------- */

/* One retrieve's parts, as they arrive. */
struct recv {
	struct job *job;
	struct fetch *f;
	const struct htab *want;  /* SOP UIDs listed and missing */
	struct htab taken;        /* ... and those of them that arrived */
	struct multipart *mp;
	char *prefix;             /* temp files: prefix + counter */
	unsigned long counter;
	int fd;                   /* the part being written, or -1 */
	char *tmp;
	XXH3_state_t *xx;
	int refused;              /* parts that were not an instance asked for */
	const char *asked;        /* the instance asked for, or NULL for a series */
	const char *url;          /* the request, for messages */
	long long partlen;        /* bytes of the part being written */
	struct held *held;        /* checked, not yet durable */
	int nheld;
	long long heldbytes;
	char err[256];            /* the first trouble with a part */
};

static void
note(struct recv *v, const char *fmt, const char *a, const char *b)
{
	if (!v->err[0])
		snprintf(v->err, sizeof(v->err), fmt, a, b);
}

/* Make the held parts durable and put them under their names; 0, or -1
 * with err (what is left of them removed). */
static int
commit(struct recv *v, char *err, size_t errlen)
{
	struct fetch *f = v->f;
	int dfd, rc = 0;

	if (v->nheld == 0)
		return 0;
	dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || syncfs(dfd) < 0) {
		errf(err, errlen, "%s: syncfs: %s", f->dir, strerror(errno));
		rc = -1;
	}
	for (int i = 0; i < v->nheld; i++) {
		struct held *h = &v->held[i];
		char *dst = xasprintf("%s/%s.dcm", f->dir, h->sop);
		int64_t size, mtime;

		if (rc == 0 && rename(h->tmp, dst) < 0) {
			errf(err, errlen, "%s: rename: %s", dst, strerror(errno));
			rc = -1;
		} else if (rc == 0 && (mtime = mtime_ns(dst, &size)) < 0) {
			errf(err, errlen, "%s: %s", dst, strerror(errno));
			rc = -1;
		} else if (rc == 0) {
			fetch_add(f, h->sop, size, mtime, h->hash);
		}
		if (rc < 0)
			unlink(h->tmp);
		free(h->tmp);
		free(dst);
	}
	if (rc == 0 && fsync(dfd) < 0) {
		errf(err, errlen, "%s: fsync: %s", f->dir, strerror(errno));
		rc = -1;
	}
	if (dfd >= 0)
		close(dfd);
	v->nheld = 0;
	v->heldbytes = 0;
	return rc;
}

/* Remove the held parts (an interrupted job: no time for a sync). */
static void
discard(struct recv *v)
{
	for (int i = 0; i < v->nheld; i++) {
		unlink(v->held[i].tmp);
		free(v->held[i].tmp);
	}
	v->nheld = 0;
	v->heldbytes = 0;
}

static int
part_begin(void *arg, const char *ctype)
{
	struct recv *v = arg;

	/* A series of 20k parts is stopped between two of them. */
	if (job_cancelled(v->job)) {
		errf(v->job->err, sizeof(v->job->err), "interrupted");
		return -1;
	}
	if (v->refused > (int)v->want->len + REFUSED_MAX) {
		errf(v->job->err, sizeof(v->job->err), "GET %s: %d parts that are not instances "
		    "asked for, given up: %s", v->url, v->refused, v->err);
		return -1;
	}
	v->partlen = 0;
	if (ctype && strncasecmp(ctype, "application/dicom", 17) != 0) {
		v->refused++;
		note(v, "a part of type %.100s%s", ctype, "");
		return 0;
	}
	free(v->tmp);
	v->tmp = xasprintf("%s%lu", v->prefix, ++v->counter);
	v->fd = open(v->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (v->fd < 0) {
		errf(v->job->err, sizeof(v->job->err), "%s: %s", v->tmp, strerror(errno));
		return -1;
	}
	XXH3_64bits_reset(v->xx);
	return 0;
}

static int
part_data(void *arg, const void *p, size_t n)
{
	struct recv *v = arg;
	const char *c = p;

	/* Kept or not, a part that never ends must not go on for ever. */
	if ((long long)n > v->job->ctx->cfg->pacs.max_instance_size - v->partlen) {
		errf(v->job->err, sizeof(v->job->err), "GET %s: a part grew past [pacs] "
		    "max_instance_size (%lld bytes) without ending; given up (raise it if "
		    "instances this large are real)", v->url,
		    v->job->ctx->cfg->pacs.max_instance_size);
		/* The server would send the same again. */
		v->job->no_retry = 1;
		return -1;
	}
	v->partlen += (long long)n;
	if (v->fd < 0)
		return 0;         /* a part we do not keep */
	XXH3_64bits_update(v->xx, p, n);
	atomic_fetch_add(&v->job->bytes, (long long)n);
	while (n > 0) {
		ssize_t w = write(v->fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			char hint[160];
			int e = errno;

			errf(v->job->err, sizeof(v->job->err), "%s: cannot write: %s%s", v->f->dir,
			    strerror(e), write_hint(e, hint, sizeof(hint)));
			/* Our disk, not the server: asking again cannot help. */
			v->job->no_retry = *hint != '\0';
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
part_end(void *arg, int complete)
{
	struct recv *v = arg;
	struct fetch *f = v->f;
	struct dcm_header h;
	char e[DCM_ERR_MAX], *key;
	int fd = v->fd, parsed;

	if (fd < 0)
		return 0;
	v->fd = -1;
	if (!complete) {
		close(fd);
		unlink(v->tmp);
		return 0;
	}
	/* Its writeback starts now: the batch's sync finds it on its way. */
	sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (close(fd) < 0) {
		errf(v->job->err, sizeof(v->job->err), "%s: %s", v->tmp, strerror(errno));
		unlink(v->tmp);
		return -1;
	}
	/* Trust nothing: it parses, it is of this series, it was asked for
	 * (the UIDs are all that is looked at). */
	parsed = dcm_read_header(v->tmp, &h, e) == 0;
	dcm_header_free(&h);
	if (!parsed) {
		if (v->asked)
			note(v, "what the server sent for instance %s does not parse: %.150s",
			    v->asked, e);
		else
			note(v, "a part does not parse: %.180s%s", e, "");
	} else if (strcmp(h.study_uid, f->s->study) || strcmp(h.series_uid, f->s->uid)) {
		note(v, "instance %s belongs to series %s, not this one", h.sop_uid, h.series_uid);
	} else if (!(key = htab_get(v->want, h.sop_uid))) {
		note(v, "instance %s%s was not asked for", h.sop_uid, "");
	} else if (htab_get(&v->taken, key)) {
		/* Counted once: a copy must not stand in for one left out. */
		note(v, "instance %s%s came twice in one answer", h.sop_uid, "");
	} else {
		htab_put(&v->taken, key, key);
		v->held = xreallocarray(v->held, (size_t)v->nheld + 1, sizeof(*v->held));
		v->held[v->nheld++] = (struct held){ v->tmp, key, XXH3_64bits_digest(v->xx) };
		v->tmp = NULL;
		v->heldbytes += v->partlen;
		atomic_fetch_add(&v->job->done, 1);
		if (v->nheld >= DURABLE_BATCH_FILES || v->heldbytes >= DURABLE_BATCH_BYTES)
			return commit(v, v->job->err, sizeof(v->job->err));
		return 0;
	}
	v->refused++;
	unlink(v->tmp);
	return 0;
}

static const struct multipart_cb parts = {
	.begin = part_begin, .data = part_data, .end = part_end,
};

static int
on_body(void *arg, const char *ctype, const void *p, size_t n)
{
	struct recv *v = arg;

	if (!v->mp) {
		char e[256], *b = multipart_boundary(ctype, e, sizeof(e));

		if (!b) {
			errf(v->job->err, sizeof(v->job->err), "the server sent %s, not multipart: %s",
			    ctype, e);
			return -1;
		}
		v->mp = multipart_new(b, &parts, v);
		free(b);
	}
	if (multipart_feed(v->mp, p, n) < 0) {
		if (!v->job->err[0])
			errf(v->job->err, sizeof(v->job->err), "multipart body: %s",
			    multipart_error(v->mp));
		return -1;
	}
	return 0;
}

/* One WADO-RS retrieve into f->dir. */
static int
wado(struct job *job, struct recv *v, const char *url)
{
	int rc;

	job->err[0] = '\0';
	v->url = url;
	/* No deadline: how long a series may take depends on its size,
	 * unknown here; HTTP_LOW_SPEED and max_instance_size bound it. */
	rc = dw_get(job, url, ACCEPT_DICOM, NULL, on_body, v);
	if (v->mp) {
		if (multipart_finish(v->mp) < 0 && rc == 0) {
			errf(job->err, sizeof(job->err), "GET %s: multipart body: %s", url,
			    multipart_error(v->mp));
			rc = -1;
		}
		multipart_free(v->mp);
		v->mp = NULL;
	}
	if (v->fd >= 0) {         /* a part cut off by an error */
		close(v->fd);
		unlink(v->tmp);
		v->fd = -1;
	}
	return rc;
}

struct list {
	struct fetch *f;
	char **v;                 /* missing SOP UIDs, NULL-terminated */
	int n, total;
};

static int
on_instance(void *arg, json_t *o)
{
	struct list *l = arg;
	char sop[DCM_UID_MAX];

	dw_attr(o, "00080018", sop, sizeof(sop));
	if (!uid_is_safe(sop))
		return 0;
	l->total++;
	if (!l->f->force && htab_get(&l->f->have, sop))
		return 0;
	l->v = xreallocarray(l->v, (size_t)l->n + 2, sizeof(*l->v));
	l->v[l->n++] = xstrdup(sop);
	l->v[l->n] = NULL;
	return 0;
}

/* The first few of l's instances that are not among f->got[from..]: what
 * the user looks for at the server. */
static char *
missing(const struct fetch *f, int from, const struct list *l)
{
	struct htab got;
	char *s = xstrdup(""), *t;
	int n = 0;

	htab_init(&got);
	for (int i = from; i < f->ngot; i++)
		htab_put(&got, f->got[i].sop, f->got[i].sop);
	for (int i = 0; i < l->n; i++) {
		if (htab_get(&got, l->v[i]))
			continue;
		if (++n > 3) {
			t = xasprintf("%s and more", s);
			free(s);
			s = t;
			break;
		}
		t = xasprintf("%s%s%s", s, n > 1 ? ", " : "", l->v[i]);
		free(s);
		s = t;
	}
	htab_free(&got);
	return s;
}

static int
fetch_once(struct job *job, void *arg)
{
	struct fetch *f = arg;
	struct dicomweb *d = job->ctx->src->priv;
	struct list miss = { .f = f };
	struct htab want;
	struct recv v = { .job = job, .f = f, .want = &want, .fd = -1 };
	char *series = xasprintf("%s/studies/%s/series/%s", d->base, f->s->study, f->s->uid);
	char *u = xasprintf("%s/instances?includefield=00080018", series);
	int rc, before = f->ngot, got;

	htab_init(&want);
	htab_init(&v.taken);
	/* A retry resumes: what arrived so far counts as present. */
	for (int i = 0; i < f->ngot; i++)
		htab_put(&f->have, f->got[i].sop, f->got[i].sop);
	if (before)
		f->force = 0;
	rc = dw_qido(job, u, on_instance, &miss);
	free(u);
	if (rc < 0)
		goto out;
	f->listed = miss.total;
	atomic_store(&job->total, miss.n);
	for (int i = 0; i < miss.n; i++)
		htab_put(&want, miss.v[i], miss.v[i]);
	v.xx = XXH3_createState();
	v.prefix = xasprintf("%s/%swado-", f->dir, tmp_tag());
	if (miss.n > 0 && (f->force || f->have.len == 0)) {
		/* Nothing on disk: the whole series in one answer. */
		rc = wado(job, &v, series);
	} else {
		for (int i = 0; rc == 0 && i < miss.n; i++) {
			u = xasprintf("%s/instances/%s", series, miss.v[i]);
			v.asked = miss.v[i];
			rc = wado(job, &v, u);
			free(u);
		}
	}
	if (job_cancelled(job)) {
		discard(&v);
	} else {
		char e[sizeof(job->err)];

		/* Even after an error: a retry or the next run resumes. */
		if (commit(&v, e, sizeof(e)) < 0 && rc == 0) {
			memcpy(job->err, e, sizeof(e));
			rc = -1;
		}
	}
	got = f->ngot - before;
	if (rc == 0 && got < miss.n) {
		char *lost = missing(f, before, &miss);

		errf(job->err, sizeof(job->err),
		    "incomplete: %d of %d instances arrived (missing %s)%s%s",
		    got, miss.n, lost, v.err[0] ? "; " : "", v.err);
		free(lost);
		rc = -1;
	}
out:
	discard(&v);
	free(v.held);
	htab_free(&want);
	htab_free(&v.taken);
	strv_free(miss.v);
	if (v.xx)
		XXH3_freeState(v.xx);
	free(v.prefix);
	free(v.tmp);
	free(series);
	return rc;
}

int
dw_fetch(struct source *src, struct job *job, struct fetch *f)
{
	return source_retry(job, fetch_once, f);
}

