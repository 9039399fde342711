/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What kind of file fileinfo's Type field says a file is: "Executable
 * (ELF x86-64)", "Shared library (ELF aarch64)", "Script", ... read from
 * the file's first bytes and, for ELF, its program headers (a
 * position-independent executable and a shared library are both ET_DYN;
 * only the executable asks for an interpreter). Unit-tested in
 * test-filetype.c.
 */
#pragma once

#include <stddef.h>

/* The type of the file behind FD (read with pread, offset untouched),
 * into BUF; returns BUF. Unreadable or unrecognized files are "Unknown". */
const char *santactl_file_type(int fd, char *buf, size_t size);
