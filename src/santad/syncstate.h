/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the sync server set (mode, regexes, feature flags, sync times),
 * persisted in StateDirectory/sync-state.json so that it survives a
 * restart, as the original's sync-state.plist does. It is layered over the
 * config file: a setting present here wins.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "santad.pb-c.h"

typedef struct syncstate {
	char *path;
	Santa__SyncSettings s;          /* strings owned; has_* = set */
} syncstate;

/* Load PATH (missing = nothing set). A damaged file is an error naming it:
 * the caller decides whether to go on without it. */
int syncstate_load(syncstate *st, const char *path, char *errbuf, size_t errsize);
void syncstate_done(syncstate *st);
/* Apply the fields of UPD whose has_* flag is set (an empty regex clears
 * the server's), into a copy, and write it (atomically: temporary file,
 * fsync, rename). On success *ST becomes the copy; on failure it is
 * unchanged. */
int syncstate_update(syncstate *st, const Santa__SyncSettings *upd, char *errbuf,
		     size_t errsize);
