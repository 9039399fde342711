/* SPDX-License-Identifier: Apache-2.0 */
#include "sha256.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define HASH_CHUNK (1u << 20)

int santa_hash_fd(int fd, uint8_t sha256[SANTA_SHA256_LEN],
		  uint8_t sha1[SANTA_SHA1_LEN])
{
	return santa_hash_fd_until(fd, sha256, sha1, NULL);
}

int santa_hash_fd_until(int fd, uint8_t sha256[SANTA_SHA256_LEN],
			uint8_t sha1[SANTA_SHA1_LEN], const atomic_bool *stop)
{
	EVP_MD_CTX *c256 = NULL, *c1 = NULL;
	uint8_t *buf;
	off_t off = 0;
	int r = -ENOMEM;

	buf = malloc(HASH_CHUNK);
	if (!buf)
		return -ENOMEM;
	if (sha256 && (!(c256 = EVP_MD_CTX_new()) ||
		       !EVP_DigestInit_ex(c256, EVP_sha256(), NULL)))
		goto out;
	if (sha1 && (!(c1 = EVP_MD_CTX_new()) ||
		     !EVP_DigestInit_ex(c1, EVP_sha1(), NULL)))
		goto out;

	for (;;) {
		ssize_t n;

		if (stop && atomic_load(stop)) {
			r = -ECANCELED;
			goto out;
		}
		n = pread(fd, buf, HASH_CHUNK, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		if ((c256 && !EVP_DigestUpdate(c256, buf, n)) ||
		    (c1 && !EVP_DigestUpdate(c1, buf, n))) {
			r = -EIO;
			goto out;
		}
		off += n;
	}

	r = 0;
	if (c256 && !EVP_DigestFinal_ex(c256, sha256, NULL))
		r = -EIO;
	if (c1 && !EVP_DigestFinal_ex(c1, sha1, NULL))
		r = -EIO;
out:
	EVP_MD_CTX_free(c256);
	EVP_MD_CTX_free(c1);
	free(buf);
	return r;
}

void santa_hex(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int santa_sha256_from_hex(const char *hex, uint8_t out[SANTA_SHA256_LEN])
{
	if (strlen(hex) != SANTA_SHA256_HEX_LEN)
		return -EINVAL;
	for (size_t i = 0; i < SANTA_SHA256_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
