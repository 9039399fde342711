/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What santad watches.
 *
 * With WatchPaths set, the mount each listed path is on (FAN_MARK_MOUNT);
 * a path on which something is mounted later is marked again.
 *
 * By default, every local filesystem in /proc/self/mountinfo, each marked
 * once as a whole (FAN_MARK_FILESYSTEM, so bind mounts and other mount
 * namespaces' views of it are covered too), falling back to its mount when
 * the filesystem cannot be marked. Pseudo filesystems (proc, sysfs, cgroup,
 * ...) hold no programs and are skipped. Network filesystems and FUSE are
 * skipped as well: hashing or even stat'ing a file there waits on a server
 * or a user-space daemon, and a FUSE daemon that needs to exec something
 * would wait on us. A mount that cannot be marked (gone meanwhile, refused
 * by the kernel) is logged and skipped, never fatal. mounts_scan() is
 * called again whenever mountinfo changes, and marks what is new.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

typedef struct mounts mounts;

/* WATCH_PATHS NULL (or empty) = every local filesystem. */
int mounts_new(authorizer *a, char *const *watch_paths, size_t n_watch_paths,
	       mounts **ret);
mounts *mounts_free(mounts *m);
/* Mark what is not marked yet. Returns how many marks are in place. */
size_t mounts_scan(mounts *m);
/* The mount points marked, for status. */
size_t mounts_paths(const mounts *m, const char *const **ret);

/* Is FSTYPE one that the default scan skips (exposed for tests)? */
bool mounts_skip_fstype(const char *fstype, const char **ret_why);
/* Undo mountinfo's octal escapes (\040 for space) in place. */
void mounts_unescape(char *s);
/* Split one /proc/self/mountinfo line (modified in place): mount id,
 * device, mount point (unescaped) and filesystem type. False when it is
 * not a mountinfo line. */
bool mounts_parse_line(char *line, uint64_t *mnt_id, uint64_t *dev, char **mount_point,
		       char **fstype);
