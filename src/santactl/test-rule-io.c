/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rule_io.h"

#define SHA_A "84de9c61777ca36b13228e2446d53e966096e78db7a72c632b5c185b2ffe68a6"
#define SHA_B "0000000000000000000000000000000000000000000000000000000000000001"

static int parse(const char *text, santactl_rules *rs, char *err)
{
	return santactl_rules_parse(text, strlen(text), rs, err, 512);
}

static void expect_error(const char *text, const char *want)
{
	santactl_rules rs;
	char err[512] = "";

	assert_int_equal(parse(text, &rs, err), -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	assert_int_equal(rs.n, 0);
	assert_null(rs.rules);
}

static void test_parse_valid(void **state)
{
	santactl_rules rs;
	char err[512];

	assert_int_equal(parse("{\"rules\": [{\"policy\": \"BLOCKLIST\", \"identifier\": \""
			       SHA_A "\", \"rule_type\": \"BINARY\", \"custom_msg\": \"no\"},"
			       "{\"policy\": \"WHITELIST\", \"sha256\": \""
			       "84DE9C61777CA36B13228E2446D53E966096E78DB7A72C632B5C185B2FFE68A6"
			       "\", \"rule_type\": \"CERTIFICATE\"},"
			       "{\"policy\": \"ALLOWLIST\", \"identifier\": \"EQHXZ8M8AV\","
			       " \"rule_type\": \"TEAMID\", \"custom_url\": \"https://x/\"}]}",
			       &rs, err), 0);
	assert_int_equal(rs.n, 3);
	assert_string_equal(rs.rules[0]->identifier, SHA_A);
	assert_int_equal(rs.rules[0]->policy, SANTA__POLICY__BLOCKLIST);
	assert_int_equal(rs.rules[0]->rule_type, SANTA__RULE_TYPE__BINARY);
	assert_string_equal(rs.rules[0]->custom_msg, "no");
	/* Hex identifiers are lower-cased to match santad's hashes. */
	assert_string_equal(rs.rules[1]->identifier, SHA_A);
	assert_int_equal(rs.rules[1]->policy, SANTA__POLICY__ALLOWLIST);
	assert_string_equal(rs.rules[2]->identifier, "EQHXZ8M8AV");
	assert_string_equal(rs.rules[2]->custom_url, "https://x/");
	santactl_rules_done(&rs);
	santactl_rules_done(NULL);
}

static void test_parse_errors(void **state)
{
	expect_error("", "line 1");
	expect_error("{\"rules\": [", "unexpected end of file");
	expect_error("{\"rules\": []} x", "trailing data");
	expect_error("[]", "\"rules\" array");
	expect_error("{\"rules\": {}}", "\"rules\" array");
	expect_error("{\"rules\": [{\"policy\": \"ALLOWLIST\", \"identifier\": \"" SHA_A
		     "\", \"rule_type\": \"BINARY\"}, {\"policy\": \"ALLOW\", \"identifier\": \""
		     SHA_A "\", \"rule_type\": \"BINARY\"}]}", "rule 1: \"policy\"");
	expect_error("{\"rules\": [{\"policy\": \"ALLOWLIST\", \"identifier\": \"abc\","
		     " \"rule_type\": \"BINARY\"}]}", "rule 0: \"identifier\": BINARY");
	expect_error("{\"rules\": [{\"policy\": \"ALLOWLIST\", \"identifier\": \"abc\","
		     " \"rule_type\": \"CDHASH\"}]}", "rule 0: \"identifier\": CDHASH");
	expect_error("{\"rules\": [{\"policy\": \"ALLOWLIST\", \"identifier\": \"" SHA_A
		     "\"}]}", "rule 0: missing \"rule_type\"");
	expect_error("{\"rules\": [{\"policy\": \"ALLOWLIST\", \"identifier\": 5,"
		     " \"rule_type\": \"BINARY\"}]}", "rule 0: \"identifier\"");
	expect_error("{\"rules\": [7]}", "rule 0: expected an object");
}

static void test_long_fields(void **state)
{
	size_t n = SANTACTL_RULE_MAX_TEXT + 200;
	char *text = malloc(n + 256), *msg = malloc(SANTACTL_RULE_MAX_TEXT + 2);

	memset(msg, 'm', SANTACTL_RULE_MAX_TEXT + 1);
	msg[SANTACTL_RULE_MAX_TEXT + 1] = '\0';
	snprintf(text, n + 256, "{\"rules\": [{\"policy\": \"BLOCKLIST\", \"identifier\": \""
		 SHA_A "\", \"rule_type\": \"BINARY\", \"custom_msg\": \"%s\"}]}", msg);
	expect_error(text, "rule 0: \"custom_msg\": longer than");
	free(text);
	free(msg);
}

static void test_round_trip(void **state)
{
	Santa__Rule *rules[3];
	santactl_rules rs;
	size_t count;
	char err[512], *json;

	rules[0] = santactl_rule_new(SHA_A, SANTA__POLICY__BLOCKLIST, SANTA__RULE_TYPE__BINARY,
				     "msg \"quoted\" /slash", "https://example.com/a");
	rules[1] = santactl_rule_new(SHA_B, SANTA__POLICY__ALLOWLIST_TRANSITIVE,
				     SANTA__RULE_TYPE__BINARY, NULL, NULL);
	rules[2] = santactl_rule_new("platform:com.x", SANTA__POLICY__ALLOWLIST_COMPILER,
				     SANTA__RULE_TYPE__SIGNINGID, NULL, NULL);
	json = santactl_rules_to_json(rules, 3, &count);
	assert_non_null(json);
	assert_int_equal(count, 2);   /* transitive rules stay on this machine */
	assert_int_equal(parse(json, &rs, err), 0);
	assert_int_equal(rs.n, 2);
	assert_string_equal(rs.rules[0]->identifier, SHA_A);
	assert_int_equal(rs.rules[0]->policy, SANTA__POLICY__BLOCKLIST);
	assert_string_equal(rs.rules[0]->custom_msg, "msg \"quoted\" /slash");
	assert_string_equal(rs.rules[0]->custom_url, "https://example.com/a");
	assert_string_equal(rs.rules[1]->identifier, "platform:com.x");
	assert_int_equal(rs.rules[1]->policy, SANTA__POLICY__ALLOWLIST_COMPILER);
	assert_int_equal(rs.rules[1]->rule_type, SANTA__RULE_TYPE__SIGNINGID);
	santactl_rules_done(&rs);
	free(json);
	for (int i = 0; i < 3; i++)
		santa__rule__free_unpacked(rules[i], NULL);
}

static void test_check_identifier(void **state)
{
	char id[] = "ABCDEF0123456789ABCDEF0123456789ABCDEF01", err[128];
	char sha[] = SHA_A;

	assert_int_equal(santactl_rule_check_identifier(SANTA__RULE_TYPE__CDHASH, id, err,
							sizeof(err)), 0);
	assert_string_equal(id, "abcdef0123456789abcdef0123456789abcdef01");
	assert_int_equal(santactl_rule_check_identifier(SANTA__RULE_TYPE__BINARY, id, err,
							sizeof(err)), -1);
	assert_string_equal(err, "BINARY or CERTIFICATE rules require a valid SHA-256");
	assert_int_equal(santactl_rule_check_identifier(SANTA__RULE_TYPE__BINARY, sha, err,
							sizeof(err)), 0);
	assert_int_equal(santactl_rule_check_identifier(SANTA__RULE_TYPE__TEAMID, "", err,
							sizeof(err)), -1);
	assert_int_equal(santactl_rule_check_identifier(77, sha, err, sizeof(err)), -1);
}

static void test_describe(void **state)
{
	Santa__Rule r = SANTA__RULE__INIT;
	char buf[128];

	assert_string_equal(santactl_rule_describe(NULL, false, buf, sizeof(buf)),
			    "No rule exists with the given parameters");
	r.policy = SANTA__POLICY__SILENT_BLOCKLIST;
	r.rule_type = SANTA__RULE_TYPE__BINARY;
	assert_string_equal(santactl_rule_describe(&r, false, buf, sizeof(buf)),
			    "Blocked (Binary, Silent)");
	r.policy = SANTA__POLICY__ALLOWLIST_COMPILER;
	r.rule_type = SANTA__RULE_TYPE__SIGNINGID;
	assert_string_equal(santactl_rule_describe(&r, false, buf, sizeof(buf)),
			    "Allowed (SigningID, Compiler)");
	r.policy = SANTA__POLICY__ALLOWLIST;
	assert_string_equal(santactl_rule_describe(&r, true, buf, sizeof(buf)),
			    "\033[32mAllowed (SigningID)\033[0m");

	assert_string_equal(santactl_decision_describe("ALLOW", "BINARY", false, buf,
						       sizeof(buf)), "Allowed (Binary)");
	assert_string_equal(santactl_decision_describe("DENY", "SCOPE", false, buf,
						       sizeof(buf)), "Blocked (Scope)");
	assert_string_equal(santactl_decision_describe("DENY", "CERT", true, buf,
						       sizeof(buf)),
			    "\033[31mBlocked (Certificate)\033[0m");
	assert_string_equal(santactl_decision_describe("", "", false, buf, sizeof(buf)),
			    "None");
	assert_string_equal(santactl_rule_type_label(SANTA__RULE_TYPE__BINARY), "SHA-256");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_long_fields),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_check_identifier),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
