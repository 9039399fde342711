/* SPDX-License-Identifier: Apache-2.0 */
#include "filetype.h"

#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "elfhead.h"

/* Whether the program headers name an interpreter (PT_INTERP). */
static bool elf_has_interp(int fd, const elf_info *e)
{
	return elf_read_interp(fd, e, NULL, 0) > 0;
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
