/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The blocking client, for santactl and tests: the same wire, handshake and
 * validation as an ipc_connect connection, without an event loop. One call
 * at a time; it exports nothing, so the server may not call it back.
 *
 * Sends wait with poll() when the socket is full. Receiving waits in
 * recvmsg() itself, bounded by SO_RCVTIMEO: one system call fewer per call
 * than poll() then recvmsg(). The timeout is changed only when the time
 * left is shorter than the one set by more than RCVTIMEO_SLACK_USEC, so
 * that a run of calls with the same deadline sets it once; a wait may
 * overrun the deadline by that slack at most.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc-internal.h"
#include "ipc.pb-c.h"

#define WHY_MAX 256
#define RCVTIMEO_SLACK_USEC 10000

struct ipc_client {
	int fd;
	ipc_peer peer;
	bool privileged;
	ipc_limits limits;
	const ProtobufCServiceDescriptor *remote;
	const ipc_trust *trust;
	uint32_t accept_roles;
	bool root_held;
	bool refused;            /* the server refused us in the handshake */
	uint64_t rcvtimeo;       /* SO_RCVTIMEO now set, 0 = none yet */
	uint64_t next_id;
	struct ipc_rx rx;
	uint8_t *buf;            /* one frame */
	uint8_t nonce[16];
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wait for EVENTS on the socket until DEADLINE. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		uint64_t now = now_usec();
		int ms, r;

		if (now >= deadline)
			return IPC_E_TIMEOUT;
		ms = (int)((deadline - now + 999) / 1000);
		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static void client_drop(ipc_client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
	ipc_rx_reset(&cl->rx);
}

/* Let a blocking recvmsg() wait no longer than until DEADLINE. */
static int client_set_rcvtimeo(ipc_client *cl, uint64_t deadline)
{
	uint64_t now = now_usec(), left;
	struct timeval tv;

	if (now >= deadline)
		return IPC_E_TIMEOUT;
	left = deadline - now;
	if (cl->rcvtimeo && cl->rcvtimeo <= left + RCVTIMEO_SLACK_USEC)
		return 0;
	tv.tv_sec = (time_t)(left / 1000000u);
	tv.tv_usec = (suseconds_t)(left % 1000000u);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1;
	if (setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	cl->rcvtimeo = left;
	return 0;
}

/* Receive the next whole message before DEADLINE. Protocol violations
 * close the client: the server is not following the protocol. */
static int client_recv(ipc_client *cl, uint64_t deadline, struct ipc_msg *m, struct ipc_rcvd *r)
{
	char why[WHY_MAX];
	int e;

	for (;;) {
		e = client_set_rcvtimeo(cl, deadline);
		if (e < 0)
			return e;
		e = ipc_recv_wait(cl->fd, cl->buf, r);
		if (e == -EAGAIN || e == -EINTR)
			continue;
		if (e < 0 || r->n == 0) {
			/* An empty datagram may still carry descriptors. */
			ipc_rcvd_close(r);
			client_drop(cl);
			return IPC_E_DISCONNECTED;
		}
		e = r->truncated ? IPC_E_INVALID
				 : ipc_rx_feed(&cl->rx, cl->buf, (size_t)r->n, m, why, sizeof(why));
		if (e == 1)
			return 0;
		ipc_rcvd_close(r);
		if (e < 0) {
			client_drop(cl);
			return IPC_E_INVALID;
		}
	}
}

static int client_send(ipc_client *cl, uint8_t kind, uint32_t method, uint64_t id,
		       const ProtobufCMessage *msg, int fd, uint64_t deadline)
{
	uint8_t *alloc;
	const uint8_t *buf;
	size_t len;
	struct ipc_out out = { .fd = fd };
	int r;

	r = ipc_pack(msg, cl->buf, &alloc, &buf, &len);
	if (r < 0)
		return r;
	if (len > cl->limits.max_message) {
		free(alloc);
		return IPC_E_LIMIT;
	}
	out.hdr = (struct ipc_frame_hdr){ .kind = kind, .method = method, .id = id,
					  .total = (uint32_t)len };
	out.payload = buf;
	while ((r = ipc_out_send(cl->fd, &out)) == 0) {
		r = wait_fd(cl->fd, POLLOUT, deadline);
		if (r < 0)
			break;
	}
	free(alloc);
	if (r == IPC_E_TIMEOUT && out.started) {
		/* Half a message is on the wire: the stream is unusable. */
		client_drop(cl);
	} else if (r < 0 && r != IPC_E_TIMEOUT) {
		client_drop(cl);
		r = IPC_E_DISCONNECTED;
	}
	return r < 0 ? r : 0;
}

/* The server's error frame during the handshake: it refuses us. */
static int refusal(ipc_client *cl, const struct ipc_msg *m)
{
	ProtobufCMessage *msg;
	int err;

	if (ipc_unpack(&santa__ipc__error__descriptor, m->data, m->len, &msg) < 0)
		return IPC_E_INVALID;
	err = ipc_error_from_wire(((Santa__Ipc__Error *)msg)->code);
	protobuf_c_message_free_unpacked(msg, NULL);
	cl->refused = true;
	return err;
}

/* The server is whoever wrote the challenge, as the kernel says. */
static int client_check_challenge(ipc_client *cl, const struct ipc_msg *m,
				  const struct ipc_rcvd *r)
{
	Santa__Ipc__Challenge *ch;
	ProtobufCMessage *msg;
	char why[WHY_MAX];
	int e;

	if (m->kind == IPC_K_ERROR)
		return refusal(cl, m);
	if (m->kind != IPC_K_CHALLENGE || m->fragmented || !r->have_creds ||
	    ipc_unpack(&santa__ipc__challenge__descriptor, m->data, m->len, &msg) < 0)
		return IPC_E_INVALID;
	ch = (Santa__Ipc__Challenge *)msg;
	e = ipc_peer_validate(cl->trust, r->creds.pid, r->pidfd, r->creds.uid, r->creds.gid,
			      &cl->peer, why, sizeof(why));
	if (e == -EACCES)
		e = ipc_peer_accept_uninspectable(&cl->peer, ch->server_role,
						  cl->root_held ? IPC_ALL_ROLES : 0, why,
						  sizeof(why));
	if (e < 0 || !ipc_role_allowed(cl->peer.role, cl->accept_roles))
		e = IPC_E_NOT_PERMITTED;
	else if (ch->protocol_version != IPC_PROTOCOL_VERSION ||
		 ch->nonce.len != sizeof(cl->nonce) || strcmp(ch->service, cl->remote->name))
		e = IPC_E_INVALID;
	else
		memcpy(cl->nonce, ch->nonce.data, sizeof(cl->nonce));
	protobuf_c_message_free_unpacked(msg, NULL);
	return e;
}

static int client_hello(ipc_client *cl, uint64_t deadline)
{
	Santa__Ipc__Hello h = SANTA__IPC__HELLO__INIT;

	h.protocol_version = IPC_PROTOCOL_VERSION;
	h.service = (char *)cl->remote->name;
	h.callback_service = (char *)"";
	h.nonce = (ProtobufCBinaryData){ sizeof(cl->nonce), cl->nonce };
	h.role = (char *)ipc_role_name(ipc_trust_self_role(cl->trust));
	return client_send(cl, IPC_K_HELLO, 0, 0, &h.base, -1, deadline);
}

static int client_check_reply(ipc_client *cl, const struct ipc_msg *m)
{
	Santa__Ipc__HelloReply *hr;
	ProtobufCMessage *msg;
	int e = 0;

	if (m->kind == IPC_K_ERROR)
		return refusal(cl, m);
	if (m->kind != IPC_K_HELLO_REPLY || m->fragmented ||
	    ipc_unpack(&santa__ipc__hello_reply__descriptor, m->data, m->len, &msg) < 0)
		return IPC_E_INVALID;
	hr = (Santa__Ipc__HelloReply *)msg;
	if (hr->protocol_version != IPC_PROTOCOL_VERSION)
		e = IPC_E_INVALID;
	cl->privileged = hr->privileged;
	protobuf_c_message_free_unpacked(msg, NULL);
	return e;
}

static int client_handshake(ipc_client *cl, uint64_t deadline)
{
	struct ipc_rcvd r;
	struct ipc_msg m;
	int e;

	e = client_recv(cl, deadline, &m, &r);
	if (e < 0)
		return e;
	e = client_check_challenge(cl, &m, &r);
	ipc_rcvd_close(&r);
	if (e == 0)
		e = ipc_sock_passcred(cl->fd, false, NULL);
	if (e == 0)
		e = client_hello(cl, deadline);
	if (e < 0)
		return e;
	e = client_recv(cl, deadline, &m, &r);
	if (e < 0)
		return e;
	e = client_check_reply(cl, &m);
	ipc_rcvd_close(&r);
	return e;
}

static int client_socket(const char *path)
{
	int fd = ipc_socket_connect(path, NULL);

	if (fd == -ENAMETOOLONG || fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM)
		return fd;
	if (fd < 0)
		return IPC_E_DISCONNECTED;
	/* Connected without waiting; from now on receives block (bounded by
	 * SO_RCVTIMEO) and sends use MSG_DONTWAIT. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		close(fd);
		return IPC_E_DISCONNECTED;
	}
	return fd;
}

int ipc_client_connect(const char *path, const ipc_trust *trust,
		       const ProtobufCServiceDescriptor *remote, uint32_t accept_roles,
		       uint64_t timeout_usec, ipc_client **ret)
{
	return ipc_client_connect_ex(path, trust, remote, accept_roles, timeout_usec, ret,
				     NULL);
}

int ipc_client_connect_ex(const char *path, const ipc_trust *trust,
			  const ProtobufCServiceDescriptor *remote, uint32_t accept_roles,
			  uint64_t timeout_usec, ipc_client **ret, bool *ret_refused)
{
	ipc_client *cl;
	uint64_t deadline;
	int r;

	if (ret_refused)
		*ret_refused = false;
	if (!path || !trust || !remote || !ret)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->fd = -1;
	ipc_limits_fill(&cl->limits, NULL);
	if (timeout_usec)
		cl->limits.handshake_usec = timeout_usec;
	deadline = now_usec() + cl->limits.handshake_usec;
	cl->remote = remote;
	cl->trust = trust;
	cl->accept_roles = accept_roles;
	ipc_rx_init(&cl->rx, cl->limits.max_message);
	cl->buf = malloc(IPC_FRAME_MAX);
	cl->root_held = ipc_socket_root_held(path);
	r = cl->buf ? client_socket(path) : -ENOMEM;
	if (r >= 0) {
		cl->fd = r;
		cl->peer.conn_id = ipc_next_conn_id();
		r = client_handshake(cl, deadline);
	}
	if (r < 0) {
		if (ret_refused)
			*ret_refused = cl->refused;
		ipc_client_free(cl);
		return r;
	}
	*ret = cl;
	return 0;
}

/* One answer for call ID: REPLY or ERROR. Answers to earlier calls that
 * timed out are skipped. */
static int client_wait_answer(ipc_client *cl, uint64_t id, unsigned method, uint64_t deadline,
			      ProtobufCMessage **ret_reply, char **ret_errmsg)
{
	struct ipc_rcvd r;
	struct ipc_msg m;
	Santa__Ipc__Error *err;
	ProtobufCMessage *msg;
	int e;

	for (;;) {
		e = client_recv(cl, deadline, &m, &r);
		if (e < 0)
			return e;
		ipc_rcvd_close(&r);
		if ((m.kind == IPC_K_REPLY || m.kind == IPC_K_ERROR) && m.id != 0 && m.id < id)
			continue;
		if (m.kind == IPC_K_REPLY && m.id == id && m.method == method) {
			e = ipc_unpack(cl->remote->methods[method].output, m.data, m.len,
				       ret_reply);
			break;
		}
		if (m.kind != IPC_K_ERROR || (m.id != id && m.id != 0) ||
		    ipc_unpack(&santa__ipc__error__descriptor, m.data, m.len, &msg) < 0) {
			e = IPC_E_INVALID;
			break;
		}
		err = (Santa__Ipc__Error *)msg;
		e = ipc_error_from_wire(err->code);
		if (ret_errmsg)
			*ret_errmsg = strdup(err->message);
		protobuf_c_message_free_unpacked(msg, NULL);
		if (m.id == 0)
			client_drop(cl);
		return e;
	}
	if (e < 0)
		client_drop(cl);
	return e;
}

int ipc_client_call(ipc_client *cl, unsigned method, const ProtobufCMessage *req, int fd,
		    uint64_t timeout_usec, ProtobufCMessage **ret_reply, char **ret_errmsg)
{
	uint64_t deadline, id;
	int r;

	if (ret_errmsg)
		*ret_errmsg = NULL;
	if (!cl || !ret_reply)
		return -EINVAL;
	*ret_reply = NULL;
	if (cl->fd < 0)
		return IPC_E_DISCONNECTED;
	if (method >= cl->remote->n_methods ||
	    (req && req->descriptor != cl->remote->methods[method].input))
		return IPC_E_INVALID;
	deadline = now_usec() + (timeout_usec ? timeout_usec : cl->limits.call_timeout_usec);
	id = ++cl->next_id;
	r = client_send(cl, IPC_K_CALL, method, id, req, fd, deadline);
	if (r < 0)
		return r;
	return client_wait_answer(cl, id, method, deadline, ret_reply, ret_errmsg);
}

const ipc_peer *ipc_client_peer(const ipc_client *cl)
{
	return &cl->peer;
}

bool ipc_client_is_privileged(const ipc_client *cl)
{
	return cl && cl->privileged;
}

ipc_client *ipc_client_free(ipc_client *cl)
{
	if (!cl)
		return NULL;
	client_drop(cl);
	free(cl->buf);
	free(cl);
	return NULL;
}

int ipc_client_fd(const ipc_client *cl)
{
	return cl ? cl->fd : -1;
}
