/* zpack-check.c - the archive written checked against what was handed to libzip. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include "util.h"
#include "zpack-int.h"

enum { CHUNK = 4 << 20 };

/* Entry i, left to libzip, read through it: it checks the CRC. */
static int
check_libzip(struct zpack *zp, zip_t *za, int i, unsigned char *buf, char *err, size_t errlen)
{
	zip_file_t *f = zip_fopen_index_encrypted(za, (zip_uint64_t)i, 0, zp->o.password);
	zip_int64_t r;

	if (!f) {
		errf(err, errlen, "%s: %s", zp->e[i].name, zip_strerror(za));
		return -1;
	}
	while ((r = zip_fread(f, buf, 1 << 16)) > 0)
		;
	if (r < 0)
		errf(err, errlen, "%s: %s", zp->e[i].name, zip_error_strerror(zip_file_get_error(f)));
	zip_fclose(f);
	return r < 0 ? -1 : 0;
}

/* The directory of za against what was handed to libzip. */
static int
check_dir(struct zpack *zp, zip_t *za, unsigned char *buf, char *err, size_t errlen)
{
	if (zip_get_num_entries(za, 0) != zp->n) {
		errf(err, errlen, "%lld entries written, %d expected",
		    (long long)zip_get_num_entries(za, 0), zp->n);
		return -1;
	}
	for (int i = 0; i < zp->n; i++) {
		struct zpack_entry *e = &zp->e[i];
		zip_stat_t st;

		if (zip_stat_index(za, (zip_uint64_t)i, 0, &st) < 0) {
			errf(err, errlen, "entry %d (%s): %s", i, e->name, zip_strerror(za));
			return -1;
		}
		if (!(st.valid & ZIP_STAT_NAME) || strcmp(st.name, e->name) != 0) {
			errf(err, errlen, "entry %d is %s, expected %s", i,
			    st.valid & ZIP_STAT_NAME ? st.name : "?", e->name);
			return -1;
		}
		if (!e->comp_hash) {
			if (check_libzip(zp, za, i, buf, err, errlen) < 0)
				return -1;
			continue;
		}
		/* libzip writes no CRC for an AES entry under 20 bytes. */
		if (zp->off[i] < 0 || st.size != (zip_uint64_t)e->size ||
		    st.comp_size != (zip_uint64_t)e->comp_size ||
		    (st.crc != e->crc && !(zp->o.password && e->size < 20))) {
			errf(err, errlen, "%s: its sizes or CRC in the archive differ from those "
			    "written", e->name);
			return -1;
		}
	}
	return 0;
}

struct sweep *
sweep_new(void)
{
	struct sweep *w = xcalloc(1, sizeof(*w));

	if (!(w->all = XXH3_createState()) || !(w->one = XXH3_createState()))
		fatal("XXH3_createState: out of memory");
	XXH3_64bits_reset(w->all);
	return w;
}

void
sweep_free(struct sweep *w)
{
	if (!w)
		return;
	XXH3_freeState(w->all);
	XXH3_freeState(w->one);
	free(w);
}

static void
sweep_feed(struct zpack *zp, struct sweep *w, const unsigned char *p, size_t n)
{
	int64_t at = w->at, end = at + (int64_t)n;

	XXH3_64bits_update(w->all, p, n);
	w->at = end;
	for (; w->k < zp->n && !w->bad[0]; w->k++) {
		struct zpack_entry *e = &zp->e[w->k];
		int64_t s = atomic_load(&zp->off[w->k]), t, a, b;

		if (!e->comp_hash)
			continue;
		if (s < 0 || s >= end)
			break;            /* not written yet, or further on */
		t = s + e->comp_size;
		a = s > at ? s : at;
		b = t < end ? t : end;
		if (a == s)
			XXH3_64bits_reset(w->one);
		XXH3_64bits_update(w->one, p + (a - at), (size_t)(b - a));
		if (t > end)
			break;
		if (XXH3_64bits_digest(w->one) != e->comp_hash)
			snprintf(w->bad, sizeof(w->bad), "%s: the bytes in the archive differ from "
			    "those written", e->name);
	}
}

/* Every entry seen whole and right: 0 and the file's hash; else -1. */
static int
sweep_end(struct zpack *zp, struct sweep *w, uint64_t *hash, char *err, size_t errlen)
{
	if (w->bad[0]) {
		errf(err, errlen, "%s", w->bad);
		return -1;
	}
	for (; w->k < zp->n && !zp->e[w->k].comp_hash; w->k++)
		;
	if (w->k < zp->n) {
		errf(err, errlen, "the archive ends before %s", zp->e[w->k].name);
		return -1;
	}
	*hash = XXH3_64bits_digest(w->all);
	return 0;
}

/* zfd's watcher, on the writer's thread. */
void
zpack_watch(void *arg, int64_t off, const unsigned char *p, size_t n)
{
	struct zpack *zp = arg;

	if (off < 0)
		zp->live_whole = n != 0;
	else
		sweep_feed(zp, zp->live, p, n);
}

/* The file at path read from the disk where the filesystem can (zfd.h
 * wrote most of it past the page cache), through a sweep. */
static int
read_back(struct zpack *zp, const char *path, uint64_t *hash, char *err, size_t errlen)
{
	struct sweep *w = sweep_new();
	unsigned char *buf;
	int fd = -1, rc = -1, direct = O_DIRECT;
	ssize_t r;

	if (posix_memalign((void **)&buf, 4096, CHUNK) != 0)
		fatal("out of memory");
again:
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | direct)) < 0 && direct) {
		direct = 0;
		goto again;
	}
	if (fd < 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (;;) {
		while ((r = pread(fd, buf, CHUNK, (off_t)w->at)) < 0 && errno == EINTR)
			;
		if (r < 0 && errno == EINVAL && direct && w->at == 0) {
			close(fd);
			direct = 0;
			goto again;
		}
		if (r < 0) {
			errf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		sweep_feed(zp, w, buf, (size_t)r);
	}
	rc = sweep_end(zp, w, hash, err, errlen);
out:
	if (fd >= 0)
		close(fd);
	sweep_free(w);
	free(buf);
	return rc;
}

int
zpack_check(struct zpack *zp, zip_t *za, const char *path, uint64_t *hash, char *err,
    size_t errlen)
{
	unsigned char *buf = xmalloc(1 << 16);
	int rc;

	rc = check_dir(zp, za, buf, err, errlen);
	free(buf);
	if (rc < 0)
		return -1;
	/* What the writer saw is the file when nothing it showed was
	 * written again (libzip's header of an entry over 1 MB can be):
	 * else the file is read back. */
	if (zp->live && zp->live_whole)
		return sweep_end(zp, zp->live, hash, err, errlen);
	return read_back(zp, path, hash, err, errlen);
}

