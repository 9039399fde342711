/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who a peer is: the trust table of our executables, and the validation of
 * a peer process from what the kernel says about it.
 *
 * The identity of a peer is the file its process executes, read through
 * /proc/PID/exe. A pid alone can be reused by another process between the
 * kernel's answer and our look at /proc; a pidfd cannot: after reading
 * /proc/PID/exe we confirm that the pidfd's process is still alive and still
 * has that pid, so what we read belonged to it.
 *
 * Reading another process's /proc/PID/exe needs ptrace read access: we are
 * root, or the peer runs under our uid. A non-root process talking to a
 * root peer (santactl calling santad) cannot inspect it; it trusts it as
 * root, which could impersonate any of our executables anyway, and takes
 * the role the peer states. A non-root peer of another uid that we cannot
 * inspect is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipc-internal.h"
#include "santa-build.h"

struct trust_entry {
	char *path;
	bool is_dir;
	ipc_role role;           /* file entries */
};

struct ipc_trust {
	struct trust_entry *entries;
	size_t n;
};

static const char *const role_names[IPC_ROLE_MAX] = {
	[IPC_ROLE_NONE] = "none",
	[IPC_ROLE_SANTAD] = "santad",
	[IPC_ROLE_SANTACTL] = "santactl",
	[IPC_ROLE_SYNCSERVICE] = "santasyncservice",
	[IPC_ROLE_METRICSERVICE] = "santametricservice",
	[IPC_ROLE_BUNDLESERVICE] = "santabundleservice",
	[IPC_ROLE_GUI] = "santagui",
	[IPC_ROLE_TEST] = "test",
};

const char *ipc_role_name(ipc_role role)
{
	if (role < 0 || role >= IPC_ROLE_MAX)
		return "invalid";
	return role_names[role];
}

ipc_role ipc_role_from_name(const char *name)
{
	if (!name)
		return IPC_ROLE_NONE;
	for (int r = IPC_ROLE_NONE + 1; r < IPC_ROLE_MAX; r++)
		if (strcmp(name, role_names[r]) == 0)
			return r;
	return IPC_ROLE_NONE;
}

bool ipc_role_allowed(ipc_role role, uint32_t mask)
{
	if (role <= IPC_ROLE_NONE || role >= IPC_ROLE_MAX)
		return false;
	return mask == 0 || (mask & IPC_ROLE_BIT(role));
}

const char *ipc_strerror(int err)
{
	switch (err) {
	case IPC_OK: return "success";
	case IPC_E_DISCONNECTED: return "disconnected";
	case IPC_E_TIMEOUT: return "timed out";
	case IPC_E_NOT_PERMITTED: return "not permitted";
	case IPC_E_INVALID: return "invalid message";
	case IPC_E_PEER: return "peer error";
	case IPC_E_LIMIT: return "limit exceeded";
	default: break;
	}
	return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
}

int ipc_error_from_wire(uint32_t code)
{
	int err = -(int)code;

	switch (err) {
	case IPC_E_TIMEOUT:
	case IPC_E_NOT_PERMITTED:
	case IPC_E_INVALID:
	case IPC_E_LIMIT:
	case IPC_E_PEER:
		return err;
	default:
		return IPC_E_PEER;
	}
}

uint32_t ipc_error_to_wire(int err)
{
	return (uint32_t)-ipc_error_from_wire((uint32_t)-err);
}

const char *ipc_peer_describe(const ipc_peer *p, char *buf, size_t size)
{
	if (!p) {
		snprintf(buf, size, "unknown peer");
		return buf;
	}
	snprintf(buf, size, "conn %llu (uid %u, pid %d, %s)", (unsigned long long)p->conn_id,
		 (unsigned)p->uid, (int)p->pid, p->exe[0] ? p->exe : "executable unknown");
	return buf;
}

uint64_t ipc_next_conn_id(void)
{
	static _Atomic uint64_t next = 1;

	return next++;
}

int ipc_random(void *buf, size_t n)
{
	ssize_t r = getrandom(buf, n, 0);

	if (r < 0)
		return -errno;
	return (size_t)r == n ? 0 : -EIO;
}

/* --- The trust table --- */

int ipc_trust_new(ipc_trust **ret)
{
	*ret = calloc(1, sizeof(ipc_trust));
	return *ret ? 0 : -ENOMEM;
}

ipc_trust *ipc_trust_free(ipc_trust *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		free(t->entries[i].path);
	free(t->entries);
	free(t);
	return NULL;
}

static int trust_add(ipc_trust *t, const char *path, bool is_dir, ipc_role role)
{
	struct trust_entry *e;
	size_t len;

	if (!path || path[0] != '/')
		return -EINVAL;
	e = realloc(t->entries, (t->n + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	t->entries = e;
	e = &t->entries[t->n];
	e->path = strdup(path);
	if (!e->path)
		return -ENOMEM;
	/* Directory entries are kept without their trailing slashes. */
	len = strlen(e->path);
	while (is_dir && len > 1 && e->path[len - 1] == '/')
		e->path[--len] = '\0';
	e->is_dir = is_dir;
	e->role = role;
	t->n++;
	return 0;
}

int ipc_trust_add_file(ipc_trust *t, const char *path, ipc_role role)
{
	if (role <= IPC_ROLE_NONE || role >= IPC_ROLE_MAX)
		return -EINVAL;
	return trust_add(t, path, false, role);
}

int ipc_trust_add_dir(ipc_trust *t, const char *dir)
{
	return trust_add(t, dir, true, IPC_ROLE_NONE);
}

int ipc_trust_add_defaults(ipc_trust *t, char *const *trusted_executables)
{
	const char *dirs[] = { SANTA_SBINDIR, SANTA_BINDIR, SANTA_LIBEXECDIR };
	int r;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		r = ipc_trust_add_dir(t, dirs[i]);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; trusted_executables && trusted_executables[i]; i++) {
		const char *p = trusted_executables[i];
		size_t len = strlen(p);
		const char *base;

		if (len > 0 && p[len - 1] == '/') {
			r = ipc_trust_add_dir(t, p);
		} else {
			base = strrchr(p, '/');
			r = ipc_trust_add_file(t, p, ipc_role_from_name(base ? base + 1 : p));
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * A trusted file must be root's and unwritable by others, and so must every
 * directory above it: otherwise someone else could put another file there
 * (a hard link to an interpreter would do). A root-owned directory that
 * others may write is still safe when it is sticky (/tmp): there, only
 * root may rename or remove the root-owned entry below it, which the walk
 * has already checked.
 */
int ipc_path_is_root_held(const char *path, char *why, size_t whysz)
{
	char real[PATH_MAX];
	struct stat st;
	bool leaf = true;
	char *slash;

	if (!realpath(path, real)) {
		snprintf(why, whysz, "resolving trusted path '%s': %s", path, strerror(errno));
		return IPC_E_NOT_PERMITTED;
	}
	for (;;) {
		bool sticky_dir;

		if (stat(real[0] ? real : "/", &st) < 0) {
			snprintf(why, whysz, "checking '%s': %s", real, strerror(errno));
			return IPC_E_NOT_PERMITTED;
		}
		sticky_dir = !leaf && S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
		if (st.st_uid != 0 || (!sticky_dir && (st.st_mode & (S_IWGRP | S_IWOTH)))) {
			snprintf(why, whysz, "'%s' is not owned by root or is writable by others",
				 real[0] ? real : "/");
			return IPC_E_NOT_PERMITTED;
		}
		leaf = false;
		slash = strrchr(real, '/');
		if (!slash || !real[0])
			return 0;
		*slash = '\0';
	}
}

/* Find the role of the executable with identity ST, whose path is EXE. */
static ipc_role trust_match(const ipc_trust *t, const struct stat *st, const char *exe,
			    const char **ret_path, char *cand, size_t candsz)
{
	const char *base = strrchr(exe, '/');
	struct stat est;

	base = base ? base + 1 : exe;
	for (size_t i = 0; i < t->n; i++) {
		const struct trust_entry *e = &t->entries[i];
		ipc_role role = e->role;

		if (e->is_dir) {
			role = ipc_role_from_name(base);
			if (role == IPC_ROLE_NONE)
				continue;
			snprintf(cand, candsz, "%s/%s", e->path, base);
		} else {
			snprintf(cand, candsz, "%s", e->path);
		}
		if (stat(cand, &est) < 0 || est.st_dev != st->st_dev || est.st_ino != st->st_ino)
			continue;
		*ret_path = cand;
		return role;
	}
	return IPC_ROLE_NONE;
}

static int exe_lookup(const ipc_trust *t, const struct stat *st, const char *exe,
		      ipc_role *ret_role, char *why, size_t whysz)
{
	char cand[PATH_MAX + 64];
	const char *path = NULL;
	ipc_role role;

	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whysz, "executable is not a regular file");
		return IPC_E_NOT_PERMITTED;
	}
	role = trust_match(t, st, exe, &path, cand, sizeof(cand));
	if (role == IPC_ROLE_NONE) {
		snprintf(why, whysz, "executable '%s' is not one of ours", exe);
		return IPC_E_NOT_PERMITTED;
	}
	if (ipc_path_is_root_held(path, why, whysz) < 0)
		return IPC_E_NOT_PERMITTED;
	*ret_role = role;
	return 0;
}

ipc_role ipc_trust_self_role(const ipc_trust *t)
{
	char exe[PATH_MAX], why[256];
	struct stat st;
	ipc_role role;
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0 || stat("/proc/self/exe", &st) < 0)
		return IPC_ROLE_NONE;
	exe[n] = '\0';
	if (exe_lookup(t, &st, exe, &role, why, sizeof(why)) < 0)
		return IPC_ROLE_NONE;
	return role;
}

/* --- Validating a peer process --- */

static int pidfd_pid(int pidfd, pid_t *ret)
{
	char path[64], line[128];
	FILE *f;
	int r = -ESRCH;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		int pid;

		if (sscanf(line, "Pid:\t%d", &pid) == 1) {
			*ret = pid;
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

/* Is the process of PIDFD alive and still known by PID? A signal 0 is
 * refused with EPERM for a live process of another uid; only ESRCH means
 * it is gone. */
static bool pidfd_is_alive_as(int pidfd, pid_t pid)
{
	pid_t now = -1;

	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 && errno != EPERM)
		return false;
	return pidfd_pid(pidfd, &now) == 0 && now == pid;
}

static int read_exe(pid_t pid, struct stat *st, char *exe, size_t exesz)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, exesz - 1);
	if (n < 0)
		return -errno;
	exe[n] = '\0';
	if (stat(path, st) < 0)
		return -errno;
	return 0;
}

int ipc_peer_validate(const ipc_trust *t, pid_t pid, int pidfd, uid_t uid, gid_t gid,
		      ipc_peer *peer, char *why, size_t whysz)
{
	char exe[PATH_MAX];
	struct stat st;
	int own = -1, r;

	*peer = (ipc_peer){ .pid = pid, .uid = uid, .gid = gid, .conn_id = peer->conn_id };
	if (pid <= 0) {
		snprintf(why, whysz, "peer has no pid in this namespace");
		return IPC_E_NOT_PERMITTED;
	}
	if (pidfd < 0) {
		own = (int)syscall(SYS_pidfd_open, pid, 0);
		if (own < 0) {
			snprintf(why, whysz, "opening pidfd of pid %d: %s", (int)pid,
				 strerror(errno));
			return IPC_E_NOT_PERMITTED;
		}
		pidfd = own;
	}
	r = read_exe(pid, &st, exe, sizeof(exe));
	if (r == -EACCES || r == -EPERM) {
		snprintf(why, whysz, "may not inspect the executable of pid %d (uid %u)", (int)pid,
			 (unsigned)uid);
		r = pidfd_is_alive_as(pidfd, pid) ? -EACCES : IPC_E_NOT_PERMITTED;
		goto out;
	}
	if (r < 0) {
		snprintf(why, whysz, "reading the executable of pid %d: %s", (int)pid,
			 strerror(-r));
		r = IPC_E_NOT_PERMITTED;
		goto out;
	}
	if (!pidfd_is_alive_as(pidfd, pid)) {
		snprintf(why, whysz, "pid %d exited while being validated", (int)pid);
		r = IPC_E_NOT_PERMITTED;
		goto out;
	}
	/* Long paths are cut: this copy is for log lines only. */
	snprintf(peer->exe, sizeof(peer->exe), "%.255s", exe);
	r = exe_lookup(t, &st, exe, &peer->role, why, whysz);
	if (r == 0) {
		peer->exe_dev = st.st_dev;
		peer->exe_ino = st.st_ino;
	}
out:
	if (own >= 0)
		close(own);
	return r;
}

int ipc_peer_accept_uninspectable(ipc_peer *peer, const char *claimed_role,
				  uint32_t claimable, char *why, size_t whysz)
{
	ipc_role role = ipc_role_from_name(claimed_role);

	if (peer->uid == 0)
		claimable = IPC_ALL_ROLES;
	if (role == IPC_ROLE_NONE || !(claimable & IPC_ROLE_BIT(role))) {
		/* WHY already says we could not look at it. */
		return IPC_E_NOT_PERMITTED;
	}
	peer->role = role;
	snprintf(peer->exe, sizeof(peer->exe), "%s by its word, not inspectable",
		 ipc_role_name(role));
	return 0;
}

bool ipc_socket_root_held(const char *path)
{
	char dir[PATH_MAX], why[256];
	struct stat st;
	char *slash;

	if (!path || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != 0)
		return false;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return false;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return ipc_path_is_root_held(dir, why, sizeof(why)) == 0;
}

int ipc_peer_from_socket(int fd, struct ucred *ret_cred, int *ret_pidfd)
{
	socklen_t len = sizeof(*ret_cred);
	int pidfd;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ret_cred, &len) < 0)
		return -errno;
	len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) {
		if (errno != ENOPROTOOPT)
			return -errno;
		/* Before Linux 6.5: see ipc_peer_validate on the narrower
		 * guarantee of opening the pidfd ourselves. */
		pidfd = -1;
	}
	*ret_pidfd = pidfd;
	return 0;
}
