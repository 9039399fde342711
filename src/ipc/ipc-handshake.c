/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The handshake, on both sides. The server validates the client from the
 * kernel's word on the connecting process, then sends a challenge; the
 * client validates the server from the credentials the kernel attached to
 * that challenge and answers with a hello echoing its nonce, sent by the
 * connecting process itself; the server checks the hello's credentials and
 * replies. The nonce makes the hello younger than the server's look at the
 * client's executable, so a program cannot queue a hello and then exec one
 * of ours to have it accepted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ipc-internal.h"
#include "ipc.pb-c.h"

void ipc_conn_refuse(ipc_conn *c, int err, const char *why)
{
	Santa__Ipc__Error e = SANTA__IPC__ERROR__INIT;

	/* The peer learns the category only; the reason goes to our log. */
	e.code = ipc_error_to_wire(err);
	e.message = (char *)ipc_strerror(err);
	(void)ipc_send_small(c->fd, IPC_K_ERROR, 0, &e.base);
	ipc_conn_close_reason(c, err, "refused: %s", why);
}

static void conn_send_challenge(ipc_conn *c)
{
	Santa__Ipc__Challenge ch = SANTA__IPC__CHALLENGE__INIT;
	int r;

	r = ipc_random(c->nonce, sizeof(c->nonce));
	if (r < 0) {
		ipc_conn_close_reason(c, r, "making a challenge: %s", strerror(-r));
		return;
	}
	ch.protocol_version = IPC_PROTOCOL_VERSION;
	ch.nonce = (ProtobufCBinaryData){ sizeof(c->nonce), c->nonce };
	ch.service = (char *)c->local->desc->name;
	ch.server_role = (char *)ipc_role_name(ipc_trust_self_role(c->trust));
	r = ipc_send_small(c->fd, IPC_K_CHALLENGE, 0, &ch.base);
	if (r < 0) {
		ipc_conn_close_reason(c, IPC_E_DISCONNECTED, "sending the challenge: %s",
				      ipc_strerror(r));
		return;
	}
	c->state = IPC_CONN_WAIT_HELLO;
}

void ipc_conn_start_server(ipc_conn *c)
{
	char why[IPC_WHY_MAX];
	struct ucred cr;
	int pidfd, r;

	r = ipc_peer_from_socket(c->fd, &cr, &pidfd);
	if (r < 0) {
		ipc_conn_close_reason(c, IPC_E_DISCONNECTED, "reading peer credentials: %s",
				      strerror(-r));
		return;
	}
	r = ipc_peer_validate(c->trust, cr.pid, pidfd, cr.uid, cr.gid, &c->peer, why,
			      sizeof(why));
	if (pidfd >= 0)
		close(pidfd);
	if (r == -EACCES && (cr.uid == 0 || c->local->claimable_roles)) {
		/* Its role comes with the hello; see ipc_peer_accept_uninspectable. */
		c->uninspectable = true;
	} else if (r < 0) {
		ipc_conn_refuse(c, IPC_E_NOT_PERMITTED, why);
		return;
	} else if (!ipc_role_allowed(c->peer.role, c->local->accept_roles)) {
		snprintf(why, sizeof(why), "role %s may not connect to %s",
			 ipc_role_name(c->peer.role), c->local->desc->name);
		ipc_conn_refuse(c, IPC_E_NOT_PERMITTED, why);
		return;
	}
	r = ipc_sock_passcred(c->fd, true, NULL);
	if (r < 0) {
		ipc_conn_close_reason(c, r, "enabling SO_PASSCRED: %s", strerror(-r));
		return;
	}
	conn_send_challenge(c);
}

int ipc_conn_start_endpoint(ipc_conn *c, const ipc_peer *expected)
{
	int r;

	c->endpoint = true;
	c->expected = *expected;
	c->peer.pid = expected->pid;
	c->peer.uid = expected->uid;
	c->peer.gid = expected->gid;
	snprintf(c->peer.exe, sizeof(c->peer.exe), "%s", expected->exe);
	r = ipc_sock_passcred(c->fd, true, NULL);
	if (r < 0)
		return r;
	conn_send_challenge(c);
	return c->state == IPC_CONN_WAIT_HELLO ? 0 : IPC_E_DISCONNECTED;
}

/* The server end of an endpoint learns who is calling from the kernel's
 * credentials on the hello. */
static int hello_check_endpoint(ipc_conn *c, const struct ipc_rcvd *r, char *why)
{
	const ipc_peer *x = &c->expected;
	ipc_peer p = { .conn_id = c->id };
	int e;

	if (r->creds.pid != x->pid) {
		char link[64], exe[160];
		ssize_t n;

		/* Name the intruder, not the peer the endpoint was made for. */
		snprintf(link, sizeof(link), "/proc/%d/exe", (int)r->creds.pid);
		n = readlink(link, exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		snprintf(why, IPC_WHY_MAX,
			 "hello from pid %d (uid %u, %s) on an endpoint made for pid %d",
			 (int)r->creds.pid, (unsigned)r->creds.uid,
			 n > 0 ? exe : "executable unknown", (int)x->pid);
		return IPC_E_NOT_PERMITTED;
	}
	e = ipc_peer_validate(c->trust, r->creds.pid, r->pidfd, r->creds.uid, r->creds.gid,
			      &p, why, IPC_WHY_MAX);
	if (e == -EACCES && p.uid == x->uid) {
		/* The same process we could not inspect before either. */
		c->uninspectable = true;
		p.role = x->role;
		snprintf(p.exe, sizeof(p.exe), "%s", x->exe);
	} else if (e < 0) {
		return IPC_E_NOT_PERMITTED;
	} else if (p.uid != x->uid || p.exe_dev != x->exe_dev || p.exe_ino != x->exe_ino) {
		snprintf(why, IPC_WHY_MAX,
			 "pid %d no longer runs the executable it was validated as", (int)p.pid);
		return IPC_E_NOT_PERMITTED;
	}
	c->peer = p;
	return 0;
}

static int hello_check_sender(ipc_conn *c, const struct ipc_rcvd *r, char *why)
{
	if (!r->have_creds) {
		snprintf(why, IPC_WHY_MAX, "hello without kernel credentials");
		return IPC_E_NOT_PERMITTED;
	}
	if (c->endpoint)
		return hello_check_endpoint(c, r, why);
	/* Only the process that connected may speak: not a child it shares the
	 * socket with. */
	if (r->creds.pid != c->peer.pid || r->creds.uid != c->peer.uid) {
		snprintf(why, IPC_WHY_MAX,
			 "hello sent by pid %d uid %u, not by the connecting process",
			 (int)r->creds.pid, (unsigned)r->creds.uid);
		return IPC_E_NOT_PERMITTED;
	}
	return 0;
}

static const ProtobufCServiceDescriptor *find_callback(const ipc_conn *c, const char *name)
{
	for (size_t i = 0; c->callbacks && c->callbacks[i]; i++)
		if (strcmp(c->callbacks[i]->name, name) == 0)
			return c->callbacks[i];
	return NULL;
}

static int hello_check(ipc_conn *c, const Santa__Ipc__Hello *h, char *why)
{
	if (c->uninspectable && !c->endpoint &&
	    ipc_peer_accept_uninspectable(&c->peer, h->role, c->local->claimable_roles, why,
					  IPC_WHY_MAX) < 0)
		return IPC_E_NOT_PERMITTED;
	if (!ipc_role_allowed(c->peer.role, c->local->accept_roles)) {
		snprintf(why, IPC_WHY_MAX, "role %s may not connect to %s",
			 ipc_role_name(c->peer.role), c->local->desc->name);
		return IPC_E_NOT_PERMITTED;
	}
	if (h->nonce.len != sizeof(c->nonce) || memcmp(h->nonce.data, c->nonce, sizeof(c->nonce))) {
		snprintf(why, IPC_WHY_MAX, "hello does not answer the challenge");
		return IPC_E_NOT_PERMITTED;
	}
	if (h->protocol_version != IPC_PROTOCOL_VERSION) {
		snprintf(why, IPC_WHY_MAX, "protocol version %u, we speak %u", h->protocol_version,
			 IPC_PROTOCOL_VERSION);
		return IPC_E_INVALID;
	}
	if (strcmp(h->service, c->local->desc->name) != 0) {
		snprintf(why, IPC_WHY_MAX, "asks for service '%.64s', this is %s", h->service,
			 c->local->desc->name);
		return IPC_E_INVALID;
	}
	if (h->callback_service[0]) {
		c->remote = find_callback(c, h->callback_service);
		if (!c->remote) {
			snprintf(why, IPC_WHY_MAX, "exports unknown callback service '%.64s'",
				 h->callback_service);
			return IPC_E_INVALID;
		}
	}
	return 0;
}

int ipc_rx_hello(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why)
{
	Santa__Ipc__HelloReply hr = SANTA__IPC__HELLO_REPLY__INIT;
	ProtobufCMessage *msg;
	int e;

	if (ipc_unpack(&santa__ipc__hello__descriptor, m->data, m->len, &msg) < 0) {
		snprintf(why, IPC_WHY_MAX, "undecodable hello");
		return IPC_E_INVALID;
	}
	e = hello_check_sender(c, r, why);
	if (e == 0)
		e = hello_check(c, (Santa__Ipc__Hello *)msg, why);
	protobuf_c_message_free_unpacked(msg, NULL);
	if (e < 0) {
		ipc_conn_refuse(c, e, why);
		return 0;
	}
	e = ipc_sock_passcred(c->fd, false, NULL);
	if (e < 0) {
		snprintf(why, IPC_WHY_MAX, "disabling SO_PASSCRED: %s", strerror(-e));
		return e;
	}
	c->privileged = ipc_conn_peer_privileged(c);
	hr.protocol_version = IPC_PROTOCOL_VERSION;
	hr.privileged = c->privileged;
	hr.server_role = (char *)ipc_role_name(ipc_trust_self_role(c->trust));
	e = ipc_send_small(c->fd, IPC_K_HELLO_REPLY, 0, &hr.base);
	if (e < 0) {
		snprintf(why, IPC_WHY_MAX, "sending the hello reply: %s", ipc_strerror(e));
		return IPC_E_DISCONNECTED;
	}
	c->state = IPC_CONN_READY;
	if (c->on_connect)
		c->on_connect(c, c->cb_userdata);
	return 0;
}

/* The client learns who the server is from the kernel's credentials on the
 * challenge: the process that wrote it, not whoever created the listening
 * socket (under socket activation that is the service manager). */
static int challenge_check_server(ipc_conn *c, const Santa__Ipc__Challenge *ch,
				  const struct ipc_rcvd *r, char *why)
{
	int e;

	if (c->endpoint)
		return 0;    /* checked on the received descriptor */
	if (!r->have_creds) {
		snprintf(why, IPC_WHY_MAX, "challenge without kernel credentials");
		return IPC_E_NOT_PERMITTED;
	}
	e = ipc_peer_validate(c->trust, r->creds.pid, r->pidfd, r->creds.uid, r->creds.gid,
			      &c->peer, why, IPC_WHY_MAX);
	if (e == -EACCES)
		e = ipc_peer_accept_uninspectable(&c->peer, ch->server_role,
						  c->root_held ? IPC_ALL_ROLES : 0, why,
						  IPC_WHY_MAX);
	return e < 0 ? IPC_E_NOT_PERMITTED : 0;
}

static int challenge_check(ipc_conn *c, const Santa__Ipc__Challenge *ch,
			   const struct ipc_rcvd *r, char *why)
{
	int e = challenge_check_server(c, ch, r, why);

	if (e < 0)
		return e;
	if (!ipc_role_allowed(c->peer.role, c->accept_roles)) {
		snprintf(why, IPC_WHY_MAX, "server role %s is not accepted",
			 ipc_role_name(c->peer.role));
		return IPC_E_NOT_PERMITTED;
	}
	if (ch->protocol_version != IPC_PROTOCOL_VERSION || ch->nonce.len != sizeof(c->nonce)) {
		snprintf(why, IPC_WHY_MAX, "bad challenge (protocol version %u)",
			 ch->protocol_version);
		return IPC_E_INVALID;
	}
	if (strcmp(ch->service, c->remote->name) != 0) {
		snprintf(why, IPC_WHY_MAX, "server serves '%.64s', not %s", ch->service,
			 c->remote->name);
		return IPC_E_INVALID;
	}
	memcpy(c->nonce, ch->nonce.data, sizeof(c->nonce));
	return 0;
}

static int send_hello(ipc_conn *c)
{
	Santa__Ipc__Hello h = SANTA__IPC__HELLO__INIT;

	h.protocol_version = IPC_PROTOCOL_VERSION;
	h.service = (char *)c->remote->name;
	h.callback_service = (char *)(c->local ? c->local->desc->name : "");
	h.nonce = (ProtobufCBinaryData){ sizeof(c->nonce), c->nonce };
	h.role = (char *)ipc_role_name(ipc_trust_self_role(c->trust));
	return ipc_send_small(c->fd, IPC_K_HELLO, 0, &h.base);
}

int ipc_rx_challenge(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why)
{
	ProtobufCMessage *msg;
	int e;

	if (ipc_unpack(&santa__ipc__challenge__descriptor, m->data, m->len, &msg) < 0) {
		snprintf(why, IPC_WHY_MAX, "undecodable challenge");
		return IPC_E_INVALID;
	}
	e = challenge_check(c, (Santa__Ipc__Challenge *)msg, r, why);
	protobuf_c_message_free_unpacked(msg, NULL);
	if (e < 0)
		return e;
	e = ipc_sock_passcred(c->fd, false, NULL);
	if (e == 0)
		e = send_hello(c);
	if (e < 0) {
		snprintf(why, IPC_WHY_MAX, "sending the hello: %s", ipc_strerror(e));
		return IPC_E_DISCONNECTED;
	}
	c->state = IPC_CONN_WAIT_REPLY;
	return 0;
}

int ipc_rx_hello_reply(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why)
{
	ProtobufCMessage *msg;
	Santa__Ipc__HelloReply *hr;
	uint32_t version;

	if (ipc_unpack(&santa__ipc__hello_reply__descriptor, m->data, m->len, &msg) < 0) {
		snprintf(why, IPC_WHY_MAX, "undecodable hello reply");
		return IPC_E_INVALID;
	}
	hr = (Santa__Ipc__HelloReply *)msg;
	c->privileged = hr->privileged;
	version = hr->protocol_version;
	protobuf_c_message_free_unpacked(msg, NULL);
	if (version != IPC_PROTOCOL_VERSION) {
		snprintf(why, IPC_WHY_MAX, "hello reply of protocol version %u", version);
		return IPC_E_INVALID;
	}
	c->state = IPC_CONN_READY;
	ipc_conn_flush(c);
	if (c->state == IPC_CONN_READY && c->on_ready)
		c->on_ready(c, 0, c->cb_userdata);
	return 0;
}
