/*
 * hdrcache.h - headers as DICOM JSON, handed from the pass that parsed a
 * file (validate) to the one that stores them (metadata), so that a new
 * file's header is read once.  Keyed by the file's SOPInstanceUID and
 * content hash: what is taken is the header of those bytes.  Bounded: past
 * HDRCACHE_MAX bytes held an offer is refused, and the taker reads the
 * file itself (the same answer, slower).  Thread-safe.
 */
#ifndef THLHP_HDRCACHE_H
#define THLHP_HDRCACHE_H

#include <stddef.h>
#include <stdint.h>

enum { HDRCACHE_MAX = 256 << 20 };

/* Whether anyone takes what is offered (the metadata stage is on); set
 * once before the workers start. */
void hdrcache_want(int on);
int hdrcache_wanted(void);
/* Keep json (malloc'd; the cache owns it, or frees it when refused). */
void hdrcache_offer(const char *sop, uint64_t hash, char *json);
/* The JSON offered for (sop, hash), malloc'd and no longer held, or NULL. */
char *hdrcache_take(const char *sop, uint64_t hash);
/* Drop everything held (the end of a run). */
void hdrcache_clear(void);

#endif
