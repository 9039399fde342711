/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Without libFuzzer, each fuzz harness links with this file and replays
 * every file of the corpus directories given on the command line through
 * LLVMFuzzerTestOneInput, so that `meson test` runs the corpus on every
 * build and a crash or sanitizer report fails the test.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "replay: opening '%s': %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf)
		abort();
	n = read(fd, buf, st.st_size);
	close(fd);
	if (n != st.st_size) {
		fprintf(stderr, "replay: reading '%s': short read\n", path);
		free(buf);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

static int replay_path(const char *path, unsigned *count)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int r = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: '%s': %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char sub[4096];

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (replay_path(sub, count) < 0)
			r = -1;
	}
	closedir(d);
	return r;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int r = 0;

	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) < 0)
			r = 1;
	printf("replayed %u inputs\n", count);
	return r;
}
