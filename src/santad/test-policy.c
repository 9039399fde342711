/* SPDX-License-Identifier: Apache-2.0 */
/* The decision as a pure function: rulesets, static rules, regexes, modes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "santa.pb-c.h"

static void sha_of(uint8_t out[SANTA_SHA256_LEN], uint8_t seed)
{
	memset(out, 0, SANTA_SHA256_LEN);
	out[0] = seed;
	out[31] = (uint8_t)(seed * 7);
}

static ruleset_change change(uint8_t seed, int pol, const char *msg)
{
	ruleset_change c = { .policy = (uint8_t)pol, .msg = msg };

	sha_of(c.sha256, seed);
	return c;
}

static void test_ruleset_apply_and_find(void **state)
{
	ruleset_change ch[] = {
		change(3, SANTA__POLICY__ALLOWLIST, NULL),
		change(1, SANTA__POLICY__BLOCKLIST, "no"),
		change(2, SANTA__POLICY__ALLOWLIST_TRANSITIVE, NULL),
		change(3, SANTA__POLICY__BLOCKLIST, NULL),   /* later wins */
	};
	ruleset *rs = ruleset_apply(NULL, false, ch, 4);
	uint8_t sha[SANTA_SHA256_LEN];

	assert_non_null(rs);
	assert_int_equal(rs->n, 3);
	sha_of(sha, 3);
	assert_int_equal(ruleset_find(rs, sha)->policy, SANTA__POLICY__BLOCKLIST);
	sha_of(sha, 1);
	assert_string_equal(ruleset_find_msg(rs, sha)->msg, "no");
	sha_of(sha, 9);
	assert_null(ruleset_find(rs, sha));
	ruleset_unref(rs);
}

static void test_ruleset_remove_and_cleanup(void **state)
{
	ruleset_change base[] = {
		change(1, SANTA__POLICY__BLOCKLIST, "msg"),
		change(2, SANTA__POLICY__ALLOWLIST_TRANSITIVE, NULL),
		change(3, SANTA__POLICY__ALLOWLIST, NULL),
	};
	ruleset_change rm[] = { change(1, SANTA__POLICY__REMOVE, NULL) };
	ruleset *a = ruleset_apply(NULL, false, base, 3);
	ruleset *b = ruleset_apply(a, false, rm, 1);
	ruleset *c = ruleset_apply(a, true, NULL, 0);
	uint8_t sha[SANTA_SHA256_LEN];

	assert_int_equal(b->n, 2);
	sha_of(sha, 1);
	assert_null(ruleset_find(b, sha));
	assert_null(ruleset_find_msg(b, sha));
	/* The base is untouched: snapshots never change. */
	assert_non_null(ruleset_find(a, sha));
	/* Cleanup of non-transitive rules keeps only the transitive one. */
	assert_int_equal(c->n, 1);
	sha_of(sha, 2);
	assert_non_null(ruleset_find(c, sha));
	ruleset_unref(a);
	ruleset_unref(b);
	ruleset_unref(c);
}

static void test_ruleset_large(void **state)
{
	size_t n = 100000;
	ruleset_change *ch = calloc(n, sizeof(*ch));
	ruleset *rs;

	assert_non_null(ch);
	for (size_t i = 0; i < n; i++) {
		ch[i].policy = SANTA__POLICY__ALLOWLIST;
		memcpy(ch[i].sha256, &i, sizeof(i));
		ch[i].sha256[31] = 0xaa;
	}
	rs = ruleset_apply(NULL, false, ch, n);
	assert_int_equal(rs->n, n);
	for (size_t i = 0; i < n; i += 997)
		assert_non_null(ruleset_find(rs, ch[i].sha256));
	assert_int_equal(ruleset_memory(rs), sizeof(*rs) + n * 33);
	ruleset_unref(rs);
	free(ch);
}

static policy *make_policy(santa_config *cfg)
{
	char err[256] = "";
	policy *p = NULL;

	assert_int_equal(policy_new(cfg, NULL, &p, err, sizeof(err)), 0);
	return p;
}

static void test_decide_order(void **state)
{
	static char hex1[] = "0100000000000000000000000000000000000000000000000000000000000007";
	santa_config_rule st = { .identifier = hex1, .policy = SANTA__POLICY__ALLOWLIST,
				 .rule_type = SANTA__RULE_TYPE__BINARY, .custom_msg = NULL };
	ruleset_change ch[] = { change(1, SANTA__POLICY__BLOCKLIST, NULL),
				change(2, SANTA__POLICY__SILENT_BLOCKLIST, "quiet") };
	ruleset *rs = ruleset_apply(NULL, false, ch, 2);
	uint8_t sha[SANTA_SHA256_LEN];
	santa_config cfg;
	policy *p;
	verdict v;

	santa_config_init(&cfg);
	cfg.client_mode = SANTA_MODE_LOCKDOWN;
	cfg.static_rules = &st;
	cfg.n_static_rules = 1;
	cfg.allowed_path_regex = (char *)"^/opt/ok/";
	cfg.blocked_path_regex = (char *)"^/opt/ok/bad";
	p = make_policy(&cfg);

	/* A static allow beats the database's block of the same hash. */
	sha_of(sha, 1);
	policy_decide(p, rs, sha, "/opt/ok/bad", &v);
	assert_int_equal(v.decision, SANTAD_DECISION_ALLOW);
	assert_true(v.rule_is_static);

	sha_of(sha, 2);
	policy_decide(p, rs, sha, "/opt/ok/x", &v);
	assert_int_equal(v.decision, SANTAD_DECISION_DENY);
	assert_true(v.silent);
	assert_string_equal(v.custom_msg, "quiet");

	/* No rule: the blocked regex before the allowed one, then the mode. */
	sha_of(sha, 5);
	policy_decide(p, rs, sha, "/opt/ok/bad-thing", &v);
	assert_int_equal(v.decision, SANTAD_DECISION_DENY);
	assert_int_equal(v.reason, SANTAD_REASON_SCOPE);
	policy_decide(p, rs, sha, "/opt/ok/fine", &v);
	assert_int_equal(v.decision, SANTAD_DECISION_ALLOW);
	assert_int_equal(v.reason, SANTAD_REASON_SCOPE);
	policy_decide(p, rs, sha, "/usr/bin/other", &v);
	assert_int_equal(v.decision, SANTAD_DECISION_DENY);
	assert_int_equal(v.reason, SANTAD_REASON_UNKNOWN);
	policy_decide(p, rs, sha, NULL, &v);
	assert_int_equal(v.reason, SANTAD_REASON_UNKNOWN);

	cfg.static_rules = NULL;
	cfg.n_static_rules = 0;
	cfg.allowed_path_regex = cfg.blocked_path_regex = NULL;
	santa_config_done(&cfg);
	policy_unref(p);
	ruleset_unref(rs);
}

static void test_transitive_and_compiler(void **state)
{
	ruleset_change ch[] = { change(1, SANTA__POLICY__ALLOWLIST_TRANSITIVE, NULL),
				change(2, SANTA__POLICY__ALLOWLIST_COMPILER, NULL) };
	ruleset *rs = ruleset_apply(NULL, false, ch, 2);
	policy_overrides ov = { .has_transitive = true, .transitive = true };
	uint8_t sha[SANTA_SHA256_LEN];
	char err[128];
	santa_config cfg;
	policy *off, *on;
	verdict v;

	santa_config_init(&cfg);
	cfg.client_mode = SANTA_MODE_LOCKDOWN;
	off = make_policy(&cfg);
	assert_int_equal(policy_new(&cfg, &ov, &on, err, sizeof(err)), 0);

	sha_of(sha, 1);
	policy_decide(off, rs, sha, NULL, &v);
	assert_int_equal(v.decision, SANTAD_DECISION_DENY);   /* ignored when off */
	policy_decide(on, rs, sha, NULL, &v);
	assert_int_equal(v.reason, SANTAD_REASON_TRANSITIVE);
	sha_of(sha, 2);
	policy_decide(off, rs, sha, NULL, &v);
	assert_int_equal(v.reason, SANTAD_REASON_BINARY);      /* a plain allow */
	policy_decide(on, rs, sha, NULL, &v);
	assert_int_equal(v.reason, SANTAD_REASON_COMPILER);

	/* Switching transitive rules off could turn allows into denies. */
	assert_true(policy_change_needs_flush(on, off));
	assert_false(policy_change_needs_flush(off, on));
	santa_config_done(&cfg);
	policy_unref(off);
	policy_unref(on);
	ruleset_unref(rs);
}

static void test_needs_flush(void **state)
{
	santa_config cfg;
	policy *a, *b;

	santa_config_init(&cfg);
	a = make_policy(&cfg);
	cfg.client_mode = SANTA_MODE_LOCKDOWN;
	b = make_policy(&cfg);
	assert_true(policy_change_needs_flush(a, b));   /* to LOCKDOWN */
	assert_false(policy_change_needs_flush(b, a));  /* to MONITOR */
	policy_unref(a);
	cfg.blocked_path_regex = strdup("x");
	a = make_policy(&cfg);
	assert_true(policy_change_needs_flush(b, a));   /* regex */
	santa_config_done(&cfg);
	policy_unref(a);
	policy_unref(b);
}

static void write_file(const char *path, mode_t mode)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs("#!/bin/true\n", f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* In LOCKDOWN with no rules, Santa's own executables still run, and only
 * they: by name, place and file identity, as the IPC layer trusts them. */
static void test_own_executables(void **state)
{
	char dir[] = "/tmp/santa-own.XXXXXX", ours[64], other[64], elsewhere[64], sub[64];
	char dirslash[64], *trusted[2] = { NULL, NULL };
	ruleset *rs = ruleset_new_empty();
	uint8_t sha[SANTA_SHA256_LEN] = { 9 };
	santa_config cfg;
	policy *p, *q;
	verdict v;
	int fd;

	if (geteuid() != 0)
		skip();   /* trusted files must be root's */
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(ours, sizeof(ours), "%s/santactl", dir);
	snprintf(other, sizeof(other), "%s/bash", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(elsewhere, sizeof(elsewhere), "%s/sub/santactl", dir);
	write_file(ours, 0755);
	write_file(other, 0755);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file(elsewhere, 0755);

	santa_config_init(&cfg);
	cfg.client_mode = SANTA_MODE_LOCKDOWN;
	snprintf(dirslash, sizeof(dirslash), "%s/", dir);
	trusted[0] = dirslash;
	cfg.trusted_executables = trusted;
	cfg.n_trusted_executables = 1;
	p = make_policy(&cfg);

	fd = open(ours, O_RDONLY | O_CLOEXEC);
	policy_decide_file(p, rs, sha, ours, fd, &v);
	assert_int_equal(v.decision, SANTAD_DECISION_ALLOW);
	assert_int_equal(v.reason, SANTAD_REASON_SCOPE);
	/* Not ours by the name it was reached under, but by identity. */
	assert_false(policy_is_own_executable(p, fd, "/usr/bin/bash"));
	close(fd);

	/* Another program in the trusted directory; ours' name elsewhere. */
	fd = open(other, O_RDONLY | O_CLOEXEC);
	policy_decide_file(p, rs, sha, other, fd, &v);
	assert_int_equal(v.decision, SANTAD_DECISION_DENY);
	close(fd);
	fd = open(elsewhere, O_RDONLY | O_CLOEXEC);
	assert_false(policy_is_own_executable(p, fd, elsewhere));
	close(fd);

	/* Writable by others: anyone could make it anything. */
	assert_int_equal(chmod(ours, 0777), 0);
	fd = open(ours, O_RDONLY | O_CLOEXEC);
	assert_false(policy_is_own_executable(p, fd, ours));
	close(fd);

	/* Another trusted list may make a cached allow wrong. */
	cfg.trusted_executables = NULL;
	cfg.n_trusted_executables = 0;
	q = make_policy(&cfg);
	assert_true(policy_change_needs_flush(p, q));
	policy_unref(q);
	policy_unref(p);
	ruleset_unref(rs);
	santa_config_done(&cfg);
	unlink(ours);
	unlink(other);
	unlink(elsewhere);
	rmdir(sub);
	rmdir(dir);
}

/* The loader this test was started with is the one santad names too
 * (built alike): the system's, held by root. */
static void test_own_loader(void **state)
{
	char path[PATH_MAX];
	FILE *f;
	int fd;

	/* The dynamic loader this process runs with, as the kernel mapped it. */
	f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	path[0] = '\0';
	for (char line[PATH_MAX + 128]; fgets(line, sizeof(line), f);) {
		char *p = strchr(line, '/');

		if (p && strstr(p, "/ld-")) {
			p[strcspn(p, "\n")] = '\0';
			snprintf(path, sizeof(path), "%s", p);
			break;
		}
	}
	fclose(f);
	if (!path[0])
		skip();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(policy_is_own_loader(fd));
	close(fd);
	fd = open("/bin/sh", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_false(policy_is_own_loader(fd));
	close(fd);
	assert_false(policy_is_own_loader(-1));
}

static void test_bad_regex_and_static_rule(void **state)
{
	santa_config_rule st = { .identifier = (char *)"nothex", .policy = 1,
				 .rule_type = SANTA__RULE_TYPE__BINARY };
	char err[256] = "";
	santa_config cfg;
	policy *p = NULL;

	santa_config_init(&cfg);
	cfg.allowed_path_regex = (char *)"(unclosed";
	assert_int_equal(policy_new(&cfg, NULL, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "AllowedPathRegex"));
	assert_null(p);
	cfg.allowed_path_regex = NULL;
	cfg.static_rules = &st;
	cfg.n_static_rules = 1;
	assert_int_equal(policy_new(&cfg, NULL, &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "StaticRules[0]: \"identifier\": BINARY identifier "
			    "\"nothex\" is not a SHA-256 (64 hex digits)");
	cfg.static_rules = NULL;
	cfg.n_static_rules = 0;
	santa_config_done(&cfg);
}

/* A regex from the file is reported at its line; the sync server's is not. */
static void test_bad_regex_where(void **state)
{
	char err[512] = "", expect[512], path[] = "/tmp/santa-test-policy-XXXXXX";
	policy_overrides ov = { .blocked_regex = "[" };
	santa_config cfg;
	policy *p = NULL;
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	assert_non_null(f);
	fputs("{\n  \"ClientMode\": 1,\n  \"AllowedPathRegex\": \"(a\"\n}\n", f);
	fclose(f);
	assert_int_equal(santa_config_load(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(policy_new(&cfg, NULL, &p, err, sizeof(err)), -EINVAL);
	snprintf(expect, sizeof(expect), "%s:3: AllowedPathRegex: \"(a\": ", path);
	if (strncmp(err, expect, strlen(expect)))
		fail_msg("\"%s\" does not start with \"%s\"", err, expect);
	free(cfg.allowed_path_regex);
	cfg.allowed_path_regex = NULL;
	assert_int_equal(policy_new(&cfg, &ov, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "BlockedPathRegex from the sync server \"[\""));
	assert_null(strstr(err, path));
	santa_config_done(&cfg);
	unlink(path);
}

static void test_events_recorded(void **state)
{
	santa_config cfg;
	verdict unknown = { .decision = SANTAD_DECISION_ALLOW, .reason = SANTAD_REASON_UNKNOWN };
	verdict binary = { .decision = SANTAD_DECISION_ALLOW, .reason = SANTAD_REASON_BINARY };
	verdict blocked = { .decision = SANTAD_DECISION_DENY, .reason = SANTAD_REASON_SCOPE };
	policy *p;

	santa_config_init(&cfg);
	p = make_policy(&cfg);
	assert_false(policy_records_event(p, &blocked));   /* no sync server */
	policy_unref(p);
	cfg.sync_base_url = strdup("https://sync.example/");
	p = make_policy(&cfg);
	assert_true(policy_records_event(p, &unknown));
	assert_false(policy_records_event(p, &binary));
	assert_true(policy_records_event(p, &blocked));
	assert_string_equal(policy_event_decision(&blocked), "BLOCK_SCOPE");
	assert_string_equal(policy_event_decision(&unknown), "ALLOW_UNKNOWN");
	santa_config_done(&cfg);
	policy_unref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ruleset_apply_and_find),
		cmocka_unit_test(test_ruleset_remove_and_cleanup),
		cmocka_unit_test(test_ruleset_large),
		cmocka_unit_test(test_decide_order),
		cmocka_unit_test(test_transitive_and_compiler),
		cmocka_unit_test(test_needs_flush),
		cmocka_unit_test(test_own_executables),
		cmocka_unit_test(test_own_loader),
		cmocka_unit_test(test_bad_regex_and_static_rule),
		cmocka_unit_test(test_bad_regex_where),
		cmocka_unit_test(test_events_recorded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
