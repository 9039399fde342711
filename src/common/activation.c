/* SPDX-License-Identifier: Apache-2.0 */
#include "activation.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Passed descriptors start here, after stdin, stdout and stderr. */
#define ACTIVATION_FD_START 3
/* More than any launcher of ours passes; bounds what a bogus environment
 * can make us touch. */
#define ACTIVATION_MAX_FDS 64

static int activation_parse_uint(const char *s, unsigned long max,
				 unsigned long *ret)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Whether the I-th colon-separated name of NAMES is NAME. */
static bool activation_name_is(const char *names, unsigned long i,
			       const char *name)
{
	const char *p = names, *colon;
	size_t len = strlen(name);

	for (; i > 0; i--) {
		p = strchr(p, ':');
		if (!p)
			return false;
		p++;
	}
	colon = strchr(p, ':');
	if ((colon ? (size_t)(colon - p) : strlen(p)) != len)
		return false;
	return memcmp(p, name, len) == 0;
}

static int activation_check_socket(int fd)
{
	int v;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0)
		return errno == EBADF ? -EINVAL : -errno;
	if (v != AF_UNIX)
		return -EAFNOSUPPORT;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
		return -errno;
	if (v != SOCK_SEQPACKET)
		return -EPROTOTYPE;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0)
		return -errno;
	if (!v)
		return -EDESTADDRREQ;
	return 0;
}

/* Read the LISTEN_* variables: *RET_N descriptors are ours, *RET_NAMES is
 * a copy of LISTEN_FDNAMES or NULL. The variables are removed either way:
 * they describe this exec only. */
static int activation_take_env(unsigned long *ret_n, char **ret_names)
{
	const char *pid_s = getenv("LISTEN_PID");
	const char *fds_s = getenv("LISTEN_FDS");
	const char *names_s = getenv("LISTEN_FDNAMES");
	unsigned long pid, n;
	int r = 0;

	*ret_names = NULL;
	if (!pid_s || !fds_s) {
		r = -ENOENT;
		goto out;
	}
	if (activation_parse_uint(pid_s, INT_MAX, &pid) < 0 ||
	    activation_parse_uint(fds_s, ACTIVATION_MAX_FDS, &n) < 0) {
		r = -EINVAL;
		goto out;
	}
	/* Variables inherited from an ancestor that was activated itself. */
	if ((pid_t)pid != getpid() || n == 0) {
		r = -ENOENT;
		goto out;
	}
	if (names_s) {
		*ret_names = strdup(names_s);
		if (!*ret_names) {
			r = -ENOMEM;
			goto out;
		}
	}
	*ret_n = n;
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return r;
}

static int activation_select(unsigned long n, const char *names,
			     const char *name, unsigned long *ret_i)
{
	if (!name) {
		if (n != 1)
			return -EINVAL;
		*ret_i = 0;
		return 0;
	}
	if (!names)
		return -ENOENT;
	for (unsigned long i = 0; i < n; i++) {
		if (activation_name_is(names, i, name)) {
			*ret_i = i;
			return 0;
		}
	}
	return -ENOENT;
}

int santa_listen_fd(const char *name)
{
	unsigned long n = 0, sel = 0;
	char *names = NULL;
	int fd, r;

	r = activation_take_env(&n, &names);
	if (r < 0)
		return r;

	/* None of the passed descriptors may leak into what we exec. */
	for (unsigned long i = 0; i < n; i++)
		(void)fcntl(ACTIVATION_FD_START + (int)i, F_SETFD, FD_CLOEXEC);

	r = activation_select(n, names, name, &sel);
	free(names);
	if (r < 0)
		return r;

	fd = ACTIVATION_FD_START + (int)sel;
	r = activation_check_socket(fd);
	if (r < 0)
		return r;
	/* Launchers pass the socket blocking (systemd's NonBlocking=no). An
	 * event loop accepts until EAGAIN, and on a blocking socket the accept
	 * after the last pending connection would stall the service for good. */
	r = fcntl(fd, F_GETFL);
	if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
		return -errno;

	for (unsigned long i = 0; i < n; i++)
		if (i != sel)
			(void)close(ACTIVATION_FD_START + (int)i);
	return fd;
}
