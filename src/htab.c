/* htab.c - open addressing with linear probing; grown at 1/2 load. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "htab.h"
#include "util.h"

void
htab_init(struct htab *h)
{
	h->cap = 0;
	h->len = 0;
	h->slot = NULL;
}

void
htab_free(struct htab *h)
{
	free(h->slot);
	htab_init(h);
}

static size_t
htab_find(const struct htab *h, const char *key)
{
	size_t i = (size_t)XXH3_64bits(key, strlen(key)) & (h->cap - 1);

	while (h->slot[i].key && strcmp(h->slot[i].key, key) != 0)
		i = (i + 1) & (h->cap - 1);
	return i;
}

void *
htab_get(const struct htab *h, const char *key)
{
	if (h->cap == 0)
		return NULL;
	return h->slot[htab_find(h, key)].val;
}

struct hslot *
htab_slot(const struct htab *h, const char *key)
{
	struct hslot *sl;

	if (h->cap == 0)
		return NULL;
	sl = &h->slot[htab_find(h, key)];
	return sl->key ? sl : NULL;
}

void
htab_put(struct htab *h, const char *key, void *val)
{
	size_t i;

	if (2 * (h->len + 1) > h->cap) {
		struct htab old = *h;

		h->cap = old.cap ? old.cap * 2 : 64;
		h->slot = xcalloc(h->cap, sizeof(*h->slot));
		h->len = 0;
		for (i = 0; i < old.cap; i++)
			if (old.slot[i].key)
				htab_put(h, old.slot[i].key, old.slot[i].val);
		free(old.slot);
	}
	i = htab_find(h, key);
	if (!h->slot[i].key)
		h->len++;
	h->slot[i].key = key;
	h->slot[i].val = val;
}
