/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /proc/self/mountinfo lines: a mount point is any path a user could mount
 * on (FUSE, user namespaces), escaped by the kernel. Each input line goes
 * through the parser, and what it returns must lie inside that line.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mounts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *line, *save = NULL;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *end = line + strlen(line), *mp = NULL, *fstype = NULL;
		const char *why;
		uint64_t id, dev;

		if (!mounts_parse_line(line, &id, &dev, &mp, &fstype))
			continue;
		if (mp < line || mp > end || fstype < line || fstype > end)
			abort();
		(void)mounts_skip_fstype(fstype, &why);
	}
	free(text);
	return 0;
}
