/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event log lines carry names others chose (a file's path, its
 * arguments, a user name): whatever they hold, a text line stays one line
 * with exactly its own fields, and a JSON line parses back to the same
 * values.
 *
 * Input: a decision byte, a reason byte, the mode character, the time in
 * seconds (8 bytes, host order), then the explain, sha256, user, group,
 * path and args values separated by NUL bytes (a missing one is NULL where
 * the format allows it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { V_EXPLAIN, V_SHA256, V_USER, V_GROUP, V_PATH, V_ARGS, V_MAX };

/* Fields in a text line: '|' inside a value is written as "<pipe>". */
static size_t count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static void check_json(const char *line, const eventlog_exec *e)
{
	json_object *o, *v;
	size_t len = strlen(line);

	if (len == 0 || line[len - 1] != '\n' || count_char(line, '\n') != 1)
		abort();
	o = json_tokener_parse(line);
	if (!o || !json_object_object_get_ex(o, "path", &v) ||
	    strcmp(json_object_get_string(v), e->path) != 0)
		abort();
	if (e->args && (!json_object_object_get_ex(o, "args", &v) ||
			strcmp(json_object_get_string(v), e->args) != 0))
		abort();
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v[V_MAX] = { 0 };
	eventlog_exec e = { 0 };
	int64_t secs;
	size_t fields;
	char *text, *p, *line;
	int n = 0;

	if (size < 3 + sizeof(int64_t))
		return 0;
	memcpy(&secs, data + 3, sizeof(secs));
	text = malloc(size - 11 + 1);
	if (!text)
		abort();
	memcpy(text, data + 11, size - 11);
	text[size - 11] = '\0';
	for (p = text; n < V_MAX && p <= text + (size - 11); p += strlen(p) + 1)
		v[n++] = p;

	e.when = (struct timespec){ (time_t)secs, (long)data[1] * 1000000 };
	e.decision = (santad_decision)(data[0] % 3);
	e.reason = (santad_reason)(data[1] % (SANTAD_REASON_NOTRUNNING + 1));
	e.mode = (char)data[2];
	e.pid = e.ppid = 1;
	e.explain = v[V_EXPLAIN];
	e.sha256 = v[V_SHA256];
	e.user = v[V_USER] ? v[V_USER] : "";
	e.group = v[V_GROUP] ? v[V_GROUP] : "";
	e.path = v[V_PATH] ? v[V_PATH] : "";
	e.args = v[V_ARGS];

	/* action, decision, reason, pid, ppid, uid, user, gid, group, mode,
	 * path, and the optional explain, sha256 and args. */
	fields = 11 + !!e.explain + !!e.sha256 + !!e.args;
	line = eventlog_format_file_line(&e);
	if (!line || count_char(line, '\n') != 1 || line[strlen(line) - 1] != '\n' ||
	    count_char(line, '|') != fields - 1)
		abort();
	free(line);
	line = eventlog_format_json_line(&e);
	if (!line)
		abort();
	check_json(line, &e);
	free(line);
	free(text);
	return 0;
}
