/* zfd.c - libzip sources over our own descriptor: pread; windows written by a thread of their own. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util.h"
#include "zfd.h"

enum {
	BUF = 1 << 20,            /* the file goes out in windows of this much */
	NWIN = 4,                 /* two in memory, two on their way out */
	ALIGN = 4096,             /* of O_DIRECT's buffers and offsets */
};

/* A window on its way to the file. */
struct win {
	unsigned char *p;
	int64_t off;
	size_t len;
};

struct zfd {
	char *path;
	int fd;                   /* reading or writing, or -1 */
	int dfd;                  /* writing with O_DIRECT, or -1 */
	int writing;
	int64_t pos;              /* next read, or next write */
	int64_t size;             /* of the file being read; written so far */
	zip_error_t error;
	/* Writing: windows k-1 and k in memory (libzip goes back to an
	 * entry's header once its data is written, which is then most often
	 * in one of them); the older ones the writer thread's. */
	unsigned char *mem[NWIN];
	unsigned char *prev, *cur; /* windows k-1 (NULL before the second) and k */
	int64_t boff;             /* window k's offset, a multiple of BUF */
	size_t blen;              /* bytes of window k written */
	int patched;              /* a byte handed over was written again */
	pthread_t t;
	int thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct win q[NWIN];       /* handed over, in order */
	int qn, busy;             /* queued; one being written */
	unsigned char *spare[NWIN];
	int nspare;
	int stop, werr, werrno;   /* the writer's first error */
	void (*watch)(void *arg, int64_t off, const unsigned char *p, size_t n);
	void *warg;
	int (*idle)(void *arg);   /* work to do while waiting for the writer */
	void *iarg;
};

static int
sys(struct zfd *z, int code)
{
	zip_error_set(&z->error, code, errno);
	return -1;
}

static int
put(int fd, const unsigned char *p, size_t n, int64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* The writer thread: each window shown to the watcher, then written, past
 * the page cache when it is a whole one and the filesystem can (a
 * page-cache copy of a new file costs more CPU than compressing it at
 * level 1 on some machines). */
static void *
writer(void *arg)
{
	struct zfd *z = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&z->mu);
	for (;;) {
		struct win w;
		int rc, e = 0;

		while (z->qn == 0 && !z->stop)
			pthread_cond_wait(&z->cv, &z->mu);
		if (z->qn == 0)
			break;
		w = z->q[0];
		memmove(z->q, z->q + 1, (size_t)--z->qn * sizeof(*z->q));
		z->busy = 1;
		pthread_mutex_unlock(&z->mu);
		rc = -1;
		if (z->dfd >= 0 && w.len == BUF) {
			rc = put(z->dfd, w.p, w.len, w.off);
			/* No direct writes here after all: through the cache. */
			if (rc < 0 && errno == EINVAL) {
				close(z->dfd);
				z->dfd = -1;
			}
		}
		if (rc < 0 && (z->dfd < 0 || w.len != BUF))
			rc = put(z->fd, w.p, w.len, w.off);
		if (rc < 0)
			e = errno;
		/* Shown once on its way: the disk need not wait for it. */
		if (z->watch)
			z->watch(z->warg, w.off, w.p, w.len);
		pthread_mutex_lock(&z->mu);
		if (rc < 0 && !z->werr) {
			z->werr = 1;
			z->werrno = e;
		}
		z->spare[z->nspare++] = w.p;
		z->busy = 0;
		pthread_cond_broadcast(&z->cv);
	}
	pthread_mutex_unlock(&z->mu);
	return NULL;
}

/* Hand window p (len bytes at off) to the writer. */
static void
hand_over(struct zfd *z, unsigned char *p, int64_t off, size_t len)
{
	pthread_mutex_lock(&z->mu);
	z->q[z->qn++] = (struct win){ p, off, len };
	pthread_cond_broadcast(&z->cv);
	pthread_mutex_unlock(&z->mu);
}

/* A free buffer, once the writer gives one back; meanwhile the idle
 * hook's work, while it has some. */
static unsigned char *
spare(struct zfd *z)
{
	unsigned char *p;

	pthread_mutex_lock(&z->mu);
	while (z->nspare == 0) {
		int did = 0;

		if (z->idle) {
			pthread_mutex_unlock(&z->mu);
			did = z->idle(z->iarg);
			pthread_mutex_lock(&z->mu);
		}
		if (!did && z->nspare == 0)
			pthread_cond_wait(&z->cv, &z->mu);
	}
	p = z->spare[--z->nspare];
	pthread_mutex_unlock(&z->mu);
	return p;
}

/* Wait for the writer to write out all it has; its error, if any. */
static int
drain(struct zfd *z)
{
	int rc = 0;

	pthread_mutex_lock(&z->mu);
	while (z->qn > 0 || z->busy)
		pthread_cond_wait(&z->cv, &z->mu);
	if (z->werr) {
		errno = z->werrno;
		rc = -1;
	}
	pthread_mutex_unlock(&z->mu);
	return rc < 0 ? sys(z, ZIP_ER_WRITE) : 0;
}

/* Window k is full, or libzip writes past it: k-1 goes out, k+1 begins
 * (never-written bytes are zeros, as in a file). */
static int
next_window(struct zfd *z)
{
	int err;

	pthread_mutex_lock(&z->mu);
	err = z->werr;
	pthread_mutex_unlock(&z->mu);
	if (err)
		return drain(z);
	if (z->blen < BUF)
		memset(z->cur + z->blen, 0, BUF - z->blen);
	if (z->prev)
		hand_over(z, z->prev, z->boff - BUF, BUF);
	z->prev = z->cur;
	z->cur = spare(z);
	z->boff += BUF;
	z->blen = 0;
	return 0;
}

/* n bytes at z->pos: into the two windows in memory, or, for a byte
 * handed over already, into the file once the writer has written it. */
static zip_int64_t
write_at(struct zfd *z, const unsigned char *p, size_t n)
{
	size_t total = n;

	while (n > 0) {
		int64_t lo = z->prev ? z->boff - BUF : z->boff;
		size_t k;

		if (z->pos >= z->boff + BUF) {
			if (next_window(z) < 0)
				return -1;
			continue;
		}
		if (z->pos < lo) {
			k = (size_t)(lo - z->pos) < n ? (size_t)(lo - z->pos) : n;
			if (drain(z) < 0)
				return -1;
			if (put(z->fd, p, k, z->pos) < 0)
				return sys(z, ZIP_ER_WRITE);
			z->patched = 1;
		} else if (z->pos < z->boff) {
			k = (size_t)(z->boff - z->pos) < n ? (size_t)(z->boff - z->pos) : n;
			memcpy(z->prev + (z->pos - lo), p, k);
		} else {
			size_t at = (size_t)(z->pos - z->boff);

			if (at > z->blen)
				memset(z->cur + z->blen, 0, at - z->blen);
			k = BUF - at < n ? BUF - at : n;
			memcpy(z->cur + at, p, k);
			if (at + k > z->blen)
				z->blen = at + k;
		}
		z->pos += (int64_t)k;
		p += k;
		n -= k;
		if (z->pos > z->size)
			z->size = z->pos;
	}
	return (zip_int64_t)total;
}

static int
begin_write(struct zfd *z)
{
	z->fd = open(z->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (z->fd < 0)
		return sys(z, ZIP_ER_TMPOPEN);
	/* The same file again, for whole windows: -1 where the filesystem
	 * has no O_DIRECT (tmpfs). */
	z->dfd = open(z->path, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC);
	z->writing = 1;
	z->pos = z->size = z->boff = 0;
	z->blen = 0;
	z->patched = z->stop = z->werr = 0;
	for (int i = 0; i < NWIN; i++)
		if (!z->mem[i] && posix_memalign((void **)&z->mem[i], ALIGN, BUF) != 0)
			fatal("out of memory");
	z->cur = z->mem[0];
	z->prev = NULL;
	z->nspare = 0;
	for (int i = 1; i < NWIN; i++)
		z->spare[z->nspare++] = z->mem[i];
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->cv, NULL);
	if (pthread_create(&z->t, NULL, writer, z) != 0)
		fatal("pthread_create:");
	z->thread = 1;
	return 0;
}

/* Stop the writer (after what it has), close; unlink unless kept. */
static void
end_write(struct zfd *z, int keep)
{
	if (z->thread) {
		pthread_mutex_lock(&z->mu);
		z->stop = 1;
		pthread_cond_broadcast(&z->cv);
		pthread_mutex_unlock(&z->mu);
		pthread_join(z->t, NULL);
		pthread_mutex_destroy(&z->mu);
		pthread_cond_destroy(&z->cv);
		z->thread = 0;
	}
	if (z->dfd >= 0)
		close(z->dfd);
	if (z->fd >= 0)
		close(z->fd);
	z->fd = z->dfd = -1;
	if (z->writing && !keep)
		unlink(z->path);
	z->writing = 0;
}

static int
commit_write(struct zfd *z)
{
	/* The last two windows, the last in part (through the cache). */
	if (z->prev)
		hand_over(z, z->prev, z->boff - BUF, BUF);
	hand_over(z, z->cur, z->boff, z->blen);
	z->prev = z->cur = NULL;
	if (drain(z) < 0)
		return -1;
	if (z->watch)
		z->watch(z->warg, -1, NULL, !z->patched);
	if (z->dfd >= 0)
		close(z->dfd);
	z->dfd = -1;
	if (close(z->fd) < 0) {
		z->fd = -1;
		end_write(z, 1);
		return sys(z, ZIP_ER_WRITE);
	}
	z->fd = -1;
	end_write(z, 1);
	return 0;
}

static zip_int64_t
cb(void *arg, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
	struct zfd *z = arg;
	zip_source_args_seek_t *args;
	zip_stat_t *st;
	struct stat sb;
	zip_int64_t off;
	ssize_t r;

	switch (cmd) {
	case ZIP_SOURCE_STAT:
		if (lstat(z->path, &sb) < 0)
			return sys(z, ZIP_ER_READ);
		st = data;
		zip_stat_init(st);
		st->size = (zip_uint64_t)sb.st_size;
		st->mtime = sb.st_mtime;
		st->valid = ZIP_STAT_SIZE | ZIP_STAT_MTIME;
		return sizeof(*st);
	case ZIP_SOURCE_OPEN:
		z->fd = open(z->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (z->fd < 0 || fstat(z->fd, &sb) < 0)
			return sys(z, ZIP_ER_OPEN);
		if (!S_ISREG(sb.st_mode)) {
			zip_error_set(&z->error, ZIP_ER_OPEN, EINVAL);
			return -1;
		}
		z->size = sb.st_size;
		z->pos = 0;
		/* libzip reads headers here and there, and whole entries:
		 * readahead would bring in what it never asks for. */
		posix_fadvise(z->fd, 0, 0, POSIX_FADV_RANDOM);
		return 0;
	case ZIP_SOURCE_READ:
		while ((r = pread(z->fd, data, len, (off_t)z->pos)) < 0 && errno == EINTR)
			;
		if (r < 0)
			return sys(z, ZIP_ER_READ);
		z->pos += r;
		return r;
	case ZIP_SOURCE_CLOSE:
		if (z->fd >= 0 && !z->writing)
			close(z->fd);
		if (!z->writing)
			z->fd = -1;
		return 0;
	case ZIP_SOURCE_SEEK:
		off = zip_source_seek_compute_offset((zip_uint64_t)z->pos, (zip_uint64_t)z->size,
		    data, len, &z->error);
		if (off < 0)
			return -1;
		z->pos = off;
		return 0;
	case ZIP_SOURCE_TELL:
		return z->pos;
	case ZIP_SOURCE_BEGIN_WRITE:
		return begin_write(z);
	case ZIP_SOURCE_WRITE:
		return write_at(z, data, (size_t)len);
	case ZIP_SOURCE_SEEK_WRITE:
		if (!(args = ZIP_SOURCE_GET_ARGS(zip_source_args_seek_t, data, len, &z->error)))
			return -1;
		off = args->whence == SEEK_SET ? args->offset : args->whence == SEEK_CUR ?
		    z->pos + args->offset : args->whence == SEEK_END ? z->size + args->offset : -1;
		if (off < 0) {
			zip_error_set(&z->error, ZIP_ER_INVAL, 0);
			return -1;
		}
		z->pos = off;
		return 0;
	case ZIP_SOURCE_TELL_WRITE:
		return z->pos;
	case ZIP_SOURCE_COMMIT_WRITE:
		return commit_write(z);
	case ZIP_SOURCE_ROLLBACK_WRITE:
		end_write(z, 0);
		return 0;
	case ZIP_SOURCE_REMOVE:
		if (unlink(z->path) < 0 && errno != ENOENT)
			return sys(z, ZIP_ER_REMOVE);
		return 0;
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&z->error, data, len);
	case ZIP_SOURCE_FREE:
		if (z->writing)
			end_write(z, 0);
		if (z->fd >= 0)
			close(z->fd);
		zip_error_fini(&z->error);
		for (int i = 0; i < NWIN; i++)
			free(z->mem[i]);
		free(z->path);
		free(z);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return ZIP_SOURCE_SUPPORTS_WRITABLE;
	default:
		zip_error_set(&z->error, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

zip_t *
zfd_open(const char *path, int flags, struct zfd **fd, char *err, size_t errlen)
{
	struct zfd *z = xcalloc(1, sizeof(*z));
	zip_source_t *src;
	zip_error_t e;
	zip_t *za;

	z->path = xstrdup(path);
	z->fd = z->dfd = -1;
	zip_error_init(&z->error);
	zip_error_init(&e);
	if (!(src = zip_source_function_create(cb, z, &e))) {
		errf(err, errlen, "%s: %s", path, zip_error_strerror(&e));
		zip_error_fini(&e);
		zip_error_fini(&z->error);
		free(z->path);
		free(z);
		return NULL;
	}
	if (!(za = zip_open_from_source(src, flags, &e))) {
		errf(err, errlen, "%s: %s", path, zip_error_strerror(&e));
		zip_source_free(src);
		zip_error_fini(&e);
		return NULL;
	}
	zip_error_fini(&e);
	if (fd)
		*fd = z;
	return za;
}

int64_t
zfd_pos(const struct zfd *fd)
{
	return fd->pos;
}

void
zfd_idle(struct zfd *fd, int (*fn)(void *arg), void *arg)
{
	fd->idle = fn;
	fd->iarg = arg;
}

void
zfd_watch(struct zfd *fd, void (*fn)(void *arg, int64_t off, const unsigned char *p, size_t n),
    void *arg)
{
	fd->watch = fn;
	fd->warg = arg;
}
