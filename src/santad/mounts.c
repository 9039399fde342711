/* SPDX-License-Identifier: Apache-2.0 */
#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "log.h"

#define MOUNTS_MAX 4096u

typedef struct mark {
	char *path;
	uint64_t id;            /* device (filesystem marks) or mount id */
	bool filesystem;
	bool seen;              /* present in the latest mountinfo scan */
} mark;

struct mounts {
	authorizer *auth;
	char **watch;           /* NULL: every local filesystem */
	size_t n_watch;
	mark *marks;
	size_t n_marks;
	const char **paths;     /* the marks' paths, each once, for mounts_paths */
	size_t n_paths;
	/* Filesystems that failed, so each is only reported once. */
	uint64_t *failed;
	size_t n_failed;
};

static const char *const pseudo_fs[] = {
	"proc", "sysfs", "cgroup", "cgroup2", "devpts", "securityfs", "debugfs",
	"tracefs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs",
	"autofs", "binfmt_misc", "efivarfs", "rpc_pipefs", "nsfs", "selinuxfs",
	"nfsd", "rootfs",
};

static const char *const remote_fs[] = {
	"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "9p", "afs", "glusterfs",
	"lustre", "ncpfs", "coda", "davfs", "virtiofs",
};

bool mounts_skip_fstype(const char *fstype, const char **ret_why)
{
	for (size_t i = 0; i < sizeof(pseudo_fs) / sizeof(pseudo_fs[0]); i++)
		if (!strcmp(fstype, pseudo_fs[i])) {
			*ret_why = "a pseudo filesystem";
			return true;
		}
	for (size_t i = 0; i < sizeof(remote_fs) / sizeof(remote_fs[0]); i++)
		if (!strcmp(fstype, remote_fs[i])) {
			*ret_why = "a network filesystem";
			return true;
		}
	if (!strcmp(fstype, "fuse") || !strncmp(fstype, "fuse.", 5) ||
	    !strcmp(fstype, "fuseblk")) {
		*ret_why = "a FUSE filesystem (its daemon could stall decisions)";
		return true;
	}
	return false;
}

void mounts_unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

int mounts_new(authorizer *a, char *const *watch_paths, size_t n_watch_paths, mounts **ret)
{
	mounts *m = calloc(1, sizeof(*m));

	*ret = NULL;
	if (!m)
		return -ENOMEM;
	m->auth = a;
	m->marks = calloc(MOUNTS_MAX, sizeof(*m->marks));
	m->paths = calloc(MOUNTS_MAX, sizeof(*m->paths));
	m->failed = calloc(MOUNTS_MAX, sizeof(*m->failed));
	if (!m->marks || !m->paths || !m->failed)
		goto oom;
	if (n_watch_paths) {
		m->watch = calloc(n_watch_paths, sizeof(char *));
		if (!m->watch)
			goto oom;
		for (; m->n_watch < n_watch_paths; m->n_watch++)
			if (!(m->watch[m->n_watch] = strdup(watch_paths[m->n_watch])))
				goto oom;
	}
	*ret = m;
	return 0;
oom:
	mounts_free(m);
	return -ENOMEM;
}

mounts *mounts_free(mounts *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_watch; i++)
		free(m->watch[i]);
	for (size_t i = 0; i < m->n_marks; i++)
		free(m->marks[i].path);
	free(m->watch);
	free(m->marks);
	free(m->paths);
	free(m->failed);
	free(m);
	return NULL;
}

static bool have_mark(mounts *m, uint64_t id, bool filesystem)
{
	for (size_t i = 0; i < m->n_marks; i++)
		if (m->marks[i].id == id && m->marks[i].filesystem == filesystem) {
			m->marks[i].seen = true;
			return true;
		}
	return false;
}

/* Forget marks of filesystems and mounts that are gone: the kernel
 * dropped those marks itself when they went. */
static void prune_unseen(mounts *m)
{
	size_t kept = 0;

	for (size_t i = 0; i < m->n_marks; i++) {
		if (!m->marks[i].seen) {
			log_info("Stopped watching \"%s\": no longer mounted", m->marks[i].path);
			free(m->marks[i].path);
			continue;
		}
		m->marks[kept++] = m->marks[i];
	}
	m->n_marks = kept;
}

static bool failed_before(mounts *m, uint64_t id, bool remember)
{
	for (size_t i = 0; i < m->n_failed; i++)
		if (m->failed[i] == id)
			return true;
	if (remember && m->n_failed >= MOUNTS_MAX)
		m->n_failed = 0;
	if (remember)
		m->failed[m->n_failed++] = id;
	return false;
}

static int add_mark(mounts *m, const char *path, uint64_t id, bool filesystem)
{
	int r;

	if (m->n_marks >= MOUNTS_MAX)
		return -E2BIG;
	r = auth_mark(m->auth, path, filesystem);
	if (r < 0)
		return r;
	m->marks[m->n_marks].path = strdup(path);
	if (!m->marks[m->n_marks].path) {
		(void)auth_unmark(m->auth, path, filesystem);
		return -ENOMEM;
	}
	m->marks[m->n_marks].id = id;
	m->marks[m->n_marks].filesystem = filesystem;
	m->marks[m->n_marks].seen = true;
	m->n_marks++;
	log_info("Watching execs on %s \"%s\"", filesystem ? "the filesystem of" : "the mount",
		 path);
	return 0;
}

/* WatchPaths: the mount each path is on, again when that mount changes. */
static void scan_watch_paths(mounts *m)
{
	for (size_t i = 0; i < m->n_watch; i++) {
		struct statx stx;
		int r;

		if (statx(AT_FDCWD, m->watch[i], 0, STATX_MNT_ID, &stx) < 0) {
			r = -errno;
		} else if (have_mark(m, stx.stx_mnt_id, false)) {
			continue;
		} else {
			r = add_mark(m, m->watch[i], stx.stx_mnt_id, false);
			if (r == 0)
				continue;
		}
		if (!failed_before(m, i, true))
			log_warning_errno(r, "Watching WatchPaths entry \"%s\" failed, skipping",
					  m->watch[i]);
	}
}

bool mounts_parse_entry(char *line, mounts_entry *ret)
{
	unsigned maj, min;
	unsigned long long id, parent;
	char *sep, *save = NULL, *tok;
	int field = 0;

	memset(ret, 0, sizeof(*ret));
	sep = strstr(line, " - ");
	if (!sep)
		return false;
	*sep = '\0';
	ret->fstype = strtok_r(sep + 3, " ", &save);
	save = NULL;
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 0 && sscanf(tok, "%llu", &id) != 1)
			return false;
		if (field == 1 && sscanf(tok, "%llu", &parent) != 1)
			return false;
		if (field == 2 && sscanf(tok, "%u:%u", &maj, &min) != 2)
			return false;
		if (field == 4)
			ret->mount_point = tok;
	}
	if (field < 5 || !ret->fstype)
		return false;
	ret->mnt_id = id;
	ret->parent_id = parent;
	ret->dev = makedev(maj, min);
	mounts_unescape(ret->mount_point);
	return true;
}

bool mounts_parse_line(char *line, uint64_t *mnt_id, uint64_t *dev, char **mount_point,
		       char **fstype)
{
	mounts_entry e;

	if (!mounts_parse_entry(line, &e))
		return false;
	*mnt_id = e.mnt_id;
	*dev = e.dev;
	*mount_point = e.mount_point;
	*fstype = e.fstype;
	return true;
}

static int entry_id_cmp(const void *a, const void *b)
{
	const mounts_entry *ea = *(const mounts_entry *const *)a;
	const mounts_entry *eb = *(const mounts_entry *const *)b;

	return ea->mnt_id < eb->mnt_id ? -1 : ea->mnt_id > eb->mnt_id;
}

void mounts_flag_covered(mounts_entry *entries, size_t n)
{
	/* By mount id, to find each parent without a quadratic scan: a host
	 * with many containers has thousands of mounts. */
	mounts_entry **by_id = malloc((n ? n : 1) * sizeof(*by_id));

	for (size_t i = 0; i < n; i++)
		entries[i].covered = false;
	if (!by_id)
		return;
	for (size_t i = 0; i < n; i++)
		by_id[i] = &entries[i];
	qsort(by_id, n, sizeof(*by_id), entry_id_cmp);
	for (size_t i = 0; i < n; i++) {
		mounts_entry key = { .mnt_id = entries[i].parent_id }, *kp = &key, **below;

		if (entries[i].parent_id == entries[i].mnt_id)
			continue;
		below = bsearch(&kp, by_id, n, sizeof(*by_id), entry_id_cmp);
		if (below && !strcmp((*below)->mount_point, entries[i].mount_point))
			(*below)->covered = true;
	}
	free(by_id);
}

static void watch_filesystem(mounts *m, uint64_t mnt_id, uint64_t dev, const char *path,
			     const char *fstype)
{
	const char *why;
	int r;

	if (mounts_skip_fstype(fstype, &why)) {
		if (!failed_before(m, dev, true))
			log_info("Not watching \"%s\" (%s): %s", path, fstype, why);
		return;
	}
	/* Both calls, so that both kinds of mark are flagged as seen. */
	bool fs_marked = have_mark(m, dev, true);
	bool mount_marked = have_mark(m, mnt_id, false);

	if (fs_marked || mount_marked)
		return;
	r = add_mark(m, path, dev, true);
	if (r == 0)
		return;
	/* Some filesystems cannot be marked as a whole: their mount can. */
	r = add_mark(m, path, mnt_id, false);
	if (r < 0 && !failed_before(m, dev, true))
		log_warning_errno(r, "Watching \"%s\" (%s) failed, skipping", path, fstype);
}

/* /proc/self/mountinfo into *RET_TEXT, its lines split into *RET_ENTRIES
 * (pointing into the text). */
static int read_mountinfo(char **ret_text, mounts_entry **ret_entries, size_t *ret_n)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	mounts_entry *entries = NULL;
	size_t cap = 0, n = 0, max = 0;
	char *text = NULL, *line, *save = NULL;
	int r;

	if (!f)
		return -errno;
	/* mountinfo holds no NUL: this reads it whole. */
	if (getdelim(&text, &cap, '\0', f) < 0) {
		r = ferror(f) ? -EIO : -ENODATA;
		free(text);
		fclose(f);
		return r;
	}
	fclose(f);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (n == max) {
			mounts_entry *more;

			max = max ? 2 * max : 64;
			more = realloc(entries, max * sizeof(*entries));
			if (!more) {
				free(entries);
				free(text);
				return -ENOMEM;
			}
			entries = more;
		}
		if (mounts_parse_entry(line, &entries[n]))
			n++;
	}
	*ret_text = text;
	*ret_entries = entries;
	*ret_n = n;
	return 0;
}

static void scan_mountinfo(mounts *m)
{
	mounts_entry *entries = NULL;
	char *text = NULL;
	size_t n = 0;
	int r;

	r = read_mountinfo(&text, &entries, &n);
	if (r < 0) {
		log_error_errno(r, "Reading /proc/self/mountinfo failed");
		return;
	}
	mounts_flag_covered(entries, n);
	for (size_t i = 0; i < m->n_marks; i++)
		m->marks[i].seen = false;
	for (size_t i = 0; i < n; i++) {
		const mounts_entry *e = &entries[i];

		/* A mark made before something was stacked on it stays in
		 * the kernel: keep it. */
		if (e->covered) {
			(void)have_mark(m, e->dev, true);
			(void)have_mark(m, e->mnt_id, false);
			continue;
		}
		watch_filesystem(m, e->mnt_id, e->dev, e->mount_point, e->fstype);
	}
	free(entries);
	free(text);
	prune_unseen(m);
}

/* One path may carry two marks (a mark made before a mount was stacked on
 * it, then the one on top): it is listed once. */
static void list_paths(mounts *m)
{
	m->n_paths = 0;
	for (size_t i = 0; i < m->n_marks; i++) {
		size_t j = 0;

		while (j < m->n_paths && strcmp(m->paths[j], m->marks[i].path))
			j++;
		if (j == m->n_paths)
			m->paths[m->n_paths++] = m->marks[i].path;
	}
}

size_t mounts_scan(mounts *m)
{
	if (m->watch)
		scan_watch_paths(m);
	else
		scan_mountinfo(m);
	list_paths(m);
	return m->n_marks;
}

size_t mounts_paths(const mounts *m, const char *const **ret)
{
	*ret = m->paths;
	return m->n_paths;
}
