/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Multiplexing and two-way communication: many clients with many calls in
 * flight, one-way messages and calls the server makes on a client's
 * callback service, and anonymous endpoints both ways, a forged one
 * refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test-ipc-util.h"

#define N_CLIENTS 50
#define CALLS_PER_CLIENT 20

static const ProtobufCServiceDescriptor *echo_desc = &santa__ipctest__echo__descriptor;

struct mux_child {
	int replies;
	int bad;
	int ready;
	int ready_err;
	int closed;
	char payload[CALLS_PER_CLIENT][64];
};

static void mux_ready(ipc_conn *c, int err, void *userdata)
{
	struct mux_child *m = ipc_conn_get_userdata(c);

	m->ready = 1;
	m->ready_err = err;
}

static void mux_reply(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
		      void *userdata)
{
	struct mux_child *m = ipc_conn_get_userdata(c);
	intptr_t i = (intptr_t)userdata;
	const Santa__Ipctest__Blob *b = (const Santa__Ipctest__Blob *)reply;

	if (err != 0 || b->seq != i || b->data.len != strlen(m->payload[i]) ||
	    memcmp(b->data.data, m->payload[i], b->data.len) != 0)
		m->bad++;
	m->replies++;
}

/* One client process: 20 calls in flight on one connection, each with a
 * payload of its own. */
static void mux_child_run(const char *path, int index)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	struct mux_child m = { 0 };
	ipc_trust *t = test_trust();
	ipc_conn *c;
	sd_event *ev;
	uint64_t end;

	CHILD_CHECK(sd_event_new(&ev) == 0);
	CHILD_CHECK(ipc_connect(ev, path, t, echo_desc, NULL, mux_ready, &c) == 0);
	ipc_conn_set_userdata(c, &m);
	for (intptr_t i = 0; i < CALLS_PER_CLIENT; i++) {
		snprintf(m.payload[i], sizeof(m.payload[i]), "client %d call %d pid %d", index,
			 (int)i, (int)getpid());
		req.data = (ProtobufCBinaryData){ strlen(m.payload[i]), (uint8_t *)m.payload[i] };
		req.seq = i;
		/* Queued until the handshake completes. */
		CHILD_CHECK(ipc_call_async(c, M_ECHO, &req.base, -1, 0, mux_reply, (void *)i) == 0);
	}
	end = test_now_usec() + 20000000;
	while (m.replies < CALLS_PER_CLIENT && test_now_usec() < end)
		sd_event_run(ev, 100000);
	CHILD_CHECK(m.ready && m.ready_err == 0);
	CHILD_CHECK(m.replies == CALLS_PER_CLIENT);
	CHILD_CHECK(m.bad == 0);
	ipc_conn_unref(c);
	_exit(0);
}

/* 50 clients, 1000 calls held by the server until all are in flight, then
 * answered in reverse order: every caller gets its own reply. */
static void test_many_clients(void **state)
{
	pid_t pids[N_CLIENTS];
	test_server ts;
	int failed = 0;

	test_server_start(&ts, NULL);
	ts.hold_until = N_CLIENTS * CALLS_PER_CLIENT;
	for (int i = 0; i < N_CLIENTS; i++) {
		pids[i] = test_fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			mux_child_run(ts.path, i);
	}
	for (int i = 0; i < N_CLIENTS; i++)
		if (test_run_until_exit(ts.ev, pids[i], 25000000) != 0)
			failed++;
	assert_int_equal(failed, 0);
	assert_int_equal(ts.max_held, N_CLIENTS * CALLS_PER_CLIENT);
	assert_int_equal(ts.echo_count, N_CLIENTS * CALLS_PER_CLIENT);
	assert_int_equal(ts.n_connect, N_CLIENTS);
	test_server_stop(&ts);
}

/* --- Server-initiated calls and one-way messages --- */

struct cb_child {
	int notified;
	int echoed;
};

static void cb_notify(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	struct cb_child *st = userdata;

	CHILD_CHECK(ipc_call_is_oneway(call));
	CHILD_CHECK(((const Santa__Ipctest__Blob *)req)->seq == 99);
	st->notified++;
	ipc_call_reply(call, NULL);
}

static void cb_echo(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	struct cb_child *st = userdata;

	CHILD_CHECK(ipc_call_peer(call)->pid == getppid());
	st->echoed++;
	test_echo_handler(call, req, NULL);
}

static void cb_server_connect(ipc_conn *c, void *userdata);

struct cb_parent {
	int replies;
	int seq;
};

static void cb_parent_reply(ipc_conn *c, int err, const char *errmsg,
			    const ProtobufCMessage *reply, void *userdata)
{
	struct cb_parent *p = userdata;

	if (err == 0)
		p->seq = (int)((const Santa__Ipctest__Blob *)reply)->seq;
	p->replies++;
}

static struct cb_parent cb_parent_state;

/* The server side, once a client with a callback service is ready: a call
 * and a one-way message to it. */
static void cb_server_connect(ipc_conn *c, void *userdata)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;

	req.seq = 5;
	assert_int_equal(ipc_call_async(c, M_ECHO, &req.base, -1, 0, cb_parent_reply,
					&cb_parent_state), 0);
	req.seq = 99;
	assert_int_equal(ipc_send_oneway(c, M_NOTIFY, &req.base, -1), 0);
}

static void test_server_calls_client(void **state)
{
	static const ProtobufCServiceDescriptor *const callbacks[] = {
		&santa__ipctest__echo__descriptor, NULL,
	};
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	test_server ts;
	pid_t pid;

	test_server_start(&ts, NULL);
	ts.server = ipc_server_free(ts.server);
	ts.opts.callbacks = callbacks;
	ts.opts.on_connect = cb_server_connect;
	assert_int_equal(ipc_server_new(ts.ev, ipc_listen_socket(ts.path, 0666, -1, -1),
					ts.trust, &ts.service, &ts.opts, &ts.server), 0);
	cb_parent_state = (struct cb_parent){ 0 };
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cb_child st = { 0 };
		const ipc_method methods[3] = {
			[M_ECHO] = { .handler = cb_echo },
			[M_NOTIFY] = { .handler = cb_notify },
		};
		ipc_service svc = { .desc = echo_desc, .methods = methods,
				    .accept_roles = IPC_ROLE_BIT(IPC_ROLE_TEST), .userdata = &st };
		ipc_conn_opts opts = { .callback = &svc };
		ipc_trust *t = test_trust();
		ipc_conn *c;
		sd_event *ev;
		uint64_t end = test_now_usec() + 5000000;

		CHILD_CHECK(sd_event_new(&ev) == 0);
		CHILD_CHECK(ipc_connect(ev, ts.path, t, echo_desc, &opts, NULL, &c) == 0);
		/* A one-way message from the client side too. */
		req.seq = 1;
		CHILD_CHECK(ipc_send_oneway(c, M_NOTIFY, &req.base, -1) == 0);
		while ((!st.notified || !st.echoed) && test_now_usec() < end)
			sd_event_run(ev, 100000);
		CHILD_CHECK(st.notified == 1 && st.echoed == 1);
		/* Let the last reply leave before closing. */
		sd_event_run(ev, 50000);
		ipc_conn_unref(c);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(cb_parent_state.replies, 1);
	assert_int_equal(cb_parent_state.seq, 5);
	assert_int_equal(ts.notify_count, 1);
	test_server_stop(&ts);
}

/* --- Endpoints --- */

/*
 * Direction 1: the server makes an endpoint for its client and sends it in
 * a one-way message on the client's callback service; the client connects
 * over it and calls the endpoint. Before the genuine endpoint, the server
 * sends one made by a third process: the client must refuse it.
 */
struct ep_child {
	sd_event *ev;
	ipc_trust *trust;
	const ipc_peer *server;
	int forged_refused;
	int genuine_ok;
	int done;
	ipc_conn *ep;
};

static void ep_child_reply(ipc_conn *c, int err, const char *errmsg,
			   const ProtobufCMessage *reply, void *userdata)
{
	struct ep_child *st = userdata;

	if (err == 0 && ((const Santa__Ipctest__Blob *)reply)->seq == 77)
		st->genuine_ok = 1;
	st->done = 1;
}

static void ep_child_notify(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	struct ep_child *st = userdata;
	const Santa__Ipctest__Blob *b = (const Santa__Ipctest__Blob *)req;
	Santa__Ipctest__Blob out = SANTA__IPCTEST__BLOB__INIT;
	int fd = ipc_call_take_fd(call);
	int r;

	CHILD_CHECK(fd >= 0);
	r = ipc_endpoint_connect(st->ev, fd, ipc_call_peer(call), st->trust, echo_desc, NULL, NULL,
				 &st->ep);
	if (b->seq == 1) {
		CHILD_CHECK(r == IPC_E_NOT_PERMITTED);
		st->forged_refused = 1;
	} else {
		CHILD_CHECK(r == 0);
		out.seq = 77;
		CHILD_CHECK(ipc_call_async(st->ep, M_ECHO, &out.base, -1, 0, ep_child_reply,
					   st) == 0);
	}
	ipc_call_reply(call, NULL);
}

/* A socketpair made by another process, handed to us. */
static int forged_endpoint(void)
{
	int carrier[2], fd;
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, carrier), 0);
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int sp[2];
		char c = 'x';
		struct iovec iov = { &c, 1 };
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} ctl = { 0 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		CHILD_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) == 0);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &sp[1], sizeof(int));
		CHILD_CHECK(sendmsg(carrier[1], &mh, 0) == 1);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	{
		char c;
		struct iovec iov = { &c, 1 };
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} ctl;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };

		assert_int_equal(recvmsg(carrier[0], &mh, MSG_CMSG_CLOEXEC), 1);
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	}
	close(carrier[0]);
	close(carrier[1]);
	return fd;
}

struct ep_parent {
	test_server *ts;
	ipc_conn *ep;
	int sent;
};

static struct ep_parent ep_parent_state;

static void ep_server_connect(ipc_conn *c, void *userdata)
{
	struct ep_parent *p = &ep_parent_state;
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	int fd;

	p->ts->n_connect++;
	/* The endpoint's own connection comes here too. */
	if (c == p->ep)
		return;

	fd = forged_endpoint();
	req.seq = 1;
	assert_int_equal(ipc_send_oneway(c, M_NOTIFY, &req.base, fd), 0);
	close(fd);

	assert_int_equal(ipc_endpoint_new(p->ts->ev, p->ts->trust, &p->ts->service,
					  ipc_conn_peer(c), &p->ts->opts, &fd, &p->ep), 0);
	req.seq = 2;
	assert_int_equal(ipc_send_oneway(c, M_NOTIFY, &req.base, fd), 0);
	close(fd);
	p->sent = 1;
}

static void test_endpoint_from_server(void **state)
{
	static const ProtobufCServiceDescriptor *const callbacks[] = {
		&santa__ipctest__echo__descriptor, NULL,
	};
	test_server ts;
	pid_t pid;

	test_server_start(&ts, NULL);
	ts.server = ipc_server_free(ts.server);
	ts.opts.callbacks = callbacks;
	ts.opts.on_connect = ep_server_connect;
	assert_int_equal(ipc_server_new(ts.ev, ipc_listen_socket(ts.path, 0666, -1, -1),
					ts.trust, &ts.service, &ts.opts, &ts.server), 0);
	ep_parent_state = (struct ep_parent){ .ts = &ts };
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ep_child st = { 0 };
		const ipc_method methods[3] = {
			[M_NOTIFY] = { .handler = ep_child_notify, .flags = IPC_METHOD_ACCEPT_FD },
		};
		ipc_service svc = { .desc = echo_desc, .methods = methods,
				    .accept_roles = IPC_ROLE_BIT(IPC_ROLE_TEST), .userdata = &st };
		ipc_conn_opts opts = { .callback = &svc };
		ipc_conn *c;
		uint64_t end = test_now_usec() + 5000000;

		st.trust = test_trust();
		CHILD_CHECK(sd_event_new(&st.ev) == 0);
		CHILD_CHECK(ipc_connect(st.ev, ts.path, st.trust, echo_desc, &opts, NULL, &c) == 0);
		while (!st.done && test_now_usec() < end)
			sd_event_run(st.ev, 100000);
		CHILD_CHECK(st.forged_refused);
		CHILD_CHECK(st.genuine_ok);
		ipc_conn_unref(st.ep);
		ipc_conn_unref(c);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_true(ep_parent_state.sent);
	/* Both the connection and the endpoint connected. */
	assert_int_equal(ts.n_connect, 2);
	assert_int_equal(ts.echo_count, 1);
	ipc_conn_unref(ep_parent_state.ep);
	test_server_stop(&ts);
}

/*
 * Direction 2: a client makes an endpoint for the server and sends it with
 * a one-way message; the server connects over it and calls the client.
 * Then the client hands the server an endpoint it made for another pid:
 * the server's hello on it is refused.
 */
struct ep2_parent {
	sd_event *ev;
	ipc_trust *trust;
	ipc_conn *ep[2];
	int ready[2];
	int err[2];
	int reply_seq;
	int replies;
};

static struct ep2_parent ep2;

static void ep2_ready(ipc_conn *c, int err, void *userdata)
{
	intptr_t i = (intptr_t)userdata;

	if (getenv("IPC_TEST_VERBOSE"))
		fprintf(stderr, "endpoint %d ready: %s\n", (int)i, ipc_strerror(err));
	ep2.ready[i] = 1;
	ep2.err[i] = err;
}

static void ep2_reply(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
		      void *userdata)
{
	if (err == 0)
		ep2.reply_seq = (int)((const Santa__Ipctest__Blob *)reply)->seq;
	ep2.replies++;
}

static void ep2_notify(test_server *ts, ipc_call *call, const Santa__Ipctest__Blob *b)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	ipc_conn_opts opts = { .accept_roles = IPC_ROLE_BIT(IPC_ROLE_TEST),
			       .userdata = (void *)(intptr_t)(b->seq - 1) };
	int fd = ipc_call_take_fd(call);
	int i = (int)b->seq - 1;

	assert_true(fd >= 0);
	assert_true(i == 0 || i == 1);
	assert_int_equal(ipc_endpoint_connect(ts->ev, fd, ipc_call_peer(call), ts->trust, echo_desc,
					      &opts, ep2_ready, &ep2.ep[i]), 0);
	req.seq = 31;
	assert_int_equal(ipc_call_async(ep2.ep[i], M_ECHO, &req.base, -1, 0, ep2_reply, NULL), 0);
	ipc_call_reply(call, NULL);
}

static int ep2_child_closed;
static int ep2_child_served;

static void ep2_child_echo(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	ep2_child_served++;
	test_echo_handler(call, req, userdata);
}

static void ep2_child_close(ipc_conn *c, int err, const char *reason, void *userdata)
{
	if (getenv("IPC_TEST_VERBOSE"))
		fprintf(stderr, "child endpoint closed: %s (%s)\n", reason, ipc_strerror(err));
	CHILD_CHECK(err == IPC_E_NOT_PERMITTED);
	CHILD_CHECK(strstr(reason, "on an endpoint made for pid"));
	ep2_child_closed++;
}

static void test_endpoint_from_client(void **state)
{
	test_server ts;
	pid_t pid;

	test_server_start(&ts, NULL);
	ts.on_notify = ep2_notify;
	ep2 = (struct ep2_parent){ 0 };
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const ipc_method methods[3] = {
			[M_ECHO] = { .handler = ep2_child_echo },
		};
		ipc_service svc = { .desc = echo_desc, .methods = methods,
				    .accept_roles = IPC_ROLE_BIT(IPC_ROLE_TEST) };
		Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
		ipc_trust *t = test_trust();
		ipc_conn *c, *ep, *wrong;
		ipc_server_opts sopts = { .on_close = ep2_child_close };
		ipc_peer other;
		sd_event *ev;
		uint64_t end;
		int fd;

		CHILD_CHECK(sd_event_new(&ev) == 0);
		CHILD_CHECK(ipc_connect(ev, ts.path, t, echo_desc, NULL, NULL, &c) == 0);
		/* The peer is known once the connection is ready. */
		CHILD_CHECK(ipc_endpoint_new(ev, t, &svc, ipc_conn_peer(c), &sopts, &fd, &ep) ==
			    -EINVAL);
		end = test_now_usec() + 5000000;
		while (!ipc_conn_is_ready(c) && test_now_usec() < end)
			sd_event_run(ev, 50000);
		CHILD_CHECK(ipc_endpoint_new(ev, t, &svc, ipc_conn_peer(c), &sopts, &fd, &ep) == 0);
		req.seq = 1;
		CHILD_CHECK(ipc_send_oneway(c, M_NOTIFY, &req.base, fd) == 0);
		close(fd);
		/* An endpoint meant for someone else (our own pid). */
		other = *ipc_conn_peer(c);
		other.pid = getpid();
		CHILD_CHECK(ipc_endpoint_new(ev, t, &svc, &other, &sopts, &fd, &wrong) == 0);
		req.seq = 2;
		CHILD_CHECK(ipc_send_oneway(c, M_NOTIFY, &req.base, fd) == 0);
		close(fd);
		end = test_now_usec() + 5000000;
		while ((!ep2_child_served || !ep2_child_closed) && test_now_usec() < end)
			sd_event_run(ev, 50000);
		/* Let the reply leave. */
		sd_event_run(ev, 50000);
		CHILD_CHECK(ipc_conn_is_ready(ep));
		CHILD_CHECK(ep2_child_closed == 1);
		CHILD_CHECK(!ipc_conn_is_ready(wrong));
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(ep2.ready[0], 1);
	assert_int_equal(ep2.err[0], 0);
	assert_int_equal(ep2.reply_seq, 31);
	assert_int_equal(ep2.ready[1], 1);
	assert_int_equal(ep2.err[1], IPC_E_NOT_PERMITTED);
	assert_int_equal(ep2.replies, 2);
	ipc_conn_unref(ep2.ep[0]);
	ipc_conn_unref(ep2.ep[1]);
	test_server_stop(&ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_clients),
		cmocka_unit_test(test_server_calls_client),
		cmocka_unit_test(test_endpoint_from_server),
		cmocka_unit_test(test_endpoint_from_client),
	};

	signal(SIGPIPE, SIG_IGN);
	test_filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
