/* SPDX-License-Identifier: Apache-2.0 */
/* File hashing with OpenSSL's libcrypto. */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SANTA_SHA256_LEN 32
#define SANTA_SHA256_HEX_LEN 64
#define SANTA_SHA1_LEN 20

/* Hash the whole file behind FD from offset 0 (pread; the file offset is
 * left alone). Returns 0 or -errno. Either output may be NULL. */
int santa_hash_fd(int fd, uint8_t sha256[SANTA_SHA256_LEN],
		  uint8_t sha1[SANTA_SHA1_LEN]);
/* The same, giving up with -ECANCELED as soon as *STOP is true (looked at
 * between chunks): a file of terabytes of holes takes hours to hash. */
int santa_hash_fd_until(int fd, uint8_t sha256[SANTA_SHA256_LEN],
			uint8_t sha1[SANTA_SHA1_LEN], const atomic_bool *stop);

/* Lower-case hex of LEN bytes into OUT (2 * LEN + 1 bytes). */
void santa_hex(const uint8_t *bytes, size_t len, char *out);
/* Parse 64 hex digits (either case); returns 0 or -EINVAL. */
int santa_sha256_from_hex(const char *hex, uint8_t out[SANTA_SHA256_LEN]);
