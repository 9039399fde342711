/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The message a user sees on their terminal when a program they started
 * there is blocked: what was blocked, why, the administrator's message and
 * where to read more. Written by the recorder thread after the kernel has
 * been answered.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tty_block_info {
	const char *path;
	const char *sha256;         /* hex, or NULL */
	const char *parent_comm;
	pid_t ppid;
	bool by_rule;               /* blocked by a rule, not as unknown */
	const char *custom_msg;     /* the rule's, else NULL */
	const char *custom_url;     /* the rule's, else NULL */
	const char *unknown_message;/* UnknownBlockMessage, NULL = built-in */
	const char *banned_message; /* BannedBlockMessage */
	const char *detail_url;     /* EventDetailURL, with placeholders */
	const char *machine_id;
	const char *user;
} tty_block_info;

/* The message, malloc'd; NULL when out of memory. */
char *tty_block_message(const tty_block_info *info);
/* EventDetailURL with its placeholders replaced, malloc'd. */
char *tty_detail_url(const char *tmpl, const tty_block_info *info);

/* Write MSG to the terminal TTY_NR (from /proc/PID/stat) without becoming
 * its controlling process and without ever blocking. 0, or -errno (-ENODEV
 * when the device is not a terminal we know how to name). */
int tty_write(uint32_t tty_nr, const char *msg);
