/*
 * zdeflate.h - archive entries deflated by libdeflate and handed to libzip
 * already compressed, and their check when the archive is read back.
 *
 * libdeflate compresses a whole buffer about twice as fast as zlib's
 * streaming deflate at the same level, and a little smaller; libzip copies
 * an entry whose source says it is deflated as it is, with the CRC and
 * size the source gives (and encrypts it when asked).  An entry is
 * compressed when libzip opens it and freed when libzip closes it, so a
 * job holds one file and its compressed form at a time.  Files larger
 * than ZDEFLATE_MAX, which would need that much memory, are left to
 * libzip's own zlib (the caller uses zip_source_file for them).
 */
#ifndef THLHP_ZDEFLATE_H
#define THLHP_ZDEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <zip.h>

enum { ZDEFLATE_MAX = 256 << 20 };

struct zdeflate;              /* one job's compressor and decompressor */

/* For DEFLATE level 1-9; NULL when libdeflate cannot allocate. */
struct zdeflate *zdeflate_new(int level);
void zdeflate_free(struct zdeflate *zd);

/* A libzip source for the file path (size bytes when the caller looked),
 * deflated with zd when libzip reads it, its entry time mtime.  A file
 * that no longer has that size when it is read is an error (the entry
 * fails and zip_close with it).  NULL with libzip's error in za. */
zip_source_t *zdeflate_source(zip_t *za, struct zdeflate *zd, const char *path,
    int64_t size, time_t mtime);

/* Read entry idx of za back: inflate its raw data with zd and compare its
 * length and CRC-32 with the central directory's.  1 when done; 0 when
 * the entry is not one this can check (not deflated, encrypted, or larger
 * than ZDEFLATE_MAX: read it with zip_fread, which checks the CRC); -1
 * with the message in err. */
int zdeflate_check(zip_t *za, struct zdeflate *zd, zip_uint64_t idx, char *err, size_t errlen);

#endif
