/* SPDX-License-Identifier: Apache-2.0 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "elf-test-image.h"
#include "elfhead.h"

/* The interpreter named by LEN bytes of IMG, through elf_read_interp. */
static int interp_of(const void *img, size_t len, char *buf, size_t size)
{
	int fd = memfd_create("test-elfhead", MFD_CLOEXEC);
	elf_info e;
	int r;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, len), (ssize_t)len);
	if (!elf_parse_header(img, len, &e)) {
		close(fd);
		return -ENOEXEC;
	}
	r = elf_read_interp(fd, &e, buf, size);
	close(fd);
	return r;
}

/* An x86-64 ET_DYN image (elf_test_image64). */
static size_t make64(uint8_t *img, int nph, int interp_at, const char *path, size_t path_len)
{
	return elf_test_image64(img, ET_DYN, EM_X86_64, nph, interp_at, path, path_len);
}

static void test_interp64(void **state)
{
	static const char ld[] = "/lib64/ld-linux-x86-64.so.2";
	uint8_t img[1024];
	char buf[64];
	size_t n;

	n = make64(img, 3, 1, ld, sizeof(ld));
	assert_int_equal(interp_of(img, n, buf, sizeof(buf)), 1);
	assert_string_equal(buf, ld);
	/* Only whether there is one. */
	assert_int_equal(interp_of(img, n, NULL, 0), 1);
	/* None: a static program. */
	n = make64(img, 3, -1, "", 0);
	assert_int_equal(interp_of(img, n, buf, sizeof(buf)), 0);
}

static void test_interp32(void **state)
{
	static const char ld[] = "/lib/ld-linux.so.2";
	uint8_t img[512] = { 0 };
	Elf32_Ehdr eh = { 0 };
	Elf32_Phdr ph = { 0 };
	char buf[64];

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_EXEC;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = 1;
	ph.p_type = PT_INTERP;
	ph.p_offset = sizeof(eh) + sizeof(ph);
	ph.p_filesz = sizeof(ld);
	memcpy(img, &eh, sizeof(eh));
	memcpy(img + sizeof(eh), &ph, sizeof(ph));
	memcpy(img + sizeof(eh) + sizeof(ph), ld, sizeof(ld));
	assert_int_equal(interp_of(img, sizeof(eh) + sizeof(ph) + sizeof(ld), buf, sizeof(buf)), 1);
	assert_string_equal(buf, ld);
}

static void test_bad_interp(void **state)
{
	uint8_t img[1024];
	char buf[64];
	size_t n;

	/* Not NUL-terminated, as the kernel refuses. */
	n = make64(img, 1, 0, "/lib/ld.so", 10);
	assert_int_equal(interp_of(img, n, buf, sizeof(buf)), -EINVAL);
	/* Longer than the caller's buffer. */
	n = make64(img, 1, 0, "/a/very/long/loader/path", 25);
	assert_int_equal(interp_of(img, n, buf, 8), -ENAMETOOLONG);
	/* Empty. */
	n = make64(img, 1, 0, "\0", 2);
	assert_int_equal(interp_of(img, n, buf, sizeof(buf)), -EINVAL);
	/* Past the end of the file. */
	n = make64(img, 1, 0, "/lib/ld.so", 11);
	assert_int_equal(interp_of(img, n - 4, buf, sizeof(buf)), -EIO);
	/* Offset and size at the edge of the integer range. */
	n = make64(img, 1, 0, "/lib/ld.so", 11);
	((Elf64_Phdr *)(img + sizeof(Elf64_Ehdr)))->p_offset = UINT64_MAX - 4;
	assert_int_equal(interp_of(img, n, buf, sizeof(buf)), -ENAMETOOLONG);
}

static void test_bad_headers(void **state)
{
	uint8_t img[1024];
	char buf[64];
	size_t n;

	n = make64(img, 1, 0, "/lib/ld.so", 11);
	assert_int_equal(interp_of(img, 20, buf, sizeof(buf)), -ENOEXEC);
	((Elf64_Ehdr *)img)->e_phentsize = 65535;
	assert_int_equal(interp_of(img, n, buf, sizeof(buf)), 0);
	n = make64(img, 1, 0, "/lib/ld.so", 11);
	((Elf64_Ehdr *)img)->e_phoff = UINT64_MAX;
	assert_int_equal(interp_of(img, n, buf, sizeof(buf)), 0);
	n = make64(img, 1, 0, "/lib/ld.so", 11);
	((Elf64_Ehdr *)img)->e_phnum = 65535;
	assert_int_equal(interp_of(img, n, buf, sizeof(buf)), 1);
	assert_int_equal(interp_of("#!/bin/sh\n", 10, buf, sizeof(buf)), -ENOEXEC);
}

static void test_real_binary(void **state)
{
	uint8_t head[sizeof(Elf64_Ehdr)];
	char buf[4096];
	int fd = open("/bin/sh", O_RDONLY | O_CLOEXEC);
	elf_info e;

	if (fd < 0)
		skip();
	assert_int_equal(pread(fd, head, sizeof(head), 0), (ssize_t)sizeof(head));
	assert_true(elf_parse_header(head, sizeof(head), &e));
	assert_int_equal(elf_read_interp(fd, &e, buf, sizeof(buf)), 1);
	assert_true(buf[0] == '/');
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interp64),
		cmocka_unit_test(test_interp32),
		cmocka_unit_test(test_bad_interp),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_real_binary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
