/* catalog.c - the in-memory catalog and the signatures computed over it. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "catalog.h"
#include "fileio.h"
#include "names.h"
#include "util.h"

void
catalog_init(struct catalog *c)
{
	memset(c, 0, sizeof(*c));
	htab_init(&c->byid);
	htab_init(&c->byuid);
	htab_init(&c->strs);
}

static void
series_free(struct series *s)
{
	free(s->uid);
	free(s->error);
	free(s->dir);
	free(s);
}

void
catalog_free(struct catalog *c)
{
	for (int i = 0; i < c->np; i++) {
		struct patient *p = c->p[i];

		for (int j = 0; j < p->nseries; j++)
			series_free(p->series[j]);
		free(p->series);
		free(p->want);
		for (int j = 0; j < p->nold; j++)
			free(p->old[j]);
		free(p->old);
		free(p->id);
		free(p->name);
		free(p->ar_error);
		free(p->query_error);
		free(p->ar.path);
		free(p->ar.series);
		free(p);
	}
	free(c->p);
	htab_free(&c->byid);
	htab_free(&c->byuid);
	for (size_t i = 0; i < c->strs.cap; i++)
		free((char *)c->strs.slot[i].key);
	htab_free(&c->strs);
	memset(c, 0, sizeof(*c));
}

struct patient *
catalog_find_patient(const struct catalog *c, const char *id)
{
	return htab_get(&c->byid, id);
}

struct series *
catalog_find_series(const struct catalog *c, const char *uid)
{
	return htab_get(&c->byuid, uid);
}

struct patient *
catalog_patient(struct catalog *c, const char *id)
{
	struct patient *p = htab_get(&c->byid, id);

	if (p)
		return p;
	p = xcalloc(1, sizeof(*p));
	p->id = xstrdup(id);
	p->name = name_encode(id);
	c->p = xreallocarray(c->p, (size_t)c->np + 1, sizeof(*c->p));
	c->p[c->np++] = p;
	htab_put(&c->byid, p->id, p);
	return p;
}

struct series *
catalog_series(struct catalog *c, struct patient *p, const char *study, const char *uid)
{
	struct series *s = htab_get(&c->byuid, uid);

	if (s)
		return s;
	s = xcalloc(1, sizeof(*s));
	s->uid = xstrdup(uid);
	s->study = catalog_intern(c, study);
	s->patient = p;
	s->dirty = 1;
	p->series = xreallocarray(p->series, (size_t)p->nseries + 1, sizeof(*p->series));
	p->series[p->nseries++] = s;
	htab_put(&c->byuid, s->uid, s);
	return s;
}

static int
cmp_patient(const void *a, const void *b)
{
	return strcmp((*(struct patient *const *)a)->id, (*(struct patient *const *)b)->id);
}

static int
cmp_series(const void *a, const void *b)
{
	const struct series *x = *(struct series *const *)a, *y = *(struct series *const *)b;
	int r = strcmp(x->study, y->study);

	return r ? r : strcmp(x->uid, y->uid);
}

void
catalog_sort(struct catalog *c)
{
	if (c->np == 0)
		return;
	qsort(c->p, (size_t)c->np, sizeof(*c->p), cmp_patient);
	for (int i = 0; i < c->np; i++)
		if (c->p[i]->nseries > 1)
			qsort(c->p[i]->series, (size_t)c->p[i]->nseries, sizeof(struct series *), cmp_series);
}

int
catalog_set(char **dst, const char *v)
{
	if ((*dst == NULL && v == NULL) || (*dst && v && strcmp(*dst, v) == 0))
		return 0;
	free(*dst);
	*dst = xstrdup(v);
	return 1;
}

const char *
catalog_intern(struct catalog *c, const char *v)
{
	char *s;

	if (!v)
		return NULL;
	if ((s = htab_get(&c->strs, v)))
		return s;
	s = xstrdup(v);
	htab_put(&c->strs, s, s);
	return s;
}

int
catalog_iset(struct catalog *c, const char **dst, const char *v)
{
	if ((*dst == NULL && v == NULL) || (*dst && v && strcmp(*dst, v) == 0))
		return 0;
	*dst = catalog_intern(c, v);
	return 1;
}

static int
cmp_instance(const void *a, const void *b)
{
	return strcmp(((const struct instance *)a)->sop, ((const struct instance *)b)->sop);
}

uint64_t
catalog_set_sig(struct instance *inst, int n)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h;

	if (!st)
		fatal("XXH3_createState: out of memory");
	if (n > 1)
		qsort(inst, (size_t)n, sizeof(*inst), cmp_instance);
	XXH3_64bits_reset(st);
	for (int i = 0; i < n; i++) {
		XXH3_64bits_update(st, inst[i].sop, strlen(inst[i].sop) + 1);
		XXH3_64bits_update(st, &inst[i].hash, sizeof(inst[i].hash));
	}
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h ? h : 1;   /* 0 means "none" */
}

uint64_t
catalog_archive_sig(struct series *const *v, int n, const char *settings)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h;

	if (!st)
		fatal("XXH3_createState: out of memory");
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, settings, strlen(settings) + 1);
	for (int i = 0; i < n; i++) {
		const struct series *s = v[i];

		XXH3_64bits_update(st, s->study, strlen(s->study) + 1);
		XXH3_64bits_update(st, s->uid, strlen(s->uid) + 1);
		XXH3_64bits_update(st, &s->set_sig, sizeof(s->set_sig));
	}
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h ? h : 1;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *
catalog_series_list(struct series *const *v, int n)
{
	size_t len = 1;
	char *s;
	const char **uids = xcalloc((size_t)n + 1, sizeof(*uids));

	for (int i = 0; i < n; i++) {
		uids[i] = v[i]->uid;
		len += strlen(uids[i]) + 1;
	}
	qsort(uids, (size_t)n, sizeof(*uids), cmp_str);
	s = xmalloc(len);
	len = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(uids[i]);

		if (i)
			s[len++] = ' ';
		memcpy(s + len, uids[i], l);
		len += l;
	}
	s[len] = '\0';
	free(uids);
	return s;
}

void
instance_free(struct instance *inst, int n)
{
	for (int i = 0; i < n; i++)
		free(inst[i].sop);
	free(inst);
}

void
series_check_disk(struct series *s)
{
	int64_t mt;
	char **sops;
	char err[256];

	if (s->disk_checked)
		return;
	s->disk_checked = 1;
	mt = mtime_ns(s->dir, NULL);
	if (mt < 0) {
		s->disk_count = 0;
		s->dir_changed = s->ninst > 0;
		return;
	}
	if (s->dir_mtime != 0 && mt == s->dir_mtime) {
		s->disk_count = s->ninst;
		s->dir_changed = 0;
		return;
	}
	s->dir_changed = 1;
	sops = list_dcm(s->dir, &s->disk_count, err, sizeof(err));
	strv_free(sops);
}
