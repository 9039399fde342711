/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read-only look-ups in dpkg's database (ADMINDIR, normally /var/lib/dpkg):
 * which installed package owns a file, what files it installed, and its
 * version.
 *
 * The database is read directly (info/<package>.list, status) rather than
 * through `dpkg-query -S`, for two reasons. dpkg-query matches the path
 * as a string, but the path santad reports is the canonical one
 * (/usr/bin/ls) while packages built before the /usr merge list the
 * aliased one (/bin/ls), so it finds no owner for most of the system; and
 * a file is matched here by its identity (device and inode of the listed
 * path, symlinked directories resolved), which is what the kernel ran.
 * Diversions (dpkg-divert) are not consulted: a diverted file is reported
 * as owned by the package that lists the path it now sits at.
 *
 * ROOT is the directory the packages were installed into, as dpkg's
 * --root: "/" (or NULL) for the system; listed paths are taken below it.
 *
 * Errors are -errno; nothing here logs.
 */
#pragma once

#include <stddef.h>
#include <sys/stat.h>

#define DPKG_ADMINDIR "/var/lib/dpkg"

/* Files larger than this in the database are refused (-EFBIG). */
#define DPKG_MAX_FILE (64u << 20)

typedef struct dpkg_owner {
	char *package;      /* "coreutils", or "libc6:amd64" when multi-arch */
	char *list_path;    /* ADMINDIR/info/<package>.list */
	char *listed_path;  /* the path as the package lists it: "/bin/ls" */
} dpkg_owner;

void dpkg_owner_done(dpkg_owner *o);

/* The package whose file list has an entry that is the file ST describes
 * (same device and inode, by lstat of ROOT + the listed path), where BASENAME is
 * that file's last path component. Lists are searched in name order and
 * the first owner wins. 0 and *RET filled, -ENOENT when no package owns
 * it, or another -errno when the database cannot be read. */
int dpkg_find_owner(const char *admindir, const char *root, const char *basename,
		    const struct stat *st, dpkg_owner *ret);

/* The paths of the file list LIST_PATH, in order, each below ROOT, at most
 * MAX_PATHS (-E2BIG beyond). *RET_PATHS is a NULL-terminated array: free
 * it with dpkg_paths_free. */
int dpkg_list_paths(const char *list_path, const char *root, size_t max_paths,
		    char ***ret_paths, size_t *ret_n);
void dpkg_paths_free(char **paths);

/* The Version field of PACKAGE ("name" or "name:arch") in ADMINDIR/status.
 * -ENOENT when the status file has no such installed package. */
int dpkg_package_version(const char *admindir, const char *package, char **ret_version);

/* The package name without its ":arch" qualifier, in BUF. */
const char *dpkg_package_name(const char *package, char *buf, size_t size);
