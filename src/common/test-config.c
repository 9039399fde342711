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

#define SHA_A "b9bcc9ea84ea1c32c4fe9ab5a8f0e8b79e3ea2c4ae2ad02b6b9d0d4bd0d3e4b1"

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
		"  \"StaticRules\": [{\"identifier\": \"" SHA_A "\",\n"
		"                    \"policy\": \"BLACKLIST\",\n"
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
	/* json-c would keep the last of two; neither is taken for granted. */
	load_expect_error("{\n  \"ClientMode\": 1,\n  \"FailClosed\": true,\n"
			  "  \"ClientMode\": 2\n}",
			  ":4: ClientMode: given more than once (also on line 2)");
	load_expect_error("{\n  \"ClientMode\": 1,\n  \"FailClosed\": tru\n}",
			  ":3: invalid JSON");
	load_expect_error("[1]", "top level");
	load_expect_error("{\n  \"ClientMode\": 1,\n}", ":3: invalid JSON");
	load_expect_error("{\"ClientMode\": 1", "unexpected end of file");
	load_expect_error("{} x", "unexpected text");
	load_expect_error("{\"WatchPaths\": [\"/a\",\n 2]}",
			  ":2: WatchPaths[1]: expected a string");
	load_expect_error("{\"MetricExtraLabels\": {\"a\": \"b\",\n\"c\": 1}}",
			  ":2: MetricExtraLabels: \"c\": expected a string");
	load_expect_error("{\"MetricExportInterval\": -1}", "out of range");
}

/* Rules on lines 3, 6 and 9 (each spread over three lines); rule 2 is
 * rewritten by each case. */
static void static_rule_error(const char *rule2, const char *expect)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "{\n"
		 "  \"StaticRules\": [\n"
		 "    {\"identifier\": \"" SHA_A "\",\n"
		 "     \"policy\": \"ALLOWLIST\",\n"
		 "     \"rule_type\": \"BINARY\"},\n"
		 "    {\"identifier\": \"EQHXZ8M8AV:com.example\",\n"
		 "     \"custom_msg\": \"a \\\"policy\\\": in a string, [\\\"x\\\"]\",\n"
		 "     \"policy\": \"BLOCKLIST\", \"rule_type\": \"SIGNINGID\"},\n"
		 "    %s\n"
		 "  ]\n"
		 "}\n", rule2);
	load_expect_error(text, expect);
}

static void test_static_rule_errors(void **state)
{
	static_rule_error("{\"identifier\": \"nothex\",\n"
			  "     \"policy\": \"BLOCKLIST\", \"rule_type\": \"BINARY\"}",
			  ":9: StaticRules[2]: \"identifier\": BINARY identifier "
			  "\"nothex\" is not a SHA-256");
	static_rule_error("{\"sha256\": \"ab\", \"policy\": \"BLOCKLIST\",\n"
			  "     \"rule_type\": \"BINARY\"}",
			  ":9: StaticRules[2]: \"sha256\": BINARY identifier");
	static_rule_error("{\"identifier\": \"" SHA_A "\",\n"
			  "     \"policy\": \"NOPE\", \"rule_type\": \"BINARY\"}",
			  ":10: StaticRules[2]: \"policy\": unknown policy \"NOPE\"");
	static_rule_error("{\"identifier\": \"" SHA_A "\",\n"
			  "     \"policy\": \"ALLOWLIST\",\n"
			  "     \"rule_type\": \"BINARYX\"}",
			  ":11: StaticRules[2]: \"rule_type\": unknown rule type");
	static_rule_error("{\"identifier\": \"" SHA_A "\",\n"
			  "     \"policy\": 1, \"rule_type\": \"BINARY\"}",
			  ":10: StaticRules[2]: \"policy\": expected a string, got an "
			  "integer");
	static_rule_error("{\"identifier\": \"" SHA_A "\",\n"
			  "     \"policy\": \"ALLOWLIST\", \"custom_url\": [],\n"
			  "     \"rule_type\": \"BINARY\"}",
			  ":10: StaticRules[2]: \"custom_url\": expected a string, got an "
			  "array");
	static_rule_error("{\"identifier\": \"" SHA_A "\",\n"
			  "     \"rule_type\": \"BINARY\"}",
			  ":9: StaticRules[2]: missing \"policy\"");
	static_rule_error("{\"policy\": \"ALLOWLIST\",\n"
			  "     \"rule_type\": \"BINARY\"}",
			  ":9: StaticRules[2]: missing \"identifier\"");
	static_rule_error("{\"identifier\": \"\",\n"
			  "     \"policy\": \"ALLOWLIST\", \"rule_type\": \"BINARY\"}",
			  ":9: StaticRules[2]: missing \"identifier\"");
	static_rule_error("\"" SHA_A "\"",
			  ":9: StaticRules[2]: expected an object, got a string");
	load_expect_error("{\n  \"StaticRules\": {}\n}",
			  ":2: StaticRules: expected an array of rules");
}

/* Values checked after loading (santad's regexes, a static rule) are
 * reported at their key's line, or their rule's. */
static void test_error_after_load(void **state)
{
	char err[512], expect[512];
	santa_config cfg;
	char *path = write_tmp(
		"{\n"
		"  \"ClientMode\": 1,\n"
		"  \"AllowedPathRegex\": \"(\",\n"
		"  \"StaticRules\": [\n"
		"    {\"identifier\": \"" SHA_A "\", \"policy\": \"ALLOWLIST\",\n"
		"     \"rule_type\": \"BINARY\"},\n"
		"    {\"identifier\": \"T1\", \"policy\": \"ALLOWLIST\",\n"
		"     \"rule_type\": \"TEAMID\"}\n"
		"  ],\n"
		"  \"TrustedExecutables\": [\n"
		"    \"/opt/santa/\",\n"
		"\n"
		"    \"relative\"\n"
		"  ]\n"
		"}\n");

	assert_int_equal(santa_config_load(path, &cfg, err, sizeof(err)), 0);
	/* An entry of a list is named at its own line. */
	santa_config_error(&cfg, "TrustedExecutables[1]", err, sizeof(err), "no");
	snprintf(expect, sizeof(expect), "%s:13: TrustedExecutables[1]: no", path);
	assert_string_equal(err, expect);
	santa_config_error(&cfg, "TrustedExecutables[2]", err, sizeof(err), "no");
	snprintf(expect, sizeof(expect), "%s:10: TrustedExecutables[2]: no", path);
	assert_string_equal(err, expect);
	assert_int_equal(cfg.static_rules[1].line, 7);
	assert_int_equal(santa_config_error(&cfg, "AllowedPathRegex", err, sizeof(err),
					    "bad %s", "regex"), -1);
	snprintf(expect, sizeof(expect), "%s:3: AllowedPathRegex: bad regex", path);
	assert_string_equal(err, expect);
	santa_config_error(&cfg, "StaticRules[1]", err, sizeof(err), "no");
	snprintf(expect, sizeof(expect), "%s:7: StaticRules[1]: no", path);
	assert_string_equal(err, expect);
	santa_config_error(&cfg, "StaticRules[5]", err, sizeof(err), "no");
	snprintf(expect, sizeof(expect), "%s:4: StaticRules[5]: no", path);
	assert_string_equal(err, expect);
	santa_config_error(&cfg, "BlockedPathRegex", err, sizeof(err), "no");
	snprintf(expect, sizeof(expect), "%s: BlockedPathRegex: no", path);
	assert_string_equal(err, expect);
	snprintf(expect, sizeof(expect), "%s:2: ", path);
	assert_string_equal(santa_config_where(&cfg, "ClientMode", err, sizeof(err)), expect);
	santa_config_done(&cfg);
	unlink(path);

	santa_config_init(&cfg);
	santa_config_error(&cfg, "AllowedPathRegex", err, sizeof(err), "no");
	assert_string_equal(err, "AllowedPathRegex: no");
	assert_string_equal(santa_config_where(&cfg, "ClientMode", err, sizeof(err)), "");
	santa_config_done(&cfg);
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
		cmocka_unit_test(test_static_rule_errors),
		cmocka_unit_test(test_error_after_load),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
