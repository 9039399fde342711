/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for a service, for the launcher's tests: copied under a
 * service's name, it takes its socket as every real service does
 * (santa_listen_fd) and answers each connection with what it was given,
 * one line "key=value" per fact, so that the test can check the launcher
 * from the outside. The client may then send one command:
 *   "exit N"       exit with status N;
 *   "ignore-term"  ignore SIGTERM from now on (to test the SIGKILL path).
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "activation.h"

extern char **environ;

static size_t stub_put_fds(char *buf, size_t size)
{
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");

	if (!d)
		return 0;
	n += snprintf(buf + n, size - n, "fds=");
	while ((de = readdir(d)) && n < size) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		n += snprintf(buf + n, size - n, "%s,", de->d_name);
	}
	closedir(d);
	if (n < size)
		n += snprintf(buf + n, size - n, "\n");
	return n < size ? n : size;
}

static size_t stub_report(char *buf, size_t size, char **argv)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int pdeath = 0;
	size_t n;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	prctl(PR_GET_PDEATHSIG, &pdeath);
	n = snprintf(buf, size,
		     "pid=%d\nppid=%d\nsid=%d\nuid=%d,%d,%d\ngid=%d,%d,%d\ngroups=%d\n"
		     "nnp=%d\npdeathsig=%d\n",
		     (int)getpid(), (int)getppid(), (int)getsid(0), (int)ru, (int)eu,
		     (int)su, (int)rg, (int)eg, (int)sg, getgroups(0, NULL),
		     prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), pdeath);
	for (int i = 0; argv[i] && n < size; i++)
		n += snprintf(buf + n, size - n, "arg=%s\n", argv[i]);
	for (int i = 0; environ[i] && n < size; i++)
		n += snprintf(buf + n, size - n, "env=%s\n", environ[i]);
	if (n < size)
		n += stub_put_fds(buf + n, size - n);
	return n < size ? n : size;
}

static void stub_command(int c)
{
	struct timeval tv = { .tv_sec = 2 };
	char cmd[64];
	ssize_t n;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(c, cmd, sizeof(cmd) - 1, 0);
	if (n <= 0)
		return;
	cmd[n] = '\0';
	if (strncmp(cmd, "exit ", 5) == 0)
		exit(atoi(cmd + 5));
	if (strcmp(cmd, "ignore-term") == 0) {
		signal(SIGTERM, SIG_IGN);
		send(c, "ok", 2, 0);
	}
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	char report[8192];
	int fd;

	/* What the launcher handed over, before santa_listen_fd clears it. */
	size_t len = stub_report(report, sizeof(report), argv);

	fd = santa_listen_fd(name);
	if (fd < 0) {
		fprintf(stderr, "%s: no socket passed: %s\n", name, strerror(-fd));
		return 3;
	}
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			/* santa_listen_fd hands the socket over non-blocking. */
			if (errno == EAGAIN && poll(&p, 1, -1) >= 0)
				continue;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return 4;
		}
		send(c, report, len, 0);
		stub_command(c);
		close(c);
	}
}
