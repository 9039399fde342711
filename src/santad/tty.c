/* SPDX-License-Identifier: Apache-2.0 */
#include "tty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define TTY_DEFAULT_UNKNOWN "This program was blocked: it is not known to be trusted."
#define TTY_DEFAULT_BANNED "This program was blocked by a rule."

static void put(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (!*out)
		return;
	if (*len + n + 1 > *cap) {
		size_t ncap = *cap * 2 + n + 1;
		char *p = realloc(*out, ncap);

		if (!p) {
			free(*out);
			*out = NULL;
			return;
		}
		*out = p;
		*cap = ncap;
	}
	memcpy(*out + *len, s, n);
	*len += n;
	(*out)[*len] = '\0';
}

char *tty_detail_url(const char *tmpl, const tty_block_info *info)
{
	static const char *const keys[] = {
		"%file_sha%", "%file_identifier%", "%bundle_or_file_identifier%",
		"%machine_id%", "%username%", "%hostname%", "%serial%", "%uuid%",
		"%file_bundle_id%", "%team_id%", "%signing_id%", "%cdhash%",
	};
	char host[256] = "";
	size_t len = 0, cap = 256;
	char *out = malloc(cap);

	if (out)
		out[0] = '\0';
	(void)gethostname(host, sizeof(host) - 1);
	while (out && *tmpl) {
		const char *val = NULL;
		size_t k;

		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!strncmp(tmpl, keys[k], strlen(keys[k])))
				break;
		if (k == sizeof(keys) / sizeof(keys[0])) {
			put(&out, &len, &cap, tmpl++, 1);
			continue;
		}
		/* No bundles or code signatures on Linux: those expand empty. */
		val = k <= 2 ? info->sha256 : k == 3 || k == 7 ? info->machine_id :
		      k == 4 ? info->user : k == 5 ? host : k == 6 ? info->machine_id : "";
		if (val)
			put(&out, &len, &cap, val, strlen(val));
		tmpl += strlen(keys[k]);
	}
	return out;
}

/* The length of the UTF-8 sequence at P when it is well formed (shortest
 * form, no surrogate, at most U+10FFFF) and not a C1 control (U+0080 to
 * U+009F, which terminals obey as they do ESC sequences); else 0. */
static size_t utf8_printable_len(const unsigned char *p)
{
	uint32_t c;
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff) || c <= 0x9f)
		return 0;
	return n;
}

/* S for a terminal: a file or process name is anyone's to choose, and its
 * control characters (an escape sequence that retitles or clears the
 * window, a carriage return that hides the line), C1 controls included,
 * and bytes that are not UTF-8 (which an 8-bit terminal may take for C1
 * controls) are shown as '?'. NULL stays NULL. */
static char *printable(const char *s)
{
	char *out = s ? strdup(s) : NULL;
	unsigned char *p = (unsigned char *)out;

	while (p && *p) {
		size_t n = *p < 0x80 ? 1 : utf8_printable_len(p);

		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
	return out;
}

char *tty_block_message(const tty_block_info *info)
{
	const char *why = info->custom_msg;
	const char *url_tmpl = info->custom_url ? info->custom_url : info->detail_url;
	char *url = url_tmpl ? tty_detail_url(url_tmpl, info) : NULL;
	char *path = printable(info->path), *parent = printable(info->parent_comm);
	char *msg = NULL;
	int r;

	if (!why || !*why)
		why = info->by_rule ?
		      (info->banned_message ? info->banned_message : TTY_DEFAULT_BANNED) :
		      (info->unknown_message ? info->unknown_message : TTY_DEFAULT_UNKNOWN);
	r = asprintf(&msg,
		     "\n\033[1mSanta\033[0m\n\n%s\n\n"
		     "\033[1mPath:      \033[0m %s\n"
		     "\033[1mIdentifier:\033[0m %s\n"
		     "\033[1mParent:    \033[0m %s (%d)\n\n"
		     "%s%s%s",
		     why, path ? path : "(unknown)",
		     info->sha256 ? info->sha256 : "(unknown)",
		     parent ? parent : "", (int)info->ppid,
		     url ? "More info:\n" : "", url ? url : "", url ? "\n\n" : "");
	free(url);
	free(path);
	free(parent);
	return r < 0 ? NULL : msg;
}

/* The /dev name of a terminal device, for the kinds a user types in. */
static int tty_path(uint32_t tty_nr, char *buf, size_t size)
{
	unsigned maj = major(tty_nr), min = minor(tty_nr);

	if (maj >= 136 && maj <= 143)
		snprintf(buf, size, "/dev/pts/%u", (maj - 136) * 256 + min);
	else if (maj == 4 && min < 64)
		snprintf(buf, size, "/dev/tty%u", min);
	else if (maj == 4)
		snprintf(buf, size, "/dev/ttyS%u", min - 64);
	else
		return -ENODEV;
	return 0;
}

int tty_write(uint32_t tty_nr, const char *msg)
{
	char path[64];
	struct stat st;
	size_t len = strlen(msg);
	ssize_t n;
	int fd, r;

	if (!tty_nr)
		return -ENOTTY;
	r = tty_path(tty_nr, path, sizeof(path));
	if (r < 0)
		return r;
	/* O_NOCTTY: never become its controlling process. O_NONBLOCK: a
	 * terminal that is not read (a stopped pager) must not stall us. */
	fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The name must lead to the very device the process has, not to a
	 * file someone put there. */
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != (dev_t)tty_nr) {
		close(fd);
		return -ENODEV;
	}
	n = write(fd, msg, len);
	r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}
