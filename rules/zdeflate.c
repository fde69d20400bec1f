/* zdeflate.c - entries deflated by libdeflate for libzip, and their check. */
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util.h"
#include "zdeflate.h"

/* Buffers are the job's and reused from entry to entry: libzip's
 * zip_close reads its entries one at a time. */
struct buf {
	unsigned char *p;
	size_t cap;
};

struct zdeflate {
	struct libdeflate_compressor *c;
	struct libdeflate_decompressor *d;
	struct buf in, out;
};

/* One entry's source. */
struct zsrc {
	struct zdeflate *zd;
	char *path;
	int64_t size;             /* expected, from the caller's stat */
	time_t mtime;
	uint32_t crc;
	size_t clen, pos;         /* compressed bytes in zd->out, read so far */
	int done;                 /* crc and clen known */
	zip_error_t error;
};

static unsigned char *
grow(struct buf *b, size_t n)
{
	if (n > b->cap) {
		free(b->p);
		b->p = xmalloc(n);
		b->cap = n;
	}
	return b->p;
}

struct zdeflate *
zdeflate_new(int level)
{
	struct zdeflate *zd = xcalloc(1, sizeof(*zd));

	zd->c = libdeflate_alloc_compressor(level);
	zd->d = libdeflate_alloc_decompressor();
	if (!zd->c || !zd->d) {
		zdeflate_free(zd);
		return NULL;
	}
	return zd;
}

void
zdeflate_free(struct zdeflate *zd)
{
	if (!zd)
		return;
	if (zd->c)
		libdeflate_free_compressor(zd->c);
	if (zd->d)
		libdeflate_free_decompressor(zd->d);
	free(zd->in.p);
	free(zd->out.p);
	free(zd);
}

/* Read the whole file into zd->in; 0, or -1 with the error in s. */
static int
read_all(struct zsrc *s)
{
	unsigned char *p;
	struct stat st;
	size_t got = 0;
	int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		goto sys;
	if (fstat(fd, &st) < 0)
		goto sys;
	if (st.st_size != s->size) {
		close(fd);
		zip_error_set(&s->error, ZIP_ER_CHANGED, 0);
		return -1;
	}
	p = grow(&s->zd->in, (size_t)s->size);
	while (got < (size_t)s->size) {
		ssize_t r = read(fd, p + got, (size_t)s->size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto sys;
		if (r == 0) {
			close(fd);
			zip_error_set(&s->error, ZIP_ER_CHANGED, 0);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
sys:
	zip_error_set(&s->error, ZIP_ER_READ, errno);
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
compress_entry(struct zsrc *s)
{
	struct zdeflate *zd = s->zd;
	size_t bound;

	if (read_all(s) < 0)
		return -1;
	s->crc = libdeflate_crc32(0, zd->in.p, (size_t)s->size);
	bound = libdeflate_deflate_compress_bound(zd->c, (size_t)s->size);
	s->clen = libdeflate_deflate_compress(zd->c, zd->in.p, (size_t)s->size,
	    grow(&zd->out, bound), bound);
	if (s->clen == 0) {
		zip_error_set(&s->error, ZIP_ER_INTERNAL, 0);
		return -1;
	}
	s->pos = 0;
	s->done = 1;
	return 0;
}

static zip_int64_t
zsrc_cb(void *arg, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
	struct zsrc *s = arg;
	zip_stat_t *st;
	size_t n;

	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		return compress_entry(s) < 0 ? -1 : 0;
	case ZIP_SOURCE_READ:
		n = s->clen - s->pos < len ? s->clen - s->pos : (size_t)len;
		memcpy(data, s->zd->out.p + s->pos, n);
		s->pos += n;
		return (zip_int64_t)n;
	case ZIP_SOURCE_CLOSE:
		return 0;
	case ZIP_SOURCE_STAT:
		st = data;
		zip_stat_init(st);
		st->size = (zip_uint64_t)s->size;
		st->mtime = s->mtime;
		st->comp_method = ZIP_CM_DEFLATE;
		st->encryption_method = ZIP_EM_NONE;
		st->valid = ZIP_STAT_SIZE | ZIP_STAT_MTIME | ZIP_STAT_COMP_METHOD |
		    ZIP_STAT_ENCRYPTION_METHOD;
		if (s->done) {
			st->crc = s->crc;
			st->comp_size = s->clen;
			st->valid |= ZIP_STAT_CRC | ZIP_STAT_COMP_SIZE;
		}
		return sizeof(*st);
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&s->error, data, len);
	case ZIP_SOURCE_FREE:
		zip_error_fini(&s->error);
		free(s->path);
		free(s);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ,
		    ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
	default:
		zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

zip_source_t *
zdeflate_source(zip_t *za, struct zdeflate *zd, const char *path, int64_t size, time_t mtime)
{
	struct zsrc *s = xcalloc(1, sizeof(*s));
	zip_source_t *src;

	s->zd = zd;
	s->path = xstrdup(path);
	s->size = size;
	s->mtime = mtime;
	zip_error_init(&s->error);
	if (!(src = zip_source_function(za, zsrc_cb, s))) {
		zip_error_fini(&s->error);
		free(s->path);
		free(s);
	}
	return src;
}

int
zdeflate_check(zip_t *za, struct zdeflate *zd, zip_uint64_t idx, char *err, size_t errlen)
{
	const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE |
	    ZIP_STAT_COMP_METHOD | ZIP_STAT_CRC | ZIP_STAT_ENCRYPTION_METHOD;
	zip_stat_t st;
	zip_file_t *f;
	zip_int64_t r;
	size_t got = 0, out = 0;
	unsigned char *in;

	if (zip_stat_index(za, idx, 0, &st) < 0 || (st.valid & need) != need ||
	    st.comp_method != ZIP_CM_DEFLATE || st.encryption_method != ZIP_EM_NONE ||
	    st.size > ZDEFLATE_MAX || st.comp_size > ZDEFLATE_MAX)
		return 0;
	if (!(f = zip_fopen_index(za, idx, ZIP_FL_COMPRESSED))) {
		errf(err, errlen, "%s: %s", st.name, zip_strerror(za));
		return -1;
	}
	/* One byte more than the directory says: a longer stream shows. */
	in = grow(&zd->in, (size_t)st.comp_size + 1);
	while (got <= st.comp_size &&
	    (r = zip_fread(f, in + got, (zip_uint64_t)st.comp_size + 1 - got)) > 0)
		got += (size_t)r;
	if (got != st.comp_size) {
		errf(err, errlen, "%s: %zu compressed bytes read back, %llu written", st.name, got,
		    (unsigned long long)st.comp_size);
		zip_fclose(f);
		return -1;
	}
	zip_fclose(f);
	if (libdeflate_deflate_decompress(zd->d, in, got, grow(&zd->out, (size_t)st.size + 1),
	    (size_t)st.size, &out) != LIBDEFLATE_SUCCESS || out != st.size) {
		errf(err, errlen, "%s: the compressed data does not inflate to its %llu bytes",
		    st.name, (unsigned long long)st.size);
		return -1;
	}
	if (libdeflate_crc32(0, zd->out.p, out) != st.crc) {
		errf(err, errlen, "%s: CRC-32 of the data read back differs from the archive's",
		    st.name);
		return -1;
	}
	return 1;
}
