/* SPDX-License-Identifier: Apache-2.0 */
/* The event log's line formats, byte for byte, and the tty message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "eventlog.h"
#include "tty.h"

static eventlog_exec sample(void)
{
	eventlog_exec e = {
		.when = { .tv_sec = 1715395298, .tv_nsec = 735123456 },
		.decision = SANTAD_DECISION_ALLOW,
		.reason = SANTAD_REASON_BINARY,
		.explain = "extra!",
		.sha256 = "1234_hash",
		.pid = 12,
		.ppid = 56,
		.uid = -2,
		.user = "nobody",
		.gid = -1,
		.group = "nogroup",
		.mode = 'L',
		.path = "execpath|",
		.args = "exec|path -l\n-t -v",
	};

	return e;
}

static void test_file_line(void **state)
{
	eventlog_exec e = sample();
	char *line = eventlog_format_file_line(&e);

	assert_string_equal(line,
			    "[2024-05-11T02:41:38.735Z] I santad: action=EXEC|decision=ALLOW|"
			    "reason=BINARY|explain=extra!|sha256=1234_hash|pid=12|ppid=56|uid=-2|"
			    "user=nobody|gid=-1|group=nogroup|mode=L|path=execpath<pipe>|"
			    "args=exec<pipe>path -l\\n-t -v\n");
	free(line);
}

static void test_optional_fields(void **state)
{
	eventlog_exec e = sample();
	char *kv;

	e.explain = NULL;
	e.sha256 = NULL;
	e.args = NULL;
	e.decision = SANTAD_DECISION_DENY;
	e.reason = SANTAD_REASON_UNKNOWN;
	kv = eventlog_format_kv(&e);
	assert_string_equal(kv, "action=EXEC|decision=DENY|reason=UNKNOWN|pid=12|ppid=56|"
				"uid=-2|user=nobody|gid=-1|group=nogroup|mode=L|path=execpath<pipe>");
	free(kv);
}

static void test_json_line(void **state)
{
	eventlog_exec e = sample();
	char *line = eventlog_format_json_line(&e);
	json_object *o;

	assert_non_null(line);
	assert_int_equal(line[strlen(line) - 1], '\n');
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "path")), "execpath|");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "args")),
			    "exec|path -l\n-t -v");
	assert_int_equal(json_object_get_int(json_object_object_get(o, "uid")), -2);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "time")),
			    "2024-05-11T02:41:38.735Z");
	json_object_put(o);
	free(line);
}

static void test_reason_names(void **state)
{
	assert_string_equal(santad_reason_name(SANTAD_REASON_CERT), "CERT");
	assert_string_equal(santad_reason_name(SANTAD_REASON_PENDING_TRANSITIVE),
			    "PENDING_TRANSITIVE");
	assert_string_equal(santad_reason_name((santad_reason)99), "UNKNOWN");
	assert_string_equal(santad_decision_name(SANTAD_DECISION_DENY), "DENY");
}

static void test_tty_message(void **state)
{
	tty_block_info info = {
		.path = "/tmp/x",
		.sha256 = "abc",
		.parent_comm = "bash",
		.ppid = 7,
		.by_rule = true,
		.banned_message = "Banned here.",
		.detail_url = "https://it.example/%file_sha%?m=%machine_id%",
		.machine_id = "m1",
	};
	char *msg = tty_block_message(&info);

	assert_non_null(strstr(msg, "Banned here."));
	assert_non_null(strstr(msg, "/tmp/x"));
	assert_non_null(strstr(msg, "bash (7)"));
	assert_non_null(strstr(msg, "https://it.example/abc?m=m1"));
	free(msg);
	info.custom_msg = "Rule says no.";
	info.custom_url = "https://rule.example/";
	msg = tty_block_message(&info);
	assert_non_null(strstr(msg, "Rule says no."));
	assert_null(strstr(msg, "Banned here."));
	assert_non_null(strstr(msg, "https://rule.example/"));
	free(msg);
	/* Names are anyone's: no escape sequence of theirs reaches the terminal. */
	info.path = "/tmp/esc\033]0;TITLE\a\r";
	info.parent_comm = "b\033[2Jsh";
	msg = tty_block_message(&info);
	assert_non_null(strstr(msg, "/tmp/esc?]0;TITLE??"));
	assert_non_null(strstr(msg, "b?[2Jsh (7)"));
	free(msg);
	/* C1 controls (CSI as U+009B) and bytes that are not UTF-8 too;
	 * other UTF-8 stays. */
	info.path = "/tmp/\xc2\x9b" "2J-\x9b-\xc3\xa9t\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x8e\x85-"
		    "\xc0\xaf-\xed\xa0\x80";
	info.parent_comm = "\xc2";
	msg = tty_block_message(&info);
	assert_non_null(strstr(msg, "/tmp/?" "?2J-?-\xc3\xa9t\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x8e\x85-?"
				    "?-?" "?" "?"));
	assert_non_null(strstr(msg, " ? (7)"));
	free(msg);
}

/* The original's BUNDLE line, with a value that needs sanitizing and an
 * empty one. */
static const eventlog_field bundle_fields[] = {
	{ "action", "BUNDLE" },
	{ "sha256", "file_hash" },
	{ "bundlehash", "file_bundle_hash" },
	{ "bundlename", "file_bundle|Name" },
	{ "bundleid", NULL },
	{ "bundlepath", "file_bundle_path" },
	{ "path", "file\npath" },
};
#define N_BUNDLE_FIELDS (sizeof(bundle_fields) / sizeof(bundle_fields[0]))

static void test_fields_lines(void **state)
{
	struct timespec when = { .tv_sec = 1715395298, .tv_nsec = 735123456 };
	char *kv = eventlog_format_fields_kv(bundle_fields, N_BUNDLE_FIELDS);
	char *line = eventlog_format_fields_file_line(&when, bundle_fields, N_BUNDLE_FIELDS);
	const char *want = "action=BUNDLE|sha256=file_hash|bundlehash=file_bundle_hash|"
			   "bundlename=file_bundle<pipe>Name|bundleid=|"
			   "bundlepath=file_bundle_path|path=file\\npath";

	assert_string_equal(kv, want);
	assert_non_null(line);
	assert_int_equal(strncmp(line, "[2024-05-11T02:41:38.735Z] I santad: ", 37), 0);
	assert_int_equal(strncmp(line + 37, want, strlen(want)), 0);
	assert_string_equal(line + 37 + strlen(want), "\n");
	free(kv);
	free(line);
}

static void test_fields_json(void **state)
{
	struct timespec when = { .tv_sec = 1715395298, .tv_nsec = 735123456 };
	char *line = eventlog_format_fields_json_line(&when, bundle_fields, N_BUNDLE_FIELDS);
	json_object *o, *v;

	assert_non_null(line);
	assert_int_equal(line[strlen(line) - 1], '\n');
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "time", &v));
	assert_string_equal(json_object_get_string(v), "2024-05-11T02:41:38.735Z");
	assert_true(json_object_object_get_ex(o, "bundlename", &v));
	assert_string_equal(json_object_get_string(v), "file_bundle|Name");
	assert_true(json_object_object_get_ex(o, "bundleid", &v));
	assert_string_equal(json_object_get_string(v), "");
	assert_true(json_object_object_get_ex(o, "path", &v));
	assert_string_equal(json_object_get_string(v), "file\npath");
	assert_int_equal(json_object_object_length(o), 1 + N_BUNDLE_FIELDS);
	json_object_put(o);
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_line),
		cmocka_unit_test(test_optional_fields),
		cmocka_unit_test(test_json_line),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_tty_message),
		cmocka_unit_test(test_fields_lines),
		cmocka_unit_test(test_fields_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
