/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad reads the ELF header and PT_INTERP of every program executed on
 * the machine: any file anyone can make executable, with counts, offsets
 * and sizes that may point anywhere. What it returns must be a string
 * that fits the buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfhead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char buf[64];
	elf_info e;

	if (fd < 0)
		fd = memfd_create("fuzz-elfhead", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	if (!elf_parse_header(data, size, &e))
		return 0;
	if (elf_read_interp(fd, &e, buf, sizeof(buf)) == 1 &&
	    (strnlen(buf, sizeof(buf)) == sizeof(buf) || buf[0] == '\0'))
		abort();
	(void)elf_read_interp(fd, &e, NULL, 0);
	return 0;
}
