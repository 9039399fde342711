/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The formats against their golden files (tests/e2e/golden/metrics-*,
 * directory given as the first argument), the check of sets from the wire,
 * and the configuration check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "format.h"
#include "metricset.h"

static const char *golden_dir;

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long len;

	if (!f)
		fail_msg("opening golden file '%s' failed", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return text;
}

static void expect_golden(metric_format f, const char *file)
{
	Santa__MetricSet *set = metric_set_sample();
	char path[4096], err[256] = "", *text, *golden;
	size_t len;

	assert_non_null(set);
	assert_int_equal(metric_set_check(set, err, sizeof(err)), 0);
	assert_int_equal(metric_format_render(f, set, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	snprintf(path, sizeof(path), "%s/%s", golden_dir, file);
	golden = read_file(path);
	if (strcmp(text, golden) != 0) {
		fprintf(stderr, "%s differs; rendered:\n%s", path, text);
		fail();
	}
	free(golden);
	free(text);
	metric_set_free(set);
}

static void test_golden_rawjson(void **state)
{
	expect_golden(METRIC_FORMAT_RAWJSON, "metrics-rawjson.json");
}

static void test_golden_monarchjson(void **state)
{
	expect_golden(METRIC_FORMAT_MONARCHJSON, "metrics-monarchjson.json");
}

static void test_golden_prometheus(void **state)
{
	expect_golden(METRIC_FORMAT_PROMETHEUS, "metrics-prometheus.txt");
}

/* The rawjson of the sample set has the original's keys at every level. */
static void test_rawjson_shape(void **state)
{
	Santa__MetricSet *set = metric_set_sample();
	json_object *root, *metrics, *m, *fields, *rows, *row, *o;
	char *text;

	assert_int_equal(metric_format_render(METRIC_FORMAT_RAWJSON, set, &text, NULL), 0);
	root = json_tokener_parse(text);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "metrics", &metrics));
	assert_true(json_object_object_get_ex(root, "root_labels", &o));
	assert_true(json_object_object_get_ex(o, "hostname", &o));
	assert_string_equal(json_object_get_string(o), "testHost");
	assert_true(json_object_object_get_ex(metrics, "/santa/executions", &m));
	assert_true(json_object_object_get_ex(m, "type", &o));
	assert_int_equal(json_object_get_int(o), 9);
	assert_true(json_object_object_get_ex(m, "description", &o));
	assert_true(json_object_object_get_ex(m, "fields", &fields));
	assert_true(json_object_object_get_ex(fields, "decision,reason", &rows));
	row = json_object_array_get_idx(rows, 0);
	assert_true(json_object_object_get_ex(row, "value", &o));
	assert_string_equal(json_object_get_string(o), "ALLOW,BINARY");
	assert_true(json_object_object_get_ex(row, "created", &o));
	assert_string_equal(json_object_get_string(o), "2021-09-16T21:07:34.826Z");
	assert_true(json_object_object_get_ex(row, "last_updated", &o));
	assert_true(json_object_object_get_ex(row, "data", &o));
	assert_int_equal(json_object_get_int64(o), 40);
	/* The histogram, as counters the original's collectors know. */
	assert_true(json_object_object_get_ex(metrics, "/santa/decision_time_bucket", &m));
	assert_true(json_object_object_get_ex(metrics, "/santa/decision_time_count", &m));
	assert_true(json_object_object_get_ex(metrics, "/santa/decision_time_sum", &m));
	assert_false(json_object_object_get_ex(metrics, "/santa/decision_time", &m));
	json_object_put(root);
	free(text);
	metric_set_free(set);
}

static void test_empty_set(void **state)
{
	Santa__MetricSet *set = metric_set_new(0);
	char err[256], *text;

	assert_int_equal(metric_set_check(set, err, sizeof(err)), 0);
	for (int f = 0; f < METRIC_FORMAT_MAX; f++) {
		assert_int_equal(metric_format_render(f, set, &text, NULL), 0);
		if (f == METRIC_FORMAT_PROMETHEUS)
			assert_string_equal(text, "");
		else
			assert_non_null(strchr(text, '{'));
		free(text);
	}
	metric_set_free(set);
}

/* --- Sets a peer could send --- */

#define FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static Santa__MetricSet *one_counter(const char *name, const char *const *fields,
				     const char *const *values)
{
	Santa__MetricSet *set = metric_set_new(1);
	Santa__Metric *m = metric_set_add_metric(set, name,
						 SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER,
						 "help", fields);
	Santa__MetricValue *v = metric_add_value(m, values, 1, 2);

	metric_value_set_int64(v, 7);
	return set;
}

static void expect_rejected(Santa__MetricSet *set, const char *reason)
{
	char err[512] = "";

	assert_int_equal(metric_set_check(set, err, sizeof(err)), -22);
	if (!strstr(err, reason))
		fail_msg("error \"%s\" lacks \"%s\"", err, reason);
	metric_set_free(set);
}

static void test_check_fields(void **state)
{
	Santa__MetricSet *set;

	expect_rejected(one_counter("/a", FIELDS("x", "y"), FIELDS("1")),
			"1 field values for 2 field names");
	expect_rejected(one_counter("/a", FIELDS("x"), FIELDS("1,2")), "field value 0");
	expect_rejected(one_counter("/a", FIELDS("x,y"), FIELDS("1")), "field name 0");
	expect_rejected(one_counter("/a", FIELDS("x", "x"), FIELDS("1", "2")),
			"same label");
	expect_rejected(one_counter("/a", FIELDS("x-y", "x_y"), FIELDS("1", "2")),
			"same label");
	expect_rejected(one_counter("/a", FIELDS("x"), FIELDS("\xc3\x28")), "UTF-8");
	expect_rejected(one_counter("/a", FIELDS("x"), FIELDS("a\nb")), "UTF-8");
	expect_rejected(one_counter("", NULL, NULL), "name is empty");

	set = one_counter("/a", FIELDS("x"), FIELDS("1"));
	metric_value_set_int64(metric_add_value(set->metrics[0], FIELDS("1"), 1, 1), 3);
	expect_rejected(set, "given twice");
}

static void test_check_types(void **state)
{
	Santa__MetricSet *set;
	Santa__Metric *m;
	Santa__MetricValue *v;

	set = one_counter("/a", NULL, NULL);
	metric_value_set_double(set->metrics[0]->values[0], 1.0);
	expect_rejected(set, "does not match its type");

	set = one_counter("/a", NULL, NULL);
	set->metrics[0]->type = SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_DOUBLE;
	metric_value_set_double(set->metrics[0]->values[0], 1.0 / 0.0);
	expect_rejected(set, "not finite");

	set = one_counter("/a", NULL, NULL);
	set->metrics[0]->type = 42;
	expect_rejected(set, "unknown type 42");

	set = one_counter("/a", NULL, NULL);
	set->metrics[0]->values[0]->created_usec = -5;
	expect_rejected(set, "timestamp out of range");

	set = metric_set_new(1);
	m = metric_set_add_metric(set, "/h", SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM, "h",
				  NULL);
	v = metric_add_value(m, NULL, 1, 1);
	assert_int_equal(metric_value_set_histogram(v, (const double[]){ 2, 1 }, 2,
						    (const uint64_t[]){ 1, 1, 1 }, 3), 0);
	expect_rejected(set, "ascending");

	set = metric_set_new(1);
	m = metric_set_add_metric(set, "/h", SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM, "h",
				  FIELDS("le"));
	expect_rejected(set, "reserved");
}

static void test_check_names(void **state)
{
	Santa__MetricSet *set = one_counter("/a/b", NULL, NULL);

	metric_set_add_metric(set, "/a_b", SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER, "h",
			      NULL);
	expect_rejected(set, "both \"a_b_total\"");

	set = one_counter("/a", NULL, NULL);
	metric_set_add_metric(set, "/a", SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER, "h", NULL);
	expect_rejected(set, "given twice");

	set = one_counter("/a", NULL, NULL);
	metric_set_add_label(set, "host-name", "x");
	metric_set_add_label(set, "host_name", "y");
	expect_rejected(set, "root label \"host_name\" given twice");
}

static void test_prometheus_escaping(void **state)
{
	Santa__MetricSet *set = one_counter("/santa/7x", FIELDS("path"),
					    FIELDS("a\"b\\c"));
	char err[256], *text;

	metric_set_add_label(set, "extra", "q\"");
	assert_int_equal(metric_set_check(set, err, sizeof(err)), 0);
	assert_int_equal(metric_format_render(METRIC_FORMAT_PROMETHEUS, set, &text, NULL), 0);
	assert_string_equal(text, "# HELP santa_7x_total help\n"
			    "# TYPE santa_7x_total counter\n"
			    "santa_7x_total{extra=\"q\\\"\",path=\"a\\\"b\\\\c\"} 7\n");
	free(text);
	metric_set_free(set);
}

/* A field wins over a root label of the same Prometheus name. */
static void test_prometheus_label_clash(void **state)
{
	Santa__MetricSet *set = one_counter("/x_total", FIELDS("hostname"), FIELDS("f"));
	char err[256], *text;

	metric_set_add_label(set, "hostname", "root");
	assert_int_equal(metric_set_check(set, err, sizeof(err)), 0);
	assert_int_equal(metric_format_render(METRIC_FORMAT_PROMETHEUS, set, &text, NULL), 0);
	assert_non_null(strstr(text, "\nx_total{hostname=\"f\"} 7\n"));
	free(text);
	metric_set_free(set);
}

static void expect_config(const char *format, const char *url, int ret, const char *msg)
{
	char err[512] = "";
	metric_format f = METRIC_FORMAT_MAX;

	assert_int_equal(metric_export_check(format, url, &f, err, sizeof(err)), ret);
	if (ret == 0)
		return;
	if (!strstr(err, msg))
		fail_msg("error \"%s\" lacks \"%s\"", err, msg);
}

static void test_config(void **state)
{
	metric_format f = METRIC_FORMAT_MAX;
	char err[256];

	assert_int_equal(metric_export_check(NULL, "file:///tmp/x", &f, err, sizeof(err)), 0);
	assert_int_equal(f, METRIC_FORMAT_RAWJSON);
	assert_int_equal(metric_export_check("prometheus", "https://h/p", &f, err,
					     sizeof(err)), 0);
	assert_int_equal(f, METRIC_FORMAT_PROMETHEUS);
	expect_config("monarchjson", "http://127.0.0.1:9/x", 0, NULL);
	expect_config("rawjson", "file://localhost/var/lib/x.prom", 0, NULL);
	expect_config("xml", "file:///tmp/x", -22, "MetricFormat \"xml\" is not one of");
	expect_config("rawjson", "ftp://h/x", -22, "no writer for scheme \"ftp\"");
	expect_config("rawjson", "/tmp/x", -22, "is not a URL");
	/* libcurl refuses a remote file URL as a URL already. */
	expect_config("rawjson", "file://otherhost/x", -22, "\"file://otherhost/x\"");
	expect_config("rawjson", "file:///tmp/dir/", -22, "absolute path");
	expect_config("rawjson", "", -22, "MetricURL is not set");
	expect_config("rawjson", NULL, -22, "MetricURL is not set");
}

static void test_time(void **state)
{
	char buf[40];

	assert_string_equal(metric_format_time(0, buf, sizeof(buf)),
			    "1970-01-01T00:00:00.000Z");
	assert_string_equal(metric_format_time(1631826454826999LL, buf, sizeof(buf)),
			    "2021-09-16T21:07:34.826Z");
	assert_string_equal(metric_format_time(253402300799999999LL, buf, sizeof(buf)),
			    "9999-12-31T23:59:59.999Z");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_rawjson),
		cmocka_unit_test(test_golden_monarchjson),
		cmocka_unit_test(test_golden_prometheus),
		cmocka_unit_test(test_rawjson_shape),
		cmocka_unit_test(test_empty_set),
		cmocka_unit_test(test_check_fields),
		cmocka_unit_test(test_check_types),
		cmocka_unit_test(test_check_names),
		cmocka_unit_test(test_prometheus_escaping),
		cmocka_unit_test(test_prometheus_label_clash),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_time),
	};

	golden_dir = argc > 1 ? argv[1] : "tests/e2e/golden";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
