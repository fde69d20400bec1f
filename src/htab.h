/* htab.h - a string-keyed hash table (open addressing); keys are not copied. */
#ifndef THLHP_HTAB_H
#define THLHP_HTAB_H

#include <stddef.h>

struct htab {
	struct hslot { const char *key; void *val; } *slot;  /* cap slots */
	size_t cap;   /* power of two */
	size_t len;   /* keys stored */
};

void htab_init(struct htab *h);
void htab_free(struct htab *h);          /* the table only, not keys or values */
void *htab_get(const struct htab *h, const char *key);
/* The slot holding key, or NULL; its val may be changed in place. */
struct hslot *htab_slot(const struct htab *h, const char *key);
/* Store val under key (replacing); key must outlive the table. */
void htab_put(struct htab *h, const char *key, void *val);

#endif
