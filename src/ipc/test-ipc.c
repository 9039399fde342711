/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The IPC library's properties, each with its negatives: calls and replies,
 * peer validation (foreign executables, non-root callers of privileged
 * methods), forced establishment and its deadline, reconnecting after a
 * server restart.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-ipc-util.h"

static const ProtobufCServiceDescriptor *echo_desc = &santa__ipctest__echo__descriptor;

/* A blocking Echo call from a child; exits non-zero on any mismatch. */
static void child_echo(ipc_client *cl, const char *text, int64_t seq)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	ProtobufCMessage *reply = NULL;
	Santa__Ipctest__Blob *b;
	int r;

	req.data = (ProtobufCBinaryData){ strlen(text), (uint8_t *)text };
	req.seq = seq;
	r = ipc_client_call(cl, M_ECHO, &req.base, -1, 0, &reply, NULL);
	CHILD_CHECK(r == 0);
	b = (Santa__Ipctest__Blob *)reply;
	CHILD_CHECK(b->seq == seq);
	CHILD_CHECK(b->data.len == strlen(text));
	CHILD_CHECK(b->data.len == 0 || memcmp(b->data.data, text, b->data.len) == 0);
	protobuf_c_message_free_unpacked(reply, NULL);
}

static ipc_client *child_connect(const char *path)
{
	ipc_trust *t = test_trust();
	ipc_client *cl = NULL;
	int r;

	r = ipc_client_connect(path, t, echo_desc, IPC_ROLE_BIT(IPC_ROLE_TEST), 0, &cl);
	if (r < 0)
		fprintf(stderr, "child %d: connect: %s\n", (int)getpid(), ipc_strerror(r));
	CHILD_CHECK(r == 0);
	/* The trust table is only read during the handshake. */
	return cl;
}

/* A trusted child calls Echo; both sides see each other as the test role. */
static void test_blocking_call(void **state)
{
	test_server ts;
	pid_t pid;

	test_server_start(&ts, NULL);
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_client *cl = child_connect(ts.path);

		CHILD_CHECK(ipc_client_peer(cl)->role == IPC_ROLE_TEST);
		CHILD_CHECK(ipc_client_peer(cl)->pid == getppid());
		CHILD_CHECK(ipc_client_is_privileged(cl));
		child_echo(cl, "hello", 1);
		child_echo(cl, "", 2);
		ipc_client_free(cl);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_true(test_run_until(ts.ev, &ts.n_close, 1000000));
	assert_int_equal(ts.n_connect, 1);
	assert_int_equal(ts.echo_count, 2);
	test_server_stop(&ts);
}

struct thread_caller {
	const char *path;
	int replies;
	int r;
	int done;
};

static void thread_caller_reply(ipc_conn *c, int err, const char *errmsg,
				const ProtobufCMessage *reply, void *userdata)
{
	struct thread_caller *tc = userdata;

	tc->r = err;
	tc->replies++;
}

/* A connection on the thread's own loop: it packs and receives through the
 * library's per-thread buffers. */
static void *thread_caller_run(void *arg)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	struct thread_caller *tc = arg;
	ipc_trust *t = test_trust();
	ipc_conn *c = NULL;
	sd_event *ev = NULL;
	uint64_t end = test_now_usec() + 10000000;

	tc->r = sd_event_new(&ev);
	if (tc->r == 0)
		tc->r = ipc_connect(ev, tc->path, t, echo_desc, NULL, NULL, &c);
	if (tc->r == 0)
		tc->r = ipc_call_async(c, M_ECHO, &req.base, -1, 0, thread_caller_reply, tc);
	while (tc->r == 0 && tc->replies == 0 && test_now_usec() < end)
		sd_event_run(ev, 100000);
	if (tc->r == 0 && tc->replies == 0)
		tc->r = -ETIMEDOUT;
	ipc_conn_unref(c);
	sd_event_unref(ev);
	ipc_trust_free(t);
	__atomic_store_n(&tc->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A thread that calls and exits frees the library's per-thread buffers
 * (in the sanitizer build, LeakSanitizer fails this binary otherwise). */
static void test_thread_exit_frees_buffers(void **state)
{
	test_server ts;

	test_server_start(&ts, NULL);
	for (int i = 0; i < 3; i++) {
		struct thread_caller tc = { .path = ts.path };
		pthread_t th;

		assert_int_equal(pthread_create(&th, NULL, thread_caller_run, &tc), 0);
		assert_true(test_run_until(ts.ev, &tc.done, 10000000));
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(tc.r, 0);
	}
	assert_int_equal(ts.echo_count, 3);
	test_server_stop(&ts);
}

/* Python connects: its executable is not ours. The server refuses it with
 * a reason naming it, and serves the next trusted client. */
static void test_foreign_rejected(void **state)
{
	char code[512];
	test_server ts;
	pid_t pid;

	test_server_start(&ts, NULL);
	snprintf(code, sizeof(code),
		 "import socket,sys\n"
		 "s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n"
		 "s.connect('%s')\n"
		 "s.settimeout(5)\n"
		 "d=s.recv(65536)\n"
		 "sys.exit(0 if len(d) >= 24 and d[1] == 6 and s.recv(100) == b'' else 3)\n",
		 ts.path);
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/usr/bin/python3", "python3", "-c", code, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(ts.n_close, 1);
	assert_int_equal(ts.n_connect, 0);
	assert_int_equal(ts.last_err, IPC_E_NOT_PERMITTED);
	assert_non_null(strstr(ts.last_reason, "is not one of ours"));
	assert_non_null(strstr(ts.last_reason, "python"));

	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_client *cl = child_connect(ts.path);

		child_echo(cl, "still serving", 7);
		ipc_client_free(cl);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(ts.n_connect, 1);
	test_server_stop(&ts);
}

static void drop_to_nobody(void)
{
	CHILD_CHECK(setgroups(0, NULL) == 0);
	CHILD_CHECK(setresgid(65534, 65534, 65534) == 0);
	CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
}

/* A non-root caller of a privileged method is refused and the handler
 * never runs; the connection stays usable for what it may call. */
static void test_unprivileged_refused(void **state)
{
	test_server ts;
	pid_t pid;

	test_server_start(&ts, NULL);
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
		ProtobufCMessage *reply = NULL;
		char *msg = NULL;
		ipc_client *cl;
		int r;

		drop_to_nobody();
		cl = child_connect(ts.path);
		CHILD_CHECK(!ipc_client_is_privileged(cl));
		/* We may not read root's /proc/PID/exe: trusted as root. */
		CHILD_CHECK(ipc_client_peer(cl)->uid == 0);
		CHILD_CHECK(ipc_client_peer(cl)->role == IPC_ROLE_TEST);
		r = ipc_client_call(cl, M_PRIVILEGED, &req.base, -1, 0, &reply, &msg);
		CHILD_CHECK(r == IPC_E_NOT_PERMITTED);
		CHILD_CHECK(reply == NULL);
		free(msg);
		child_echo(cl, "after refusal", 3);
		ipc_client_free(cl);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(ts.privileged_ran, 0);
	assert_int_equal(ts.echo_count, 1);
	assert_int_equal(ts.n_connect, 1);

	/* Root may call it. */
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
		ProtobufCMessage *reply = NULL;
		ipc_client *cl = child_connect(ts.path);

		CHILD_CHECK(ipc_client_call(cl, M_PRIVILEGED, &req.base, -1, 0, &reply, NULL) == 0);
		protobuf_c_message_free_unpacked(reply, NULL);
		ipc_client_free(cl);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(ts.privileged_ran, 1);
	test_server_stop(&ts);
}

/* listen() but never accept or answer: the blocking client gives up at the
 * deadline, not later and not much earlier. */
static void test_nobody_answers_blocking(void **state)
{
	char dir[] = "/tmp/test-ipc.XXXXXX", path[128];
	ipc_trust *t = test_trust();
	ipc_client *cl = NULL;
	uint64_t start, took;
	int fd, r;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mute.sock", dir);
	fd = ipc_listen_socket(path, 0600, (uid_t)-1, (gid_t)-1);
	assert_true(fd >= 0);

	start = test_now_usec();
	r = ipc_client_connect(path, t, echo_desc, 0, 0, &cl);
	took = test_now_usec() - start;
	assert_int_equal(r, IPC_E_TIMEOUT);
	assert_null(cl);
	fprintf(stderr, "# blocking connect to a mute socket failed after %llu ms\n",
		(unsigned long long)(took / 1000));
	assert_true(took >= 1990000 && took < 2300000);

	close(fd);
	/* Now nobody listens at all: refused at once. */
	start = test_now_usec();
	r = ipc_client_connect(path, t, echo_desc, 0, 0, &cl);
	assert_int_equal(r, IPC_E_DISCONNECTED);
	assert_true(test_now_usec() - start < 100000);
	unlink(path);
	rmdir(dir);
	ipc_trust_free(t);
}

struct ready_state {
	int done;
	int err;
	int call_done;
	int call_err;
	int closed;
	int close_err;
	int64_t seq;
};

static void on_ready(ipc_conn *c, int err, void *userdata)
{
	struct ready_state *st = userdata;

	st->done = 1;
	st->err = err;
}

static void on_reply(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
		     void *userdata)
{
	struct ready_state *st = userdata;

	st->call_done = 1;
	st->call_err = err;
	if (err == 0)
		st->seq = ((const Santa__Ipctest__Blob *)reply)->seq;
}

static void on_close(ipc_conn *c, int err, const char *reason, void *userdata)
{
	struct ready_state *st = userdata;

	st->closed = 1;
	st->close_err = err;
}

/* The event-loop client: a call made before the handshake is queued and
 * fails with the handshake's error when nobody answers. */
static void test_nobody_answers_async(void **state)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	char dir[] = "/tmp/test-ipc.XXXXXX", path[128];
	struct ready_state st = { 0 };
	ipc_conn_opts opts = { .limits.handshake_usec = 300000, .userdata = &st };
	ipc_trust *t = test_trust();
	uint64_t start, took;
	sd_event *ev;
	ipc_conn *c;
	int fd;

	assert_int_equal(sd_event_new(&ev), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mute.sock", dir);
	fd = ipc_listen_socket(path, 0600, (uid_t)-1, (gid_t)-1);
	assert_true(fd >= 0);

	start = test_now_usec();
	opts.on_close = on_close;
	assert_int_equal(ipc_connect(ev, path, t, echo_desc, &opts, on_ready, &c), 0);
	assert_int_equal(ipc_call_async(c, M_ECHO, &req.base, -1, 0, on_reply, &st), 0);
	assert_false(st.call_done);
	assert_true(test_run_until(ev, &st.done, 2000000));
	took = test_now_usec() - start;
	assert_int_equal(st.err, IPC_E_TIMEOUT);
	assert_true(st.call_done);
	assert_int_equal(st.call_err, IPC_E_TIMEOUT);
	assert_true(st.closed);
	assert_true(took >= 290000 && took < 600000);
	/* A dead connection is never reused. */
	assert_int_equal(ipc_call_async(c, M_ECHO, &req.base, -1, 0, on_reply, &st),
			 IPC_E_DISCONNECTED);
	ipc_conn_unref(c);

	close(fd);
	unlink(path);
	assert_int_equal(ipc_connect(ev, path, t, echo_desc, &opts, on_ready, &c),
			 IPC_E_DISCONNECTED);
	rmdir(dir);
	ipc_trust_free(t);
	sd_event_unref(ev);
}

/* A server in a child process, for the restart test. */
static pid_t spawn_server(const char *path)
{
	static const ipc_method methods[3] = {
		[M_ECHO] = { .handler = test_echo_handler },
	};
	pid_t pid = test_fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_service svc = { .desc = echo_desc, .methods = methods };
		ipc_trust *t = test_trust();
		ipc_server *s;
		sd_event *ev;
		int fd;

		CHILD_CHECK(sd_event_new(&ev) == 0);
		fd = ipc_listen_socket(path, 0600, (uid_t)-1, (gid_t)-1);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(ipc_server_new(ev, fd, t, &svc, NULL, &s) == 0);
		for (;;)
			sd_event_run(ev, UINT64_MAX);
	}
	return pid;
}

static void connect_and_call(sd_event *ev, const char *path, ipc_trust *t,
			     struct ready_state *st, ipc_conn **ret)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	ipc_conn_opts opts = { .on_close = on_close, .userdata = st };
	uint64_t end = test_now_usec() + 2000000;
	int r;

	*st = (struct ready_state){ 0 };
	/* The restarted server may not be listening yet. */
	while ((r = ipc_connect(ev, path, t, echo_desc, &opts, on_ready, ret)) ==
	       IPC_E_DISCONNECTED && test_now_usec() < end)
		usleep(5000);
	assert_int_equal(r, 0);
	req.seq = 42;
	assert_int_equal(ipc_call_async(*ret, M_ECHO, &req.base, -1, 0, on_reply, st), 0);
	assert_true(test_run_until(ev, &st->call_done, 3000000));
	assert_int_equal(st->err, 0);
	assert_int_equal(st->call_err, 0);
	assert_int_equal(st->seq, 42);
}

/* The server dies and comes back: the old connection reports the loss and
 * refuses calls; a new ipc_connect goes through a new handshake. */
static void test_server_restart(void **state)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	char dir[] = "/tmp/test-ipc.XXXXXX", path[128];
	struct ready_state st1, st2;
	ipc_trust *t = test_trust();
	ipc_conn *c1, *c2;
	sd_event *ev;
	pid_t srv;

	assert_int_equal(sd_event_new(&ev), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/restart.sock", dir);

	srv = spawn_server(path);
	connect_and_call(ev, path, t, &st1, &c1);
	assert_int_equal(ipc_conn_peer(c1)->pid, srv);

	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	assert_true(test_run_until(ev, &st1.closed, 2000000));
	assert_int_equal(st1.close_err, IPC_E_DISCONNECTED);
	assert_false(ipc_conn_is_ready(c1));
	assert_int_equal(ipc_call_async(c1, M_ECHO, &req.base, -1, 0, on_reply, &st1),
			 IPC_E_DISCONNECTED);

	srv = spawn_server(path);
	connect_and_call(ev, path, t, &st2, &c2);
	assert_int_equal(ipc_conn_peer(c2)->pid, srv);
	assert_int_not_equal(ipc_conn_peer(c2)->conn_id, ipc_conn_peer(c1)->conn_id);

	ipc_conn_unref(c1);
	ipc_conn_unref(c2);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	unlink(path);
	rmdir(dir);
	ipc_trust_free(t);
	sd_event_unref(ev);
}

static void drop_to(uid_t uid)
{
	CHILD_CHECK(setgroups(0, NULL) == 0);
	CHILD_CHECK(setresgid(uid, uid, uid) == 0);
	CHILD_CHECK(setresuid(uid, uid, uid) == 0);
}

/* A role named in privileged_roles gets the privileged interface whatever
 * its uid. */
static void test_privileged_roles(void **state)
{
	test_server ts;
	pid_t pid;

	test_server_start(&ts, NULL);
	ts.server = ipc_server_free(ts.server);
	ts.service.privileged_roles = IPC_ROLE_BIT(IPC_ROLE_TEST);
	assert_int_equal(ipc_server_new(ts.ev, ipc_listen_socket(ts.path, 0666, -1, -1),
					ts.trust, &ts.service, &ts.opts, &ts.server), 0);
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
		ProtobufCMessage *reply = NULL;
		ipc_client *cl;

		drop_to(65534);
		cl = child_connect(ts.path);
		CHILD_CHECK(ipc_client_is_privileged(cl));
		CHILD_CHECK(ipc_client_call(cl, M_PRIVILEGED, &req.base, -1, 0, &reply, NULL) == 0);
		protobuf_c_message_free_unpacked(reply, NULL);
		ipc_client_free(cl);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(ts.privileged_ran, 1);
	test_server_stop(&ts);
}

/* A server dropped to nobody, on a socket root made for it (as systemd or
 * santad do), serving OPEN_TO roles to peers it may not inspect. */
static pid_t spawn_nobody_server(int listen_fd, uint32_t claimable)
{
	static const ipc_method methods[3] = {
		[M_ECHO] = { .handler = test_echo_handler },
	};
	pid_t pid = test_fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_service svc = { .desc = echo_desc, .methods = methods,
				    .accept_roles = IPC_ROLE_BIT(IPC_ROLE_TEST),
				    .claimable_roles = claimable };
		ipc_trust *t = test_trust();
		ipc_server *s;
		sd_event *ev;

		drop_to(65534);
		CHILD_CHECK(sd_event_new(&ev) == 0);
		CHILD_CHECK(ipc_server_new(ev, listen_fd, t, &svc, NULL, &s) == 0);
		for (;;)
			sd_event_run(ev, UINT64_MAX);
	}
	close(listen_fd);
	return pid;
}

/* A client of another uid than the server's, neither root: each may not
 * read the other's /proc/PID/exe. Returns what ipc_client_connect_ex
 * returned; *RET_REFUSED whether the server refused the client (rather
 * than the client the server). */
static int connect_as(const char *path, uid_t uid, bool *ret_refused)
{
	pid_t pid = test_fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_trust *t = test_trust();
		ipc_client *cl = NULL;
		bool refused = true;
		int r;

		drop_to(uid);
		r = ipc_client_connect_ex(path, t, echo_desc, IPC_ROLE_BIT(IPC_ROLE_TEST), 0, &cl,
					  &refused);
		if (r == 0) {
			CHILD_CHECK(!refused);
			CHILD_CHECK(ipc_client_peer(cl)->role == IPC_ROLE_TEST);
			CHILD_CHECK(ipc_client_peer(cl)->exe_ino == 0);
			child_echo(cl, "by its word", 11);
		}
		_exit(r == 0 ? 0 : -r - 10000 + (refused ? 100 : 0));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	status = WEXITSTATUS(status);
	*ret_refused = status > 100;
	return status ? -(status % 100 + 10000) : 0;
}

static void test_uninspectable_peers(void **state)
{
	char root_dir[] = "/run/test-ipc.XXXXXX", tmp_dir[] = "/tmp/test-ipc.XXXXXX";
	char path[128];
	bool refused;
	pid_t srv;
	int fd;

	/* Under /run: root's, only root writes there. */
	assert_non_null(mkdtemp(root_dir));
	assert_int_equal(chmod(root_dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/svc.sock", root_dir);

	fd = ipc_listen_socket(path, 0666, (uid_t)-1, (gid_t)-1);
	srv = spawn_nobody_server(fd, IPC_ROLE_BIT(IPC_ROLE_TEST));
	assert_int_equal(connect_as(path, 65533, &refused), 0);
	assert_false(refused);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);

	/* The same server not willing to take anyone's word: it refuses us,
	 * and the client can tell. */
	fd = ipc_listen_socket(path, 0666, (uid_t)-1, (gid_t)-1);
	srv = spawn_nobody_server(fd, 0);
	assert_int_equal(connect_as(path, 65533, &refused), IPC_E_NOT_PERMITTED);
	assert_true(refused);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	unlink(path);
	rmdir(root_dir);

	/* In a directory anyone may write, anyone could have bound the socket:
	 * the client does not take an uninspectable server's word there. */
	assert_non_null(mkdtemp(tmp_dir));
	assert_int_equal(chmod(tmp_dir, 0777), 0);
	snprintf(path, sizeof(path), "%s/svc.sock", tmp_dir);
	fd = ipc_listen_socket(path, 0666, (uid_t)-1, (gid_t)-1);
	srv = spawn_nobody_server(fd, IPC_ROLE_BIT(IPC_ROLE_TEST));
	assert_int_equal(connect_as(path, 65533, &refused), IPC_E_NOT_PERMITTED);
	assert_false(refused);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	unlink(path);
	rmdir(tmp_dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocking_call),
		cmocka_unit_test(test_thread_exit_frees_buffers),
		cmocka_unit_test(test_foreign_rejected),
		cmocka_unit_test(test_unprivileged_refused),
		cmocka_unit_test(test_nobody_answers_blocking),
		cmocka_unit_test(test_nobody_answers_async),
		cmocka_unit_test(test_server_restart),
		cmocka_unit_test(test_privileged_roles),
		cmocka_unit_test(test_uninspectable_peers),
	};

	signal(SIGPIPE, SIG_IGN);
	test_filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
