/* fileio.c - temp, fsync, rename; hashing while reading or writing. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#ifdef __linux__
#include <linux/fs.h>         /* FICLONE */
#endif
#include "fileio.h"
#include "names.h"
#include "util.h"

enum { BUFSZ = 1 << 17 };

int
mkdirs(const char *path, char *err, size_t errlen)
{
	char *d = xstrdup(path);
	int rc = 0;

	for (char *p = d + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(d, 0755) < 0 && errno != EEXIST) {
			errf(err, errlen, "%s: cannot create folder: %s", d, strerror(errno));
			rc = -1;
			break;
		}
		*p = c;
		if (!c)
			break;
	}
	free(d);
	return rc;
}

int
mkdirs_under(const char *root, const char *path, int create, char *err, size_t errlen)
{
	size_t rl = strlen(root);
	char *rel, *comp, *save, *sofar;
	int fd, rc = 0;

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
		return create ? mkdirs(path, err, errlen) : 0;   /* not under root: nothing to guard */
	if (create && mkdirs(root, err, errlen) < 0)
		return -1;
	if ((fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT && !create)
			return 0;
		errf(err, errlen, "%s: %s", root, strerror(errno));
		return -1;
	}
	rel = xstrdup(path + rl);
	sofar = xstrdup(path);
	sofar[rl] = '\0';
	for (comp = strtok_r(rel, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		struct stat sb;
		int next;

		strcat(sofar, "/");
		strcat(sofar, comp);
		if (create && mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
			errf(err, errlen, "%s: cannot create folder: %s", sofar, strerror(errno));
			rc = -1;
			break;
		}
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int e = errno;

			if (e == ENOENT && !create)
				break;
			if (fstatat(fd, comp, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
				errf(err, errlen, "%s: a symbolic link, not a folder; nothing is read or "
				    "written through links inside %.*s (put a real folder there, then run "
				    "again)", sofar, (int)rl, root);
			else if (e == ENOTDIR)
				errf(err, errlen, "%s: not a folder (remove it, then run again)", sofar);
			else
				errf(err, errlen, "%s: %s", sofar, strerror(e));
			rc = -1;
			break;
		}
		close(fd);
		fd = next;
	}
	close(fd);
	free(rel);
	free(sofar);
	return rc;
}

int
fsync_parent(const char *path, char *err, size_t errlen)
{
	char *copy = xstrdup(path);
	const char *dir = dirname(copy);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) < 0) {
		errf(err, errlen, "%s: fsync: %s", dir, strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

const char *
write_hint(int e, char *buf, size_t len)
{
	struct rlimit rl;

	if (e == ENOSPC || e == EDQUOT)
		return " (free space on that filesystem, then run again)";
	if (e == EFBIG && getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		snprintf(buf, len, " (the file size limit, ulimit -f, is %llu bytes: raise it, "
		    "then run again)", (unsigned long long)rl.rlim_cur);
		return buf;
	}
	return "";
}

/* Read fd to the end, hashing it, and write what is read to out unless
 * out < 0.  Names are for messages. */
static int
hash_copy(int fd, int out, uint64_t *hash, atomic_llong *bytes, const char *path,
    const char *outpath, char *err, size_t errlen)
{
	XXH3_state_t *st = XXH3_createState();
	char *buf = xmalloc(BUFSZ);
	ssize_t n;
	int rc = 0;

	if (!st)
		fatal("XXH3_createState: out of memory");
	XXH3_64bits_reset(st);
	while (rc == 0 && (n = read(fd, buf, BUFSZ)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			errf(err, errlen, "%s: read: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		XXH3_64bits_update(st, buf, (size_t)n);
		for (ssize_t off = 0; out >= 0 && off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				char hint[128];
				int e = errno;

				errf(err, errlen, "%s: cannot write: %s%s", outpath, strerror(e),
				    write_hint(e, hint, sizeof(hint)));
				rc = -1;
				break;
			}
			off += w;
		}
		if (bytes)
			atomic_fetch_add(bytes, n);
	}
	*hash = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	free(buf);
	return rc;
}

/* Open path for reading if it is a regular file: never through a link,
 * never blocking (a FIFO would wait for a writer forever).  The fd, or -1
 * with the message in err. */
static int
open_regular(const char *path, struct stat *sb, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct stat lb;

	if (fd < 0) {
		if (errno == ELOOP && lstat(path, &lb) == 0 && S_ISLNK(lb.st_mode))
			errf(err, errlen, "%s: a symbolic link, not a regular file", path);
		else
			errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode)) {
		errf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* hash_fd of fd at its start, sb its fstat. */
static int
hash_at(int fd, const struct stat *sb, const char *path, uint64_t *hash, int64_t *size,
    int64_t *mtime, atomic_llong *bytes, char *err, size_t errlen)
{
	*size = sb->st_size;
	*mtime = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	return hash_copy(fd, -1, hash, bytes, path, NULL, err, errlen);
}

int
hash_fd(int fd, const char *path, uint64_t *hash, int64_t *size, int64_t *mtime,
    atomic_llong *bytes, char *err, size_t errlen)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		errf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		errf(err, errlen, "%s: lseek: %s", path, strerror(errno));
		return -1;
	}
	return hash_at(fd, &sb, path, hash, size, mtime, bytes, err, errlen);
}

int
hash_file(const char *path, uint64_t *hash, int64_t *size, int64_t *mtime,
    atomic_llong *bytes, char *err, size_t errlen)
{
	struct stat sb;
	int fd = open_regular(path, &sb, err, errlen);
	int rc;

	if (fd < 0)
		return -1;
	rc = hash_at(fd, &sb, path, hash, size, mtime, bytes, err, errlen);
	close(fd);
	return rc;
}

static char tag[64];
static char hosttag[16];
static pthread_once_t tag_once = PTHREAD_ONCE_INIT;

static void
make_tag(void)
{
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(hosttag, sizeof(hosttag), "%08x", (unsigned)XXH32(host, strlen(host), 0));
	snprintf(tag, sizeof(tag), TMP_PREFIX "%ld@%s-", (long)getpid(), hosttag);
}

const char *
tmp_tag(void)
{
	pthread_once(&tag_once, make_tag);
	return tag;
}

char *
tmp_name(const char *dst)
{
	const char *slash = strrchr(dst, '/');
	const char *base = slash ? slash + 1 : dst;
	int dirlen = slash ? (int)(slash - dst) + 1 : 0;

	return xasprintf("%.*s%s%s", dirlen, dst, tmp_tag(), base);
}

/* How put_file makes dst share src's data, if it can. */
enum put_how {
	PUT_LINK,                 /* a hard link: dst is src */
	PUT_CLONE,                /* a reflink: shared blocks, a file of its own */
};

static int
put_file(const char *src, const char *dst, enum put_how how, uint64_t *hash, int64_t *size,
    int64_t *mtime, atomic_llong *bytes, char *err, size_t errlen)
{
	char *tmp = tmp_name(dst);
	struct stat sb;
	int in = -1, out = -1, rc = -1;

	unlink(tmp);
	/* Open src first, refusing a link or a FIFO, so that link() below
	 * never links a symlink (which then reads as ELOOP). */
	if ((in = open_regular(src, &sb, err, errlen)) < 0)
		goto out;
	if (how == PUT_LINK && link(src, tmp) == 0) {
		/* Same filesystem: the link is the file; hash it by reading. */
		if (hash_file(tmp, hash, size, mtime, bytes, err, errlen) < 0)
			goto out;
	} else {
		if (how == PUT_LINK && errno != EXDEV && errno != EPERM && errno != EMLINK) {
			errf(err, errlen, "%s: link: %s", tmp, strerror(errno));
			goto out;
		}
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (out < 0) {
			errf(err, errlen, "%s: %s", tmp, strerror(errno));
			goto out;
		}
#ifdef FICLONE
		/* A reflink shares blocks until either side is written; the
		 * data is still read once, for the hash. */
		if (how == PUT_CLONE && ioctl(out, FICLONE, in) == 0) {
			if (hash_copy(in, -1, hash, bytes, src, dst, err, errlen) < 0)
				goto out;
		} else
#endif
		/* Messages name dst: the temp name means nothing to the user. */
		if (hash_copy(in, out, hash, bytes, src, dst, err, errlen) < 0)
			goto out;
		if (fsync(out) < 0 || fstat(out, &sb) < 0) {
			char hint[128];
			int e = errno;

			errf(err, errlen, "%s: fsync: %s%s", dst, strerror(e),
			    write_hint(e, hint, sizeof(hint)));
			goto out;
		}
		*size = sb.st_size;
		*mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	}
	if (rename(tmp, dst) < 0) {
		errf(err, errlen, "%s: rename: %s", dst, strerror(errno));
		goto out;
	}
	/* rename() of two links to one file does nothing: drop the temp. */
	unlink(tmp);
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

int
import_file(const char *src, const char *dst, uint64_t *hash, int64_t *size,
    int64_t *mtime, atomic_llong *bytes, char *err, size_t errlen)
{
	return put_file(src, dst, PUT_LINK, hash, size, mtime, bytes, err, errlen);
}

int
copy_file(const char *src, const char *dst, uint64_t *hash, int64_t *size,
    int64_t *mtime, atomic_llong *bytes, char *err, size_t errlen)
{
	return put_file(src, dst, PUT_CLONE, hash, size, mtime, bytes, err, errlen);
}

int64_t
mtime_ns(const char *path, int64_t *size)
{
	struct stat sb;

	if (lstat(path, &sb) < 0)
		return -1;
	if (size)
		*size = sb.st_size;
	return (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **
list_dcm(const char *dir, int *n, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	int len = 0, cap = 0;

	*n = 0;
	if (!d) {
		if (errno == ENOENT) {
			v = xcalloc(1, sizeof(*v));
			return v;
		}
		errf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);

		if (e->d_name[0] == '.' || l <= 4 || strcmp(e->d_name + l - 4, ".dcm") != 0)
			continue;
		if (len + 1 >= cap) {
			cap = cap ? 2 * cap : 64;
			v = xreallocarray(v, (size_t)cap, sizeof(*v));
		}
		v[len] = xstrdup(e->d_name);
		v[len][l - 4] = '\0';
		len++;
	}
	closedir(d);
	if (!v)
		v = xcalloc(1, sizeof(*v));
	v[len] = NULL;
	qsort(v, (size_t)len, sizeof(*v), cmp_str);
	*n = len;
	return v;
}

int
remove_dead_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	tmp_tag();   /* hosttag */
	while ((e = readdir(d)) != NULL) {
		const char *s = e->d_name;
		char *end, *path;
		struct stat sb;
		long pid;
		int dead;

		if (strncmp(s, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
			continue;
		pid = strtol(s + strlen(TMP_PREFIX), &end, 10);
		if (pid <= 0 || (*end != '@' && *end != '-'))
			continue;
		path = xasprintf("%s/%s", dir, s);
		if (*end == '-' || (strncmp(end + 1, hosttag, 8) == 0 && end[9] == '-'))
			/* ours, or from before temp names had a host */
			dead = pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
		else
			dead = lstat(path, &sb) == 0 &&
			    now_ns() / 1000000000 - sb.st_mtim.tv_sec > TMP_FOREIGN_AGE;
		/* A rule's output may be a folder (command.c). */
		n += dead && remove_tree(path) == 0;
		free(path);
	}
	closedir(d);
	return n;
}

void
strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* dir without "./" parts, repeated and trailing slashes (malloc'd). */
static char *
tidy_dir(const char *dir)
{
	char *out = xmalloc(strlen(dir) + 2), *d = out;

	while (*dir) {
		if (dir[0] == '.' && (dir[1] == '/' || dir[1] == '\0') && (d == out || d[-1] == '/')) {
			dir++;
		} else if (*dir == '/' && d > out && d[-1] == '/') {
			dir++;
		} else {
			*d++ = *dir++;
		}
	}
	while (d > out + 1 && d[-1] == '/')
		d--;
	*d = '\0';
	return out;
}

int
file_in_folder(const char *file, const char *dir)
{
	const char *b = strrchr(file, '/');
	char *fd = b ? strndup(file, (size_t)(b - file + (b == file))) : xstrdup(".");
	char *a = tidy_dir(fd), *z = tidy_dir(dir), ra[PATH_MAX], rz[PATH_MAX];
	int same = strcmp(a, z) == 0;

	if (!same && realpath(fd, ra) && realpath(dir, rz))
		same = strcmp(ra, rz) == 0;
	free(fd);
	free(a);
	free(z);
	return same;
}
