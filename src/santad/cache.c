/* SPDX-License-Identifier: Apache-2.0 */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* Open addressing with linear probing; the table doubles up to twice the
 * entry bound so that probes stay short. Deletion shifts the following
 * entries back instead of leaving tombstones. */
#define CACHE_MIN_SLOTS 1024u
#define CACHE_MAX_SLOTS (CACHE_MAX_ENTRIES * 2u)

struct cache {
	cache_entry *slots;
	size_t n_slots;                 /* a power of two */
	size_t count;
};

void file_key_from_stat(file_key *k, const struct stat *st)
{
	memset(k, 0, sizeof(*k));
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	k->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	k->size = st->st_size;
}

int file_fstat_nosync(int fd, struct stat *st)
{
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx) < 0)
		return -errno;
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	st->st_ino = sx.stx_ino;
	st->st_mode = sx.stx_mode;
	st->st_uid = sx.stx_uid;
	st->st_gid = sx.stx_gid;
	st->st_size = (off_t)sx.stx_size;
	st->st_mtim = (struct timespec){ sx.stx_mtime.tv_sec, sx.stx_mtime.tv_nsec };
	st->st_ctim = (struct timespec){ sx.stx_ctime.tv_sec, sx.stx_ctime.tv_nsec };
	return 0;
}

bool file_key_same_inode(const file_key *a, const file_key *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

bool file_key_equal(const file_key *a, const file_key *b)
{
	return file_key_same_inode(a, b) && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns && a->size == b->size;
}

int cache_new(cache **ret)
{
	cache *c = calloc(1, sizeof(*c));

	*ret = NULL;
	if (!c)
		return -ENOMEM;
	c->slots = calloc(CACHE_MIN_SLOTS, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return -ENOMEM;
	}
	c->n_slots = CACHE_MIN_SLOTS;
	*ret = c;
	return 0;
}

cache *cache_free(cache *c)
{
	if (c) {
		free(c->slots);
		free(c);
	}
	return NULL;
}

static size_t slot_of(const cache *c, uint64_t dev, uint64_t ino)
{
	uint64_t h = (ino ^ (dev << 32) ^ (dev >> 32)) * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 17) & (c->n_slots - 1);
}

/* The slot holding the inode, or the free slot where it would go. */
static size_t probe(const cache *c, uint64_t dev, uint64_t ino)
{
	size_t i = slot_of(c, dev, ino);

	while (c->slots[i].decision != SANTAD_DECISION_NONE &&
	       !(c->slots[i].key.dev == dev && c->slots[i].key.ino == ino))
		i = (i + 1) & (c->n_slots - 1);
	return i;
}

static void remove_slot(cache *c, size_t i)
{
	size_t mask = c->n_slots - 1, j = i;

	c->slots[i].decision = SANTAD_DECISION_NONE;
	c->count--;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (c->slots[j].decision == SANTAD_DECISION_NONE)
			return;
		home = slot_of(c, c->slots[j].key.dev, c->slots[j].key.ino);
		/* Move J back into the hole unless its home lies cyclically in
		 * (I, J], where it would then be unreachable. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			c->slots[i] = c->slots[j];
			c->slots[j].decision = SANTAD_DECISION_NONE;
			i = j;
		}
	}
}

bool cache_lookup(cache *c, const file_key *k, uint64_t now_usec, cache_entry *ret)
{
	size_t i = probe(c, k->dev, k->ino);
	cache_entry *e = &c->slots[i];

	if (e->decision == SANTAD_DECISION_NONE)
		return false;
	if (!file_key_equal(&e->key, k) ||
	    (e->decision == SANTAD_DECISION_DENY &&
	     now_usec - e->stamp_usec >= CACHE_DENY_TTL_USEC)) {
		remove_slot(c, i);
		return false;
	}
	*ret = *e;
	return true;
}

static int grow(cache *c)
{
	cache_entry *old = c->slots;
	size_t n_old = c->n_slots;
	cache_entry *slots = calloc(n_old * 2, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	c->slots = slots;
	c->n_slots = n_old * 2;
	for (size_t i = 0; i < n_old; i++)
		if (old[i].decision != SANTAD_DECISION_NONE)
			c->slots[probe(c, old[i].key.dev, old[i].key.ino)] = old[i];
	free(old);
	return 0;
}

bool cache_insert(cache *c, const cache_entry *e)
{
	bool emptied = false;
	size_t i;

	if (e->decision == SANTAD_DECISION_NONE)
		return false;
	if ((c->count + 1) * 2 > c->n_slots &&
	    (c->n_slots >= CACHE_MAX_SLOTS || grow(c) < 0)) {
		cache_clear(c);
		emptied = true;
	}
	i = probe(c, e->key.dev, e->key.ino);
	if (c->slots[i].decision == SANTAD_DECISION_NONE)
		c->count++;
	c->slots[i] = *e;
	return emptied;
}

void cache_remove_inode(cache *c, uint64_t dev, uint64_t ino)
{
	size_t i = probe(c, dev, ino);

	if (c->slots[i].decision != SANTAD_DECISION_NONE)
		remove_slot(c, i);
}

void cache_clear(cache *c)
{
	memset(c->slots, 0, c->n_slots * sizeof(*c->slots));
	c->count = 0;
}

void cache_clear_denies(cache *c)
{
	/* Removing shifts entries back into the hole, so rescan the slot. */
	for (size_t i = 0; i < c->n_slots;) {
		if (c->slots[i].decision == SANTAD_DECISION_DENY)
			remove_slot(c, i);
		else
			i++;
	}
}

size_t cache_count(const cache *c)
{
	return c->count;
}

size_t cache_count_dev(const cache *c, uint64_t dev)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_slots; i++)
		n += c->slots[i].decision != SANTAD_DECISION_NONE && c->slots[i].key.dev == dev;
	return n;
}
