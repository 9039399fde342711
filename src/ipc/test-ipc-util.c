/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-ipc-util.h"

uint64_t test_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

pid_t test_fork(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	pid_t pid = fork();

	if (pid == 0)
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
	return pid;
}

void test_filter_from_env(void)
{
	const char *f = getenv("IPC_TEST_FILTER");

	if (f && *f)
		cmocka_set_test_filter(f);
}

const char *test_self_exe(void)
{
	static char exe[4096];
	ssize_t n;

	if (!exe[0]) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			abort();
		exe[n] = '\0';
	}
	return exe;
}

ipc_trust *test_trust(void)
{
	ipc_trust *t;

	if (ipc_trust_new(&t) < 0 || ipc_trust_add_file(t, test_self_exe(), IPC_ROLE_TEST) < 0)
		abort();
	return t;
}

static void reply_echo(ipc_call *call, const Santa__Ipctest__Blob *in)
{
	Santa__Ipctest__Blob out = SANTA__IPCTEST__BLOB__INIT;

	out.data = in->data;
	out.seq = in->seq;
	ipc_call_reply(call, &out.base);
}

void test_echo_handler(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	reply_echo(call, (const Santa__Ipctest__Blob *)req);
}

static void srv_echo(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	test_server *ts = userdata;
	const Santa__Ipctest__Blob *b = (const Santa__Ipctest__Blob *)req;

	ts->echo_count++;
	if (ts->hold_until <= 0) {
		reply_echo(call, b);
		return;
	}
	/* Keep the call and answer later, in reverse order, so that replies
	 * can only find their callers by request id. */
	ts->held[ts->n_held++] = (struct held_call){ call, b };
	if (ts->n_held > ts->max_held)
		ts->max_held = ts->n_held;
	if (ts->n_held < ts->hold_until)
		return;
	while (ts->n_held > 0) {
		struct held_call *h = &ts->held[--ts->n_held];

		/* The request stays valid until the call is answered. */
		reply_echo(h->call, h->req);
	}
}

static void srv_privileged(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	test_server *ts = userdata;

	ts->privileged_ran++;
	reply_echo(call, (const Santa__Ipctest__Blob *)req);
}

static void srv_notify(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	test_server *ts = userdata;

	ts->notify_count++;
	if (ts->on_notify)
		ts->on_notify(ts, call, (const Santa__Ipctest__Blob *)req);
	else
		ipc_call_reply(call, NULL);
}

const ipc_method test_echo_methods[3] = {
	[M_ECHO] = { .handler = srv_echo, .flags = IPC_METHOD_ACCEPT_FD },
	[M_PRIVILEGED] = { .handler = srv_privileged, .flags = IPC_METHOD_PRIVILEGED },
	[M_NOTIFY] = { .handler = srv_notify, .flags = IPC_METHOD_ACCEPT_FD },
};

static void srv_on_connect(ipc_conn *c, void *userdata)
{
	test_server *ts = userdata;

	ts->n_connect++;
}

static void srv_on_close(ipc_conn *c, int err, const char *reason, void *userdata)
{
	test_server *ts = userdata;

	ts->n_close++;
	ts->last_err = err;
	snprintf(ts->last_reason, sizeof(ts->last_reason), "%s", reason);
	if (getenv("IPC_TEST_VERBOSE"))
		fprintf(stderr, "server closed %s (%s)\n", reason, ipc_strerror(err));
}

void test_server_start(test_server *ts, const ipc_limits *limits)
{
	int fd;

	memset(ts, 0, sizeof(*ts));
	assert_int_equal(sd_event_new(&ts->ev), 0);
	ts->trust = test_trust();
	snprintf(ts->dir, sizeof(ts->dir), "/tmp/test-ipc.XXXXXX");
	assert_non_null(mkdtemp(ts->dir));
	/* A peer dropped to nobody must reach the socket. */
	assert_int_equal(chmod(ts->dir, 0755), 0);
	snprintf(ts->path, sizeof(ts->path), "%s/echo.sock", ts->dir);
	fd = ipc_listen_socket(ts->path, 0666, (uid_t)-1, (gid_t)-1);
	assert_true(fd >= 0);
	ts->service = (ipc_service){
		.desc = &santa__ipctest__echo__descriptor,
		.methods = test_echo_methods,
		.accept_roles = IPC_ROLE_BIT(IPC_ROLE_TEST),
		.userdata = ts,
	};
	if (limits)
		ts->opts.limits = *limits;
	ts->opts.on_connect = srv_on_connect;
	ts->opts.on_close = srv_on_close;
	ts->opts.userdata = ts;
	ts->held = calloc(4096, sizeof(*ts->held));
	assert_non_null(ts->held);
	assert_int_equal(ipc_server_new(ts->ev, fd, ts->trust, &ts->service, &ts->opts,
					&ts->server), 0);
}

void test_server_stop(test_server *ts)
{
	while (ts->n_held > 0)
		ipc_call_fail(ts->held[--ts->n_held].call, IPC_E_PEER, "test over");
	ts->server = ipc_server_free(ts->server);
	unlink(ts->path);
	rmdir(ts->dir);
	free(ts->held);
	ts->trust = ipc_trust_free(ts->trust);
	ts->ev = sd_event_unref(ts->ev);
}

int test_run_until_exit(sd_event *ev, pid_t child, uint64_t timeout_usec)
{
	uint64_t end = test_now_usec() + timeout_usec;
	int status;

	for (;;) {
		pid_t r = waitpid(child, &status, WNOHANG);

		if (r == child)
			break;
		if (test_now_usec() > end) {
			kill(child, SIGKILL);
			waitpid(child, &status, 0);
			fprintf(stderr, "child %d did not finish in time\n", (int)child);
			return 255;
		}
		sd_event_run(ev, 5000);
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

bool test_run_until(sd_event *ev, const int *flag, uint64_t timeout_usec)
{
	uint64_t end = test_now_usec() + timeout_usec;

	while (!*flag && test_now_usec() < end)
		sd_event_run(ev, 5000);
	return *flag != 0;
}
