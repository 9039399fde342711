/* SPDX-License-Identifier: Apache-2.0 */
/* /proc parsing against a process whose name is chosen to mislead. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "procinfo.h"

static void test_hostile_comm(void **state)
{
	proc_info pi;

	/* A process names itself: ')' and numbers must not shift the fields
	 * that follow its name in /proc/PID/stat. */
	assert_int_equal(prctl(PR_SET_NAME, "x) R 1 1 (y", 0, 0, 0), 0);
	assert_int_equal(procinfo_read_ids(getpid(), &pi, true), 0);
	assert_string_equal(pi.comm, "x) R 1 1 (y");
	assert_int_equal(pi.ppid, getppid());
	assert_int_equal(pi.uid, (long)getuid());
	assert_int_equal(pi.gid, (long)getgid());
}

static void test_args_and_exe(void **state)
{
	struct stat st;
	char *args = NULL;

	assert_int_equal(procinfo_args(getpid(), 4096, &args), 0);
	assert_non_null(args);
	assert_non_null(strstr(args, "test-procinfo"));
	free(args);
	assert_int_equal(stat("/proc/self/exe", &st), 0);
	assert_int_equal(procinfo_exe_is(getpid(), st.st_dev, st.st_ino), 1);
	assert_int_equal(procinfo_exe_is(getpid(), st.st_dev, st.st_ino + 1), 0);
	assert_true(procinfo_exe_is(999999999, 0, 0) < 0);
}

static void test_gone(void **state)
{
	proc_info pi;

	assert_int_equal(procinfo_read(999999999, &pi), -ESRCH);
	assert_int_equal(pi.uid, -1);
	assert_string_equal(pi.user, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_comm),
		cmocka_unit_test(test_args_and_exe),
		cmocka_unit_test(test_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
