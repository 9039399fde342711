/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	strcpy(path, "/tmp/santa-test-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void load_expect_error(const char *text, const char *expect)
{
	char err[512] = "";
	santa_config cfg;
	char *path = write_tmp(text);

	assert_int_equal(santa_config_load(path, &cfg, err, sizeof(err)), -1);
	if (!strstr(err, expect))
		fail_msg("error \"%s\" lacks \"%s\"", err, expect);
	assert_non_null(strstr(err, path));
	unlink(path);
}

static void test_defaults(void **state)
{
	char err[256];
	santa_config cfg;

	unsetenv("SANTA_CONFIG");
	assert_int_equal(santa_config_load("/nonexistent/santa.json", &cfg, err,
					   sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/santa.json"));

	santa_config_init(&cfg);
	assert_int_equal(cfg.client_mode, SANTA_MODE_MONITOR);
	assert_false(cfg.fail_closed);
	assert_string_equal(cfg.state_directory, "/var/lib/santa");
	assert_string_equal(cfg.run_directory, "/run/santa");
	assert_string_equal(cfg.event_log_path, "/var/log/santa/santa.log");
	santa_config_done(&cfg);
	santa_config_done(NULL);
}

static void test_full(void **state)
{
	char err[256];
	santa_config cfg;
	char *path = write_tmp(
		"{\n"
		"  \"ClientMode\": 2,\n"
		"  \"FailClosed\": true,\n"
		"  \"BlockedPathRegex\": \"^/tmp/.*\",\n"
		"  \"WatchPaths\": [\"/mnt/a\", \"/mnt/b\"],\n"
		"  \"MetricExtraLabels\": {\"site\": \"lab\"},\n"
		"  \"SyncExtraHeaders\": {\"Zentral-Authorization\": \"Bearer x\"},\n"
		"  \"StaticRules\": [{\"identifier\": \"ab\", \"policy\": \"BLACKLIST\",\n"
		"                    \"rule_type\": \"BINARY\"}],\n"
		"  \"BlockUSBMount\": true\n"
		"}\n");

	assert_int_equal(santa_config_load(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.client_mode, SANTA_MODE_LOCKDOWN);
	assert_true(cfg.fail_closed);
	assert_string_equal(cfg.blocked_path_regex, "^/tmp/.*");
	assert_int_equal(cfg.n_watch_paths, 2);
	assert_string_equal(cfg.watch_paths[1], "/mnt/b");
	assert_null(cfg.watch_paths[2]);
	assert_string_equal(cfg.metric_extra_labels[0], "site=lab");
	assert_string_equal(cfg.sync_extra_headers[0],
			    "Zentral-Authorization: Bearer x");
	assert_int_equal(cfg.n_static_rules, 1);
	assert_int_equal(cfg.static_rules[0].policy, 2);
	assert_int_equal(cfg.static_rules[0].rule_type, 1000);
	assert_string_equal(cfg.path, path);
	santa_config_done(&cfg);
	unlink(path);
}

static void test_errors(void **state)
{
	load_expect_error("{\n  \"ClientMode\": \"x\"\n}\n", ":2: ClientMode: expected");
	load_expect_error("{\n\n  \"ClientMode\": 3\n}\n", ":3: ClientMode:");
	load_expect_error("{\n  \"FailClosed\": 1\n}", ":2: FailClosed: expected true");
	load_expect_error("{\n  \"Bogus\": 1\n}", ":2: Bogus: unknown configuration key");
	load_expect_error("{\n  \"ClientMode\": 1,\n  \"FailClosed\": tru\n}",
			  ":3: invalid JSON");
	load_expect_error("[1]", "top level");
	load_expect_error("{\n  \"ClientMode\": 1,\n}", ":3: invalid JSON");
	load_expect_error("{\"ClientMode\": 1", "unexpected end of file");
	load_expect_error("{} x", "unexpected text");
	load_expect_error("{\"StaticRules\": [{\"identifier\": \"a\", "
			  "\"policy\": \"NOPE\", \"rule_type\": \"BINARY\"}]}",
			  "StaticRules: rule 0: \"policy\": unknown policy \"NOPE\"");
	load_expect_error("{\"StaticRules\": [{\"policy\": \"ALLOWLIST\", "
			  "\"rule_type\": \"BINARY\"}]}",
			  "rule 0: missing \"identifier\"");
	load_expect_error("{\"WatchPaths\": [\"/a\", 2]}",
			  "WatchPaths: entry 1: expected a string");
	load_expect_error("{\"MetricExportInterval\": -1}", "out of range");
}

static void test_names(void **state)
{
	assert_int_equal(santa_policy_from_name("WHITELIST"), 1);
	assert_int_equal(santa_policy_from_name("silent_blocklist"), 3);
	assert_int_equal(santa_policy_from_name("x"), -1);
	assert_string_equal(santa_policy_name(5), "ALLOWLIST_COMPILER");
	assert_int_equal(santa_rule_type_from_name("TEAMID"), 4000);
	assert_string_equal(santa_rule_type_name(500), "CDHASH");
	assert_null(santa_rule_type_name(1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
