/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bundles on Linux: which files belong with a blocked program, and the
 * bundle hash the original Santa computes over them.
 *
 * A macOS bundle is a directory (Foo.app) whose Info.plist names it. Linux
 * has no such thing, so a bundle here is, in this order:
 *
 *  1. The Debian package that owns the blocked file (dpkg's database, see
 *     dpkg.h; the system's, or that of a tree installed with dpkg --root):
 *     its members are the files the package installed. id and
 *     name are the package name, version its Version, path the dpkg file
 *     list, and the executable's relative path the listed path without
 *     its leading '/'.
 *  2. Else an application directory that holds it:
 *     a. the first directory below an application root (by default /opt:
 *        /opt/NAME/bin/tool belongs to /opt/NAME); else
 *     b. the highest ancestor of the file that carries an application
 *        marker at its top: a regular file named AppRun (the AppDir layout
 *        an AppImage unpacks to) or a regular *.desktop file. The root
 *        directory, top-level directories (/usr, /home, /tmp, ...),
 *        /usr/local and home directories (/home/NAME) are never bundles.
 *     Its members are the files below it, found without following
 *     symbolic links or crossing into other filesystems. id is the
 *     directory's name, name the Name= of its .desktop marker if any (else
 *     the id), path the directory.
 *  3. Else the file belongs to no bundle (-ENOENT).
 *
 * Of the members, the executables are the regular files with an execute
 * bit that start with an ELF header or "#!". Each is hashed (SHA-256, from
 * the file opened without following symlinks), and the bundle hash is the
 * SHA-256 of their lower-case hex hashes, sorted case-insensitively and
 * concatenated, as the original computes it. A file reached by two paths
 * (a hard link, or /bin and /usr/bin after the /usr merge) counts once.
 *
 * Files and directories that cannot be opened are not members: the
 * service walks with its caller's file-access credentials (service.c).
 *
 * Everything is bounded: entries looked at, executables, depth, and a
 * deadline; the work also stops when *CANCEL becomes true. Errors are
 * -errno (-ETIME past the deadline, -ECANCELED, -E2BIG past a limit);
 * nothing here logs.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define BUNDLE_MAX_BINARIES 4096u      /* executables in one bundle */
#define BUNDLE_MAX_ENTRIES 1000000u    /* directory entries looked at */
#define BUNDLE_MAX_DEPTH 64u           /* directory levels below the root */
#define BUNDLE_APP_ROOT "/opt"

typedef enum bundle_kind {
	BUNDLE_KIND_NONE = 0,
	BUNDLE_KIND_DEB,
	BUNDLE_KIND_DIRECTORY,
} bundle_kind;

const char *bundle_kind_name(bundle_kind k);   /* "deb", "directory" */

typedef struct bundle_progress {
	uint32_t file_count;     /* entries looked at */
	uint32_t binary_count;   /* executables found */
	uint32_t hashed_count;   /* executables hashed */
	bool done;
} bundle_progress;

typedef struct bundle_opts {
	const char *dpkg_root;       /* NULL: "/"; packages installed below it */
	const char *dpkg_admindir;   /* NULL: ROOT/var/lib/dpkg; "" skips dpkg */
	const char *app_root;        /* NULL: /opt; "" disables rule 2a */
	uint64_t deadline_usec;      /* CLOCK_MONOTONIC; 0: none */
	uint32_t max_binaries;       /* 0: BUNDLE_MAX_BINARIES */
	uint32_t max_entries;        /* 0: BUNDLE_MAX_ENTRIES */
	const atomic_bool *cancel;   /* may be NULL */
	/* Called as the counts grow (not more often than every 1000
	 * entries or 16 hashes) and once at the end. */
	void (*progress)(const bundle_progress *p, void *userdata);
	void *userdata;
} bundle_opts;

typedef struct bundle_binary {
	char *path;                               /* absolute */
	char sha256[SANTA_SHA256_HEX_LEN + 1];    /* lower-case hex */
} bundle_binary;

typedef struct bundle {
	bundle_kind kind;
	char *id;
	char *name;
	char *path;
	char *version;              /* "" when unknown */
	char *executable_rel_path;  /* the blocked file within the bundle */
	char hash[SANTA_SHA256_HEX_LEN + 1];
	bundle_binary *binaries;    /* sorted by path */
	size_t n_binaries;
	uint64_t hash_millis;       /* from locating to the last hash */
} bundle;

void bundle_done(bundle *b);

/* Find the bundle the file at PATH (absolute, as santad reported it)
 * belongs to, and fill its identity (not its binaries). */
int bundle_locate(const char *path, const bundle_opts *opts, bundle *ret);

/* Find B's executables, hash each and compute B's hash. */
int bundle_hash_members(bundle *b, const bundle_opts *opts);

/* Both: the whole job for one blocked file. */
int bundle_compute(const char *path, const bundle_opts *opts, bundle *ret);

/* The bundle hash of N lower-case or upper-case hex hashes, in any order
 * (they are sorted here): SHA-256 over their concatenation, sorted
 * case-insensitively, as lower-case hex in OUT. */
int bundle_hash_of(const char *const *hashes, size_t n, char out[SANTA_SHA256_HEX_LEN + 1]);

/* Name= of the [Desktop Entry] group of a .desktop file's TEXT (LEN
 * bytes, not necessarily NUL-terminated), in OUT; false when none. */
bool bundle_desktop_name(const char *text, size_t len, char *out, size_t size);
