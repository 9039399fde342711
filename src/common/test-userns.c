/* SPDX-License-Identifier: Apache-2.0 */
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

#include "userns.h"

static char root[64];

static void put(const char *name, const char *value)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sys/%s", root, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(value, f);
	fclose(f);
}

static int setup(void **state)
{
	char path[256];

	(void)state;
	snprintf(root, sizeof(root), "/tmp/test-userns-XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/sys", root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/sys/user", root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/sys/kernel", root);
	assert_int_equal(mkdir(path, 0700), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_open_when_nothing_closes_it(void **state)
{
	char why[512];

	(void)state;
	/* No knob at all (a kernel without the sysctls), then open ones. */
	assert_int_equal(santa_userns_unprivileged(root, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "kernel.unprivileged_userns_clone=0"));
	put("user/max_user_namespaces", "96368\n");
	put("kernel/unprivileged_userns_clone", "1\n");
	put("kernel/apparmor_restrict_unprivileged_userns", "0\n");
	assert_int_equal(santa_userns_unprivileged(root, why, sizeof(why)), 1);
}

static void test_each_knob_closes_it(void **state)
{
	static const char *const knobs[][4] = {
		{ "user/max_user_namespaces", "0\n", "1000\n", "user.max_user_namespaces = 0" },
		{ "kernel/unprivileged_userns_clone", "0\n", "1\n",
		  "kernel.unprivileged_userns_clone = 0" },
		{ "kernel/apparmor_restrict_unprivileged_userns", "1\n", "0\n",
		  "kernel.apparmor_restrict_unprivileged_userns = 1" },
	};
	char why[512];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		put(knobs[i][0], knobs[i][1]);
		assert_int_equal(santa_userns_unprivileged(root, why, sizeof(why)), 0);
		assert_non_null(strstr(why, knobs[i][3]));
		put(knobs[i][0], knobs[i][2]);
	}
	assert_int_equal(santa_userns_unprivileged(root, why, sizeof(why)), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_when_nothing_closes_it),
		cmocka_unit_test(test_each_knob_closes_it),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
