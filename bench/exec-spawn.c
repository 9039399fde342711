/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec-spawn: time posix_spawn + waitpid of programs, for bench/exec.py.
 *
 *   exec-spawn N PATH        run PATH N times
 *   exec-spawn - PATH...     run each PATH once, in order
 *
 * Prints the mean microseconds per exec. Exits non-zero if a program could
 * not be spawned or did not exit 0 (with ENOEXEC_OK set, a spawn refused
 * with ENOEXEC counts as done: the bench's large non-programs).
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int run_one(const char *path, int enoexec_ok)
{
	char *argv[] = { (char *)path, NULL };
	pid_t pid;
	int st, r;

	r = posix_spawn(&pid, path, NULL, NULL, argv, environ);
	if (r == ENOEXEC && enoexec_ok)
		return 0;
	if (r != 0) {
		fprintf(stderr, "exec-spawn: %s: %s\n", path, strerror(r));
		return -1;
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && enoexec_ok)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	int enoexec_ok = getenv("ENOEXEC_OK") != NULL;
	struct timespec a, b;
	long n;

	if (argc < 3) {
		fprintf(stderr, "usage: exec-spawn N PATH | exec-spawn - PATH...\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (strcmp(argv[1], "-") == 0) {
		n = argc - 2;
		for (int i = 2; i < argc; i++)
			if (run_one(argv[i], enoexec_ok) < 0)
				return 1;
	} else {
		n = strtol(argv[1], NULL, 10);
		for (long i = 0; i < n; i++)
			if (run_one(argv[2], enoexec_ok) < 0)
				return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
	return 0;
}
