/* SPDX-License-Identifier: Apache-2.0 */
#include <elf.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "elf-test-image.h"
#include "filetype.h"

/* The type of a temporary file holding LEN bytes of DATA. */
static const char *type_of(const void *data, size_t len, char *buf, size_t size)
{
	char path[] = "/tmp/santactl-test-filetype-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	santactl_file_type(fd, buf, size);
	close(fd);
	return buf;
}

/* An ELF64 image whose first program header, if any, is PT_INTERP when
 * PH0 says so (elf_test_image64). */
static size_t make_elf64(uint8_t *img, uint16_t type, uint16_t machine, int nph,
			 uint32_t ph0)
{
	return elf_test_image64(img, type, machine, nph, ph0 == PT_INTERP ? 0 : -1, "", 0);
}

static void test_script(void **state)
{
	char buf[64];

	assert_string_equal(type_of("#!/bin/sh\necho hi\n", 18, buf, sizeof(buf)), "Script");
}

static void test_elf_kinds(void **state)
{
	uint8_t img[1024];
	char buf[64];
	size_t n;

	n = make_elf64(img, ET_EXEC, EM_X86_64, 1, PT_LOAD);
	assert_string_equal(type_of(img, n, buf, sizeof(buf)), "Executable (ELF x86-64)");
	n = make_elf64(img, ET_DYN, EM_AARCH64, 2, PT_INTERP);
	assert_string_equal(type_of(img, n, buf, sizeof(buf)), "Executable (ELF aarch64)");
	n = make_elf64(img, ET_DYN, EM_X86_64, 2, PT_LOAD);
	assert_string_equal(type_of(img, n, buf, sizeof(buf)), "Shared library (ELF x86-64)");
	n = make_elf64(img, ET_REL, 9999, 0, 0);
	assert_string_equal(type_of(img, n, buf, sizeof(buf)), "Object file (ELF machine 9999)");
}

static void test_broken_elf(void **state)
{
	uint8_t img[1024];
	char buf[64];
	size_t n;

	/* Truncated header. */
	n = make_elf64(img, ET_EXEC, EM_X86_64, 0, 0);
	assert_string_equal(type_of(img, 20, buf, sizeof(buf)), "Unknown");
	/* Program headers past the end of the file: no interpreter found. */
	n = make_elf64(img, ET_DYN, EM_X86_64, 0, 0);
	((Elf64_Ehdr *)img)->e_phnum = 65535;
	((Elf64_Ehdr *)img)->e_phoff = 1u << 30;
	assert_string_equal(type_of(img, n, buf, sizeof(buf)), "Shared library (ELF x86-64)");
	/* An absurd entry size is not trusted. */
	((Elf64_Ehdr *)img)->e_phentsize = 65535;
	assert_string_equal(type_of(img, n, buf, sizeof(buf)), "Shared library (ELF x86-64)");
}

static void test_other(void **state)
{
	char buf[64];

	assert_string_equal(type_of("hello", 5, buf, sizeof(buf)), "Unknown");
	assert_string_equal(type_of("#", 1, buf, sizeof(buf)), "Unknown");
}

static void test_real_binary(void **state)
{
	char buf[64];
	int fd = open("/bin/sh", O_RDONLY);

	if (fd < 0)
		skip();
	santactl_file_type(fd, buf, sizeof(buf));
	close(fd);
	assert_memory_equal(buf, "Executable (ELF ", 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_script),
		cmocka_unit_test(test_elf_kinds),
		cmocka_unit_test(test_broken_elf),
		cmocka_unit_test(test_other),
		cmocka_unit_test(test_real_binary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
