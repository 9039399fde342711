/* SPDX-License-Identifier: Apache-2.0 */
#include "procinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <utmpx.h>

#define NAME_CACHE_SIZE 64
#define NAME_CACHE_TTL 60

/* PIDFD_GET_INFO (Linux 6.13), absent from older headers. The first
 * version of the structure (64 bytes), which every kernel since accepts. */
struct santa_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid;
	uint32_t ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	uint32_t spare0;
};
#define SANTA_PIDFD_GET_INFO _IOWR(0xFF, 11, struct santa_pidfd_info)
#define SANTA_PIDFD_INFO_PID (1ULL << 0)
#define SANTA_PIDFD_INFO_CREDS (1ULL << 1)

/* 0: unknown yet; 1: PIDFD_GET_INFO works; -1: this kernel has none. */
static _Atomic int pidfd_info_works;

/* Read a small /proc file into BUF (NUL-terminated). */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

/* Fields after the command name in /proc/PID/stat, which may itself hold
 * spaces and parentheses: the last ')' ends it. */
static int parse_stat(const char *buf, proc_info *info)
{
	const char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	size_t len;
	int tty;
	char state;

	if (!open || !close || close < open)
		return -EINVAL;
	len = (size_t)(close - open - 1);
	if (len >= sizeof(info->comm))
		len = sizeof(info->comm) - 1;
	memcpy(info->comm, open + 1, len);
	info->comm[len] = '\0';
	if (sscanf(close + 1, " %c %d %*d %*d %d", &state, &info->ppid, &tty) != 3)
		return -EINVAL;
	info->tty_nr = (uint32_t)tty;
	return 0;
}

/* status escapes the name it starts with, so a line cannot be forged. */
static void parse_ids(const char *buf, proc_info *info)
{
	const char *u = strstr(buf, "\nUid:"), *g = strstr(buf, "\nGid:");
	const char *pp = strstr(buf, "\nPPid:");

	if (u)
		info->uid = strtol(u + 5, NULL, 10);
	if (g)
		info->gid = strtol(g + 5, NULL, 10);
	if (pp)
		info->ppid = (pid_t)strtol(pp + 6, NULL, 10);
}

static void read_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	n = read_small(path, buf, size);
	if (n <= 0) {
		buf[0] = '\0';
		return;
	}
	if (buf[n - 1] == '\n')
		buf[n - 1] = '\0';
}

/* PID's ids and parent from a pidfd: 0, -ESRCH when it is gone (reaped),
 * -ENOTTY when the kernel cannot tell them that way. */
static int pidfd_ids(pid_t pid, proc_info *info)
{
	struct santa_pidfd_info pi = { .mask = SANTA_PIDFD_INFO_PID | SANTA_PIDFD_INFO_CREDS };
	int fd, r = 0;

	if (atomic_load(&pidfd_info_works) < 0)
		return -ENOTTY;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH ? -ESRCH : -ENOTTY;
	if (ioctl(fd, SANTA_PIDFD_GET_INFO, &pi) < 0)
		r = -errno;
	close(fd);
	if (r == -ENOTTY || r == -EINVAL) {
		atomic_store(&pidfd_info_works, -1);
		return -ENOTTY;
	}
	if (r < 0)
		return -ESRCH;
	atomic_store(&pidfd_info_works, 1);
	if (pi.mask & SANTA_PIDFD_INFO_CREDS) {
		info->uid = pi.ruid;
		info->gid = pi.rgid;
	}
	info->ppid = (pid_t)pi.ppid;
	return 0;
}

int procinfo_read_ids(pid_t pid, proc_info *info, bool parent)
{
	char path[64], buf[4096];
	int r;

	memset(info, 0, sizeof(*info));
	info->uid = info->gid = -1;
	/* A pidfd first: no /proc lookup, no text to format, and above all
	 * no reference to the process's memory map. /proc/PID/status takes
	 * one (for its memory figures); when the process exits during the
	 * read, its address space, and with it the write lock the kernel
	 * holds on its executable, lives on until the read ends: a writer
	 * that rewrites the program right after waiting for it then gets
	 * ETXTBSY. status is the fallback for kernels before 6.13. */
	r = pidfd_ids(pid, info);
	if (r == -ESRCH)
		return r;
	if (r < 0) {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		if (read_small(path, buf, sizeof(buf)) < 0)
			return -ESRCH;
		parse_ids(buf, info);
	}
	if (!parent)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	r = parse_stat(buf, info);
	if (r < 0)
		return r;
	if (info->ppid > 0)
		read_comm(info->ppid, info->parent_comm, sizeof(info->parent_comm));
	return 0;
}

void procinfo_names(proc_info *info)
{
	procinfo_user_name(info->uid, info->user, sizeof(info->user));
	procinfo_group_name(info->gid, info->group, sizeof(info->group));
}

int procinfo_read(pid_t pid, proc_info *info)
{
	int r = procinfo_read_ids(pid, info, true);

	procinfo_names(info);
	return r;
}

int procinfo_args(pid_t pid, size_t max, char **ret)
{
	char path[64];
	char *buf;
	ssize_t n;
	int fd;

	*ret = NULL;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, max);
	close(fd);
	if (n <= 0) {
		free(buf);
		return n < 0 ? -errno : 0;
	}
	/* Arguments are NUL-separated; the last may or may not end in one. */
	if (buf[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	*ret = buf;
	return 0;
}

/* /proc/self/fd, opened once: every exec's line needs a path read
 * from a descriptor, and a relative readlinkat spares the walk of
 * /proc/self/fd each time. -1 until opened (or when it cannot be). */
static _Atomic int self_fd_dir = -1;

char *procinfo_fd_path(int fd)
{
	char name[16], buf[PATH_MAX];
	int dir = atomic_load(&self_fd_dir);
	ssize_t n;

	if (dir < 0) {
		int expected = -1;

		dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dir >= 0 && !atomic_compare_exchange_strong(&self_fd_dir, &expected, dir)) {
			close(dir);
			dir = expected;
		}
	}
	snprintf(name, sizeof(name), "%d", fd);
	if (dir >= 0) {
		n = readlinkat(dir, name, buf, sizeof(buf) - 1);
	} else {
		char link[64];

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, buf, sizeof(buf) - 1);
	}
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

int procinfo_exe_is(pid_t pid, uint64_t dev, uint64_t ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st) < 0)
		return -errno;
	return (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

/* --- uid/gid names --- */

struct name_slot {
	long id;
	time_t when;
	char name[64];
};

static pthread_mutex_t name_lock = PTHREAD_MUTEX_INITIALIZER;
static struct name_slot user_cache[NAME_CACHE_SIZE], group_cache[NAME_CACHE_SIZE];

static bool cache_get(struct name_slot *c, long id, char *buf, size_t size, time_t now)
{
	struct name_slot *s = &c[(unsigned long)id % NAME_CACHE_SIZE];
	bool hit;

	pthread_mutex_lock(&name_lock);
	hit = s->when && s->id == id && now - s->when < NAME_CACHE_TTL;
	if (hit)
		snprintf(buf, size, "%s", s->name);
	pthread_mutex_unlock(&name_lock);
	return hit;
}

static void cache_put(struct name_slot *c, long id, const char *name, time_t now)
{
	struct name_slot *s = &c[(unsigned long)id % NAME_CACHE_SIZE];

	pthread_mutex_lock(&name_lock);
	s->id = id;
	s->when = now;
	snprintf(s->name, sizeof(s->name), "%s", name);
	pthread_mutex_unlock(&name_lock);
}

void procinfo_user_name(long uid, char *buf, size_t size)
{
	time_t now = time(NULL);
	struct passwd pw, *res = NULL;
	char tmp[1024];

	buf[0] = '\0';
	if (uid < 0 || cache_get(user_cache, uid, buf, size, now))
		return;
	if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, size, "%s", res->pw_name);
	cache_put(user_cache, uid, buf, now);
}

void procinfo_group_name(long gid, char *buf, size_t size)
{
	time_t now = time(NULL);
	struct group gr, *res = NULL;
	char tmp[4096];

	buf[0] = '\0';
	if (gid < 0 || cache_get(group_cache, gid, buf, size, now))
		return;
	if (getgrgid_r((gid_t)gid, &gr, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, size, "%s", res->gr_name);
	cache_put(group_cache, gid, buf, now);
}

/* --- sessions --- */

void procinfo_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static bool strv_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

static int strv_push(char **v, size_t *n, const char *s)
{
	if (*n >= 64 || strv_has(v, *n, s))
		return 0;
	v[*n] = strdup(s);
	if (!v[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

int procinfo_sessions(char ***ret_users, char ***ret_sessions)
{
	char **users = calloc(65, sizeof(char *)), **sessions = calloc(65, sizeof(char *));
	size_t nu = 0, ns = 0;
	struct utmpx *u;
	int r = 0;

	*ret_users = *ret_sessions = NULL;
	if (!users || !sessions) {
		free(users);
		free(sessions);
		return -ENOMEM;
	}
	/* utmpx's iteration is not thread-safe; only the recorder calls it. */
	setutxent();
	while (r == 0 && (u = getutxent())) {
		char user[sizeof(u->ut_user) + 1];
		char sess[sizeof(u->ut_user) + sizeof(u->ut_line) + 2];

		if (u->ut_type != USER_PROCESS)
			continue;
		snprintf(user, sizeof(user), "%.*s", (int)sizeof(u->ut_user), u->ut_user);
		snprintf(sess, sizeof(sess), "%s@%.*s", user, (int)sizeof(u->ut_line), u->ut_line);
		r = strv_push(users, &nu, user);
		if (r == 0)
			r = strv_push(sessions, &ns, sess);
	}
	endutxent();
	if (r < 0) {
		procinfo_strv_free(users);
		procinfo_strv_free(sessions);
		return r;
	}
	*ret_users = users;
	*ret_sessions = sessions;
	return 0;
}
