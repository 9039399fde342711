/* SPDX-License-Identifier: Apache-2.0 */
/* What santagui shows: the detail URL's placeholders and the notices. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notice.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define BSHA "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static const notice_url_values vals = {
	.file_sha = SHA,
	.username = "ann o'neil",
	.machine_id = "m-1",
	.hostname = "host.example",
	.serial = "S/N 1",
};

static void expect_url(const char *tmpl, const notice_url_values *v, const char *want)
{
	char *got = NULL;

	assert_int_equal(notice_expand_url(tmpl, v, &got), 0);
	assert_string_equal(got, want);
	free(got);
}

static void test_placeholders(void **state)
{
	notice_url_values with_bundle = vals;

	expect_url("https://x/?sha=%file_sha%&m=%machine_id%",
		   &vals, "https://x/?sha=" SHA "&m=m-1");
	expect_url("https://x/%file_identifier%/%bundle_or_file_identifier%",
		   &vals, "https://x/" SHA "/" SHA);
	with_bundle.bundle_hash = BSHA;
	with_bundle.bundle_id = "coreutils";
	expect_url("https://x/%bundle_or_file_identifier%?b=%file_bundle_id%",
		   &with_bundle, "https://x/" BSHA "?b=coreutils");
	/* Values are percent-encoded; unknown placeholders and those without
	 * a Linux meaning are empty. */
	expect_url("https://x/?u=%username%&s=%serial%&h=%hostname%",
		   &vals, "https://x/?u=ann%20o%27neil&s=S%2FN%201&h=host.example");
	expect_url("https://x/?t=%team_id%&c=%cdhash%&z=%nonsense%&uuid=%uuid%",
		   &vals, "https://x/?t=&c=&z=&uuid=");
	/* A '%' that starts no placeholder stays. */
	expect_url("https://x/a%20b/%file_sha", &vals, "https://x/a%20b/%file_sha");
	expect_url("100%", &vals, "100%");
	expect_url("%%file_sha%%", &vals, "%" SHA "%");
	expect_url("%FILE_SHA%", &vals, "%FILE_SHA%");
	expect_url("", &vals, "");
}

static void test_url_bound(void **state)
{
	char *tmpl = malloc(5000), *got = NULL;

	/* Each %file_sha% grows to 64 bytes. */
	for (size_t i = 0; i + 10 < 5000; i += 10)
		memcpy(tmpl + i, "%file_sha%", 10);
	tmpl[4990] = '\0';
	assert_int_equal(notice_expand_url(tmpl, &vals, &got), -E2BIG);
	assert_null(got);
	free(tmpl);
}

static void test_text(void **state)
{
	char *s = notice_plain_text("Blocked<br />because.<br/>Really<br>\001now");

	assert_string_equal(s, "Blocked\nbecause.\nReally\nnow");
	free(s);
	s = notice_markup_escape("a <b> & c");
	assert_string_equal(s, "a &lt;b&gt; &amp; c");
	free(s);
}

static void test_block(void **state)
{
	Santa__BlockNotification b = SANTA__BLOCK_NOTIFICATION__INIT;
	Santa__Event e = SANTA__EVENT__INIT;
	Santa__Rule rule = SANTA__RULE__INIT;
	notice n;

	e.file_sha256 = SHA;
	e.file_path = "/opt/tools";
	e.file_name = "evil";
	e.executing_user = "ann";
	e.parent_name = "bash";
	e.ppid = 42;
	rule.identifier = SHA;
	rule.policy = SANTA__POLICY__BLOCKLIST;
	rule.rule_type = SANTA__RULE_TYPE__BINARY;
	b.event = &e;
	b.rule = &rule;
	b.reason = "BINARY";
	b.message = "Not allowed.<br />Ask IT.";
	b.url_template = "https://santa.example/%machine_id%/%file_sha%";
	b.machine_id = "m-1";
	b.dropped_before = 3;

	assert_int_equal(notice_block(&b, &n), 0);
	assert_int_equal(n.kind, NOTICE_BLOCK);
	assert_string_equal(n.summary, "Santa blocked evil");
	assert_string_equal(n.message, "Not allowed.\nAsk IT.");
	assert_string_equal(n.path, "/opt/tools/evil");
	assert_string_equal(n.url, "https://santa.example/m-1/" SHA);
	assert_string_equal(n.action_label, "Open...");
	assert_non_null(strstr(n.body, "Not allowed.\nAsk IT.\n\nApplication: evil\n"));
	assert_non_null(strstr(n.body, "Path: /opt/tools/evil\n"));
	assert_non_null(strstr(n.body, "Identifier: " SHA "\n"));
	assert_non_null(strstr(n.body, "Parent: bash (pid 42)\n"));
	assert_non_null(strstr(n.body, "Rule: BINARY BLOCKLIST rule"));
	assert_non_null(strstr(n.body, "3 earlier notifications were dropped"));
	notice_done(&n);

	/* No rule, no message, no URL: defaults, and no action. */
	b.rule = NULL;
	b.reason = "UNKNOWN";
	b.message = NULL;
	b.url_template = "";
	b.dropped_before = 0;
	assert_int_equal(notice_block(&b, &n), 0);
	assert_null(n.url);
	assert_null(n.action_label);
	assert_string_equal(n.message, "The following application has been blocked from "
			    "executing.");
	assert_non_null(strstr(n.body, "Reason: unknown application in Lockdown mode"));
	assert_null(strstr(n.body, "dropped"));
	notice_done(&n);

	/* A URL past its bound: the notice without it. */
	{
		char *tmpl = malloc(NOTICE_URL_MAX + 64);

		assert_non_null(tmpl);
		memset(tmpl, 'a', NOTICE_URL_MAX + 63);
		memcpy(tmpl, "https://", 8);
		tmpl[NOTICE_URL_MAX + 63] = '\0';
		b.url_template = tmpl;
		assert_int_equal(notice_block(&b, &n), 0);
		assert_null(n.url);
		assert_null(n.action_label);
		assert_true(n.url_too_long);
		assert_non_null(n.summary);
		notice_done(&n);
		b.url_template = "";
		free(tmpl);
	}

	/* A notification without an event still makes a notice. */
	b.event = NULL;
	assert_int_equal(notice_block(&b, &n), 0);
	assert_string_equal(n.path, "");
	notice_done(&n);
	notice_done(NULL);
}

static void test_mode_and_sync(void **state)
{
	Santa__ClientModeNotification m = SANTA__CLIENT_MODE_NOTIFICATION__INIT;
	Santa__RuleSyncNotification s = SANTA__RULE_SYNC_NOTIFICATION__INIT;
	notice n;

	m.mode = SANTA__CLIENT_MODE__LOCKDOWN;
	assert_int_equal(notice_mode(&m, &n), 0);
	assert_string_equal(n.summary, "Santa: Lockdown mode");
	assert_string_equal(n.body, "Switching into Lockdown mode");
	notice_done(&n);
	m.mode = SANTA__CLIENT_MODE__MONITOR;
	m.message = "Monitoring now";
	assert_int_equal(notice_mode(&m, &n), 0);
	assert_string_equal(n.summary, "Santa: Monitor mode");
	assert_string_equal(n.body, "Monitoring now");
	notice_done(&n);

	s.message = "You may now run foo";
	s.dropped_before = 1;
	assert_int_equal(notice_rule_sync(&s, &n), 0);
	assert_int_equal(n.kind, NOTICE_RULE_SYNC);
	assert_string_equal(n.body, "You may now run foo\n(1 earlier notifications were dropped)");
	notice_done(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placeholders),
		cmocka_unit_test(test_url_bound),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_block),
		cmocka_unit_test(test_mode_and_sync),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
