/* SPDX-License-Identifier: Apache-2.0 */
#include "dpkg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dpkg_owner_done(dpkg_owner *o)
{
	if (!o)
		return;
	free(o->package);
	free(o->list_path);
	free(o->listed_path);
	memset(o, 0, sizeof(*o));
}

void dpkg_paths_free(char **paths)
{
	if (!paths)
		return;
	for (char **p = paths; *p; p++)
		free(*p);
	free(paths);
}

/* The whole of PATH, NUL-terminated, at most DPKG_MAX_FILE bytes. */
static int dpkg_read_file(int dirfd, const char *path, char **ret_buf, size_t *ret_len)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	int fd, r;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto fail_fd;
	}
	if ((uint64_t)st.st_size > DPKG_MAX_FILE) {
		r = -EFBIG;
		goto fail_fd;
	}

	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto fail_fd;
	}
	/* The size may change while dpkg runs: read what is there, up to the
	 * size seen, and no more. */
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			free(buf);
			goto fail_fd;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	*ret_buf = buf;
	*ret_len = len;
	return 0;

fail_fd:
	close(fd);
	return r;
}

/* Next line of BUF at *POS (NUL-terminated in place), or NULL at the end. */
static char *dpkg_next_line(char *buf, size_t len, size_t *pos)
{
	char *line, *nl;

	if (*pos >= len)
		return NULL;
	line = buf + *pos;
	nl = memchr(line, '\n', len - *pos);
	if (nl) {
		*nl = '\0';
		*pos = (size_t)(nl - buf) + 1;
	} else {
		*pos = len;
	}
	return line;
}

/* ROOT + PATH in BUF; false when too long. ROOT "/" or NULL adds nothing. */
static bool dpkg_rooted(const char *root, const char *path, char *buf, size_t size)
{
	size_t rl = root ? strlen(root) : 0;

	while (rl && root[rl - 1] == '/')
		rl--;
	return (size_t)snprintf(buf, size, "%.*s%s", (int)rl, rl ? root : "", path) < size;
}

static bool dpkg_line_is_file(const char *line, const char *root, const char *basename,
			      const struct stat *st)
{
	size_t ll = strlen(line), bl = strlen(basename);
	char path[PATH_MAX];
	struct stat lst;

	if (ll <= bl || line[ll - bl - 1] != '/' || strcmp(line + ll - bl, basename) != 0)
		return false;
	if (!dpkg_rooted(root, line, path, sizeof(path)) || lstat(path, &lst) < 0)
		return false;
	return S_ISREG(lst.st_mode) && lst.st_dev == st->st_dev && lst.st_ino == st->st_ino;
}

/* Search the file list NAME (in INFO_FD) for the file; 1 when found, with
 * *RET_LISTED set, 0 when not, -errno on failure. */
static int dpkg_search_list(int info_fd, const char *name, const char *root,
			    const char *basename, const struct stat *st, char **ret_listed)
{
	size_t len, pos = 0;
	char *buf, *line;
	int r;

	r = dpkg_read_file(info_fd, name, &buf, &len);
	if (r < 0)
		return r;
	r = 0;
	while ((line = dpkg_next_line(buf, len, &pos))) {
		if (!dpkg_line_is_file(line, root, basename, st))
			continue;
		*ret_listed = strdup(line);
		r = *ret_listed ? 1 : -ENOMEM;
		break;
	}
	free(buf);
	return r;
}

static int dpkg_is_list(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return n > 5 && de->d_name[0] != '.' && strcmp(de->d_name + n - 5, ".list") == 0;
}

static int dpkg_fill_owner(const char *admindir, const char *list_name, char *listed,
			   dpkg_owner *ret)
{
	size_t n = strlen(list_name) - 5;

	ret->listed_path = listed;
	ret->package = strndup(list_name, n);
	if (!ret->package || asprintf(&ret->list_path, "%s/info/%s", admindir, list_name) < 0) {
		ret->list_path = NULL;
		dpkg_owner_done(ret);
		return -ENOMEM;
	}
	return 0;
}

int dpkg_find_owner(const char *admindir, const char *root, const char *basename,
		    const struct stat *st, dpkg_owner *ret)
{
	struct dirent **lists = NULL;
	char *info = NULL, *listed = NULL;
	int n, info_fd, r = -ENOENT;

	memset(ret, 0, sizeof(*ret));
	if (!basename[0] || strchr(basename, '/'))
		return -EINVAL;
	if (asprintf(&info, "%s/info", admindir ? admindir : DPKG_ADMINDIR) < 0)
		return -ENOMEM;
	info_fd = open(info, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n = info_fd < 0 ? -1 : scandirat(info_fd, ".", &lists, dpkg_is_list, alphasort);
	if (n < 0) {
		r = -errno;
		goto out;
	}

	for (int i = 0; i < n && r == -ENOENT; i++) {
		int found = dpkg_search_list(info_fd, lists[i]->d_name, root, basename, st,
					     &listed);

		/* An unreadable list (being rewritten by dpkg) is skipped:
		 * another may still own the file. */
		if (found == 1)
			r = dpkg_fill_owner(admindir ? admindir : DPKG_ADMINDIR,
					    lists[i]->d_name, listed, ret);
		else if (found == -ENOMEM)
			r = -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		free(lists[i]);
	free(lists);
out:
	if (info_fd >= 0)
		close(info_fd);
	free(info);
	return r;
}

int dpkg_list_paths(const char *list_path, const char *root, size_t max_paths,
		    char ***ret_paths, size_t *ret_n)
{
	char **paths = NULL, *buf, *line, rooted[PATH_MAX];
	size_t len, pos = 0, n = 0, cap = 0;
	int r;

	r = dpkg_read_file(AT_FDCWD, list_path, &buf, &len);
	if (r < 0)
		return r;
	while ((line = dpkg_next_line(buf, len, &pos))) {
		if (line[0] != '/' || !dpkg_rooted(root, line, rooted, sizeof(rooted)))
			continue;
		if (n == max_paths) {
			r = -E2BIG;
			goto fail;
		}
		if (n + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **np = reallocarray(paths, ncap, sizeof(*np));

			if (!np)
				goto nomem;
			paths = np;
			cap = ncap;
		}
		paths[n] = strdup(rooted);
		if (!paths[n])
			goto nomem;
		paths[++n] = NULL;
	}
	if (!paths && !(paths = calloc(1, sizeof(*paths))))
		goto nomem;
	free(buf);
	*ret_paths = paths;
	*ret_n = n;
	return 0;

nomem:
	r = -ENOMEM;
fail:
	if (paths)
		paths[n] = NULL;
	dpkg_paths_free(paths);
	free(buf);
	return r;
}

const char *dpkg_package_name(const char *package, char *buf, size_t size)
{
	size_t n = strcspn(package, ":");

	if (n >= size)
		n = size - 1;
	memcpy(buf, package, n);
	buf[n] = '\0';
	return buf;
}

/* The value of FIELD ("Version") in the stanza STANZA, or NULL. */
static const char *dpkg_field(char *const *fields, size_t n, const char *field)
{
	size_t fl = strlen(field);

	for (size_t i = 0; i < n; i++)
		if (strncmp(fields[i], field, fl) == 0 && fields[i][fl] == ':')
			return fields[i] + fl + 1 + strspn(fields[i] + fl + 1, " \t");
	return NULL;
}

static bool dpkg_stanza_matches(char *const *fields, size_t n, const char *name,
				const char *arch)
{
	const char *pkg = dpkg_field(fields, n, "Package");
	const char *status = dpkg_field(fields, n, "Status");
	const char *a = dpkg_field(fields, n, "Architecture");

	if (!pkg || strcmp(pkg, name) != 0)
		return false;
	if (!status || !strstr(status, "installed") || strstr(status, "not-installed"))
		return false;
	return !arch || (a && strcmp(a, arch) == 0);
}

#define DPKG_MAX_FIELDS 64

int dpkg_package_version(const char *admindir, const char *package, char **ret_version)
{
	char name[256], *buf, *line, *path = NULL, *fields[DPKG_MAX_FIELDS];
	const char *arch = strchr(package, ':');
	size_t len, pos = 0, nf = 0;
	int r;

	dpkg_package_name(package, name, sizeof(name));
	if (arch)
		arch++;
	if (asprintf(&path, "%s/status", admindir ? admindir : DPKG_ADMINDIR) < 0)
		return -ENOMEM;
	r = dpkg_read_file(AT_FDCWD, path, &buf, &len);
	free(path);
	if (r < 0)
		return r;

	r = -ENOENT;
	for (;;) {
		line = dpkg_next_line(buf, len, &pos);
		/* A stanza ends at a blank line or at the end of the file. */
		if (!line || !line[0]) {
			if (nf && dpkg_stanza_matches(fields, nf, name, arch)) {
				const char *v = dpkg_field(fields, nf, "Version");

				*ret_version = strdup(v ? v : "");
				r = *ret_version ? 0 : -ENOMEM;
				break;
			}
			nf = 0;
			if (!line)
				break;
			continue;
		}
		/* Continuation lines (Description, Conffiles) start with
		 * blanks and are of no interest. */
		if (line[0] != ' ' && line[0] != '\t' && nf < DPKG_MAX_FIELDS)
			fields[nf++] = line;
	}
	free(buf);
	return r;
}
