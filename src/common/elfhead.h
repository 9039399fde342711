/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The little of an ELF file santa reads: its header, and the program
 * header that names its interpreter (PT_INTERP, the dynamic loader the
 * kernel opens for exec right after the program itself). Every field may
 * be garbage: counts, sizes and offsets are checked against small bounds
 * before anything is read. Used by santactl fileinfo's Type and by santad,
 * which tells a program's own exec from its loader's (recorder.c).
 * Unit-tested in test-elfhead.c, fuzzed by fuzz-elfhead.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More program headers than any real binary has; a header claiming more
 * is read only this far. */
#define ELF_MAX_PHNUM 1024

typedef struct elf_info {
	bool is64;
	bool big_endian;
	uint16_t type;                  /* ET_EXEC, ET_DYN, ... */
	uint16_t machine;               /* EM_X86_64, ... */
	uint64_t phoff;
	uint16_t phentsize;
	uint16_t phnum;
} elf_info;

/* Decode the ELF header in HEAD (N bytes, from offset 0); false when it is
 * not one. */
bool elf_parse_header(const uint8_t *head, size_t n, elf_info *e);

/* The interpreter the ELF file behind FD names (pread, offset untouched):
 * 1 with its path in BUF (unless BUF is NULL), 0 when it names none, a
 * negative errno when the program header is there but unreadable, or its
 * path longer than SIZE or not a string (the kernel refuses such a file). */
int elf_read_interp(int fd, const elf_info *e, char *buf, size_t size);
