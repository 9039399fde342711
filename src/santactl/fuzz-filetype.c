/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl fileinfo` reads the headers of any file it is pointed at (a
 * download, a user's build output): ELF headers and program headers with
 * offsets and counts that may point anywhere.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "filetype.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char buf[128];

	if (fd < 0)
		fd = memfd_create("fuzz-filetype", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	santactl_file_type(fd, buf, sizeof(buf));
	if (strnlen(buf, sizeof(buf)) >= sizeof(buf))
		abort();
	santactl_file_type(fd, buf, 1);
	return 0;
}
