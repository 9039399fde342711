/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Times execs of one program: posix_spawn + waitpid, for SECONDS, and
 * prints "count median_us p99_us". With "first" the program's last byte
 * is rewritten before each exec (outside the timed part), so the kernel
 * drops any allow it cached and every exec is a first sight for santad;
 * with "cached" it is left alone.
 *
 *   exec_timer PROGRAM SECONDS first|cached
 *
 * Built by the benchmarks that use it (cc -O2), not by meson: it is a
 * measuring tool, not part of Santa.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_SAMPLES 1000000

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Flip the last byte between two values: a new file content, hence a new
 * hash, and a write that makes the kernel drop the ignore mark. santad may
 * still hold a descriptor from the last exec's events for a moment, during
 * which the kernel refuses writers (ETXTBSY): wait that out, untimed. */
static int touch(const char *path, off_t size, unsigned i, unsigned *busy)
{
	unsigned char b = i & 1 ? 0x5a : 0xa5;
	int fd;

	for (int tries = 0; (fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 && errno == ETXTBSY &&
	     tries < 20000; tries++) {
		(*busy)++;
		usleep(50);
	}
	if (fd < 0 || pwrite(fd, &b, 1, size - 1) != 1) {
		fprintf(stderr, "exec_timer: rewriting the program before exec %u: %s\n", i,
			strerror(errno));
		return -1;
	}
	return close(fd);
}

int main(int argc, char **argv)
{
	static double samples[MAX_SAMPLES];
	char *child_argv[2];
	struct stat st;
	double end;
	unsigned busy = 0;
	bool first;
	size_t n = 0;

	if (argc != 4 || stat(argv[1], &st) < 0) {
		fprintf(stderr, "usage: exec_timer PROGRAM SECONDS first|cached\n");
		return 2;
	}
	first = strcmp(argv[3], "first") == 0;
	child_argv[0] = argv[1];
	child_argv[1] = NULL;
	end = now_us() + atof(argv[2]) * 1e6;
	while (n < MAX_SAMPLES && now_us() < end) {
		double t0;
		pid_t pid;
		int status;

		if (first && touch(argv[1], st.st_size, (unsigned)n, &busy) < 0)
			return 1;
		t0 = now_us();
		if (posix_spawn(&pid, argv[1], NULL, NULL, child_argv, environ) != 0 ||
		    waitpid(pid, &status, 0) != pid) {
			perror("exec_timer: spawning");
			return 1;
		}
		samples[n++] = now_us() - t0;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "exec_timer: the program failed (denied?)\n");
			return 1;
		}
	}
	if (n == 0)
		return 1;
	qsort(samples, n, sizeof(samples[0]), cmp);
	printf("%zu %.1f %.1f %u\n", n, samples[n / 2], samples[n * 99 / 100], busy);
	return 0;
}
