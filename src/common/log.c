/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *log_progname = "santa";
static int log_level = SANTA_LOG_INFO;

void log_open(const char *progname)
{
	const char *slash = strrchr(progname, '/');

	log_progname = slash ? slash + 1 : progname;
}

void log_set_level(int level)
{
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
}

static const char *level_name(int level)
{
	switch (level) {
	case SANTA_LOG_ERR:
		return "error";
	case SANTA_LOG_WARNING:
		return "warning";
	case SANTA_LOG_NOTICE:
		return "notice";
	case SANTA_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static void log_emit(int level, const char *suffix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void log_emit(int level, const char *suffix, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	/* One write per line, so that lines of several threads never mix and a
	 * journal reading stderr sees whole lines with their priority. */
	n = snprintf(line, sizeof(line), "<%d>%s: %s: ", level, log_progname,
		     level_name(level));
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (suffix)
		n += snprintf(line + n, sizeof(line) - n, ": %s", suffix);
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_emit(level, NULL, fmt, ap);
	va_end(ap);
	errno = saved;
}

int log_msg_errno(int level, int err, const char *fmt, ...)
{
	va_list ap;
	char buf[128];

	if (level > log_level)
		return err;
	va_start(ap, fmt);
	log_emit(level, strerror_r(err < 0 ? -err : err, buf, sizeof(buf)), fmt, ap);
	va_end(ap);
	return err;
}
