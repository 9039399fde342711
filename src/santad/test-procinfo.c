/* SPDX-License-Identifier: Apache-2.0 */
/* /proc parsing against a process whose name is chosen to mislead; ids of
 * an exited and of a reaped process; the path of a descriptor. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

static void test_zombie_then_reaped(void **state)
{
	proc_info pi;
	siginfo_t si;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	/* Exited but not reaped: its ids are still there. */
	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(procinfo_read_ids(pid, &pi, false), 0);
	assert_int_equal(pi.uid, (long)getuid());
	assert_int_equal(pi.gid, (long)getgid());
	assert_int_equal(pi.ppid, getpid());
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(procinfo_read_ids(pid, &pi, false), -ESRCH);
	assert_int_equal(pi.uid, -1);
}

static void test_fd_path(void **state)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *path;

	assert_true(fd >= 0 && n > 0);
	exe[n] = '\0';
	path = procinfo_fd_path(fd);
	assert_non_null(path);
	assert_string_equal(path, exe);
	free(path);
	close(fd);
	assert_null(procinfo_fd_path(fd));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_comm),
		cmocka_unit_test(test_args_and_exe),
		cmocka_unit_test(test_gone),
		cmocka_unit_test(test_zombie_then_reaped),
		cmocka_unit_test(test_fd_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
