/* hdrcache.c - see hdrcache.h: one hash table under one lock. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hdrcache.h"
#include "htab.h"
#include "util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct htab held;      /* "<hash> <sop>" -> json, or taken */
static char taken[] = "";     /* a key's value once taken (htab cannot delete) */
static size_t bytes;
static int wanted;

void
hdrcache_want(int on)
{
	wanted = on;
}

int
hdrcache_wanted(void)
{
	return wanted;
}

static char *
key_of(const char *sop, uint64_t hash)
{
	return xasprintf("%016llx %s", (unsigned long long)hash, sop);
}

void
hdrcache_offer(const char *sop, uint64_t hash, char *json)
{
	char *key;
	size_t n;

	if (!json)
		return;
	if (!wanted) {
		free(json);
		return;
	}
	key = key_of(sop, hash);
	n = strlen(json) + strlen(key);
	pthread_mutex_lock(&lock);
	if (bytes + n > HDRCACHE_MAX || htab_get(&held, key)) {
		pthread_mutex_unlock(&lock);
		free(key);
		free(json);
		return;
	}
	htab_put(&held, key, json);
	bytes += n;   /* the key stays when the JSON is taken: counted apart */
	pthread_mutex_unlock(&lock);
}

char *
hdrcache_take(const char *sop, uint64_t hash)
{
	char *key = key_of(sop, hash), *json = NULL;
	struct hslot *sl;

	pthread_mutex_lock(&lock);
	if ((sl = htab_slot(&held, key)) != NULL && sl->val != taken) {
		json = sl->val;
		sl->val = taken;   /* the key stays: counted apart */
		bytes -= strlen(json);
	}
	pthread_mutex_unlock(&lock);
	free(key);
	return json;
}

void
hdrcache_clear(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < held.cap; i++)
		if (held.slot[i].key) {
			free((char *)held.slot[i].key);
			if (held.slot[i].val != taken)
				free(held.slot[i].val);
		}
	if (held.cap)
		htab_free(&held);
	memset(&held, 0, sizeof(held));
	bytes = 0;
	pthread_mutex_unlock(&lock);
}
