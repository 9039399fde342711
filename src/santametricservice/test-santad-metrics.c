/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's metrics (src/santad/metrics.c) over a stubbed santad: what the
 * decision path counts shows up in the snapshot, with the original's
 * timestamps and labels, and a configuration it cannot export with is
 * reported, not ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "metrics.h"
#include "santa-build.h"
#include "santad-stub.h"

static json_object *snapshot_json(void)
{
	json_object *root;
	char *text = NULL;

	assert_int_equal(metrics_rawjson(&text), 0);
	root = json_tokener_parse(text);
	assert_non_null(root);
	free(text);
	return root;
}

/* metrics.FIELD_KEY[...] of NAME: the row whose value is VALUE. */
static json_object *row(json_object *root, const char *name, const char *field_key,
			const char *value)
{
	json_object *metrics, *m, *fields, *rows, *o;

	assert_true(json_object_object_get_ex(root, "metrics", &metrics));
	if (!json_object_object_get_ex(metrics, name, &m))
		fail_msg("metric %s missing", name);
	assert_true(json_object_object_get_ex(m, "fields", &fields));
	if (!json_object_object_get_ex(fields, field_key, &rows))
		fail_msg("metric %s has no field key \"%s\"", name, field_key);
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);

		assert_true(json_object_object_get_ex(r, "value", &o));
		if (strcmp(json_object_get_string(o), value) == 0)
			return r;
	}
	return NULL;
}

static int64_t row_data(json_object *root, const char *name, const char *field_key,
			const char *value)
{
	json_object *r = row(root, name, field_key, value), *o;

	if (!r)
		fail_msg("metric %s has no value \"%s\"", name, value);
	assert_true(json_object_object_get_ex(r, "data", &o));
	return json_object_get_int64(o);
}

static const char *row_string(json_object *r, const char *key)
{
	json_object *o;

	assert_true(json_object_object_get_ex(r, key, &o));
	return json_object_get_string(o);
}

static int setup(void **state)
{
	santa_config_init(&stub_config);
	return metrics_start(NULL, NULL, NULL, NULL);
}

static int teardown(void **state)
{
	metrics_stop();
	santa_config_done(&stub_config);
	return 0;
}

static void test_executions(void **state)
{
	json_object *root;

	metrics_exec(SANTAD_DECISION_ALLOW, SANTAD_REASON_BINARY, true, 3);
	metrics_exec(SANTAD_DECISION_ALLOW, SANTAD_REASON_BINARY, false, 700);
	metrics_exec(SANTAD_DECISION_DENY, SANTAD_REASON_UNKNOWN, false, 7000000);
	root = snapshot_json();
	assert_int_equal(row_data(root, "/santa/executions", "decision,reason",
				  "ALLOW,BINARY"), 2);
	assert_int_equal(row_data(root, "/santa/executions", "decision,reason",
				  "DENY,UNKNOWN"), 1);
	/* Counters never bumped are not there, as in the original. */
	assert_null(row(root, "/santa/executions", "decision,reason", "ALLOW,SCOPE"));
	/* 3 µs is in the first bucket (5 µs); 700 µs in the 1 ms one; 7 s
	 * only in +Inf. */
	assert_int_equal(row_data(root, "/santa/decision_time_bucket", "cache,le",
				  "hit,5e-06"), 1);
	assert_int_equal(row_data(root, "/santa/decision_time_bucket", "cache,le",
				  "miss,0.0005"), 0);
	assert_int_equal(row_data(root, "/santa/decision_time_bucket", "cache,le",
				  "miss,0.001"), 1);
	assert_int_equal(row_data(root, "/santa/decision_time_bucket", "cache,le",
				  "miss,5"), 1);
	assert_int_equal(row_data(root, "/santa/decision_time_bucket", "cache,le",
				  "miss,+Inf"), 2);
	assert_int_equal(row_data(root, "/santa/decision_time_count", "cache", "miss"), 2);
	json_object_put(root);
}

static void test_state_and_counters(void **state)
{
	json_object *root;

	stub_cache_count = 17;
	stub_events = 4;
	stub_rules.binary = 12;
	atomic_store(&stub_counters.exec_events, 10);
	atomic_store(&stub_counters.exec_cache_hits, 7);
	atomic_store(&stub_counters.exec_timeouts, 2);
	atomic_store(&stub_counters.log_dropped, 5);
	metrics_set_gui_clients(1);
	metrics_sync_result(true);
	metrics_sync_result(false);
	metrics_sync_result(true);
	root = snapshot_json();
	assert_int_equal(row_data(root, "/santa/cache_size", "", ""), 17);
	assert_int_equal(row_data(root, "/santa/events_pending_upload", "", ""), 4);
	assert_int_equal(row_data(root, "/santa/rules", "rule_type", "binary"), 12);
	assert_int_equal(row_data(root, "/santa/rules", "rule_type", "cdhash"), 0);
	assert_int_equal(row_data(root, "/santa/cache_lookups", "result", "hit"), 7);
	assert_int_equal(row_data(root, "/santa/cache_lookups", "result", "miss"), 3);
	assert_int_equal(row_data(root, "/santa/fallback_decisions", "cause", "timeout"), 2);
	assert_null(row(root, "/santa/fallback_decisions", "cause", "unreadable"));
	assert_int_equal(row_data(root, "/santa/log_lines_dropped", "log", "event"), 5);
	assert_int_equal(row_data(root, "/santa/gui_clients", "", ""), 1);
	assert_int_equal(row_data(root, "/santa/syncs", "result", "success"), 2);
	assert_int_equal(row_data(root, "/santa/syncs", "result", "failure"), 1);
	assert_string_equal(row_string(row(root, "/santa/mode", "", ""), "data"), "Monitor");
	assert_string_equal(row_string(row(root, "/build/label", "", ""), "data"),
			    SANTA_VERSION);
	assert_true(row_data(root, "/proc/memory/resident_size", "process", "santad") > 0);
	assert_true(row_data(root, "/proc/birth_timestamp", "process", "santad") >
		    1600000000000000LL);
	assert_non_null(row(root, "/proc/cpu_usage", "process,mode", "santad,user"));
	json_object_put(root);
}

/* created stays; last_updated moves when the value does. */
static void test_timestamps(void **state)
{
	json_object *a, *b, *r1, *r2;

	stub_cache_count = 1;
	a = snapshot_json();
	usleep(5000);
	stub_cache_count = 2;
	b = snapshot_json();
	r1 = row(a, "/santa/cache_size", "", "");
	r2 = row(b, "/santa/cache_size", "", "");
	assert_string_equal(row_string(r1, "created"), row_string(r2, "created"));
	assert_string_not_equal(row_string(r1, "last_updated"),
				row_string(r2, "last_updated"));
	r1 = row(a, "/build/label", "", "");
	r2 = row(b, "/build/label", "", "");
	assert_string_equal(row_string(r1, "last_updated"), row_string(r2, "last_updated"));
	json_object_put(a);
	json_object_put(b);
}

static void test_labels(void **state)
{
	static char *labels[] = { "env=prod", "username=", "site=a=b", NULL };
	json_object *root, *rl, *o;

	stub_config.metric_extra_labels = labels;
	root = snapshot_json();
	stub_config.metric_extra_labels = NULL;
	assert_true(json_object_object_get_ex(root, "root_labels", &rl));
	assert_true(json_object_object_get_ex(rl, "hostname", &o));
	assert_true(json_object_object_get_ex(rl, "env", &o));
	assert_string_equal(json_object_get_string(o), "prod");
	assert_true(json_object_object_get_ex(rl, "site", &o));
	assert_string_equal(json_object_get_string(o), "a=b");
	assert_false(json_object_object_get_ex(rl, "username", &o));
	json_object_put(root);
}

static void expect_misconfigured(const char *format, const char *url, const char *msg)
{
	stub_config.metric_format = (char *)format;
	stub_config.metric_url = (char *)url;
	assert_int_equal(metrics_start(NULL, NULL, NULL, "/nonexistent.sock"), 0);
	stub_config.metric_format = NULL;
	stub_config.metric_url = NULL;
	assert_non_null(metrics_error());
	if (!strstr(metrics_error(), msg))
		fail_msg("error \"%s\" lacks \"%s\"", metrics_error(), msg);
	assert_string_equal(metrics_export_state(), "misconfigured");
	metrics_stop();
}

static void test_misconfigured(void **state)
{
	metrics_stop();
	assert_null(metrics_error());
	assert_string_equal(metrics_export_state(), "not exporting (no MetricURL)");
	expect_misconfigured("xml", "file:///tmp/x", "MetricFormat \"xml\"");
	expect_misconfigured("rawjson", "ftp://h/x", "scheme \"ftp\"");
	expect_misconfigured("prometheus", "https://", "MetricURL \"https://\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_executions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_and_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timestamps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misconfigured, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
