/* SPDX-License-Identifier: Apache-2.0 */
#include "elfhead.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static uint16_t get16(const uint8_t *p, bool be)
{
	return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t get32(const uint8_t *p, bool be)
{
	return be ? (uint32_t)get16(p, be) << 16 | get16(p + 2, be) :
		    (uint32_t)get16(p + 2, be) << 16 | get16(p, be);
}

static uint64_t get64(const uint8_t *p, bool be)
{
	return be ? (uint64_t)get32(p, be) << 32 | get32(p + 4, be) :
		    (uint64_t)get32(p + 4, be) << 32 | get32(p, be);
}

bool elf_parse_header(const uint8_t *head, size_t n, elf_info *e)
{
	if (n < EI_NIDENT || memcmp(head, ELFMAG, SELFMAG) != 0)
		return false;
	e->is64 = head[EI_CLASS] == ELFCLASS64;
	e->big_endian = head[EI_DATA] == ELFDATA2MSB;
	if ((!e->is64 && head[EI_CLASS] != ELFCLASS32) ||
	    (!e->big_endian && head[EI_DATA] != ELFDATA2LSB) ||
	    n < (e->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr)))
		return false;
	e->type = get16(head + 16, e->big_endian);
	e->machine = get16(head + 18, e->big_endian);
	if (e->is64) {
		e->phoff = get64(head + 32, e->big_endian);
		e->phentsize = get16(head + 54, e->big_endian);
		e->phnum = get16(head + 56, e->big_endian);
	} else {
		e->phoff = get32(head + 28, e->big_endian);
		e->phentsize = get16(head + 42, e->big_endian);
		e->phnum = get16(head + 44, e->big_endian);
	}
	return true;
}

/* PT_INTERP's string at OFF (SIZE bytes with its NUL) into BUF. */
static int read_interp_path(int fd, uint64_t off, uint64_t len, char *buf, size_t size)
{
	/* The kernel wants at least one character and the NUL. */
	if (len < 2 || len > size || off > (uint64_t)INT64_MAX - len)
		return -ENAMETOOLONG;
	if (pread(fd, buf, (size_t)len, (off_t)off) != (ssize_t)len)
		return -EIO;
	if (buf[len - 1] != '\0' || strlen(buf) == 0)
		return -EINVAL;
	return 1;
}

int elf_read_interp(int fd, const elf_info *e, char *buf, size_t size)
{
	size_t min = e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	size_t n = e->phnum < ELF_MAX_PHNUM ? e->phnum : ELF_MAX_PHNUM;
	int r = 0;
	uint8_t *ph;
	ssize_t got;

	/* Real entries are 32 or 56 bytes; anything far larger is garbage. */
	if (e->phentsize < min || e->phentsize > 4 * min || n == 0 ||
	    e->phoff > (uint64_t)INT64_MAX)
		return 0;
	ph = malloc(n * e->phentsize);
	if (!ph)
		return -ENOMEM;
	got = pread(fd, ph, n * e->phentsize, (off_t)e->phoff);
	for (size_t i = 0; got > 0 && i < (size_t)got / e->phentsize; i++) {
		const uint8_t *p = ph + i * e->phentsize;

		if (get32(p, e->big_endian) != PT_INTERP)
			continue;
		if (!buf)
			r = 1;
		else if (e->is64)
			r = read_interp_path(fd, get64(p + 8, e->big_endian),
					     get64(p + 32, e->big_endian), buf, size);
		else
			r = read_interp_path(fd, get32(p + 4, e->big_endian),
					     get32(p + 16, e->big_endian), buf, size);
		break;
	}
	free(ph);
	return r;
}
