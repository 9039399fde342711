/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a peer may not do, and the limits: malformed, truncated, oversized
 * and garbage frames each close their own connection, with a reason naming
 * the peer, while another connection keeps working; calls in flight,
 * connections per uid, per-call timeouts; large messages in fragments and
 * descriptors passed with calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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

static const ProtobufCServiceDescriptor *echo_desc = &santa__ipctest__echo__descriptor;

#define SMALL_MAX_MESSAGE (256u * 1024u)
#define SMALL_MAX_INFLIGHT 8u

static const ipc_limits small_limits = {
	.max_message = SMALL_MAX_MESSAGE,
	.max_inflight = SMALL_MAX_INFLIGHT,
	.max_conns_per_uid = 3,
};

/* --- A well-behaved connection that must survive every bad one --- */

struct good {
	int ready;
	int replies;
	int err;
	int64_t seq;
};

static void good_ready(ipc_conn *c, int err, void *userdata)
{
	struct good *g = ipc_conn_get_userdata(c);

	g->ready = 1;
	g->err = err;
}

static void good_reply(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
		       void *userdata)
{
	struct good *g = userdata;

	g->err = err;
	if (err == 0)
		g->seq = ((const Santa__Ipctest__Blob *)reply)->seq;
	g->replies++;
}

static void good_call(test_server *ts, ipc_conn *c, struct good *g, int64_t seq)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	uint64_t end = test_now_usec() + 2000000;
	int before = g->replies;

	req.seq = seq;
	assert_int_equal(ipc_call_async(c, M_ECHO, &req.base, -1, 0, good_reply, g), 0);
	while (g->replies == before && test_now_usec() < end)
		sd_event_run(ts->ev, 20000);
	assert_int_equal(g->replies, before + 1);
	assert_int_equal(g->err, 0);
	assert_int_equal(g->seq, seq);
}

/* --- Bad frames --- */

struct bad_case {
	const char *name;
	int err;                 /* what the server's on_close reports */
	const char *reason;      /* in the reason */
	int hold;                /* server holds calls during the case */
};

static size_t put_frame(uint8_t *buf, uint8_t kind, uint16_t flags, uint32_t method, uint64_t id,
			uint32_t len, uint32_t total)
{
	struct ipc_frame_hdr h = {
		.magic = IPC_FRAME_MAGIC, .kind = kind, .flags = flags, .method = method,
		.id = id, .len = len, .total = total,
	};

	memcpy(buf, &h, sizeof(h));
	return sizeof(h);
}

static void send_raw(int fd, const void *buf, size_t n, int pass_fd)
{
	struct iovec iov = { (void *)buf, n };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl = { 0 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (pass_fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	CHILD_CHECK(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)n);
}

/* Write the bad frame(s) of case NAME on an established connection. */
static void bad_send(const char *name, int fd)
{
	static uint8_t buf[48 * 1024];
	size_t n;

	memset(buf, 0, sizeof(buf));
	if (strcmp(name, "short") == 0) {
		n = put_frame(buf, IPC_K_CALL, 0, M_ECHO, 1, 0, 0);
		send_raw(fd, buf, 10, -1);
	} else if (strcmp(name, "truncated") == 0) {
		n = put_frame(buf, IPC_K_CALL, 0, M_ECHO, 1, 100, 100);
		send_raw(fd, buf, n + 10, -1);
	} else if (strcmp(name, "garbage") == 0) {
		for (size_t i = 0; i < 64; i++)
			buf[i] = (uint8_t)(i * 37 + 11);
		send_raw(fd, buf, 64, -1);
	} else if (strcmp(name, "oversized message") == 0) {
		n = put_frame(buf, IPC_K_CALL, IPC_F_MORE, M_ECHO, 1, 1000, 1u << 24);
		send_raw(fd, buf, n + 1000, -1);
	} else if (strcmp(name, "oversized frame") == 0) {
		n = put_frame(buf, IPC_K_CALL, 0, M_ECHO, 1, 40000, 40000);
		send_raw(fd, buf, n + 40000, -1);
	} else if (strcmp(name, "unknown method") == 0) {
		n = put_frame(buf, IPC_K_CALL, 0, 7, 1, 0, 0);
		send_raw(fd, buf, n, -1);
	} else if (strcmp(name, "unexpected descriptor") == 0) {
		n = put_frame(buf, IPC_K_CALL, 0, M_PRIVILEGED, 1, 0, 0);
		send_raw(fd, buf, n, 0);
	} else if (strcmp(name, "undecodable") == 0) {
		n = put_frame(buf, IPC_K_CALL, 0, M_ECHO, 1, 8, 8);
		memset(buf + n, 0xff, 8);
		send_raw(fd, buf, n + 8, -1);
	} else if (strcmp(name, "too many in flight") == 0) {
		for (uint64_t id = 1; id <= SMALL_MAX_INFLIGHT + 1; id++) {
			n = put_frame(buf, IPC_K_CALL, 0, M_ECHO, id, 0, 0);
			send_raw(fd, buf, n, -1);
		}
	} else if (strcmp(name, "second hello") == 0) {
		n = put_frame(buf, IPC_K_HELLO, 0, 0, 0, 0, 0);
		send_raw(fd, buf, n, -1);
	} else if (strcmp(name, "unasked reply") == 0) {
		n = put_frame(buf, IPC_K_REPLY, 0, M_ECHO, 12345ull << 16, 0, 0);
		send_raw(fd, buf, n, -1);
	} else if (strcmp(name, "interleaved") == 0) {
		n = put_frame(buf, IPC_K_CALL, IPC_F_MORE, M_ECHO, 1, 10, 20);
		send_raw(fd, buf, n + 10, -1);
		n = put_frame(buf, IPC_K_CALL, 0, M_ECHO, 2, 0, 0);
		send_raw(fd, buf, n, -1);
	} else {
		CHILD_CHECK(!"unknown case");
	}
}

/* A trusted child completes the handshake, then misbehaves, and must see
 * the server close the connection. */
static void bad_child(const char *path, const char *name)
{
	ipc_trust *t = test_trust();
	ipc_client *cl = NULL;
	uint8_t buf[IPC_FRAME_MAX];
	ssize_t n;
	int fd;

	CHILD_CHECK(ipc_client_connect(path, t, echo_desc, 0, 0, &cl) == 0);
	fd = ipc_client_fd(cl);
	CHILD_CHECK(fcntl(fd, F_SETFL, 0) == 0);
	bad_send(name, fd);
	/* Whatever comes back, the end of the stream must follow. */
	for (;;) {
		struct timeval tv = { 3, 0 };

		CHILD_CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
	}
	CHILD_CHECK(n == 0);
	_exit(0);
}

static void test_bad_frames(void **state)
{
	static const struct bad_case cases[] = {
		{ "short", IPC_E_INVALID, "truncated frame (10 bytes", 0 },
		{ "truncated", IPC_E_INVALID, "truncated frame (header says 100", 0 },
		{ "garbage", IPC_E_INVALID, "garbage frame", 0 },
		{ "oversized message", IPC_E_LIMIT, "oversized message", 0 },
		{ "oversized frame", IPC_E_INVALID, "oversized frame", 0 },
		{ "unknown method", IPC_E_INVALID, "unknown method 7", 0 },
		{ "unexpected descriptor", IPC_E_INVALID, "descriptor sent with Privileged", 0 },
		{ "undecodable", IPC_E_INVALID, "undecodable Echo request", 0 },
		{ "too many in flight", IPC_E_LIMIT, "more than 8 calls in flight", 1 },
		{ "second hello", IPC_E_INVALID, "unexpected frame of kind 2", 0 },
		{ "unasked reply", IPC_E_INVALID, "never made", 0 },
		{ "interleaved", IPC_E_INVALID, "interleaved", 0 },
	};
	struct good g = { 0 };
	ipc_conn_opts gopts = { 0 };
	test_server ts;
	ipc_conn *good;

	test_server_start(&ts, &small_limits);
	assert_int_equal(ipc_connect(ts.ev, ts.path, ts.trust, echo_desc, &gopts, good_ready,
				     &good), 0);
	ipc_conn_set_userdata(good, &g);
	assert_true(test_run_until(ts.ev, &g.ready, 2000000));
	assert_int_equal(g.err, 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *bc = &cases[i];
		int closes = ts.n_close;
		pid_t pid;

		ts.hold_until = bc->hold ? 1000 : 0;
		pid = test_fork();
		assert_true(pid >= 0);
		if (pid == 0)
			bad_child(ts.path, bc->name);
		if (test_run_until_exit(ts.ev, pid, 10000000) != 0)
			fail_msg("case '%s': the server did not close the connection", bc->name);
		test_run_until(ts.ev, &ts.n_close, 100000);
		if (ts.n_close != closes + 1 || ts.last_err != bc->err ||
		    !strstr(ts.last_reason, bc->reason) || !strstr(ts.last_reason, "pid "))
			fail_msg("case '%s': closed %d times, last with %s: '%s'", bc->name,
				 ts.n_close - closes, ipc_strerror(ts.last_err), ts.last_reason);
		/* Held calls of the closed connection are answered into the void. */
		while (ts.n_held > 0)
			ipc_call_fail(ts.held[--ts.n_held].call, IPC_E_PEER, "dropped");
		ts.hold_until = 0;
		good_call(&ts, good, &g, (int64_t)i + 100);
	}
	assert_true(ipc_conn_is_ready(good));
	assert_int_equal(ipc_server_conn_count(ts.server), 1);
	ipc_conn_unref(good);
	test_server_stop(&ts);
}

/* --- Limits --- */

static void drop_to_nobody(void)
{
	CHILD_CHECK(setgroups(0, NULL) == 0);
	CHILD_CHECK(setresgid(65534, 65534, 65534) == 0);
	CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
}

/* A non-root uid gets max_conns_per_uid connections; root is not
 * counted. */
static void test_conns_per_uid(void **state)
{
	test_server ts;
	pid_t pid;

	test_server_start(&ts, &small_limits);
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_trust *t = test_trust();
		ipc_client *cl[4];

		drop_to_nobody();
		for (int i = 0; i < 3; i++)
			CHILD_CHECK(ipc_client_connect(ts.path, t, echo_desc, 0, 0, &cl[i]) == 0);
		CHILD_CHECK(ipc_client_connect(ts.path, t, echo_desc, 0, 0, &cl[3]) ==
			    IPC_E_LIMIT);
		/* One gone, one more allowed. */
		ipc_client_free(cl[0]);
		usleep(100000);
		CHILD_CHECK(ipc_client_connect(ts.path, t, echo_desc, 0, 0, &cl[0]) == 0);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_non_null(strstr(ts.last_reason, "uid 65534"));

	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_trust *t = test_trust();
		ipc_client *cl;

		for (int i = 0; i < 5; i++)
			CHILD_CHECK(ipc_client_connect(ts.path, t, echo_desc, 0, 0, &cl) == 0);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	test_server_stop(&ts);
}

struct timed {
	int done;
	int err;
	uint64_t at;
};

static void timed_reply(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
			void *userdata)
{
	struct timed *t = userdata;

	t->done++;
	t->err = err;
	t->at = test_now_usec();
}

/* Calls in flight are bounded on the caller's side; a call that gets no
 * answer in time fails with IPC_E_TIMEOUT, and a late answer is ignored. */
static void test_inflight_and_timeout(void **state)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	struct good g = { 0 };
	ipc_conn_opts opts = { .limits = { .max_inflight = 4 } };
	struct timed tm[5] = { 0 };
	test_server ts;
	ipc_conn *c;
	uint64_t start;

	test_server_start(&ts, NULL);
	ts.hold_until = 1000;
	assert_int_equal(ipc_connect(ts.ev, ts.path, ts.trust, echo_desc, &opts, good_ready, &c),
			 0);
	ipc_conn_set_userdata(c, &g);
	assert_true(test_run_until(ts.ev, &g.ready, 2000000));

	start = test_now_usec();
	for (int i = 0; i < 4; i++)
		assert_int_equal(ipc_call_async(c, M_ECHO, &req.base, -1, 100000 * (i + 1),
						timed_reply, &tm[i]), 0);
	assert_int_equal(ipc_call_async(c, M_ECHO, &req.base, -1, 0, timed_reply, &tm[4]),
			 IPC_E_LIMIT);
	assert_true(test_run_until(ts.ev, &tm[3].done, 2000000));
	for (int i = 0; i < 4; i++) {
		uint64_t took = tm[i].at - start;

		assert_int_equal(tm[i].done, 1);
		assert_int_equal(tm[i].err, IPC_E_TIMEOUT);
		/* In deadline order, none early, none much late. */
		assert_true(took >= 100000u * (i + 1) && took < 100000u * (i + 1) + 150000);
	}
	/* The server answers the four now: late, ignored, connection fine. */
	while (ts.n_held > 0) {
		struct held_call *h = &ts.held[--ts.n_held];
		Santa__Ipctest__Blob out = SANTA__IPCTEST__BLOB__INIT;

		ipc_call_reply(h->call, &out.base);
	}
	ts.hold_until = 0;
	good_call(&ts, c, &g, 5);
	for (int i = 0; i < 4; i++)
		assert_int_equal(tm[i].done, 1);

	/* The blocking client: a timed-out call, then a normal one. */
	ts.hold_until = 2;
	{
		pid_t pid = test_fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			ipc_trust *t = test_trust();
			ProtobufCMessage *reply = NULL;
			ipc_client *cl;
			uint64_t s;

			CHILD_CHECK(ipc_client_connect(ts.path, t, echo_desc, 0, 0, &cl) == 0);
			req.seq = 1;
			s = test_now_usec();
			CHILD_CHECK(ipc_client_call(cl, M_ECHO, &req.base, -1, 100000, &reply,
						    NULL) == IPC_E_TIMEOUT);
			CHILD_CHECK(test_now_usec() - s < 200000);
			req.seq = 2;
			CHILD_CHECK(ipc_client_call(cl, M_ECHO, &req.base, -1, 0, &reply,
						    NULL) == 0);
			CHILD_CHECK(((Santa__Ipctest__Blob *)reply)->seq == 2);
			protobuf_c_message_free_unpacked(reply, NULL);
			ipc_client_free(cl);
			_exit(0);
		}
		assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	}
	ipc_conn_unref(c);
	test_server_stop(&ts);
}

/* --- Large messages and descriptors --- */

static void big_reply(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
		      void *userdata)
{
	struct good *g = userdata;
	const Santa__Ipctest__Blob *b = (const Santa__Ipctest__Blob *)reply;

	g->err = err;
	if (err == 0) {
		g->seq = (int64_t)b->data.len;
		for (size_t i = 0; i < b->data.len; i++)
			if (b->data.data[i] != (uint8_t)(i * 7))
				g->seq = -1;
	}
	g->replies++;
}

static void test_fragmented(void **state)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	size_t size = 1024 * 1024 + 17;
	uint8_t *data = malloc(size);
	struct good g = { 0 };
	test_server ts;
	ipc_conn *c;
	pid_t pid;

	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 7);
	req.data = (ProtobufCBinaryData){ size, data };
	test_server_start(&ts, NULL);
	assert_int_equal(ipc_connect(ts.ev, ts.path, ts.trust, echo_desc, NULL, good_ready, &c),
			 0);
	ipc_conn_set_userdata(c, &g);
	assert_true(test_run_until(ts.ev, &g.ready, 2000000));
	assert_int_equal(ipc_call_async(c, M_ECHO, &req.base, -1, 0, big_reply, &g), 0);
	assert_true(test_run_until(ts.ev, &g.replies, 5000000));
	assert_int_equal(g.err, 0);
	assert_int_equal(g.seq, (int64_t)size);

	/* Above max_message: refused before anything is sent. */
	req.data.len = IPC_DEFAULT_MAX_MESSAGE + 1;
	req.data.data = calloc(1, req.data.len);
	assert_int_equal(ipc_call_async(c, M_ECHO, &req.base, -1, 0, big_reply, &g), IPC_E_LIMIT);
	free(req.data.data);
	req.data = (ProtobufCBinaryData){ size, data };

	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ipc_trust *t = test_trust();
		ProtobufCMessage *reply = NULL;
		Santa__Ipctest__Blob *b;
		ipc_client *cl;

		CHILD_CHECK(ipc_client_connect(ts.path, t, echo_desc, 0, 0, &cl) == 0);
		CHILD_CHECK(ipc_client_call(cl, M_ECHO, &req.base, -1, 0, &reply, NULL) == 0);
		b = (Santa__Ipctest__Blob *)reply;
		CHILD_CHECK(b->data.len == size && memcmp(b->data.data, data, size) == 0);
		protobuf_c_message_free_unpacked(reply, NULL);
		ipc_client_free(cl);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	free(data);
	ipc_conn_unref(c);
	test_server_stop(&ts);
}

/* The server writes into the pipe that came with the one-way message. */
static void fd_notify(test_server *ts, ipc_call *call, const Santa__Ipctest__Blob *b)
{
	int fd = ipc_call_take_fd(call);

	if (fd >= 0) {
		assert_int_equal(write(fd, "pong", 4), 4);
		close(fd);
	}
	ipc_call_reply(call, NULL);
}

static void test_fd_passing(void **state)
{
	test_server ts;
	pid_t pid;

	test_server_start(&ts, NULL);
	ts.on_notify = fd_notify;
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
		ipc_trust *t = test_trust();
		ProtobufCMessage *reply = NULL;
		ipc_client *cl;
		char buf[8] = { 0 };
		int p[2];

		CHILD_CHECK(pipe(p) == 0);
		CHILD_CHECK(ipc_client_connect(ts.path, t, echo_desc, 0, 0, &cl) == 0);
		CHILD_CHECK(ipc_client_call(cl, M_NOTIFY, &req.base, p[1], 0, &reply, NULL) == 0);
		protobuf_c_message_free_unpacked(reply, NULL);
		close(p[1]);
		CHILD_CHECK(read(p[0], buf, sizeof(buf)) == 4 && memcmp(buf, "pong", 4) == 0);
		ipc_client_free(cl);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(ts.notify_count, 1);
	test_server_stop(&ts);
}

/* A peer that sends calls but never reads the answers: the server's queue
 * of replies is bounded, and the connection is closed when it is full. */
static void test_peer_not_reading(void **state)
{
	test_server ts;
	pid_t pid;

	test_server_start(&ts, &small_limits);
	pid = test_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static uint8_t payload[200 * 1024];
		Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
		ipc_trust *t = test_trust();
		ipc_client *cl = NULL;
		uint8_t *alloc, buf[IPC_FRAME_MAX];
		const uint8_t *packed;
		size_t len;
		ssize_t n;
		int fd;

		CHILD_CHECK(ipc_client_connect(ts.path, t, echo_desc, 0, 0, &cl) == 0);
		fd = ipc_client_fd(cl);
		req.data = (ProtobufCBinaryData){ sizeof(payload), payload };
		CHILD_CHECK(ipc_pack(&req.base, buf, &alloc, &packed, &len) == 0);
		for (uint64_t id = 1; id < SMALL_MAX_INFLIGHT; id++) {
			struct ipc_out out = { .fd = -1, .payload = packed };

			out.hdr = (struct ipc_frame_hdr){ .kind = IPC_K_CALL, .id = id,
							  .total = (uint32_t)len };
			while (ipc_out_send(fd, &out) == 0)
				usleep(1000);
		}
		/* Not reading, for a while; then the end of the stream must come
		 * after whatever the server managed to send. */
		usleep(300000);
		CHILD_CHECK(fcntl(fd, F_SETFL, 0) == 0);
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			;
		CHILD_CHECK(n == 0);
		_exit(0);
	}
	assert_int_equal(test_run_until_exit(ts.ev, pid, 10000000), 0);
	assert_int_equal(ts.last_err, IPC_E_LIMIT);
	assert_non_null(strstr(ts.last_reason, "does not read its replies"));
	test_server_stop(&ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_conns_per_uid),
		cmocka_unit_test(test_inflight_and_timeout),
		cmocka_unit_test(test_fragmented),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_peer_not_reading),
	};

	signal(SIGPIPE, SIG_IGN);
	test_filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
