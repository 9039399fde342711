/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decision cache: what santad decided for a file, keyed by the file's
 * identity (device, inode) and valid only while the stamps that change with
 * its content (mtime, ctime, size) still match. Allows stay until the file
 * changes or a policy change flushes them; denies expire after
 * CACHE_DENY_TTL_USEC so that a repeated denied exec is decided, logged and
 * shown again.
 *
 * Not thread-safe: the caller (the authorizer) holds its lock.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "santad.h"
#include "sha256.h"

#define CACHE_DENY_TTL_USEC (1500 * 1000ULL)
#define CACHE_MAX_ENTRIES (1u << 16)

typedef struct file_key {
	uint64_t dev;
	uint64_t ino;
	int64_t mtime_ns;
	int64_t ctime_ns;
	int64_t size;
} file_key;

void file_key_from_stat(file_key *k, const struct stat *st);
/* fstat() from the attributes the kernel already holds for FD (statx with
 * AT_STATX_DONT_SYNC): no request to a FUSE daemon or an NFS server, which
 * could hold the caller up for as long as they like. Fills the type, mode,
 * owner, device, inode, size and times; -errno on failure. */
int file_fstat_nosync(int fd, struct stat *st);
bool file_key_same_inode(const file_key *a, const file_key *b);
bool file_key_equal(const file_key *a, const file_key *b);

typedef struct cache_entry {
	file_key key;
	santad_decision decision;       /* NONE marks a free slot */
	santad_reason reason;
	bool silent;
	bool has_interp;                /* #! or PT_INTERP (exec_file_names_interp) */
	uint8_t sha256[SANTA_SHA256_LEN];
	uint64_t stamp_usec;            /* CLOCK_MONOTONIC at insertion */
} cache_entry;

typedef struct cache cache;

int cache_new(cache **ret);
cache *cache_free(cache *c);

/* The live entry for K (same inode and stamps, deny not expired at NOW),
 * copied into *RET. A stale entry for the inode is dropped. */
bool cache_lookup(cache *c, const file_key *k, uint64_t now_usec, cache_entry *ret);
/* Insert or replace the entry of E's inode. When the cache is full it is
 * emptied first (a rare, whole-machine case: the next execs are decided
 * again); returns true when that happened, so that the caller also drops
 * the kernel's allows. */
bool cache_insert(cache *c, const cache_entry *e);
void cache_remove_inode(cache *c, uint64_t dev, uint64_t ino);
void cache_clear(cache *c);
void cache_clear_denies(cache *c);
size_t cache_count(const cache *c);
/* Entries whose file is on device DEV, for status's root/other split. */
size_t cache_count_dev(const cache *c, uint64_t dev);
