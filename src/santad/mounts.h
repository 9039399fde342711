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
 * the filesystem cannot be marked. A mount that another one is stacked on
 * (/dev/shm mounted twice) is left to the one on top, which its path
 * names. Pseudo filesystems (proc, sysfs, cgroup,
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
/* The mount points marked, each once (a path may carry two marks when a
 * mount was stacked on a marked one), for status and the logs. */
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

/* One line of mountinfo, as mounts_parse_entry() splits it. */
typedef struct mounts_entry {
	uint64_t mnt_id;
	uint64_t parent_id;
	uint64_t dev;
	char *mount_point;      /* unescaped, inside the line */
	char *fstype;
	bool covered;           /* see mounts_flag_covered() */
} mounts_entry;

bool mounts_parse_entry(char *line, mounts_entry *ret);
/*
 * Flag the mounts that another one is stacked on (mounted on the same mount
 * point, with the covered one as its parent, as a second tmpfs on
 * /dev/shm): their mount point names the mount on top, so a mark made
 * through it would land there, and the path would be watched (and listed)
 * twice. The one on top stands for the path; a covered mount becomes
 * reachable, and is marked, when the one on top goes.
 */
void mounts_flag_covered(mounts_entry *entries, size_t n);
