/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /proc/self/mountinfo lines: a mount point is any path a user could mount
 * on (FUSE, user namespaces), escaped by the kernel. Each input line goes
 * through the parser, and what it returns must lie inside that line; the
 * lines parsed then go through the search for stacked mounts.
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
	mounts_entry *entries = calloc(size / 8 + 1, sizeof(*entries));
	size_t n = 0;

	if (!text || !entries)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *end = line + strlen(line);
		mounts_entry *e = &entries[n];
		const char *why;

		if (!mounts_parse_entry(line, e))
			continue;
		if (e->mount_point < line || e->mount_point > end || e->fstype < line ||
		    e->fstype > end)
			abort();
		(void)mounts_skip_fstype(e->fstype, &why);
		n++;
	}
	/* Any ids: duplicates, a mount its own parent, cycles. */
	mounts_flag_covered(entries, n);
	free(entries);
	free(text);
	return 0;
}
