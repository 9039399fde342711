/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Diagnostic logging for the daemons (not Santa's event log, which is
 * santad's eventlog module). Lines go to stderr, which the launcher or
 * systemd's journal collects, prefixed with the program name and level.
 *
 * Convention: libraries return errors and never log above debug; a
 * process logs once, where it handles the error. A line starts with what
 * was being done, names the thing it was done to (user-supplied names in
 * quotes), and a survived failure says so ("..., ignoring").
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

enum {
	SANTA_LOG_ERR = 3,
	SANTA_LOG_WARNING = 4,
	SANTA_LOG_NOTICE = 5,
	SANTA_LOG_INFO = 6,
	SANTA_LOG_DEBUG = 7,
};

void log_open(const char *progname);
void log_set_level(int level);
int log_get_level(void);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same, with ": strerror(-ERR)" appended; returns ERR (negative). */
int log_msg_errno(int level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ONE or MANY, whichever a count of N takes: "1 rule", "2 rules". */
static inline const char *log_plural(unsigned long long n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

#define log_debug(...) log_msg(SANTA_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(SANTA_LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(SANTA_LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(SANTA_LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(SANTA_LOG_ERR, __VA_ARGS__)
#define log_warning_errno(e, ...) log_msg_errno(SANTA_LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_msg_errno(SANTA_LOG_ERR, (e), __VA_ARGS__)
