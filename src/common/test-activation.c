/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for santa_listen_fd: what a service accepts as its socket. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "activation.h"

/* Put a fresh socket of TYPE at descriptor AT, listening if LISTENING. */
static void put_socket(int at, int type, bool listening)
{
	int fd = socket(AF_UNIX, type, 0);

	assert_true(fd >= 0);
	/* An abstract autobound address: nothing on disk to clean up. */
	if (listening) {
		sa_family_t family = AF_UNIX;

		assert_int_equal(bind(fd, (struct sockaddr *)&family,
				      sizeof(family)), 0);
		assert_int_equal(listen(fd, 4), 0);
	}
	if (fd != at) {
		assert_int_equal(dup2(fd, at), at);
		close(fd);
	}
}

static void set_env(const char *pid, const char *n, const char *names)
{
	char buf[32];

	if (!pid) {
		snprintf(buf, sizeof(buf), "%d", (int)getpid());
		pid = buf;
	}
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", n, 1);
	if (names)
		setenv("LISTEN_FDNAMES", names, 1);
	else
		unsetenv("LISTEN_FDNAMES");
}

static void test_nothing_passed(void **state)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	assert_int_equal(santa_listen_fd(NULL), -ENOENT);
}

static void test_other_pid(void **state)
{
	put_socket(3, SOCK_SEQPACKET, true);
	set_env("1", "1", NULL);
	assert_int_equal(santa_listen_fd(NULL), -ENOENT);
	assert_null(getenv("LISTEN_PID"));
	close(3);
}

static void test_malformed(void **state)
{
	set_env(NULL, "1x", NULL);
	assert_int_equal(santa_listen_fd(NULL), -EINVAL);
	set_env(NULL, "100000", NULL);
	assert_int_equal(santa_listen_fd(NULL), -EINVAL);
	set_env("-5", "1", NULL);
	assert_int_equal(santa_listen_fd(NULL), -EINVAL);
}

static void test_one_socket(void **state)
{
	put_socket(3, SOCK_SEQPACKET, true);
	set_env(NULL, "1", "santametricservice");
	assert_int_equal(santa_listen_fd("santametricservice"), 3);
	assert_int_equal(fcntl(3, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(fcntl(3, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	assert_null(getenv("LISTEN_PID"));
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_FDNAMES"));
	close(3);
}

static void test_unnamed_any(void **state)
{
	put_socket(3, SOCK_SEQPACKET, true);
	set_env(NULL, "1", NULL);
	assert_int_equal(santa_listen_fd(NULL), 3);
	close(3);
}

static void test_name_missing(void **state)
{
	put_socket(3, SOCK_SEQPACKET, true);
	set_env(NULL, "1", "santasyncservice");
	assert_int_equal(santa_listen_fd("santasyncservic"), -ENOENT);
	set_env(NULL, "1", NULL);
	assert_int_equal(santa_listen_fd("santasyncservice"), -ENOENT);
	close(3);
}

static void test_select_second(void **state)
{
	put_socket(3, SOCK_SEQPACKET, true);
	put_socket(4, SOCK_SEQPACKET, true);
	set_env(NULL, "2", "other:santabundleservice");
	assert_int_equal(santa_listen_fd("santabundleservice"), 4);
	/* The one not asked for is closed. */
	assert_int_equal(fcntl(3, F_GETFD), -1);
	close(4);
}

static void test_several_need_name(void **state)
{
	put_socket(3, SOCK_SEQPACKET, true);
	put_socket(4, SOCK_SEQPACKET, true);
	set_env(NULL, "2", "a:b");
	assert_int_equal(santa_listen_fd(NULL), -EINVAL);
	close(3);
	close(4);
}

static void test_wrong_kind(void **state)
{
	int nul;

	put_socket(3, SOCK_STREAM, true);
	set_env(NULL, "1", NULL);
	assert_int_equal(santa_listen_fd(NULL), -EPROTOTYPE);
	close(3);

	put_socket(3, SOCK_SEQPACKET, false);
	set_env(NULL, "1", NULL);
	assert_int_equal(santa_listen_fd(NULL), -EDESTADDRREQ);
	close(3);

	close(3);
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(nul >= 0);
	if (nul != 3) {
		assert_int_equal(dup2(nul, 3), 3);
		close(nul);
	}
	set_env(NULL, "1", NULL);
	assert_int_equal(santa_listen_fd(NULL), -ENOTSOCK);
	close(3);

	set_env(NULL, "1", NULL);
	assert_int_equal(santa_listen_fd(NULL), -EINVAL);  /* fd 3 not open */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_passed),
		cmocka_unit_test(test_other_pid),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_one_socket),
		cmocka_unit_test(test_unnamed_any),
		cmocka_unit_test(test_name_missing),
		cmocka_unit_test(test_select_second),
		cmocka_unit_test(test_several_need_name),
		cmocka_unit_test(test_wrong_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
