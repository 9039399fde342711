/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "args.h"

enum { OPT_JSON = 1, OPT_PATH, OPT_REC };

static const santactl_opt opts[] = {
	{ "--json", NULL, false, OPT_JSON },
	{ "--path", NULL, true, OPT_PATH },
	{ "--recursive", "-r", false, OPT_REC },
	{ 0 },
};

static int next(santactl_args *a, const char **val, char *err)
{
	return santactl_args_next(a, opts, val, err, 128);
}

static void test_flags_and_positionals(void **state)
{
	char *argv[] = { "--JSON", "file1", "-r", "--path", "/x", "--path=/y", NULL };
	santactl_args a;
	const char *val;
	char err[128];

	santactl_args_init(&a, 6, argv);
	assert_int_equal(next(&a, &val, err), OPT_JSON);
	assert_int_equal(next(&a, &val, err), SANTACTL_ARGS_POSITIONAL);
	assert_string_equal(val, "file1");
	assert_int_equal(next(&a, &val, err), OPT_REC);
	assert_int_equal(next(&a, &val, err), OPT_PATH);
	assert_string_equal(val, "/x");
	assert_int_equal(next(&a, &val, err), OPT_PATH);
	assert_string_equal(val, "/y");
	assert_int_equal(next(&a, &val, err), SANTACTL_ARGS_END);
}

static void test_errors(void **state)
{
	char *argv1[] = { "--bogus", NULL };
	char *argv2[] = { "--path", NULL };
	char *argv3[] = { "--json=1", NULL };
	santactl_args a;
	const char *val;
	char err[128];

	santactl_args_init(&a, 1, argv1);
	assert_int_equal(next(&a, &val, err), SANTACTL_ARGS_ERROR);
	assert_string_equal(err, "Unknown argument: --bogus");
	santactl_args_init(&a, 1, argv2);
	assert_int_equal(next(&a, &val, err), SANTACTL_ARGS_ERROR);
	assert_string_equal(err, "--path requires an argument");
	santactl_args_init(&a, 1, argv3);
	assert_int_equal(next(&a, &val, err), SANTACTL_ARGS_ERROR);
}

static void test_double_dash(void **state)
{
	char *argv[] = { "--", "--json", "-", NULL };
	santactl_args a;
	const char *val;
	char err[128];

	santactl_args_init(&a, 3, argv);
	assert_int_equal(next(&a, &val, err), SANTACTL_ARGS_POSITIONAL);
	assert_string_equal(val, "--json");
	assert_int_equal(next(&a, &val, err), SANTACTL_ARGS_POSITIONAL);
	assert_string_equal(val, "-");
	assert_int_equal(next(&a, &val, err), SANTACTL_ARGS_END);
}

static void test_want_help(void **state)
{
	char *yes[] = { "--json", "--HELP", NULL };
	char *short_h[] = { "-h", NULL };
	char *no[] = { "--", "--help", NULL };

	assert_true(santactl_args_want_help(2, yes));
	assert_true(santactl_args_want_help(1, short_h));
	assert_false(santactl_args_want_help(2, no));
	assert_false(santactl_args_want_help(0, no));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags_and_positionals),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_double_dash),
		cmocka_unit_test(test_want_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
