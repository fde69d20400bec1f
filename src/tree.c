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

/* Walk path (not following links): the total size and the latest mtime
 * of what is in it, and with h a hash of every name, kind, size and
 * content.  0, or -1 (errno). */
static int
tree_walk(const char *path, int depth, int64_t *size, int64_t *mtime, XXH3_state_t *h)
{
	struct stat sb;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
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
	if (depth > TREE_DEPTH || !(d = opendir(path))) {
		errno = depth > TREE_DEPTH ? ELOOP : errno;
		return -1;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char *sub = xasprintf("%s/%s", path, names[i]);

		if (h)
			XXH3_64bits_update(h, names[i], strlen(names[i]) + 1);
		if (rc == 0)
			rc = tree_walk(sub, depth + 1, size, mtime, h);
		free(sub);
		free(names[i]);
	}
	free(names);
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

static int
fsync_walk(const char *path, int depth)
{
	struct stat sb;
	int fd, rc = 0;

	if (lstat(path, &sb) < 0)
		return -1;
	if (S_ISLNK(sb.st_mode))
		return 0;
	if (S_ISDIR(sb.st_mode) && depth <= TREE_DEPTH) {
		DIR *d = opendir(path);
		struct dirent *de;

		if (!d)
			return -1;
		while ((de = readdir(d))) {
			char *sub;

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			sub = xasprintf("%s/%s", path, de->d_name);
			if (fsync_walk(sub, depth + 1) < 0)
				rc = -1;
			free(sub);
		}
		closedir(d);
	}
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
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(sb.st_mode))
		return unlink(path);
	if (depth > TREE_DEPTH || !(d = opendir(path)))
		return -1;
	while ((de = readdir(d))) {
		char *sub;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		sub = xasprintf("%s/%s", path, de->d_name);
		if (remove_walk(sub, depth + 1) < 0)
			rc = -1;
		free(sub);
	}
	closedir(d);
	return rc < 0 ? -1 : rmdir(path);
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
