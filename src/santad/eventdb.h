/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Executions waiting to be uploaded to the sync server:
 * StateDirectory/events.db, each event stored as its packed santa.Event,
 * with a key naming the execution (or bundle binary) it is about, so that
 * a later, fuller version of it (the bundle fields santagui adds to a
 * block) replaces it instead of being a second event.
 * Only the main loop thread uses it. The table holds at most EVENTDB_MAX
 * events; beyond that new ones are dropped (and counted) until an upload
 * removes some, so a machine without a reachable server does not fill its
 * disk.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "santa.pb-c.h"

#define EVENTDB_MAX 100000u
#define EVENTDB_LIST_MAX 1000u

typedef struct eventdb eventdb;

int eventdb_open(const char *path, eventdb **ret, char *errbuf, size_t errsize);
eventdb *eventdb_close(eventdb *db);

/* Store EVENTS in one transaction, setting the id of each one stored.
 * *RET_DROPPED counts those that did not fit under EVENTDB_MAX. */
int eventdb_add(eventdb *db, Santa__Event *const *events, size_t n, size_t *ret_dropped);
/* The stored event that is the same event as EV (the same execution: pid,
 * time and file; or the same binary of the same bundle), its id set; NULL
 * when none is stored (any more). Free it with santa__event__free_unpacked. */
int eventdb_find(eventdb *db, const Santa__Event *ev, Santa__Event **ret);
/* Store EVENTS in one transaction, each in place of the stored events that
 * are the same event (eventdb_find), or as new ones when none is stored.
 * Each stored one gets a new id, set in it: an upload in flight that
 * removes the old id leaves the new one to the next upload.
 * *RET_DROPPED counts those that did not fit under EVENTDB_MAX. */
int eventdb_replace(eventdb *db, Santa__Event *const *events, size_t n, size_t *ret_dropped);
int eventdb_count(eventdb *db, uint64_t *ret);
/* Events with id > AFTER_ID, oldest first, their id field set. Free each
 * with santa__event__free_unpacked, and the array with free(). */
int eventdb_list(eventdb *db, int64_t after_id, size_t limit, Santa__Event ***ret,
		 size_t *ret_n);
int eventdb_remove(eventdb *db, const int64_t *ids, size_t n);
