/*
 * zfd.h - archives read and written by libzip through a file descriptor
 * of ours.
 *
 * libzip's own file source reads and writes through stdio 8 KB at a time
 * (a seek before each read) and writes into a temp file of its own that it
 * renames at the end: for an archive of 1 GB, a quarter of a million
 * system calls.  Here a read is one pread of what libzip asks for (a whole
 * entry, when an entry is copied), and a new archive goes straight to the
 * caller's temp name (created O_EXCL and O_NOFOLLOW) in windows of 1 MB,
 * written by a thread of its own, past the page cache (O_DIRECT) where
 * the filesystem allows: copying a new file into the page cache costs more
 * CPU than compressing it at level 1 on some machines.  The last two
 * windows stay in memory, so that libzip's going back to an entry's
 * header lands there (an entry over 1 MB makes it land in the file).
 * The writer knows its position (zfd_pos): the offset of an entry's data
 * when libzip opens the entry's source; and it shows every window, in
 * order, to a watcher (zfd_watch), which can check the archive without
 * reading it back.
 */
#ifndef THLHP_ZFD_H
#define THLHP_ZFD_H

#include <stddef.h>
#include <stdint.h>
#include <zip.h>

struct zfd;

/* Open the archive at path: ZIP_RDONLY (and ZIP_CHECKCONS) to read one,
 * ZIP_CREATE | ZIP_EXCL to write a new one, then at *fd (when fd is not
 * NULL) the source's state for zfd_pos, valid until zip_close or
 * zip_discard.  NULL with the message in err. */
zip_t *zfd_open(const char *path, int flags, struct zfd **fd, char *err, size_t errlen);

/* Where the next byte libzip writes goes. */
int64_t zfd_pos(const struct zfd *fd);

/* fn(arg, off, p, n) for the new archive's bytes in order as they go to
 * the file, on the writer's thread; at the end fn(arg, -1, NULL, whole):
 * whole is 0 when a byte shown was written again afterwards (the bytes
 * shown are then not all the file's).  Before zip_close. */
void zfd_watch(struct zfd *fd, void (*fn)(void *arg, int64_t off, const unsigned char *p,
    size_t n), void *arg);

/* fn(arg) while libzip's thread waits for the writer (the disk is the
 * slower): some other work, 1 when it did some, 0 when it has none left.
 * Before zip_close. */
void zfd_idle(struct zfd *fd, int (*fn)(void *arg), void *arg);

#endif
