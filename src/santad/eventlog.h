/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event log's line formats. Administrators and their log pipelines read
 * these lines, so the text format is the original Santa's, byte for byte:
 *
 *   [2024-05-11T02:41:38.735Z] I santad: action=EXEC|decision=ALLOW|
 *   reason=UNKNOWN|sha256=...|pid=12|ppid=1|uid=0|user=root|gid=0|
 *   group=root|mode=M|path=/usr/bin/true|args=true
 *
 * (one line), key=value pairs joined by '|', a value's '|' written as
 * "<pipe>" and its newlines as "\n". The original's pidversion field has
 * no Linux counterpart and is left out; explain= and args= appear only
 * when known. The prefix is the file writer's; syslog lines have none.
 * The json type writes the same fields as one JSON object per line.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "santad.h"

typedef struct eventlog_exec {
	struct timespec when;           /* CLOCK_REALTIME */
	santad_decision decision;
	santad_reason reason;
	const char *explain;            /* NULL: no explain= */
	const char *sha256;             /* hex; NULL: no sha256= */
	pid_t pid;
	pid_t ppid;
	long uid;
	const char *user;
	long gid;
	const char *group;
	char mode;                      /* 'M' monitor, 'L' lockdown */
	const char *path;
	const char *args;               /* NULL: no args= */
} eventlog_exec;

/* The line without prefix and newline ("action=EXEC|..."), malloc'd. */
char *eventlog_format_kv(const eventlog_exec *e);
/* The file writer's whole line, prefix and '\n' included, malloc'd. */
char *eventlog_format_file_line(const eventlog_exec *e);
/* One JSON object and '\n', malloc'd. */
char *eventlog_format_json_line(const eventlog_exec *e);
/* A line of another action than EXEC (action=BUNDLE, ...): its key=value
 * pairs in order, the first normally action. A NULL value is written
 * empty. The same sanitizing and prefix as EXEC lines; in JSON, "time"
 * first, then the pairs as strings. */
typedef struct eventlog_field {
	const char *key;
	const char *value;
} eventlog_field;

char *eventlog_format_fields_kv(const eventlog_field *f, size_t n);
char *eventlog_format_fields_file_line(const struct timespec *when, const eventlog_field *f,
				       size_t n);
char *eventlog_format_fields_json_line(const struct timespec *when, const eventlog_field *f,
				       size_t n);
/* "2024-05-11T02:41:38.735Z" into BUF (at least 32 bytes). */
void eventlog_timestamp(const struct timespec *ts, char *buf, size_t size);
