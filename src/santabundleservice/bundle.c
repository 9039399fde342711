/* SPDX-License-Identifier: Apache-2.0 */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dpkg.h"

/* A .desktop marker larger than this is not read for its Name=. */
#define BUNDLE_DESKTOP_MAX (64u << 10)
/* Entries of one ancestor looked at when searching it for a marker. */
#define BUNDLE_MARKER_SCAN_MAX 10000u

/* The state of one enumeration: what was found so far and the limits. */
typedef struct bundle_walk {
	const bundle_opts *opts;
	bundle *b;
	size_t cap;
	bundle_progress progress;
	uint32_t max_binaries;
	uint32_t max_entries;
	dev_t root_dev;              /* directory bundles stay on this fs */
	/* Identities of the executables hashed, to count each file once:
	 * open addressing, twice the binary limit, so never full. */
	struct bundle_ident {
		dev_t dev;
		ino_t ino;
		bool used;
	} *seen;
	size_t n_seen_slots;
} bundle_walk;

const char *bundle_kind_name(bundle_kind k)
{
	switch (k) {
	case BUNDLE_KIND_DEB:
		return "deb";
	case BUNDLE_KIND_DIRECTORY:
		return "directory";
	default:
		return "none";
	}
}

void bundle_done(bundle *b)
{
	if (!b)
		return;
	free(b->id);
	free(b->name);
	free(b->path);
	free(b->version);
	free(b->executable_rel_path);
	for (size_t i = 0; i < b->n_binaries; i++)
		free(b->binaries[i].path);
	free(b->binaries);
	memset(b, 0, sizeof(*b));
}

static uint64_t bundle_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int bundle_check_stop(const bundle_opts *o)
{
	if (o->cancel && atomic_load(o->cancel))
		return -ECANCELED;
	if (o->deadline_usec && bundle_now_usec() >= o->deadline_usec)
		return -ETIME;
	return 0;
}

/* --- Bundle hash --- */

static int bundle_casecmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	int r = strcasecmp(*x, *y);

	return r ? r : strcmp(*x, *y);
}

int bundle_hash_of(const char *const *hashes, size_t n, char out[SANTA_SHA256_HEX_LEN + 1])
{
	uint8_t digest[SANTA_SHA256_LEN];
	const char **sorted;
	char *cat, *p;
	int r = 0;

	sorted = calloc(n ? n : 1, sizeof(*sorted));
	cat = malloc(n * SANTA_SHA256_HEX_LEN + 1);
	if (!sorted || !cat) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (strlen(hashes[i]) != SANTA_SHA256_HEX_LEN) {
			r = -EINVAL;
			goto out;
		}
		sorted[i] = hashes[i];
	}
	qsort(sorted, n, sizeof(*sorted), bundle_casecmp);
	p = cat;
	for (size_t i = 0; i < n; i++, p += SANTA_SHA256_HEX_LEN)
		memcpy(p, sorted[i], SANTA_SHA256_HEX_LEN);

	if (!EVP_Digest(cat, (size_t)(p - cat), digest, NULL, EVP_sha256(), NULL)) {
		r = -EIO;
		goto out;
	}
	santa_hex(digest, sizeof(digest), out);
out:
	free(sorted);
	free(cat);
	return r;
}

/* --- .desktop files --- */

static void bundle_copy_printable(const char *s, size_t len, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++)
		out[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	out[n] = '\0';
}

bool bundle_desktop_name(const char *text, size_t len, char *out, size_t size)
{
	bool in_entry = false;
	size_t pos = 0;

	if (size == 0)
		return false;
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;

		pos += ll + 1;
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll && line[0] == '[') {
			in_entry = ll == 15 && memcmp(line, "[Desktop Entry]", 15) == 0;
			continue;
		}
		if (!in_entry || ll < 5 || memcmp(line, "Name", 4) != 0)
			continue;
		/* "Name=" exactly: "Name[fr]=" and "NameX=" are other keys. */
		size_t k = 4;

		while (k < ll && (line[k] == ' ' || line[k] == '\t'))
			k++;
		if (k >= ll || line[k] != '=')
			continue;
		k++;
		while (k < ll && (line[k] == ' ' || line[k] == '\t'))
			k++;
		if (k == ll)
			continue;
		bundle_copy_printable(line + k, ll - k, out, size);
		return true;
	}
	return false;
}

static void bundle_read_desktop_name(int dirfd, const char *name, char *out, size_t size)
{
	char *buf;
	ssize_t n;
	int fd;

	out[0] = '\0';
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return;
	buf = malloc(BUNDLE_DESKTOP_MAX);
	if (buf) {
		n = pread(fd, buf, BUNDLE_DESKTOP_MAX, 0);
		if (n > 0 && !bundle_desktop_name(buf, (size_t)n, out, size))
			out[0] = '\0';
		free(buf);
	}
	close(fd);
}

/* --- Locating the bundle --- */

/* An absolute path without empty, "." or ".." components. */
static bool bundle_path_ok(const char *path)
{
	const char *p = path;

	if (path[0] != '/' || strlen(path) >= PATH_MAX)
		return false;
	while (*p == '/') {
		const char *c = p + 1;
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		p = c + n;
	}
	return *p == '\0';
}

static int bundle_set(char **field, const char *value, size_t len)
{
	free(*field);
	*field = strndup(value, len);
	return *field ? 0 : -ENOMEM;
}

static void bundle_admindir(const bundle_opts *o, char *buf, size_t size)
{
	const char *root = o->dpkg_root ? o->dpkg_root : "";
	size_t rl = strlen(root);

	while (rl && root[rl - 1] == '/')
		rl--;
	if (o->dpkg_admindir)
		snprintf(buf, size, "%s", o->dpkg_admindir);
	else
		snprintf(buf, size, "%.*s%s", (int)rl, root, DPKG_ADMINDIR);
}

static int bundle_locate_deb(const char *path, const struct stat *st, const bundle_opts *o,
			     bundle *b)
{
	const char *base = strrchr(path, '/') + 1;
	char name[256], admindir[PATH_MAX], *version = NULL;
	dpkg_owner owner;
	int r;

	bundle_admindir(o, admindir, sizeof(admindir));
	r = dpkg_find_owner(admindir, o->dpkg_root, base, st, &owner);
	if (r < 0)
		return r;
	dpkg_package_name(owner.package, name, sizeof(name));
	r = dpkg_package_version(admindir, owner.package, &version);
	if (r == -ENOENT)
		r = 0;
	if (r < 0)
		goto out;

	b->kind = BUNDLE_KIND_DEB;
	if ((r = bundle_set(&b->id, name, strlen(name))) < 0 ||
	    (r = bundle_set(&b->name, name, strlen(name))) < 0 ||
	    (r = bundle_set(&b->path, owner.list_path, strlen(owner.list_path))) < 0 ||
	    (r = bundle_set(&b->version, version ? version : "",
			    version ? strlen(version) : 0)) < 0 ||
	    (r = bundle_set(&b->executable_rel_path, owner.listed_path + 1,
			    strlen(owner.listed_path + 1))) < 0)
		goto out;
out:
	free(version);
	dpkg_owner_done(&owner);
	return r;
}

/* Directories that hold many unrelated programs and so are never an
 * application directory, even with a marker in them. LEN is the length of
 * the directory DIR (a prefix of an absolute path). */
static bool bundle_dir_excluded(const char *dir, size_t len)
{
	const char *second;

	if (len <= 1 || !memchr(dir + 1, '/', len - 1))
		return true;    /* "/" or a top-level directory */
	if (len == 10 && memcmp(dir, "/usr/local", 10) == 0)
		return true;
	second = memchr(dir + 1, '/', len - 1);
	return (size_t)(second - dir) == 5 && memcmp(dir, "/home", 5) == 0 &&
	       !memchr(second + 1, '/', len - (size_t)(second - dir) - 1);
}

/* Whether directory DIR (LEN bytes of a path) has a marker at its top;
 * the name of a .desktop marker, if that is what it has, in DESKTOP. */
static bool bundle_dir_has_marker(const char *dir, size_t len, char *desktop, size_t size)
{
	char path[PATH_MAX];
	bool found = false;
	struct dirent *de;
	unsigned seen = 0;
	DIR *d;
	int fd;

	if (len >= sizeof(path))
		return false;
	memcpy(path, dir, len);
	path[len] = '\0';
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	desktop[0] = '\0';
	while ((de = readdir(d)) && seen++ < BUNDLE_MARKER_SCAN_MAX) {
		size_t n = strlen(de->d_name);
		bool apprun = strcmp(de->d_name, "AppRun") == 0;
		bool dt = n > 8 && strcmp(de->d_name + n - 8, ".desktop") == 0;
		struct stat st;

		if ((!apprun && !dt) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		found = true;
		/* Of several .desktop files, the first in name order names
		 * the bundle, so that the name does not depend on readdir. */
		if (dt && n < size && (!desktop[0] || strcmp(de->d_name, desktop) < 0))
			memcpy(desktop, de->d_name, n + 1);
	}
	closedir(d);
	return found;
}

static int bundle_fill_directory(const char *path, size_t root_len, const char *desktop,
				 bundle *b)
{
	const char *id = path, *shown;
	char name[256] = "";
	int r;

	for (size_t i = 0; i < root_len; i++)
		if (path[i] == '/')
			id = path + i + 1;
	b->kind = BUNDLE_KIND_DIRECTORY;
	if ((r = bundle_set(&b->path, path, root_len)) < 0)
		return r;
	if (desktop && desktop[0]) {
		int dfd = open(b->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (dfd >= 0) {
			bundle_read_desktop_name(dfd, desktop, name, sizeof(name));
			close(dfd);
		}
	}
	if ((r = bundle_set(&b->id, id, (size_t)(path + root_len - id))) < 0)
		return r;
	shown = name[0] ? name : b->id;
	if ((r = bundle_set(&b->name, shown, strlen(shown))) < 0 ||
	    (r = bundle_set(&b->version, "", 0)) < 0 ||
	    (r = bundle_set(&b->executable_rel_path, path + root_len + 1,
			    strlen(path + root_len + 1))) < 0)
		return r;
	return 0;
}

/* Rule 2a: PATH is APP_ROOT/NAME/...: the bundle is APP_ROOT/NAME. */
static size_t bundle_under_app_root(const char *path, const bundle_opts *o)
{
	const char *root = o->app_root ? o->app_root : BUNDLE_APP_ROOT;
	size_t rl = strlen(root);
	const char *slash;

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (rl == 0 || strncmp(path, root, rl) != 0 || path[rl] != '/')
		return 0;
	slash = strchr(path + rl + 1, '/');
	return slash ? (size_t)(slash - path) : 0;
}

static int bundle_locate_directory(const char *path, const bundle_opts *o, bundle *b)
{
	char desktop[NAME_MAX + 1], best_desktop[NAME_MAX + 1] = "";
	size_t root_len = bundle_under_app_root(path, o), len;

	if (root_len)
		return bundle_fill_directory(path, root_len, NULL, b);

	/* Rule 2b: every ancestor, nearest first; the highest with a marker
	 * wins, as the original takes the outermost bundle. */
	len = (size_t)(strrchr(path, '/') - path);
	while (len > 0) {
		if (!bundle_dir_excluded(path, len) &&
		    bundle_dir_has_marker(path, len, desktop, sizeof(desktop))) {
			root_len = len;
			memcpy(best_desktop, desktop, sizeof(desktop));
		}
		while (len > 0 && path[--len] != '/')
			;
	}
	if (!root_len)
		return 0;
	return bundle_fill_directory(path, root_len, best_desktop, b);
}

int bundle_locate(const char *path, const bundle_opts *opts, bundle *ret)
{
	struct stat st;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!bundle_path_ok(path))
		return -EINVAL;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;

	if (!opts->dpkg_admindir || opts->dpkg_admindir[0]) {
		r = bundle_locate_deb(path, &st, opts, ret);
		/* No owner, or no dpkg database on this system: try the
		 * directory rules. */
		if (r == 0 || (r != -ENOENT && r != -ENOTDIR))
			goto out;
		bundle_done(ret);
	}
	r = bundle_locate_directory(path, opts, ret);
out:
	if (r < 0)
		bundle_done(ret);
	return r;
}

/* --- Finding and hashing the members --- */

static void bundle_report(bundle_walk *w)
{
	if (w->opts->progress)
		w->opts->progress(&w->progress, w->opts->userdata);
}

/* True if DEV/INO was seen before; records it otherwise. */
static bool bundle_seen(bundle_walk *w, dev_t dev, ino_t ino)
{
	size_t i = ((size_t)ino * 0x9e3779b97f4a7c15ull ^ (size_t)dev) % w->n_seen_slots;

	while (w->seen[i].used) {
		if (w->seen[i].dev == dev && w->seen[i].ino == ino)
			return true;
		i = (i + 1) % w->n_seen_slots;
	}
	w->seen[i] = (struct bundle_ident){ .dev = dev, .ino = ino, .used = true };
	return false;
}

static int bundle_add_binary(bundle_walk *w, const char *path, const uint8_t *sha)
{
	bundle *b = w->b;

	if (b->n_binaries == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 32;
		bundle_binary *nb = reallocarray(b->binaries, ncap, sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		b->binaries = nb;
		w->cap = ncap;
	}
	b->binaries[b->n_binaries].path = strdup(path);
	if (!b->binaries[b->n_binaries].path)
		return -ENOMEM;
	santa_hex(sha, SANTA_SHA256_LEN, b->binaries[b->n_binaries].sha256);
	b->n_binaries++;
	return 0;
}

static bool bundle_is_executable_content(int fd)
{
	unsigned char magic[4];
	ssize_t n = pread(fd, magic, sizeof(magic), 0);

	if (n >= 4 && memcmp(magic, "\177ELF", 4) == 0)
		return true;
	return n >= 2 && magic[0] == '#' && magic[1] == '!';
}

/* Look at the member NAME of DIRFD (PATH for the result): hash it if it
 * is an executable seen for the first time. */
static int bundle_consider(bundle_walk *w, int dirfd, const char *name, const char *path)
{
	uint8_t sha[SANTA_SHA256_LEN];
	struct stat st;
	int fd, r = 0;

	/* O_NONBLOCK: a FIFO planted in the tree must not hang us; it is
	 * then refused as not a regular file. */
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;   /* vanished, a symlink, or unreadable: not a member */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111) ||
	    !bundle_is_executable_content(fd) || bundle_seen(w, st.st_dev, st.st_ino))
		goto out;

	if (w->progress.binary_count >= w->max_binaries) {
		r = -E2BIG;
		goto out;
	}
	w->progress.binary_count++;
	r = santa_hash_fd(fd, sha, NULL);
	if (r < 0)
		goto out;
	r = bundle_add_binary(w, path, sha);
	if (r < 0)
		goto out;
	w->progress.hashed_count++;
	bundle_report(w);
out:
	close(fd);
	return r;
}

static int bundle_count_entry(bundle_walk *w)
{
	int r = bundle_check_stop(w->opts);

	if (r < 0)
		return r;
	if (w->progress.file_count >= w->max_entries)
		return -E2BIG;
	if (++w->progress.file_count % 256 == 0)
		bundle_report(w);
	return 0;
}

static int bundle_walk_deb(bundle_walk *w)
{
	char **paths = NULL;
	size_t n = 0;
	int r;

	r = dpkg_list_paths(w->b->path, w->opts->dpkg_root, w->max_entries, &paths, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = bundle_count_entry(w);
		if (r >= 0)
			r = bundle_consider(w, AT_FDCWD, paths[i], paths[i]);
	}
	dpkg_paths_free(paths);
	return r;
}

static int bundle_walk_dir(bundle_walk *w, int dirfd, char *path, size_t len, unsigned depth);

static int bundle_walk_entry(bundle_walk *w, DIR *d, const struct dirent *de, char *path,
			     size_t len, unsigned depth)
{
	size_t nl = strlen(de->d_name);
	struct stat st;
	int r, sub;

	r = bundle_count_entry(w);
	if (r < 0)
		return r;
	if (len + 1 + nl >= PATH_MAX)
		return 0;   /* cannot be named: skipped */
	path[len] = '/';
	memcpy(path + len + 1, de->d_name, nl + 1);

	if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto out;
	if (S_ISREG(st.st_mode) && (st.st_mode & 0111)) {
		r = bundle_consider(w, dirfd(d), de->d_name, path);
	} else if (S_ISDIR(st.st_mode) && st.st_dev == w->root_dev && depth < BUNDLE_MAX_DEPTH) {
		sub = openat(dirfd(d), de->d_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			r = bundle_walk_dir(w, sub, path, len + 1 + nl, depth + 1);
	}
out:
	path[len] = '\0';
	return r;
}

/* Walk the directory FD (named PATH, LEN bytes; PATH has PATH_MAX bytes of
 * room). Takes FD. */
static int bundle_walk_dir(bundle_walk *w, int fd, char *path, size_t len, unsigned depth)
{
	struct dirent *de;
	int r = 0;
	DIR *d;

	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while (r >= 0 && (errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = bundle_walk_entry(w, d, de, path, len, depth);
	}
	closedir(d);
	return r;
}

static int bundle_walk_directory(bundle_walk *w)
{
	char path[PATH_MAX];
	size_t len = strlen(w->b->path);
	struct stat st;
	int fd;

	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, w->b->path, len + 1);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	w->root_dev = st.st_dev;
	return bundle_walk_dir(w, fd, path, len, 0);
}

static int bundle_binary_cmp(const void *a, const void *b)
{
	const bundle_binary *x = a, *y = b;

	return strcmp(x->path, y->path);
}

static int bundle_finish(bundle *b)
{
	const char **hashes;
	int r;

	qsort(b->binaries, b->n_binaries, sizeof(*b->binaries), bundle_binary_cmp);
	hashes = calloc(b->n_binaries ? b->n_binaries : 1, sizeof(*hashes));
	if (!hashes)
		return -ENOMEM;
	for (size_t i = 0; i < b->n_binaries; i++)
		hashes[i] = b->binaries[i].sha256;
	r = bundle_hash_of(hashes, b->n_binaries, b->hash);
	free(hashes);
	return r;
}

int bundle_hash_members(bundle *b, const bundle_opts *opts)
{
	bundle_walk w = {
		.opts = opts,
		.b = b,
		.max_binaries = opts->max_binaries ? opts->max_binaries : BUNDLE_MAX_BINARIES,
		.max_entries = opts->max_entries ? opts->max_entries : BUNDLE_MAX_ENTRIES,
	};
	int r;

	if (b->kind == BUNDLE_KIND_NONE)
		return -EINVAL;
	w.n_seen_slots = (size_t)w.max_binaries * 2 + 1;
	w.seen = calloc(w.n_seen_slots, sizeof(*w.seen));
	if (!w.seen)
		return -ENOMEM;

	r = b->kind == BUNDLE_KIND_DEB ? bundle_walk_deb(&w) : bundle_walk_directory(&w);
	if (r >= 0)
		r = bundle_finish(b);
	free(w.seen);
	if (r < 0)
		return r;
	w.progress.done = true;
	bundle_report(&w);
	return 0;
}

int bundle_compute(const char *path, const bundle_opts *opts, bundle *ret)
{
	uint64_t start = bundle_now_usec();
	int r;

	r = bundle_locate(path, opts, ret);
	if (r < 0 || ret->kind == BUNDLE_KIND_NONE)
		return r;
	r = bundle_hash_members(ret, opts);
	if (r < 0) {
		bundle_done(ret);
		return r;
	}
	ret->hash_millis = (bundle_now_usec() - start) / 1000u;
	return 0;
}
