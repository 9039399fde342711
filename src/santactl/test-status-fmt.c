/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "status_fmt.h"

static char *print_text(const Santa__StatusReply *st)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	santactl_status_print(f, st);
	fclose(f);
	return buf;
}

static void reply_init(Santa__StatusReply *st, char **paths)
{
	santa__status_reply__init(st);
	st->mode = SANTA__CLIENT_MODE__LOCKDOWN;
	st->log_type = "file";
	st->driver_connected = true;
	st->watch_paths = paths;
	st->n_watch_paths = 2;
	st->binary_rules = 3;
	st->cdhash_rules = 1;
	st->root_cache_count = 12;
	st->non_root_cache_count = 4;
	st->events_pending_upload = 9;
}

static void test_text_minimal(void **state)
{
	char *paths[] = { "/", "/home" };
	Santa__StatusReply st;
	char *text;

	reply_init(&st, paths);
	text = print_text(&st);
	assert_non_null(strstr(text, ">>> Daemon Info\n"
				     "  Mode                      | Lockdown\n"
				     "  Log Type                  | file\n"));
	assert_non_null(strstr(text, "  Watched Paths             | /, /home\n"));
	assert_non_null(strstr(text, "  Fail Closed               | No\n"));
	assert_non_null(strstr(text, ">>> Cache Info\n"
				     "  Root cache count          | 12\n"
				     "  Non-root cache count      | 4\n"));
	assert_non_null(strstr(text, "  Binary Rules              | 3\n"));
	assert_non_null(strstr(text, "  CDHash Rules              | 1\n"));
	assert_non_null(strstr(text, "  Events Pending Upload     | 9\n"));
	/* Sections the original prints only when configured. */
	assert_null(strstr(text, ">>> Static Rules"));
	assert_null(strstr(text, ">>> Sync Info"));
	assert_null(strstr(text, ">>> Metrics Info"));
	free(text);
}

static void test_text_sync(void **state)
{
	char *paths[] = { "/", "/home" };
	Santa__StatusReply st;
	char *text;

	reply_init(&st, paths);
	st.static_rule_count = 2;
	st.sync_server = "https://sync.example.com/v1/santa/";
	st.metric_url = "http://localhost:9/";
	st.metric_export_interval = 30;
	text = print_text(&st);
	assert_non_null(strstr(text, ">>> Static Rules\n  Rules                     | 2\n"));
	assert_non_null(strstr(text, "  Sync Server               | "
				     "https://sync.example.com/v1/santa/\n"));
	assert_non_null(strstr(text, "  Last Successful Full Sync | Never\n"));
	assert_non_null(strstr(text, "  Last Successful Rule Sync | Never\n"));
	assert_non_null(strstr(text, "  Export Interval (seconds) | 30\n"));
	/* santad did not say how the sync service is: no row. */
	assert_null(strstr(text, "Sync Service"));
	free(text);
}

static json_object *get(json_object *o, const char *a, const char *b)
{
	json_object *v = NULL, *w = NULL;

	assert_true(json_object_object_get_ex(o, a, &v));
	if (!b)
		return v;
	assert_true(json_object_object_get_ex(v, b, &w));
	return w;
}

static void test_sync_service_state(void **state)
{
	Santa__ServiceState metric = SANTA__SERVICE_STATE__INIT;
	Santa__ServiceState sync = SANTA__SERVICE_STATE__INIT;
	Santa__ServiceState *svcs[] = { &metric, &sync };
	char *paths[] = { "/", "/home" };   /* reply_init says two */
	Santa__StatusReply st;
	json_object *o, *v;
	char *text;

	reply_init(&st, paths);
	st.sync_server = "https://sync.example.com/v1/santa/";
	metric.name = "santametricservice";
	metric.state = "exporting";
	sync.name = "santasyncservice";
	sync.state = "not answering";
	st.services = svcs;
	st.n_services = 2;
	text = print_text(&st);
	assert_non_null(strstr(text, "  Sync Service              | not answering\n"));
	free(text);

	text = santactl_status_json(&st);
	o = json_tokener_parse(text);
	assert_string_equal(json_object_get_string(get(o, "sync", "service")), "not answering");
	json_object_put(o);
	free(text);

	/* Without a sync service state, the original's keys only. */
	st.n_services = 1;
	text = santactl_status_json(&st);
	o = json_tokener_parse(text);
	assert_false(json_object_object_get_ex(get(o, "sync", NULL), "service", &v));
	json_object_put(o);
	free(text);
}

static void test_json(void **state)
{
	char *paths[] = { "/", "/home" };
	Santa__StatusReply st;
	json_object *o;
	char *text;

	reply_init(&st, paths);
	st.last_successful_full = 1;
	text = santactl_status_json(&st);
	assert_non_null(text);
	o = json_tokener_parse(text);
	assert_non_null(o);
	assert_string_equal(json_object_get_string(get(o, "daemon", "mode")), "Lockdown");
	assert_true(json_object_get_boolean(get(o, "daemon", "driver_connected")));
	assert_int_equal(json_object_array_length(get(o, "daemon", "watch_paths")), 2);
	assert_int_equal(json_object_get_int64(get(o, "database", "binary_rules")), 3);
	assert_int_equal(json_object_get_int64(get(o, "database", "events_pending_upload")), 9);
	assert_int_equal(json_object_get_int64(get(o, "static_rules", "rule_count")), 0);
	assert_string_equal(json_object_get_string(get(o, "sync", "server")), "null");
	assert_string_equal(json_object_get_string(get(o, "sync", "push_notifications")),
			    "Disconnected");
	assert_string_not_equal(json_object_get_string(get(o, "sync", "last_successful_full")),
				"Never");
	assert_int_equal(json_object_get_int64(get(o, "cache", "root_cache_count")), 12);
	assert_int_equal(json_object_get_int64(get(o, "cache", "non_root_cache_count")), 4);
	assert_false(json_object_get_boolean(get(o, "watch_items", "enabled")));
	json_object_put(o);
	free(text);
}

static void test_time(void **state)
{
	char buf[64];

	santactl_format_time(0, buf, sizeof(buf));
	assert_string_equal(buf, "Never");
	setenv("TZ", "UTC", 1);
	santactl_format_time(1715395298, buf, sizeof(buf));
	assert_string_equal(buf, "2024/05/11 02:41:38 +0000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_minimal),
		cmocka_unit_test(test_text_sync),
		cmocka_unit_test(test_sync_service_state),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
