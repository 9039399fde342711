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
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_line),
		cmocka_unit_test(test_optional_fields),
		cmocka_unit_test(test_json_line),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_tty_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
