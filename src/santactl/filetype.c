/* SPDX-License-Identifier: Apache-2.0 */
#include "filetype.h"

#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* More program headers than any real binary has; a header claiming more
 * is read only this far. */
#define FILETYPE_MAX_PHNUM 1024

typedef struct elf_info {
	bool is64;
	bool big_endian;
	uint16_t type;
	uint16_t machine;
	uint64_t phoff;
	uint16_t phentsize;
	uint16_t phnum;
} elf_info;

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

/* Decode the ELF header in HEAD (N bytes); false if it is not one. */
static bool elf_parse_header(const uint8_t *head, size_t n, elf_info *e)
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

/* Whether the program headers name an interpreter (PT_INTERP). */
static bool elf_has_interp(int fd, const elf_info *e)
{
	size_t min = e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	size_t n = e->phnum < FILETYPE_MAX_PHNUM ? e->phnum : FILETYPE_MAX_PHNUM;
	bool found = false;
	uint8_t *ph;
	ssize_t got;

	/* Real entries are 32 or 56 bytes; anything far larger is garbage. */
	if (e->phentsize < min || e->phentsize > 4 * min || n == 0)
		return false;
	ph = malloc(n * e->phentsize);
	if (!ph)
		return false;
	got = pread(fd, ph, n * e->phentsize, (off_t)e->phoff);
	for (size_t i = 0; got > 0 && i < (size_t)got / e->phentsize; i++)
		if (get32(ph + i * e->phentsize, e->big_endian) == PT_INTERP)
			found = true;
	free(ph);
	return found;
}

static const char *elf_machine_name(const elf_info *e, char *buf, size_t size)
{
	switch (e->machine) {
	case EM_X86_64:
		return "x86-64";
	case EM_386:
		return "i386";
	case EM_AARCH64:
		return "aarch64";
	case EM_ARM:
		return "arm";
	case EM_RISCV:
		return e->is64 ? "riscv64" : "riscv32";
	case EM_PPC64:
		return e->big_endian ? "ppc64" : "ppc64le";
	case EM_PPC:
		return "ppc";
	case EM_S390:
		return e->is64 ? "s390x" : "s390";
	case EM_MIPS:
		return e->is64 ? "mips64" : "mips";
	case 258: /* EM_LOONGARCH, missing from older elf.h */
		return "loongarch64";
	default:
		snprintf(buf, size, "machine %u", e->machine);
		return buf;
	}
}

static const char *elf_kind(int fd, const elf_info *e)
{
	switch (e->type) {
	case ET_EXEC:
		return "Executable";
	case ET_DYN:
		return elf_has_interp(fd, e) ? "Executable" : "Shared library";
	case ET_REL:
		return "Object file";
	case ET_CORE:
		return "Core dump";
	default:
		return "ELF file";
	}
}

const char *santactl_file_type(int fd, char *buf, size_t size)
{
	uint8_t head[sizeof(Elf64_Ehdr)];
	char machine[32];
	elf_info e;
	ssize_t n;

	n = pread(fd, head, sizeof(head), 0);
	if (n >= 2 && head[0] == '#' && head[1] == '!')
		snprintf(buf, size, "Script");
	else if (n > 0 && elf_parse_header(head, (size_t)n, &e))
		snprintf(buf, size, "%s (ELF %s)", elf_kind(fd, &e),
			 elf_machine_name(&e, machine, sizeof(machine)));
	else
		snprintf(buf, size, "Unknown");
	return buf;
}
