/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sync protocol's wire format: request bodies against golden files
 * (tests/e2e/golden/sync-*.json, which the fixture server's checks mirror),
 * and response parsing, aliases and clean-sync resolution against the
 * original client's behaviour. SYNC_UPDATE_GOLDEN=1 rewrites the golden
 * files from the current output (review the diff before committing).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <zlib.h>

#include "sync_protocol.h"
#include "sync_sysinfo.h"

#define ID "4F0E1A52-2E8B-4B3C-9D3E-0123456789AB"
#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

static void check_golden(const char *name, const char *got)
{
	char path[512], buf[65536];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", SYNC_GOLDEN_DIR, name);
	if (getenv("SYNC_UPDATE_GOLDEN")) {
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "%s\n", got);
		fclose(f);
		return;
	}
	f = fopen(path, "r");
	if (!f)
		fail_msg("golden file %s is missing", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	assert_string_equal(buf, got);
}

/* --- Requests --- */

static void test_preflight_request(void **state)
{
	sync_preflight_request req = {
		.machine_id = ID,
		.serial_num = "VMware-56 4d",
		.hostname = "host.example.com",
		.os_version = "12.5",
		.os_build = "6.1.0-18-amd64",
		.model_identifier = "Standard PC (Q35 + ICH9, 2009)",
		.santa_version = "2026.1",
		.primary_user = "alice",
		.client_mode = SANTA__CLIENT_MODE__LOCKDOWN,
		.request_clean_sync = true,
		.binary_rule_count = 3,
		.certificate_rule_count = 1,
		.compiler_rule_count = 0,
		.transitive_rule_count = 0,
		.teamid_rule_count = 2,
		.signingid_rule_count = 0,
		.cdhash_rule_count = 0,
	};
	char *body;

	(void)state;
	assert_int_equal(sync_preflight_request_json(&req, &body), 0);
	check_golden("sync-preflight-request.json", body);
	free(body);
}

static void test_eventupload_request(void **state)
{
	char *users[] = { "alice", "bob" };
	char *sessions[] = { "alice@seat0", "bob@pts/1" };
	Santa__Event a = SANTA__EVENT__INIT, b = SANTA__EVENT__INIT;
	Santa__Event *events[] = { &a, &b };
	char *body;

	(void)state;
	a.id = 7;
	a.file_sha256 = HASH_A;
	a.file_path = "/tmp/santa test";
	a.file_name = "evil";
	a.executing_user = "alice";
	a.execution_time = 1700000000.25;
	a.n_logged_in_users = 2;
	a.logged_in_users = users;
	a.n_current_sessions = 2;
	a.current_sessions = sessions;
	a.decision = "BLOCK_BINARY";
	a.pid = 1234;
	a.ppid = 1;
	a.parent_name = "bash";
	b.id = 8;
	b.file_sha256 = HASH_A;
	b.file_path = "/opt/app";
	b.file_name = "helper";
	b.decision = "BUNDLE_BINARY";
	b.file_bundle_hash = HASH_A;
	b.file_bundle_hash_millis = 12;
	b.file_bundle_binary_count = 2;
	b.file_bundle_name = "App";
	assert_int_equal(sync_eventupload_request_json(events, 2, ID, &body), 0);
	check_golden("sync-eventupload-request.json", body);
	free(body);
}

static void test_ruledownload_request(void **state)
{
	char *body;

	(void)state;
	assert_int_equal(sync_ruledownload_request_json(NULL, ID, &body), 0);
	assert_string_equal(body, "{\"machine_id\":\"" ID "\"}");
	free(body);
	assert_int_equal(sync_ruledownload_request_json("", ID, &body), 0);
	assert_string_equal(body, "{\"machine_id\":\"" ID "\"}");
	free(body);
	assert_int_equal(sync_ruledownload_request_json("page/2", ID, &body), 0);
	assert_string_equal(body, "{\"cursor\":\"page/2\",\"machine_id\":\"" ID "\"}");
	free(body);
}

static void test_postflight_request(void **state)
{
	char *body;

	(void)state;
	assert_int_equal(sync_postflight_request_json(12, 10,
						      SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL,
						      ID, &body), 0);
	check_golden("sync-postflight-request.json", body);
	free(body);
}

/* --- Transport details --- */

static void check_roundtrip(sync_encoding enc, const char *text, const uint8_t magic[2])
{
	uint8_t *out, plain[256];
	size_t len;
	bool compressed;
	z_stream zs = { 0 };

	assert_int_equal(sync_compress(enc, text, strlen(text), &out, &len, &compressed), 0);
	assert_true(compressed);
	assert_memory_equal(out, magic, 2);
	assert_int_equal(inflateInit2(&zs, enc == SYNC_ENCODING_GZIP ? 31 : 15), Z_OK);
	zs.next_in = out;
	zs.avail_in = (uInt)len;
	zs.next_out = plain;
	zs.avail_out = sizeof(plain);
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, strlen(text));
	assert_memory_equal(plain, text, strlen(text));
	inflateEnd(&zs);
	free(out);
}

static void test_compress(void **state)
{
	static const uint8_t zlib_magic[2] = { 0x78, 0x9c };
	static const uint8_t gzip_magic[2] = { 0x1f, 0x8b };
	sync_encoding enc;
	uint8_t *out;
	size_t len;
	bool compressed;

	(void)state;
	check_roundtrip(SYNC_ENCODING_DEFLATE, "{\"machine_id\":\"x\"}", zlib_magic);
	check_roundtrip(SYNC_ENCODING_GZIP, "{\"machine_id\":\"x\"}", gzip_magic);

	assert_int_equal(sync_compress(SYNC_ENCODING_DEFLATE, "", 0, &out, &len,
				       &compressed), 0);
	assert_false(compressed);
	assert_int_equal(len, 0);
	free(out);
	assert_int_equal(sync_compress(SYNC_ENCODING_NONE, "{}", 2, &out, &len,
				       &compressed), 0);
	assert_false(compressed);
	assert_memory_equal(out, "{}", 2);
	free(out);

	assert_int_equal(sync_encoding_from_name(NULL, &enc), 0);
	assert_int_equal(enc, SYNC_ENCODING_DEFLATE);
	assert_int_equal(sync_encoding_from_name("GZIP", &enc), 0);
	assert_int_equal(enc, SYNC_ENCODING_GZIP);
	assert_int_equal(sync_encoding_from_name("none", &enc), 0);
	assert_null(sync_encoding_header(enc));
	assert_int_equal(sync_encoding_from_name("brotli", &enc), -EINVAL);
}

static void check_url(const char *base, const char *id, const char *want)
{
	char *url = NULL;

	if (!want) {
		assert_int_not_equal(sync_url_for_stage(base, "preflight", id, &url), 0);
		return;
	}
	assert_int_equal(sync_url_for_stage(base, "preflight", id, &url), 0);
	assert_string_equal(url, want);
	free(url);
}

static void test_url(void **state)
{
	(void)state;
	check_url("https://moroz.example:8080/v1/santa/", "m1",
		  "https://moroz.example:8080/v1/santa/preflight/m1");
	/* No trailing slash: the last segment is replaced, as NSURL does. */
	check_url("https://z.example/public/santa/sync", "m1",
		  "https://z.example/public/santa/preflight/m1");
	check_url("http://127.0.0.1:8000", "m1", "http://127.0.0.1:8000/preflight/m1");
	check_url("http://127.0.0.1:8000/", "m1", "http://127.0.0.1:8000/preflight/m1");
	check_url("https://h.example/a/?token=1#x", "m1",
		  "https://h.example/a/preflight/m1");
	check_url("https://h.example/", "a b/c", "https://h.example/preflight/a%20b%2Fc");
	check_url("ftp://h.example/", "m1", NULL);
	check_url("https://", "m1", NULL);
	check_url("https://h.example/", "", NULL);
}

static void test_xssi(void **state)
{
	(void)state;
	assert_int_equal(sync_xssi_prefix_len(")]}'\n{}", 7), 5);
	assert_int_equal(sync_xssi_prefix_len("])}{}", 5), 3);
	assert_int_equal(sync_xssi_prefix_len(")]}'", 4), 0);
	assert_int_equal(sync_xssi_prefix_len("{}", 2), 0);
}

/* --- Names --- */

static int policy_of(const char *json)
{
	json_object *o = json_tokener_parse(json);
	int r = sync_policy_from_json(o);

	json_object_put(o);
	return r;
}

static int type_of(const char *json)
{
	json_object *o = json_tokener_parse(json);
	int r = sync_rule_type_from_json(o);

	json_object_put(o);
	return r;
}

static int mode_of(const char *json)
{
	json_object *o = json_tokener_parse(json);
	int r = sync_client_mode_from_json(o);

	json_object_put(o);
	return r;
}

static void test_enum_aliases(void **state)
{
	(void)state;
	assert_int_equal(policy_of("\"ALLOWLIST\""), SANTA__POLICY__ALLOWLIST);
	assert_int_equal(policy_of("\"WHITELIST\""), SANTA__POLICY__ALLOWLIST);
	assert_int_equal(policy_of("\"WHITELIST_COMPILER\""),
			 SANTA__POLICY__ALLOWLIST_COMPILER);
	assert_int_equal(policy_of("\"BLACKLIST\""), SANTA__POLICY__BLOCKLIST);
	assert_int_equal(policy_of("\"SILENT_BLACKLIST\""), SANTA__POLICY__SILENT_BLOCKLIST);
	assert_int_equal(policy_of("\"REMOVE\""), SANTA__POLICY__REMOVE);
	assert_int_equal(policy_of("3"), SANTA__POLICY__BLOCKLIST);   /* syncv1 */
	assert_int_equal(policy_of("5"), SANTA__POLICY__REMOVE);
	assert_int_equal(policy_of("\"ALLOWLIST_TRANSITIVE\""), -EINVAL);
	assert_int_equal(policy_of("0"), -EINVAL);
	assert_int_equal(policy_of("9"), -EINVAL);
	assert_int_equal(policy_of("true"), -EINVAL);

	assert_int_equal(type_of("\"BINARY\""), SANTA__RULE_TYPE__BINARY);
	assert_int_equal(type_of("\"CERTIFICATE\""), SANTA__RULE_TYPE__CERTIFICATE);
	assert_int_equal(type_of("\"TEAMID\""), SANTA__RULE_TYPE__TEAMID);
	assert_int_equal(type_of("\"SIGNINGID\""), SANTA__RULE_TYPE__SIGNINGID);
	assert_int_equal(type_of("\"CDHASH\""), SANTA__RULE_TYPE__CDHASH);
	assert_int_equal(type_of("4"), SANTA__RULE_TYPE__SIGNINGID);
	assert_int_equal(type_of("\"PACKAGE\""), -EINVAL);

	assert_int_equal(mode_of("\"LOCKDOWN\""), SANTA__CLIENT_MODE__LOCKDOWN);
	assert_int_equal(mode_of("\"monitor\""), SANTA__CLIENT_MODE__MONITOR);
	assert_int_equal(mode_of("0"), SANTA__CLIENT_MODE__MONITOR);
	assert_int_equal(mode_of("1"), SANTA__CLIENT_MODE__LOCKDOWN);
	assert_int_equal(mode_of("\"STANDALONE\""), -EINVAL);
}

/* --- Preflight responses --- */

static int parse_pre(const char *json, sync_preflight_response *pre, char *err)
{
	return sync_preflight_response_parse(json, strlen(json), pre, err, 256);
}

static void test_preflight_response(void **state)
{
	sync_preflight_response pre;
	char err[256];

	(void)state;
	assert_int_equal(parse_pre(")]}'\n{\"client_mode\":\"LOCKDOWN\",\"batch_size\":7,"
				   "\"full_sync_interval\":3600,\"enable_bundles\":false,"
				   "\"enable_transitive_rules\":true,"
				   "\"allowed_path_regex\":\"^/opt/\",\"blocked_path_regex\":\"\","
				   "\"block_usb_mount\":true,\"remount_usb_mode\":[\"rdonly\"],"
				   "\"unknown_key\":{\"x\":1}}", &pre, err), 0);
	assert_true(pre.has_client_mode);
	assert_int_equal(pre.client_mode, SANTA__CLIENT_MODE__LOCKDOWN);
	assert_int_equal(pre.batch_size, 7);
	assert_int_equal(pre.full_sync_interval, 3600);
	assert_true(pre.has_enable_bundles);
	assert_false(pre.enable_bundles);
	assert_true(pre.enable_transitive_rules);
	assert_false(pre.has_enable_all_event_upload);
	assert_string_equal(pre.allowed_path_regex, "^/opt/");
	assert_string_equal(pre.blocked_path_regex, "");
	assert_int_equal(pre.sync_type, SYNC_SERVER_TYPE_NONE);
	sync_preflight_response_done(&pre);
}

static void test_preflight_defaults_and_aliases(void **state)
{
	sync_preflight_response pre;
	char err[256];

	(void)state;
	/* Moroz's shape: zero batch size and interval mean the defaults. */
	assert_int_equal(parse_pre("{\"client_mode\":\"MONITOR\",\"batch_size\":0,"
				   "\"full_sync_interval\":30,\"clean_sync\":false,"
				   "\"whitelist_regex\":\"a\",\"blacklist_regex\":null,"
				   "\"bundles_enabled\":true,"
				   "\"transitive_whitelisting_enabled\":true}", &pre, err), 0);
	assert_int_equal(pre.batch_size, SYNC_DEFAULT_BATCH_SIZE);
	assert_int_equal(pre.full_sync_interval, SYNC_DEFAULT_FULL_SYNC_INTERVAL);
	assert_true(pre.has_full_sync_interval);
	assert_string_equal(pre.allowed_path_regex, "a");
	assert_null(pre.blocked_path_regex);
	assert_true(pre.has_enable_bundles && pre.enable_bundles);
	assert_true(pre.has_enable_transitive_rules && pre.enable_transitive_rules);
	sync_preflight_response_done(&pre);

	/* The current key wins over its deprecated alias. */
	assert_int_equal(parse_pre("{\"allowed_path_regex\":\"new\",\"whitelist_regex\":"
				   "\"old\",\"batch_size\":\"20\",\"client_mode\":1}",
				   &pre, err), 0);
	assert_string_equal(pre.allowed_path_regex, "new");
	assert_int_equal(pre.batch_size, 20);
	assert_int_equal(pre.client_mode, SANTA__CLIENT_MODE__LOCKDOWN);
	sync_preflight_response_done(&pre);

	/* Empty bodies and unknown modes set nothing. */
	assert_int_equal(parse_pre("", &pre, err), 0);
	assert_false(pre.has_client_mode);
	assert_int_equal(pre.batch_size, SYNC_DEFAULT_BATCH_SIZE);
	assert_int_equal(parse_pre("{\"client_mode\":\"STANDALONE\"}", &pre, err), 0);
	assert_false(pre.has_client_mode);
	assert_int_equal(parse_pre("{\"batch_size\":100000}", &pre, err), 0);
	assert_int_equal(pre.batch_size, SYNC_MAX_BATCH_SIZE);
}

static void check_bad_preflight(const char *json, const char *want_in_err)
{
	sync_preflight_response pre;
	char err[256] = "";

	assert_int_not_equal(parse_pre(json, &pre, err), 0);
	if (!strstr(err, want_in_err))
		fail_msg("error \"%s\" does not mention \"%s\"", err, want_in_err);
	assert_null(pre.allowed_path_regex);
}

static void test_preflight_bad(void **state)
{
	(void)state;
	check_bad_preflight("{\"client_mode\":\"LOCKDOWN\"", "not valid JSON");
	check_bad_preflight("{\"batch_size\":10} trailing", "JSON");
	check_bad_preflight("{\"batch_size\":10} {}", "JSON");
	check_bad_preflight("[1,2]", "not an object");
	check_bad_preflight("<html>500</html>", "not valid JSON");
	check_bad_preflight("{\"batch_size\":-1}", "batch_size");
	check_bad_preflight("{\"batch_size\":1.5}", "batch_size");
	check_bad_preflight("{\"enable_bundles\":\"yes\"}", "enable_bundles");
	check_bad_preflight("{\"allowed_path_regex\":\"x\",\"blocked_path_regex\":5}",
			    "blocked_path_regex");
	check_bad_preflight("{\"client_mode\":[\"LOCKDOWN\"]}", "client_mode");
	check_bad_preflight("{\"sync_type\":true}", "sync_type");
}

/* The table in the original's SNTSyncPreflight: client request x server. */
static void test_clean_sync_resolution(void **state)
{
	const int N = SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL;
	const int C = SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN;
	const int A = SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL;
	static const struct {
		const char *json;
		int want[3];   /* for requested N, C, A */
	} rows[] = {
		{ "{}", { 0, 0, 0 } },
		{ "{\"sync_type\":\"normal\"}", { 0, 0, 0 } },
		{ "{\"sync_type\":\"\"}", { 0, 0, 0 } },
		{ "{\"sync_type\":\"clean\"}", { 1, 1, 2 } },
		{ "{\"sync_type\":\"CLEAN\"}", { 1, 1, 2 } },
		{ "{\"sync_type\":\"clean_all\"}", { 2, 2, 2 } },
		{ "{\"sync_type\":\"CLEAN_ALL\"}", { 2, 2, 2 } },
		{ "{\"clean_sync\":true}", { 1, 1, 2 } },
		{ "{\"clean_sync\":false}", { 0, 0, 0 } },
		/* When both keys are there, the deprecated one is ignored. */
		{ "{\"sync_type\":\"normal\",\"clean_sync\":true}", { 0, 0, 0 } },
		{ "{\"sync_type\":\"clean\",\"clean_sync\":true}", { 1, 1, 2 } },
		{ "{\"sync_type\":\"clean_rules\"}", { 0, 0, 0 } },
	};
	const int requested[3] = { N, C, A };

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		sync_preflight_response pre;
		char err[256];

		assert_int_equal(parse_pre(rows[i].json, &pre, err), 0);
		for (int j = 0; j < 3; j++) {
			int got = sync_resolve_type(requested[j], &pre);

			if (got != rows[i].want[j])
				fail_msg("%s with request %d: got %d, want %d", rows[i].json,
					 requested[j], got, rows[i].want[j]);
		}
		sync_preflight_response_done(&pre);
	}
}

/* --- Rule pages --- */

static int parse_page(const char *json, size_t max, sync_rule_page *page, char *err)
{
	return sync_rule_page_parse(json, strlen(json), max, page, err, 256);
}

static void test_rule_page(void **state)
{
	sync_rule_page page;
	char err[256];

	(void)state;
	assert_int_equal(parse_page("{\"rules\":["
		"{\"identifier\":\"" HASH_A "\",\"policy\":\"BLOCKLIST\",\"rule_type\":\"BINARY\","
		"\"custom_msg\":\"no\",\"custom_url\":\"https://x/%file_sha%\","
		"\"creation_time\":1573543803.349378,\"file_bundle_binary_count\":13,"
		"\"file_bundle_hash\":\"" HASH_A "\"},"
		"{\"sha256\":\"" HASH_B "\",\"policy\":\"WHITELIST\",\"rule_type\":\"BINARY\"},"
		"{\"identifier\":\"EQHXZ8M8AV\",\"policy\":1,\"rule_type\":3},"
		"{\"identifier\":\"platform:com.apple.ls\",\"policy\":\"SILENT_BLOCKLIST\","
		"\"rule_type\":\"SIGNINGID\",\"custom_msg\":null}"
		"],\"cursor\":\"c2\"}", 100, &page, err), 0);
	assert_int_equal(page.n_received, 4);
	assert_int_equal(page.n_rules, 4);
	assert_int_equal(page.n_bad, 0);
	assert_string_equal(page.cursor, "c2");
	assert_string_equal(page.rules[0]->identifier, HASH_A);
	assert_int_equal(page.rules[0]->policy, SANTA__POLICY__BLOCKLIST);
	assert_int_equal(page.rules[0]->rule_type, SANTA__RULE_TYPE__BINARY);
	assert_string_equal(page.rules[0]->custom_msg, "no");
	assert_string_equal(page.rules[0]->custom_url, "https://x/%file_sha%");
	assert_int_equal(page.rules[0]->creation_time, 1573543803);
	assert_int_equal(page.rules[0]->file_bundle_binary_count, 13);
	/* Legacy sha256 key, upper-case hash stored in lower case. */
	assert_int_equal(page.rules[1]->policy, SANTA__POLICY__ALLOWLIST);
	assert_int_equal(strlen(page.rules[1]->identifier), 64);
	assert_int_equal(page.rules[1]->identifier[0], 'b');
	assert_int_equal(page.rules[2]->rule_type, SANTA__RULE_TYPE__TEAMID);
	assert_int_equal(page.rules[3]->policy, SANTA__POLICY__SILENT_BLOCKLIST);
	assert_string_equal(page.rules[3]->custom_msg, "");
	sync_rule_page_done(&page);
}

static void test_rule_page_bad_rules(void **state)
{
	sync_rule_page page;
	char err[256];

	(void)state;
	assert_int_equal(parse_page("{\"rules\":["
		"{\"identifier\":\"\",\"policy\":\"BLOCKLIST\",\"rule_type\":\"BINARY\"},"
		"{\"identifier\":\"" HASH_A "\",\"policy\":\"ALLOWLIST_TRANSITIVE\","
		"\"rule_type\":\"BINARY\"},"
		"{\"identifier\":\"abc\",\"policy\":\"BLOCKLIST\",\"rule_type\":\"BINARY\"},"
		"{\"identifier\":\"" HASH_A "\",\"policy\":\"BLOCKLIST\",\"rule_type\":\"PACKAGE\"},"
		"{\"identifier\":\"" HASH_A "\",\"rule_type\":\"BINARY\"},"
		"{\"identifier\":7,\"policy\":\"BLOCKLIST\",\"rule_type\":\"TEAMID\"},"
		"{\"identifier\":\"a\\u0000b\",\"policy\":\"BLOCKLIST\",\"rule_type\":\"TEAMID\"},"
		"\"not a rule\","
		"{\"identifier\":\"" HASH_A "\",\"policy\":\"REMOVE\",\"rule_type\":\"BINARY\"}"
		"],\"cursor\":\"\"}", 100, &page, err), 0);
	assert_int_equal(page.n_received, 9);
	assert_int_equal(page.n_bad, 8);
	assert_int_equal(page.n_rules, 1);
	assert_int_equal(page.rules[0]->policy, SANTA__POLICY__REMOVE);
	assert_null(page.cursor);
	assert_non_null(strstr(page.first_bad, "empty identifier"));
	sync_rule_page_done(&page);
}

static void test_rule_page_shapes(void **state)
{
	sync_rule_page page;
	char err[256];

	(void)state;
	/* Empty pages with a cursor are legitimate (Rudolph sends them). */
	assert_int_equal(parse_page("{\"rules\":[],\"cursor\":\"more\"}", 10, &page, err), 0);
	assert_int_equal(page.n_rules, 0);
	assert_string_equal(page.cursor, "more");
	sync_rule_page_done(&page);
	assert_int_equal(parse_page("{\"rules\":null}", 10, &page, err), 0);
	assert_null(page.cursor);
	sync_rule_page_done(&page);
	assert_int_equal(parse_page("", 10, &page, err), 0);
	assert_int_equal(parse_page("])}{}", 10, &page, err), 0);

	assert_int_not_equal(parse_page("{\"rules\":{}}", 10, &page, err), 0);
	assert_non_null(strstr(err, "not an array"));
	assert_int_not_equal(parse_page("{\"rules\":[],\"cursor\":5}", 10, &page, err), 0);
	assert_non_null(strstr(err, "cursor"));
	assert_int_not_equal(parse_page("{\"rules\":[{},{},{}]}", 2, &page, err), 0);
	assert_non_null(strstr(err, "still allowed"));
	assert_int_not_equal(parse_page("{\"rules\":[{\"identifier\":\"ab", 10, &page,
					err), 0);
	assert_non_null(strstr(err, "not valid JSON"));
}

static void test_eventupload_response(void **state)
{
	size_t n;
	char err[256];

	(void)state;
	assert_int_equal(sync_eventupload_response_parse("", 0, &n, err, sizeof(err)), 0);
	assert_int_equal(sync_eventupload_response_parse("{}", 2, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sync_eventupload_response_parse(
		"{\"event_upload_bundle_binaries\":[\"a\",\"b\"]}", 42, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_not_equal(sync_eventupload_response_parse(
		"{\"event_upload_bundle_binaries\":\"a\"}", 36, &n, err, sizeof(err)), 0);
	assert_int_not_equal(sync_eventupload_response_parse("null", 4, &n, err,
							     sizeof(err)), 0);
}

static void test_os_version(void **state)
{
	char *v;

	(void)state;
	v = sync_sysinfo_os_version("NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n", "12.5");
	assert_string_equal(v, "12.5");
	free(v);
	v = sync_sysinfo_os_version("VERSION_ID=22.04\nID=ubuntu\n", "bookworm/sid");
	assert_string_equal(v, "22.04");
	free(v);
	v = sync_sysinfo_os_version("VERSION_ID='9.3'\n", NULL);
	assert_string_equal(v, "9.3");
	free(v);
	v = sync_sysinfo_os_version(NULL, NULL);
	assert_string_equal(v, "");
	free(v);
}

static void put_file(const char *root, const char *rel, const char *text)
{
	char path[512], cmd[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The machine's facts from a fake root: the machine id comes from
 * MachineID, else /etc/machine-id; the serial falls back to it when the
 * firmware's is a placeholder. */
static void test_sysinfo_gather(void **state)
{
	char root[] = "/tmp/santa-sysinfo-XXXXXX", cmd[64];
	sync_sysinfo info;

	(void)state;
	assert_non_null(mkdtemp(root));
	put_file(root, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
	put_file(root, "/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
	put_file(root, "/etc/debian_version", "12.5\n");
	put_file(root, "/etc/hostname", "host1\n");
	put_file(root, "/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
	put_file(root, "/sys/class/dmi/id/product_serial", "To be filled by O.E.M.\n");
	put_file(root, "/primary_user", "alice\n");

	assert_int_equal(sync_sysinfo_gather(root, NULL, &info), 0);
	assert_string_equal(info.machine_id, "0123456789abcdef0123456789abcdef");
	assert_string_equal(info.serial_num, info.machine_id);
	assert_string_equal(info.os_version, "12.5");
	assert_string_equal(info.os_build, "6.1.0-18-amd64");
	assert_string_equal(info.hostname, "host1");
	assert_string_equal(info.primary_user, "alice");
	assert_string_equal(info.model_identifier, "");
	sync_sysinfo_done(&info);

	assert_int_equal(sync_sysinfo_gather(root, "CONFIGURED-ID", &info), 0);
	assert_string_equal(info.machine_id, "CONFIGURED-ID");
	sync_sysinfo_done(&info);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preflight_request),
		cmocka_unit_test(test_eventupload_request),
		cmocka_unit_test(test_ruledownload_request),
		cmocka_unit_test(test_postflight_request),
		cmocka_unit_test(test_compress),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_xssi),
		cmocka_unit_test(test_enum_aliases),
		cmocka_unit_test(test_preflight_response),
		cmocka_unit_test(test_preflight_defaults_and_aliases),
		cmocka_unit_test(test_preflight_bad),
		cmocka_unit_test(test_clean_sync_resolution),
		cmocka_unit_test(test_rule_page),
		cmocka_unit_test(test_rule_page_bad_rules),
		cmocka_unit_test(test_rule_page_shapes),
		cmocka_unit_test(test_eventupload_response),
		cmocka_unit_test(test_os_version),
		cmocka_unit_test(test_sysinfo_gather),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
