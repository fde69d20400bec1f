/*
 * tree.c - a file, or a folder and all it holds, as one output: its size
 * and latest mtime (the cheap check), a signature of its names and
 * contents, fsynced whole, removed whole.  Links are never followed: a
 * link is a name and its target text.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include "fileio.h"
#include "util.h"

enum { TREE_DEPTH = 32 };

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in folder path, sorted (strv_free), or NULL (errno) when it
 * cannot be read or is deeper than TREE_DEPTH. */
static char **
children(const char *path, int depth)
{
	DIR *d;
	struct dirent *de;
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0;

	if (depth > TREE_DEPTH || !(d = opendir(path))) {
		errno = depth > TREE_DEPTH ? ELOOP : errno;
		free(v);
		return NULL;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		v = xreallocarray(v, n + 2, sizeof(*v));
		v[n++] = xstrdup(de->d_name);
		v[n] = NULL;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_str);
	return v;
}

/* Walk path (not following links): the total size and the latest mtime
 * of what is in it, and with h a hash of every name, kind, size and
 * content.  0, or -1 (errno). */
static int
tree_walk(const char *path, int depth, int64_t *size, int64_t *mtime, XXH3_state_t *h)
{
	struct stat sb;
	char **names;
	int rc = 0;

	if (lstat(path, &sb) < 0)
		return -1;
	if ((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec > *mtime)
		*mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	if (!S_ISDIR(sb.st_mode)) {
		*size += sb.st_size;
		if (h && S_ISREG(sb.st_mode)) {
			uint64_t fh;
			int64_t fs, fm;
			char e[256];

			if (hash_file(path, &fh, &fs, &fm, NULL, e, sizeof(e)) < 0)
				return -1;
			XXH3_64bits_update(h, &fh, sizeof(fh));
		} else if (h) {
			char t[4096];
			ssize_t k = S_ISLNK(sb.st_mode) ? readlink(path, t, sizeof(t)) : 0;

			if (k > 0)
				XXH3_64bits_update(h, t, (size_t)k);
		}
		return 0;
	}
	if (!(names = children(path, depth)))
		return -1;
	for (char **c = names; *c && rc == 0; c++) {
		char *sub = xasprintf("%s/%s", path, *c);

		if (h)
			XXH3_64bits_update(h, *c, strlen(*c) + 1);
		rc = tree_walk(sub, depth + 1, size, mtime, h);
		free(sub);
	}
	strv_free(names);
	return rc;
}

int
tree_stat(const char *path, int64_t *size, int64_t *mtime)
{
	*size = *mtime = 0;
	return tree_walk(path, 0, size, mtime, NULL);
}

int
tree_sig(const char *path, int64_t *size, int64_t *mtime, uint64_t *sig)
{
	XXH3_state_t *h = XXH3_createState();
	int rc;

	XXH3_64bits_reset(h);
	*size = *mtime = 0;
	rc = tree_walk(path, 0, size, mtime, h);
	*sig = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return rc;
}

/* fn on each thing in folder path: 0, or -1 when any failed (all are
 * tried) or the folder could not be read. */
static int
each_child(const char *path, int depth, int (*fn)(const char *, int))
{
	char **names = children(path, depth);
	int rc = 0;

	if (!names)
		return -1;
	for (char **c = names; *c; c++) {
		char *sub = xasprintf("%s/%s", path, *c);

		if (fn(sub, depth + 1) < 0)
			rc = -1;
		free(sub);
	}
	strv_free(names);
	return rc;
}

/* fsync path, a folder after what it holds. */
static int
fsync_walk(const char *path, int depth)
{
	struct stat sb;
	int fd, rc = 0;

	if (lstat(path, &sb) < 0)
		return -1;
	if (S_ISLNK(sb.st_mode))
		return 0;
	if (S_ISDIR(sb.st_mode) && each_child(path, depth, fsync_walk) < 0)
		rc = -1;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (fsync(fd) < 0)
		rc = -1;
	close(fd);
	return rc;
}

static int
remove_walk(const char *path, int depth)
{
	struct stat sb;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(sb.st_mode))
		return unlink(path);
	return each_child(path, depth, remove_walk) < 0 ? -1 : rmdir(path);
}

int
tree_fsync(const char *path)
{
	return fsync_walk(path, 0);
}

int
remove_tree(const char *path)
{
	return remove_walk(path, 0);
}
