/* SPDX-License-Identifier: Apache-2.0 */
#include "eventlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

const char *santad_decision_name(santad_decision d)
{
	switch (d) {
	case SANTAD_DECISION_ALLOW:
		return "ALLOW";
	case SANTAD_DECISION_DENY:
		return "DENY";
	default:
		return "UNKNOWN";
	}
}

const char *santad_reason_name(santad_reason r)
{
	static const char *const names[] = {
		[SANTAD_REASON_UNKNOWN] = "UNKNOWN",
		[SANTAD_REASON_BINARY] = "BINARY",
		[SANTAD_REASON_CERT] = "CERT",
		[SANTAD_REASON_TEAMID] = "TEAMID",
		[SANTAD_REASON_SIGNINGID] = "SIGNINGID",
		[SANTAD_REASON_CDHASH] = "CDHASH",
		[SANTAD_REASON_SCOPE] = "SCOPE",
		[SANTAD_REASON_COMPILER] = "COMPILER",
		[SANTAD_REASON_TRANSITIVE] = "TRANSITIVE",
		[SANTAD_REASON_PENDING_TRANSITIVE] = "PENDING_TRANSITIVE",
		[SANTAD_REASON_LONG_PATH] = "LONG_PATH",
		[SANTAD_REASON_NOTRUNNING] = "NOTRUNNING",
	};

	if ((size_t)r >= sizeof(names) / sizeof(names[0]) || !names[r])
		return "UNKNOWN";
	return names[r];
}

void eventlog_timestamp(const struct timespec *ts, char *buf, size_t size)
{
	struct tm tm;

	/* A time gmtime cannot express (a clock set to year 2^31) is logged
	 * as the epoch rather than from an unset struct. */
	if (!gmtime_r(&ts->tv_sec, &tm)) {
		time_t zero = 0;

		gmtime_r(&zero, &tm);
	}
	snprintf(buf, size, "%04ld-%02d-%02dT%02d:%02d:%02d.%03ldZ", (long)tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts->tv_nsec / 1000000);
}

/* A growing string; on allocation failure it keeps failing and yields NULL. */
typedef struct strbuf {
	char *s;
	size_t len, cap;
	bool failed;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(strbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* A value, sanitized as the original does: '|' and newlines would split
 * the line into false fields or false lines. */
static void sb_value(strbuf *b, const char *v)
{
	const char *p = v;

	for (; *p; p++) {
		if (*p == '|') {
			sb_put(b, v, (size_t)(p - v));
			sb_str(b, "<pipe>");
			v = p + 1;
		} else if (*p == '\n') {
			sb_put(b, v, (size_t)(p - v));
			sb_str(b, "\\n");
			v = p + 1;
		}
	}
	sb_put(b, v, (size_t)(p - v));
}

static void sb_kv(strbuf *b, const char *key, const char *value)
{
	sb_str(b, "|");
	sb_str(b, key);
	sb_str(b, "=");
	sb_value(b, value ? value : "");
}

static void sb_kv_long(strbuf *b, const char *key, long value)
{
	char num[32];

	snprintf(num, sizeof(num), "%ld", value);
	sb_kv(b, key, num);
}

static void format_kv(strbuf *b, const eventlog_exec *e)
{
	char mode[2] = { e->mode, '\0' };

	sb_str(b, "action=EXEC");
	sb_kv(b, "decision", santad_decision_name(e->decision));
	sb_kv(b, "reason", santad_reason_name(e->reason));
	if (e->explain)
		sb_kv(b, "explain", e->explain);
	if (e->sha256)
		sb_kv(b, "sha256", e->sha256);
	sb_kv_long(b, "pid", e->pid);
	sb_kv_long(b, "ppid", e->ppid);
	sb_kv_long(b, "uid", e->uid);
	sb_kv(b, "user", e->user);
	sb_kv_long(b, "gid", e->gid);
	sb_kv(b, "group", e->group);
	sb_kv(b, "mode", mode);
	sb_kv(b, "path", e->path);
	if (e->args)
		sb_kv(b, "args", e->args);
}

static void format_fields(strbuf *b, const eventlog_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_str(b, "|");
		sb_str(b, f[i].key);
		sb_str(b, "=");
		sb_value(b, f[i].value ? f[i].value : "");
	}
}

static char *sb_take(strbuf *b)
{
	if (b->failed) {
		free(b->s);
		return NULL;
	}
	return b->s;
}

char *eventlog_format_kv(const eventlog_exec *e)
{
	strbuf b = { 0 };

	format_kv(&b, e);
	return sb_take(&b);
}

char *eventlog_format_file_line(const eventlog_exec *e)
{
	strbuf b = { 0 };
	char ts[40];

	eventlog_timestamp(&e->when, ts, sizeof(ts));
	sb_str(&b, "[");
	sb_str(&b, ts);
	sb_str(&b, "] I santad: ");
	format_kv(&b, e);
	sb_str(&b, "\n");
	return sb_take(&b);
}

char *eventlog_format_fields_kv(const eventlog_field *f, size_t n)
{
	strbuf b = { 0 };

	sb_str(&b, "");
	format_fields(&b, f, n);
	return sb_take(&b);
}

char *eventlog_format_fields_file_line(const struct timespec *when, const eventlog_field *f,
				       size_t n)
{
	strbuf b = { 0 };
	char ts[40];

	eventlog_timestamp(when, ts, sizeof(ts));
	sb_str(&b, "[");
	sb_str(&b, ts);
	sb_str(&b, "] I santad: ");
	format_fields(&b, f, n);
	sb_str(&b, "\n");
	return sb_take(&b);
}

static int json_add_str(json_object *o, const char *key, const char *v)
{
	json_object *s = json_object_new_string(v ? v : "");

	if (!s)
		return -1;
	return json_object_object_add(o, key, s);
}

static int json_add_int(json_object *o, const char *key, long v)
{
	json_object *i = json_object_new_int64(v);

	if (!i)
		return -1;
	return json_object_object_add(o, key, i);
}

static int json_fill(json_object *o, const eventlog_exec *e)
{
	char ts[40], mode[2] = { e->mode, '\0' };
	int r = 0;

	eventlog_timestamp(&e->when, ts, sizeof(ts));
	r |= json_add_str(o, "time", ts);
	r |= json_add_str(o, "action", "EXEC");
	r |= json_add_str(o, "decision", santad_decision_name(e->decision));
	r |= json_add_str(o, "reason", santad_reason_name(e->reason));
	if (e->explain)
		r |= json_add_str(o, "explain", e->explain);
	if (e->sha256)
		r |= json_add_str(o, "sha256", e->sha256);
	r |= json_add_int(o, "pid", e->pid);
	r |= json_add_int(o, "ppid", e->ppid);
	r |= json_add_int(o, "uid", e->uid);
	r |= json_add_str(o, "user", e->user);
	r |= json_add_int(o, "gid", e->gid);
	r |= json_add_str(o, "group", e->group);
	r |= json_add_str(o, "mode", mode);
	r |= json_add_str(o, "path", e->path);
	if (e->args)
		r |= json_add_str(o, "args", e->args);
	return r;
}

char *eventlog_format_json_line(const eventlog_exec *e)
{
	json_object *o = json_object_new_object();
	const char *s;
	char *line = NULL;

	if (!o)
		return NULL;
	if (json_fill(o, e) == 0) {
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s && asprintf(&line, "%s\n", s) < 0)
			line = NULL;
	}
	json_object_put(o);
	return line;
}

char *eventlog_format_fields_json_line(const struct timespec *when, const eventlog_field *f,
				       size_t n)
{
	json_object *o = json_object_new_object();
	const char *s;
	char *line = NULL;
	char ts[40];
	int r;

	if (!o)
		return NULL;
	eventlog_timestamp(when, ts, sizeof(ts));
	r = json_add_str(o, "time", ts);
	for (size_t i = 0; i < n; i++)
		r |= json_add_str(o, f[i].key, f[i].value);
	if (r == 0) {
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s && asprintf(&line, "%s\n", s) < 0)
			line = NULL;
	}
	json_object_put(o);
	return line;
}
