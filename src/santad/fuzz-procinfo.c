/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /proc/PID/stat and /proc/PID/status of a process anyone may start: its
 * name is chosen by its owner and may hold spaces, parentheses and
 * newlines. The parsers are static in procinfo.c, so this harness
 * includes it. The first byte picks stat or status; the rest is the file.
 */
#include "procinfo.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proc_info info;
	char *buf;

	if (size < 1)
		return 0;
	buf = malloc(size);
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	memset(&info, 0, sizeof(info));
	if (data[0] & 1) {
		parse_ids(buf, &info);
	} else if (parse_stat(buf, &info) == 0) {
		if (strnlen(info.comm, sizeof(info.comm)) >= sizeof(info.comm))
			abort();
	}
	free(buf);
	return 0;
}
