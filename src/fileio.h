/*
 * fileio.h - files written the safe way (temp name in the same folder,
 * fsync, rename, fsync the folder) and hashed as they are written.  Every
 * function returns 0 or -1 with a message in err (ERR_MAX bytes).
 */
#ifndef THLHP_FILEIO_H
#define THLHP_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

#define TMP_PREFIX ".thlhp-tmp-"   /* every temp file starts so; -t clean removes them */

/* mkdir -p, mode 0755 (0700 not needed: the parent's mode protects). */
int mkdirs(const char *path, char *err, size_t errlen);
/* path is root/a/b/...: with create, mkdir -p it; either way refuse a
 * component below root that is a symbolic link or not a folder, so that
 * nothing is written or read through a link planted inside root (root
 * itself may be a link: the user's choice).  A missing component is not an
 * error without create. */
int mkdirs_under(const char *root, const char *path, int create, char *err, size_t errlen);
/* fsync the folder holding path, so a rename in it is durable. */
int fsync_parent(const char *path, char *err, size_t errlen);
/* XXH3-64 of a file's content, and its size and mtime (ns) as read.  A
 * symbolic link, FIFO or any other non-regular file is refused, never
 * opened blocking. */
int hash_file(const char *path, uint64_t *hash, int64_t *size, int64_t *mtime,
    atomic_llong *bytes, char *err, size_t errlen);
/* The same of an open file, read from its start (path names it in
 * messages); a file that is not regular is refused. */
int hash_fd(int fd, const char *path, uint64_t *hash, int64_t *size, int64_t *mtime,
    atomic_llong *bytes, char *err, size_t errlen);
/* Put src (a regular file, never a link) at dst complete or not at all:
 * hard link when both are on one filesystem, else copy (hashing while
 * writing) and fsync; then rename.  Fills hash, size and mtime of dst. */
int import_file(const char *src, const char *dst, uint64_t *hash, int64_t *size,
    int64_t *mtime, atomic_llong *bytes, char *err, size_t errlen);
/* As import_file, but dst is always a file of its own: a reflink where the
 * filesystem can (FICLONE), else a copy; editing dst never changes src. */
int copy_file(const char *src, const char *dst, uint64_t *hash, int64_t *size,
    int64_t *mtime, atomic_llong *bytes, char *err, size_t errlen);
/* This process's temp files start with TMP_PREFIX "<pid>@<host>-", host
 * eight hex digits of a hash of the host name: processes on several hosts
 * share the folders, and a pid means something only on its own host. */
const char *tmp_tag(void);
/* A temp name in dst's folder: <dir>/<tmp_tag()><base>; malloc'd. */
char *tmp_name(const char *dst);
/* What to do after a write failed with errno e, for the end of a message:
 * a full disk or the file size limit is the user's to fix, and then a rerun
 * goes on.  "" for other errors; buf holds the text when needed. */
const char *write_hint(int e, char *buf, size_t len);
/* st_mtim of path in ns, or -1 (errno set); of a link itself (lstat), so
 * a file swapped for a link never matches what was recorded. */
int64_t mtime_ns(const char *path, int64_t *size);
/* A sorted list of the <sop> of every <sop>.dcm in dir (NULL-terminated,
 * malloc'd); *n the count.  A missing dir is an empty list. */
char **list_dcm(const char *dir, int *n, char *err, size_t errlen);
void strv_free(char **v);
/* Is file's folder dir, as written ("./" and repeated slashes aside) or
 * the same folder on disk? */
int file_in_folder(const char *file, const char *dir);
/* Remove temp files in dir left by processes that are gone (a kill -9, a
 * crash): of this host when the pid is not running, of another host when
 * the file has not changed for TMP_FOREIGN_AGE seconds (a writer that is
 * alive keeps writing; one that was not, fails at its rename and retries).
 * Returns how many. */
enum { TMP_FOREIGN_AGE = 3600 };
int remove_dead_temps(const char *dir);
/* tree.c: path, a file or a folder and all it holds, never following a
 * link.  tree_stat: the total size and the latest mtime (ns) of what is
 * in it; tree_sig: those and a signature of every name and content;
 * tree_fsync: fsync every file and folder, folders after their files;
 * remove_tree: rm -r (a link is removed, not what it points to).  Each
 * 0, or -1 (errno). */
int tree_stat(const char *path, int64_t *size, int64_t *mtime);
int tree_sig(const char *path, int64_t *size, int64_t *mtime, uint64_t *sig);
int tree_fsync(const char *path);
int remove_tree(const char *path);

#endif
