/*
 * zpack.c - an archive's entries made (or copied) for libzip, ahead, on
 * borrowed threads; zpack-check.c checks what was written.
 */
#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include "sched.h"
#include "util.h"
#include "zaes.h"
#include "zfd.h"
#include "zpack-int.h"

struct zsrc {
	struct zpack *zp;
	int i;
	zip_error_t error;
};

int
zpack_raw(const struct zpack_opts *o, int64_t size)
{
	return size <= ZPACK_MAX && !(o->method == ZIP_CM_STORE && o->password);
}

/* Made ahead: neither copied nor left to libzip. */
static int
to_make(const struct zpack *zp, int i)
{
	return zp->e[i].from < 0 && zpack_raw(&zp->o, zp->e[i].size);
}

static unsigned char *
grow(unsigned char **p, size_t *cap, size_t n)
{
	if (n > *cap || !*p) {
		free(*p);
		*p = xmalloc(n ? n : 1);
		*cap = n;
	}
	return *p;
}

static void
maker_fini(struct maker *m)
{
	if (m->c)
		libdeflate_free_compressor(m->c);
	if (m->d)
		libdeflate_free_decompressor(m->d);
	free(m->in);
	free(m->chk);
	memset(m, 0, sizeof(*m));
}

/* Say why the entry of slot s failed (its maker holds it alone); what
 * libzip is told, and zpack_error says, when libzip opens it. */
static void
fail(struct slot *s, int zerr, int serr, int copy, const char *fmt, ...)
{
	va_list ap;

	s->zerr = zerr;
	s->serr = serr;
	s->copy = copy;
	va_start(ap, fmt);
	free(s->msg);
	s->msg = xvasprintf(fmt, ap);
	va_end(ap);
}

/* The file of e into m->in, when it is still the regular file of
 * e->size bytes the caller looked at; 0, or -1 (s says why). */
static int
read_file(struct zpack *zp, struct maker *m, struct zpack_entry *e, struct slot *s)
{
	struct stat st;
	size_t got = 0;
	int fd = open(e->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fail(s, ZIP_ER_READ, errno, 0, "%s: %s", e->path, strerror(errno));
		goto bad;
	}
	if (!S_ISREG(st.st_mode) || st.st_size != e->size) {
		fail(s, ZIP_ER_CHANGED, 0, 0, "%s: changed since it was looked at; run again",
		    e->path);
		goto bad;
	}
	grow(&m->in, &m->incap, (size_t)e->size);
	while (got < (size_t)e->size) {
		ssize_t r = read(fd, m->in + got, (size_t)e->size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fail(s, r < 0 ? ZIP_ER_READ : ZIP_ER_CHANGED, r < 0 ? errno : 0, 0,
			    "%s: %s", e->path, r < 0 ? strerror(errno) : "shorter than it was");
			goto bad;
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
bad:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Compress m->in into a new buffer (*out, *len), and check that it comes
 * back as it went in.  0, or -1 (s says why). */
static int
compress(struct zpack *zp, struct maker *m, struct zpack_entry *e, struct slot *s,
    unsigned char **out, size_t *len)
{
	size_t n = (size_t)e->size, extra = zp->o.password ? ZAES_OVERHEAD : 0, bound, back = 0;
	unsigned char *p;

	if (zp->o.method == ZIP_CM_STORE) {
		/* The file's buffer is the entry's: the maker gets a new one. */
		*out = m->in;
		*len = n;
		m->in = NULL;
		m->incap = 0;
		return 0;
	}
	if (zp->o.method == ZIP_CM_DEFLATE) {
		bound = libdeflate_deflate_compress_bound(m->c, n);
		p = xmalloc(bound + extra);
		*len = libdeflate_deflate_compress(m->c, m->in, n, p, bound);
		if (*len == 0 || libdeflate_deflate_decompress(m->d, p, *len,
		    grow(&m->chk, &m->chkcap, n), n, &back) != LIBDEFLATE_SUCCESS)
			goto bad;
	} else {
		unsigned int clen, blen = (unsigned int)n;

		/* bzip2's own bound: 1% and 600 bytes more. */
		bound = n + n / 100 + 601;
		p = xmalloc(bound + extra);
		clen = (unsigned int)bound;
		if (BZ2_bzBuffToBuffCompress((char *)p, &clen, (char *)m->in, (unsigned int)n,
		    zp->o.level < 1 ? 1 : zp->o.level > 9 ? 9 : zp->o.level, 0, 0) != BZ_OK ||
		    BZ2_bzBuffToBuffDecompress((char *)grow(&m->chk, &m->chkcap, n + 1), &blen,
		    (char *)p, clen, 0, 0) != BZ_OK)
			goto bad;
		*len = clen;
		back = blen;
	}
	if (back != n || memcmp(m->chk, m->in, n) != 0)
		goto bad;
	*out = p;
	return 0;
bad:
	free(p);
	fail(s, ZIP_ER_INTERNAL, 0, 0, "%s: compressing it did not give it back", e->path);
	return -1;
}

/* Make entry i (taken, S_MAKING) on m: read, CRC, compress, check,
 * encrypt, hash.  The slot is S_READY or S_FAILED after. */
static void
make(struct zpack *zp, struct maker *m, int i)
{
	struct zpack_entry *e = &zp->e[i];
	struct slot *s = &zp->s[i];
	unsigned char *raw = NULL;
	size_t len = 0;
	int ok = 0;

	if (!m->c && !(m->c = libdeflate_alloc_compressor(zp->o.level)))
		fatal("libdeflate: out of memory");
	if (!m->d && !(m->d = libdeflate_alloc_decompressor()))
		fatal("libdeflate: out of memory");
	if (read_file(zp, m, e, s) == 0 && compress(zp, m, e, s, &raw, &len) == 0) {
		e->crc = (uint32_t)libdeflate_crc32(0, zp->o.method == ZIP_CM_STORE ? raw : m->in,
		    (size_t)e->size);
		ok = 1;
		if (zp->o.password) {
			unsigned char *enc = xmalloc(len + ZAES_OVERHEAD);

			if (zaes_encrypt(zp->o.password, e->name, raw, len, enc) < 0) {
				fail(s, ZIP_ER_INTERNAL, 0, 0, "%s: encryption failed", e->path);
				ok = 0;
			}
			free(raw);
			raw = enc;
			len += ZAES_OVERHEAD;
		}
	}
	if (ok) {
		e->comp_size = (int64_t)len;
		e->comp_hash = XXH3_64bits(raw, len);
	} else {
		free(raw);
		raw = NULL;
	}
	pthread_mutex_lock(&zp->mu);
	s->raw = raw;
	s->len = len;
	s->pos = 0;
	s->made = ok;
	s->state = ok ? S_READY : S_FAILED;
	pthread_cond_broadcast(&zp->cv);
	pthread_mutex_unlock(&zp->mu);
}

/* Entry i from the older archive, raw, when it is what the record says;
 * on libzip's thread only (zp->old is not shared). */
static void
copy(struct zpack *zp, int i)
{
	struct zpack_entry *e = &zp->e[i];
	struct slot *s = &zp->s[i];
	zip_file_t *f = zip_fopen_index(zp->old, (zip_uint64_t)e->from, ZIP_FL_ENCRYPTED);
	unsigned char *raw = xmalloc((size_t)e->comp_size + 1);
	size_t got = 0;
	zip_int64_t r = 0;

	if (!f) {
		fail(s, ZIP_ER_READ, 0, 1, "%s: %s", e->name, zip_strerror(zp->old));
		goto bad;
	}
	/* One byte more than recorded: a longer entry shows. */
	while (got <= (size_t)e->comp_size &&
	    (r = zip_fread(f, raw + got, (zip_uint64_t)e->comp_size + 1 - got)) > 0)
		got += (size_t)r;
	zip_fclose(f);
	if (r < 0 || got != (size_t)e->comp_size || XXH3_64bits(raw, got) != e->comp_hash) {
		fail(s, ZIP_ER_CHANGED, 0, 1, "entry %s is not what was written",
		    e->name);
		goto bad;
	}
	pthread_mutex_lock(&zp->mu);
	s->raw = raw;
	s->len = got;
	s->pos = 0;
	s->made = 1;
	s->state = S_READY;
	pthread_mutex_unlock(&zp->mu);
	return;
bad:
	free(raw);
	pthread_mutex_lock(&zp->mu);
	s->state = S_FAILED;
	pthread_mutex_unlock(&zp->mu);
}

/* The next entry to make ahead, taken; -1 when none is left, -2 when the
 * bytes ahead are at their bound.  Under zp->mu. */
static int
take(struct zpack *zp)
{
	int i;

	while (zp->next < zp->n && (zp->s[zp->next].state != S_TODO || !to_make(zp, zp->next)))
		zp->next++;
	if (zp->next >= zp->n)
		return -1;
	i = zp->next;
	if (zp->ahead > 0 && zp->ahead + zp->e[i].size > ZPACK_AHEAD)
		return -2;
	zp->next++;
	zp->s[i].state = S_MAKING;
	zp->s[i].counted = 1;
	zp->ahead += zp->e[i].size;
	return i;
}

static void *
helper(void *arg)
{
	struct zpack *zp = arg;
	struct maker m = { 0 };
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		int i;

		pthread_mutex_lock(&zp->mu);
		while (!zp->stop && (i = take(zp)) == -2)
			pthread_cond_wait(&zp->cv, &zp->mu);
		if (zp->stop)
			i = -1;
		pthread_mutex_unlock(&zp->mu);
		if (i < 0)
			break;
		make(zp, &m, i);
		/* A job waits for the slot, or the run stops: give it back. */
		if (sched_wanted() || (zp->o.cancel && atomic_load(zp->o.cancel)))
			break;
	}
	maker_fini(&m);
	sched_giveback();
	return NULL;
}

/* Borrow threads while -j has idle slots and there is work for them. */
static void
more_hands(struct zpack *zp)
{
	int left = 0;

	pthread_mutex_lock(&zp->mu);
	for (int i = zp->next; i < zp->n && left < 2; i++)
		left += zp->s[i].state == S_TODO && to_make(zp, i);
	pthread_mutex_unlock(&zp->mu);
	while (left > 1 && zp->nt < ZPACK_THREADS && !zp->stop && sched_borrow()) {
		int rc = pthread_create(&zp->t[zp->nt], NULL, helper, zp);

		if (rc != 0) {
			sched_giveback();
			break;
		}
		zp->nt++;
	}
}

/* Entry i ready for libzip to read, made here when nobody has taken it. */
static int
open_entry(struct zpack *zp, int i)
{
	struct slot *s = &zp->s[i];
	int state;

	more_hands(zp);
	/* libzip opens an entry's source right where its data goes. */
	if (zp->out)
		atomic_store(&zp->off[i], zfd_pos(zp->out));
	pthread_mutex_lock(&zp->mu);
	if (s->state == S_TODO) {
		int mine = to_make(zp, i);

		if (mine) {
			s->state = S_MAKING;
			s->counted = 1;
			zp->ahead += zp->e[i].size;
		}
		pthread_mutex_unlock(&zp->mu);
		if (mine)
			make(zp, &zp->self, i);
		else
			copy(zp, i);
		pthread_mutex_lock(&zp->mu);
	}
	/* Another thread makes it: make the next one meanwhile, not wait. */
	while (s->state == S_MAKING) {
		int j = take(zp);

		if (j < 0) {
			pthread_cond_wait(&zp->cv, &zp->mu);
			continue;
		}
		pthread_mutex_unlock(&zp->mu);
		make(zp, &zp->self, j);
		pthread_mutex_lock(&zp->mu);
	}
	state = s->state;
	if (state == S_FAILED && !zp->err[0]) {
		/* The entry libzip stops at is the one to name. */
		snprintf(zp->err, sizeof(zp->err), "%s", s->msg ? s->msg : "failed");
		zp->copy_failed = s->copy;
	}
	pthread_mutex_unlock(&zp->mu);
	return state == S_READY ? 0 : -1;
}

static void
close_entry(struct zpack *zp, int i)
{
	struct slot *s = &zp->s[i];

	pthread_mutex_lock(&zp->mu);
	free(s->raw);
	s->raw = NULL;
	if (s->counted) {
		zp->ahead -= zp->e[i].size;
		s->counted = 0;
	}
	pthread_cond_broadcast(&zp->cv);
	pthread_mutex_unlock(&zp->mu);
}

static zip_int64_t
zsrc_cb(void *arg, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
	struct zsrc *z = arg;
	struct zpack *zp = z->zp;
	struct zpack_entry *e = &zp->e[z->i];
	struct slot *s = &zp->s[z->i];
	zip_stat_t *st;
	size_t n;

	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		if (open_entry(zp, z->i) == 0)
			return 0;
		zip_error_set(&z->error, s->zerr ? s->zerr : ZIP_ER_INTERNAL, s->serr);
		return -1;
	case ZIP_SOURCE_READ:
		n = s->len - s->pos < len ? s->len - s->pos : (size_t)len;
		memcpy(data, s->raw + s->pos, n);
		s->pos += n;
		return (zip_int64_t)n;
	case ZIP_SOURCE_CLOSE:
		close_entry(zp, z->i);
		return 0;
	case ZIP_SOURCE_STAT:
		/* The same before and after, made or copied: libzip decides
		 * the headers' form from it.  Locked: a helper may be making
		 * the entry. */
		st = data;
		zip_stat_init(st);
		pthread_mutex_lock(&zp->mu);
		st->size = (zip_uint64_t)e->size;
		st->mtime = zp->o.mtime;
		st->comp_method = (zip_uint16_t)zp->o.method;
		st->encryption_method = zp->o.password ? ZIP_EM_AES_256 : ZIP_EM_NONE;
		st->valid = ZIP_STAT_SIZE | ZIP_STAT_MTIME | ZIP_STAT_COMP_METHOD |
		    ZIP_STAT_ENCRYPTION_METHOD;
		if (s->made) {
			st->crc = e->crc;
			st->comp_size = (zip_uint64_t)e->comp_size;
			st->valid |= ZIP_STAT_CRC | ZIP_STAT_COMP_SIZE;
		}
		pthread_mutex_unlock(&zp->mu);
		return sizeof(*st);
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&z->error, data, len);
	case ZIP_SOURCE_FREE:
		zip_error_fini(&z->error);
		free(z);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ,
		    ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
	default:
		zip_error_set(&z->error, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

struct zpack *
zpack_new(const struct zpack_opts *o, struct zpack_entry *e, int n, zip_t *old)
{
	struct zpack *zp = xcalloc(1, sizeof(*zp));

	zp->o = *o;
	zp->e = e;
	zp->n = n;
	zp->old = old;
	zp->s = xcalloc((size_t)n + 1, sizeof(*zp->s));
	zp->off = xcalloc((size_t)n + 1, sizeof(*zp->off));
	for (int i = 0; i < n; i++)
		atomic_init(&zp->off[i], -1);
	pthread_mutex_init(&zp->mu, NULL);
	pthread_cond_init(&zp->cv, NULL);
	return zp;
}

zip_source_t *
zpack_source(zip_t *za, struct zpack *zp, int i)
{
	struct zsrc *z = xcalloc(1, sizeof(*z));
	zip_source_t *src;

	z->zp = zp;
	z->i = i;
	zip_error_init(&z->error);
	if (!(src = zip_source_function(za, zsrc_cb, z))) {
		zip_error_fini(&z->error);
		free(z);
	}
	return src;
}

void
zpack_start(struct zpack *zp)
{
	more_hands(zp);
}

const char *
zpack_error(const struct zpack *zp, int *copy)
{
	if (copy)
		*copy = zp->copy_failed;
	return zp->err[0] ? zp->err : NULL;
}

/* zfd's idle hook, on libzip's thread while the disk keeps it waiting:
 * an entry further on made now. */
static int
ahead(void *arg)
{
	struct zpack *zp = arg;
	int i;

	pthread_mutex_lock(&zp->mu);
	i = take(zp);
	pthread_mutex_unlock(&zp->mu);
	if (i < 0)
		return 0;
	make(zp, &zp->self, i);
	return 1;
}

void
zpack_out(struct zpack *zp, struct zfd *out)
{
	zp->out = out;
	if (out && !zp->live) {
		zp->live = sweep_new();
		zfd_watch(out, zpack_watch, zp);
		zfd_idle(out, ahead, zp);
	}
}

void
zpack_free(struct zpack *zp)
{
	if (!zp)
		return;
	pthread_mutex_lock(&zp->mu);
	zp->stop = 1;
	pthread_cond_broadcast(&zp->cv);
	pthread_mutex_unlock(&zp->mu);
	for (int i = 0; i < zp->nt; i++)
		pthread_join(zp->t[i], NULL);
	for (int i = 0; i < zp->n; i++) {
		free(zp->s[i].raw);
		free(zp->s[i].msg);
	}
	maker_fini(&zp->self);
	pthread_mutex_destroy(&zp->mu);
	pthread_cond_destroy(&zp->cv);
	free(zp->s);
	free(zp->off);
	sweep_free(zp->live);
	free(zp);
}
