/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For unit tests only: small ELF64 images built in memory, for the readers
 * of ELF headers (elfhead.h) and whoever uses them.
 */
#pragma once

#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A little-endian ELF64 image of TYPE for MACHINE in IMG: the header, NPH
 * program headers (the one at INTERP_AT, if any, is PT_INTERP and names
 * the PATH_LEN bytes of PATH stored after them, its NUL included when the
 * caller counts it; the rest are PT_LOAD). Returns the image's length. */
static inline size_t elf_test_image64(uint8_t *img, uint16_t type, uint16_t machine, int nph,
				      int interp_at, const char *path, size_t path_len)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph = { 0 };
	size_t str = sizeof(eh) + (size_t)nph * sizeof(ph);

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = type;
	eh.e_machine = machine;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = (uint16_t)nph;
	memcpy(img, &eh, sizeof(eh));
	for (int i = 0; i < nph; i++) {
		ph.p_type = i == interp_at ? PT_INTERP : PT_LOAD;
		ph.p_offset = i == interp_at ? str : 0;
		ph.p_filesz = i == interp_at ? path_len : 0;
		memcpy(img + sizeof(eh) + (size_t)i * sizeof(ph), &ph, sizeof(ph));
	}
	if (path_len)
		memcpy(img + str, path, path_len);
	return str + path_len;
}
