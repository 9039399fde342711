/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A connection on an sd_event loop, either side: the handshake, calls in
 * both directions matched by request id, one-way messages, deadlines, the
 * bounded outgoing queue, and closing with a reason.
 *
 * Everything a connection does happens in callbacks of its sd_event, one
 * datagram per wake-up (so that one busy peer cannot starve the others and
 * an idle socket costs no extra recvmsg). The hot path is sendmsg, the
 * loop's epoll_wait and recvmsg; packing uses a per-thread scratch buffer,
 * pending calls live in a per-connection slot array and incoming calls are
 * recycled, so a call allocates nothing but what protobuf-c decodes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipc-internal.h"
#include "ipc.pb-c.h"

#define CALL_CACHE_MAX 32
/* The outgoing queue may hold this much more than one maximal message;
 * a peer that lets it fill does not read what it asked for. */
#define TXQ_SLACK (256u * 1024u)

struct ipc_txq {
	struct ipc_txq *next;
	struct ipc_out out;
	size_t size;
	uint8_t data[];
};

struct ipc_call {
	ipc_conn *conn;
	uint64_t id;
	uint32_t method;
	bool oneway;
	int fd;
	ProtobufCMessage *request;
	struct ipc_call *next_free;
};

/* Per-thread receive and packing buffers, allocated on first use and freed
 * by the key's destructor when the thread exits (the main thread's stay
 * until exit). */
static __thread struct ipc_tls {
	uint8_t *rxbuf;
	uint8_t *scratch;
} tls;
static __thread const ProtobufCMessage *tls_reply;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_key_ok;

static void conn_arm_timer(ipc_conn *c);

static void tls_free(void *p)
{
	struct ipc_tls *t = p;

	free(t->rxbuf);
	free(t->scratch);
	t->rxbuf = t->scratch = NULL;
}

static void tls_key_init(void)
{
	tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

static uint8_t *tls_buffer(uint8_t **slot)
{
	if (*slot)
		return *slot;
	pthread_once(&tls_once, tls_key_init);
	if (!tls_key_ok || pthread_setspecific(tls_key, &tls) != 0)
		return NULL;
	*slot = malloc(IPC_FRAME_MAX);
	return *slot;
}

/* The clock itself, not sd_event_now(): that is the time of the loop's last
 * wake-up, which may be long past when a call is made. */
static uint64_t conn_now(const ipc_conn *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --- Closing --- */

static void txq_free_all(ipc_conn *c)
{
	struct ipc_txq *q, *next;

	for (q = c->txq_head; q; q = next) {
		next = q->next;
		if (q->out.fd >= 0)
			close(q->out.fd);
		free(q);
	}
	c->txq_head = c->txq_tail = NULL;
	c->txq_bytes = 0;
}

static void pend_unlink(ipc_conn *c, uint32_t slot)
{
	struct ipc_pending *p = &c->pend[slot];

	if (p->prev)
		c->pend[p->prev - 1].next = p->next;
	else
		c->dl_head = p->next;
	if (p->next)
		c->pend[p->next - 1].prev = p->prev;
	else
		c->dl_tail = p->prev;
	p->prev = p->next = 0;
}

/* Complete the call in SLOT: free the slot first, so that the callback may
 * make new calls. */
static void pend_finish(ipc_conn *c, uint32_t slot, int err, const char *errmsg,
			const ProtobufCMessage *reply)
{
	struct ipc_pending p = c->pend[slot];

	pend_unlink(c, slot);
	c->pend[slot].id = 0;
	c->pend[slot].next_free = c->free_head;
	c->free_head = slot + 1;
	c->n_pending--;
	p.cb(c, err, errmsg, reply, p.userdata);
}

static void pend_fail_all(ipc_conn *c, int err, const char *errmsg)
{
	while (c->dl_head)
		pend_finish(c, c->dl_head - 1, err, errmsg, NULL);
}

static void conn_teardown(ipc_conn *c)
{
	c->io = sd_event_source_disable_unref(c->io);
	c->timer = sd_event_source_disable_unref(c->timer);
	c->defer = sd_event_source_disable_unref(c->defer);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->rx_fd >= 0)
		close(c->rx_fd);
	c->rx_fd = -1;
	txq_free_all(c);
	ipc_rx_reset(&c->rx);
}

static void conn_close_v(ipc_conn *c, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void conn_close_v(ipc_conn *c, int err, const char *fmt, va_list ap)
{
	char reason[IPC_WHY_MAX + 160], who[200], what[IPC_WHY_MAX];
	bool was_ready;
	int call_err;

	if (c->state == IPC_CONN_CLOSED)
		return;
	ipc_conn_ref(c);
	was_ready = c->state == IPC_CONN_READY;
	c->state = IPC_CONN_CLOSED;
	vsnprintf(what, sizeof(what), fmt, ap);
	snprintf(reason, sizeof(reason), "%s: %s", ipc_peer_describe(&c->peer, who, sizeof(who)),
		 what);
	conn_teardown(c);

	/* Calls queued before the handshake fail with its error. */
	call_err = was_ready ? IPC_E_DISCONNECTED : err;
	if (!was_ready && c->on_ready)
		c->on_ready(c, err, c->cb_userdata);
	pend_fail_all(c, call_err, reason);
	if (c->on_close)
		c->on_close(c, err, reason, c->cb_userdata);
	if (c->server)
		ipc_server_conn_gone(c->server, c);
	ipc_conn_unref(c);
}

void ipc_conn_close_reason(ipc_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_close_v(c, err, fmt, ap);
	va_end(ap);
}

static int conn_defer_cb(sd_event_source *s, void *userdata)
{
	ipc_conn *c = userdata;

	ipc_conn_close_reason(c, c->close_err, "%s", c->close_reason);
	return 0;
}

/* Close from the next loop iteration: for failures found inside an API
 * call, whose caller does not expect callbacks to run under it. */
static void conn_close_later(ipc_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void conn_close_later(ipc_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->state == IPC_CONN_CLOSED || c->defer)
		return;
	c->close_err = err;
	va_start(ap, fmt);
	vsnprintf(c->close_reason, sizeof(c->close_reason), fmt, ap);
	va_end(ap);
	if (sd_event_add_defer(c->ev, &c->defer, conn_defer_cb, c) < 0) {
		/* Without a defer source the socket still reports the failure;
		 * stop sending so that nothing more is lost meanwhile. */
		c->defer = NULL;
		return;
	}
	sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

void ipc_conn_close(ipc_conn *c)
{
	if (!c)
		return;
	ipc_conn_close_reason(c, IPC_E_DISCONNECTED, "closed by this side");
}

/* --- Lifetime --- */

ipc_conn *ipc_conn_ref(ipc_conn *c)
{
	if (c)
		c->n_ref++;
	return c;
}

static void conn_free(ipc_conn *c)
{
	struct ipc_call *call, *next;

	for (call = c->call_cache; call; call = next) {
		next = call->next_free;
		free(call);
	}
	free(c->pend);
	sd_event_unref(c->ev);
	free(c);
}

/* Dropping the last reference closes the connection without on_close or
 * on_ready; pending calls still fail with IPC_E_DISCONNECTED. */
ipc_conn *ipc_conn_unref(ipc_conn *c)
{
	if (!c)
		return NULL;
	if (c->n_ref > 1) {
		c->n_ref--;
		return NULL;
	}
	if (c->state != IPC_CONN_CLOSED) {
		c->on_close = NULL;
		c->on_ready = NULL;
		ipc_conn_close_reason(c, IPC_E_DISCONNECTED, "released");
		if (c->n_ref > 1) {
			c->n_ref--;
			return NULL;
		}
	}
	conn_free(c);
	return NULL;
}

const ipc_peer *ipc_conn_peer(const ipc_conn *c)
{
	return &c->peer;
}

bool ipc_conn_is_ready(const ipc_conn *c)
{
	return c && c->state == IPC_CONN_READY;
}

bool ipc_conn_is_privileged(const ipc_conn *c)
{
	return c && c->privileged;
}

void ipc_conn_set_userdata(ipc_conn *c, void *userdata)
{
	c->userdata = userdata;
}

void *ipc_conn_get_userdata(const ipc_conn *c)
{
	return c->userdata;
}

/* --- Sending --- */

static void conn_want_out(ipc_conn *c, bool want)
{
	if (c->want_out == want || !c->io)
		return;
	if (sd_event_source_set_io_events(c->io, EPOLLIN | (want ? EPOLLOUT : 0)) >= 0)
		c->want_out = want;
}

static size_t txq_limit(const ipc_conn *c)
{
	return (size_t)c->limits.max_message * 2 + TXQ_SLACK;
}

/* Keep what is left of OUT for later. The descriptor is duplicated: the
 * caller keeps its own. */
static int txq_push(ipc_conn *c, const struct ipc_out *out)
{
	size_t left = out->hdr.total - out->off;
	struct ipc_txq *q;

	if (c->txq_bytes + left > txq_limit(c))
		return IPC_E_LIMIT;
	q = malloc(sizeof(*q) + left);
	if (!q)
		return -ENOMEM;
	q->next = NULL;
	q->out = *out;
	q->size = left;
	memcpy(q->data, out->payload, left);
	q->out.payload = q->data;
	q->out.fd = -1;
	if (!out->started && out->fd >= 0) {
		q->out.fd = fcntl(out->fd, F_DUPFD_CLOEXEC, 3);
		if (q->out.fd < 0) {
			free(q);
			return -errno;
		}
	}
	if (c->txq_tail)
		c->txq_tail->next = q;
	else
		c->txq_head = q;
	c->txq_tail = q;
	c->txq_bytes += left;
	return 0;
}

void ipc_conn_flush(ipc_conn *c)
{
	struct ipc_txq *q;
	int r;

	while ((q = c->txq_head) && c->state == IPC_CONN_READY) {
		r = ipc_out_send(c->fd, &q->out);
		if (r == 0) {
			conn_want_out(c, true);
			return;
		}
		if (r < 0) {
			ipc_conn_close_reason(c, IPC_E_DISCONNECTED, "sending: %s", strerror(-r));
			return;
		}
		c->txq_head = q->next;
		if (!c->txq_head)
			c->txq_tail = NULL;
		c->txq_bytes -= q->size;
		if (q->out.fd >= 0)
			close(q->out.fd);
		free(q);
	}
	conn_want_out(c, false);
}

/* Send or queue one message. Calls before the handshake completed are
 * queued; a socket failure closes the connection from the loop. */
static int conn_send(ipc_conn *c, uint8_t kind, uint32_t method, uint64_t id,
		     const ProtobufCMessage *msg, int fd)
{
	uint8_t *scratch = tls_buffer(&tls.scratch), *alloc;
	struct ipc_out out = { .fd = fd };
	const uint8_t *buf;
	size_t len;
	int r;

	if (!scratch)
		return -ENOMEM;
	r = ipc_pack(msg, scratch, &alloc, &buf, &len);
	if (r < 0)
		return r;
	if (len > c->limits.max_message) {
		free(alloc);
		return IPC_E_LIMIT;
	}
	out.hdr = (struct ipc_frame_hdr){ .kind = kind, .method = method, .id = id,
					  .total = (uint32_t)len };
	out.payload = buf;
	if (!c->txq_head && c->state == IPC_CONN_READY) {
		r = ipc_out_send(c->fd, &out);
		if (r < 0)
			conn_close_later(c, IPC_E_DISCONNECTED, "sending: %s", strerror(-r));
		if (r != 0) {
			free(alloc);
			return 0;
		}
	}
	r = txq_push(c, &out);
	free(alloc);
	if (r == 0 && c->state == IPC_CONN_READY)
		conn_want_out(c, true);
	return r;
}

static void conn_send_error(ipc_conn *c, uint64_t id, uint32_t method, int err,
			    const char *msg)
{
	Santa__Ipc__Error e = SANTA__IPC__ERROR__INIT;
	int r;

	e.code = ipc_error_to_wire(err);
	e.message = (char *)(msg ? msg : "");
	r = conn_send(c, IPC_K_ERROR, method, id, &e.base, -1);
	if (r < 0)
		conn_close_later(c, r, "answering call %llu: %s", (unsigned long long)id,
				 ipc_strerror(r));
}

/* --- Calls this side makes --- */

static int pend_init(ipc_conn *c)
{
	uint32_t n = c->limits.max_inflight;

	c->pend = calloc(n, sizeof(*c->pend));
	if (!c->pend)
		return -ENOMEM;
	c->n_slots = n;
	for (uint32_t i = 0; i < n; i++)
		c->pend[i].next_free = i + 2 <= n ? i + 2 : 0;
	c->free_head = 1;
	return 0;
}

/* Insert SLOT in deadline order; with one timeout per connection this is
 * an append. */
static void pend_link(ipc_conn *c, uint32_t slot)
{
	struct ipc_pending *p = &c->pend[slot];
	uint32_t at = c->dl_tail;

	while (at && c->pend[at - 1].deadline > p->deadline)
		at = c->pend[at - 1].prev;
	p->prev = at;
	p->next = at ? c->pend[at - 1].next : c->dl_head;
	if (p->next)
		c->pend[p->next - 1].prev = slot + 1;
	else
		c->dl_tail = slot + 1;
	if (at)
		c->pend[at - 1].next = slot + 1;
	else
		c->dl_head = slot + 1;
}

static int call_check(ipc_conn *c, unsigned method, const ProtobufCMessage *req)
{
	if (!c || c->state == IPC_CONN_CLOSED || c->defer)
		return IPC_E_DISCONNECTED;
	if (!c->remote || method >= c->remote->n_methods)
		return IPC_E_INVALID;
	if (req && req->descriptor != c->remote->methods[method].input)
		return IPC_E_INVALID;
	return 0;
}

int ipc_call_async(ipc_conn *c, unsigned method, const ProtobufCMessage *req, int fd,
		   uint64_t timeout_usec, ipc_reply_fn cb, void *userdata)
{
	struct ipc_pending *p;
	uint32_t slot;
	uint64_t id;
	int r;

	r = call_check(c, method, req);
	if (r < 0)
		return r;
	if (!cb)
		return -EINVAL;
	if (!c->pend && (r = pend_init(c)) < 0)
		return r;
	if (!c->free_head)
		return IPC_E_LIMIT;
	slot = c->free_head - 1;
	id = (++c->next_seq << 16) | slot;
	r = conn_send(c, IPC_K_CALL, method, id, req, fd);
	if (r < 0)
		return r;

	p = &c->pend[slot];
	c->free_head = p->next_free;
	*p = (struct ipc_pending){ .id = id, .cb = cb, .userdata = userdata, .method = method };
	p->deadline = conn_now(c) + (timeout_usec ? timeout_usec : c->limits.call_timeout_usec);
	pend_link(c, slot);
	c->n_pending++;
	conn_arm_timer(c);
	return 0;
}

int ipc_send_oneway(ipc_conn *c, unsigned method, const ProtobufCMessage *req, int fd)
{
	int r = call_check(c, method, req);

	if (r < 0)
		return r;
	return conn_send(c, IPC_K_ONEWAY, method, 0, req, fd);
}

ProtobufCMessage *ipc_reply_steal(const ProtobufCMessage *reply)
{
	if (!reply || reply != tls_reply)
		return NULL;
	tls_reply = NULL;
	return (ProtobufCMessage *)reply;
}

/* --- Calls this side serves --- */

static struct ipc_call *call_new(ipc_conn *c)
{
	struct ipc_call *call = c->call_cache;

	if (call) {
		c->call_cache = call->next_free;
		c->n_call_cache--;
	} else {
		call = malloc(sizeof(*call));
		if (!call)
			return NULL;
	}
	*call = (struct ipc_call){ .conn = ipc_conn_ref(c), .fd = -1 };
	return call;
}

static void call_free(struct ipc_call *call)
{
	ipc_conn *c = call->conn;

	c->n_incoming--;
	if (call->request)
		protobuf_c_message_free_unpacked(call->request, NULL);
	if (call->fd >= 0)
		close(call->fd);
	if (c->n_call_cache < CALL_CACHE_MAX) {
		call->next_free = c->call_cache;
		c->call_cache = call;
		c->n_call_cache++;
	} else {
		free(call);
	}
	ipc_conn_unref(c);
}

const ipc_peer *ipc_call_peer(const ipc_call *call)
{
	return &call->conn->peer;
}

ipc_conn *ipc_call_conn(const ipc_call *call)
{
	return call->conn;
}

/* Root peers get the privileged interface, and so do the roles the
 * service names. */
bool ipc_conn_peer_privileged(const ipc_conn *c)
{
	if (c->peer.uid == 0)
		return true;
	return c->local && (c->local->privileged_roles & IPC_ROLE_BIT(c->peer.role)) &&
	       c->peer.role != IPC_ROLE_NONE;
}

bool ipc_call_is_privileged(const ipc_call *call)
{
	return ipc_conn_peer_privileged(call->conn);
}

bool ipc_call_is_oneway(const ipc_call *call)
{
	return call->oneway;
}

int ipc_call_take_fd(ipc_call *call)
{
	int fd = call->fd;

	call->fd = -1;
	return fd;
}

static bool call_answerable(ipc_call *call)
{
	ipc_conn *c = call->conn;

	return !call->oneway && c->state == IPC_CONN_READY && !c->defer;
}

int ipc_call_reply(ipc_call *call, const ProtobufCMessage *reply)
{
	ipc_conn *c;
	int r = 0;

	if (!call)
		return -EINVAL;
	c = call->conn;
	if (call_answerable(call)) {
		const ProtobufCMethodDescriptor *md = &c->local->desc->methods[call->method];

		if (reply && reply->descriptor != md->output) {
			conn_send_error(c, call->id, call->method, IPC_E_PEER,
					"the handler replied with the wrong message type");
			r = IPC_E_INVALID;
		} else {
			r = conn_send(c, IPC_K_REPLY, call->method, call->id, reply, -1);
			if (r == IPC_E_LIMIT)
				conn_close_later(c, r, "peer does not read its replies (%zu bytes "
						 "queued)", c->txq_bytes);
			else if (r < 0)
				conn_close_later(c, r, "replying to call %llu: %s",
						 (unsigned long long)call->id, ipc_strerror(r));
		}
	}
	call_free(call);
	return r;
}

int ipc_call_fail(ipc_call *call, int err, const char *fmt, ...)
{
	char msg[IPC_WHY_MAX];
	va_list ap;

	if (!call)
		return -EINVAL;
	if (call_answerable(call)) {
		msg[0] = '\0';
		if (fmt) {
			va_start(ap, fmt);
			vsnprintf(msg, sizeof(msg), fmt, ap);
			va_end(ap);
		}
		conn_send_error(call->conn, call->id, call->method, err, msg);
	}
	call_free(call);
	return 0;
}

/* --- Deadlines --- */

static int conn_timer_cb(sd_event_source *s, uint64_t usec, void *userdata)
{
	ipc_conn *c = userdata;
	uint64_t now = conn_now(c);

	c->timer_armed = false;
	ipc_conn_ref(c);
	if (c->state < IPC_CONN_READY && now >= c->handshake_deadline) {
		ipc_conn_close_reason(c, IPC_E_TIMEOUT, "no handshake within %llu ms",
				      (unsigned long long)(c->limits.handshake_usec / 1000));
	} else {
		while (c->state != IPC_CONN_CLOSED && c->dl_head &&
		       c->pend[c->dl_head - 1].deadline <= now)
			pend_finish(c, c->dl_head - 1, IPC_E_TIMEOUT,
				    "no reply within the deadline", NULL);
		if (c->state != IPC_CONN_CLOSED)
			conn_arm_timer(c);
	}
	ipc_conn_unref(c);
	return 0;
}

/* One timer per connection, at its earliest deadline. Completing a call
 * leaves it alone: an early wake-up re-arms it, which is cheaper than
 * touching it for every call. */
static void conn_arm_timer(ipc_conn *c)
{
	uint64_t at = UINT64_MAX;

	if (!c->timer)
		return;
	if (c->state < IPC_CONN_READY)
		at = c->handshake_deadline;
	if (c->dl_head && c->pend[c->dl_head - 1].deadline < at)
		at = c->pend[c->dl_head - 1].deadline;
	if (at == UINT64_MAX || (c->timer_armed && c->timer_at <= at))
		return;
	if (sd_event_source_set_time(c->timer, at) < 0 ||
	    sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
		return;
	c->timer_at = at;
	c->timer_armed = true;
}

/* --- Receiving: calls, replies, errors --- */

static bool method_permitted(const ipc_conn *c, const ipc_method *im)
{
	if ((im->flags & IPC_METHOD_PRIVILEGED) && !ipc_conn_peer_privileged(c))
		return false;
	return im->roles == 0 || (im->roles & IPC_ROLE_BIT(c->peer.role));
}

static int rx_call_check(ipc_conn *c, const struct ipc_msg *m, int fd, char *why)
{
	const ipc_service *svc = c->local;
	const ipc_method *im;

	if (!svc) {
		snprintf(why, IPC_WHY_MAX, "call on a connection that exports nothing");
		return IPC_E_INVALID;
	}
	if (m->method >= svc->desc->n_methods || !svc->methods[m->method].handler) {
		snprintf(why, IPC_WHY_MAX, "call to unknown method %u of %s", m->method,
			 svc->desc->name);
		return IPC_E_INVALID;
	}
	im = &svc->methods[m->method];
	/* One-way messages count too: a handler may keep them. */
	if (c->n_incoming >= c->limits.max_inflight) {
		snprintf(why, IPC_WHY_MAX, "more than %u calls in flight", c->limits.max_inflight);
		return IPC_E_LIMIT;
	}
	if (fd >= 0 && !(im->flags & IPC_METHOD_ACCEPT_FD)) {
		snprintf(why, IPC_WHY_MAX, "descriptor sent with %s, which takes none",
			 svc->desc->methods[m->method].name);
		return IPC_E_INVALID;
	}
	return 0;
}

static int rx_call(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why)
{
	const ipc_service *svc = c->local;
	ProtobufCMessage *req;
	struct ipc_call *call;
	int fd = ipc_rcvd_take_fd(r), e;

	e = rx_call_check(c, m, fd, why);
	if (e == 0 && !method_permitted(c, &svc->methods[m->method])) {
		/* A well-formed call outside the peer's interface: refused, the
		 * connection stays. */
		if (fd >= 0)
			close(fd);
		if (m->kind == IPC_K_CALL)
			conn_send_error(c, m->id, m->method, IPC_E_NOT_PERMITTED,
					"not permitted for this peer");
		return 0;
	}
	if (e == 0 && ipc_unpack(svc->desc->methods[m->method].input, m->data, m->len, &req) < 0) {
		snprintf(why, IPC_WHY_MAX, "undecodable %s request",
			 svc->desc->methods[m->method].name);
		e = IPC_E_INVALID;
	}
	if (e == 0 && !(call = call_new(c))) {
		protobuf_c_message_free_unpacked(req, NULL);
		snprintf(why, IPC_WHY_MAX, "out of memory");
		e = -ENOMEM;
	}
	if (e < 0) {
		if (fd >= 0)
			close(fd);
		return e;
	}
	call->id = m->id;
	call->method = m->method;
	call->oneway = m->kind == IPC_K_ONEWAY;
	call->fd = fd;
	call->request = req;
	c->n_incoming++;
	svc->methods[m->method].handler(call, req, svc->userdata);
	return 0;
}

/* Which pending slot does ID answer? -1 for a late answer to a call that
 * already timed out; an id we never issued is a protocol violation. */
static int pend_lookup(const ipc_conn *c, uint64_t id, char *why)
{
	uint32_t slot = id & 0xffff;

	if (c->pend && slot < c->n_slots && c->pend[slot].id == id && id != 0)
		return (int)slot;
	if (id != 0 && (id >> 16) <= c->next_seq)
		return -1;
	snprintf(why, IPC_WHY_MAX, "answer to call %llu, which was never made",
		 (unsigned long long)id);
	return IPC_E_INVALID;
}

static int rx_reply(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why)
{
	const ProtobufCMessage *saved = tls_reply;
	ProtobufCMessage *reply;
	int slot = pend_lookup(c, m->id, why);

	if (slot < 0)
		return slot == -1 ? 0 : slot;
	if (m->method != c->pend[slot].method) {
		snprintf(why, IPC_WHY_MAX, "reply to call %llu names another method",
			 (unsigned long long)m->id);
		return IPC_E_INVALID;
	}
	if (ipc_unpack(c->remote->methods[m->method].output, m->data, m->len, &reply) < 0) {
		pend_finish(c, slot, IPC_E_INVALID, "undecodable reply", NULL);
		snprintf(why, IPC_WHY_MAX, "undecodable %s reply",
			 c->remote->methods[m->method].name);
		return IPC_E_INVALID;
	}
	tls_reply = reply;
	pend_finish(c, slot, 0, NULL, reply);
	if (tls_reply == reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	tls_reply = saved;
	return 0;
}

static int rx_error(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why)
{
	ProtobufCMessage *msg;
	Santa__Ipc__Error *e;
	int slot, err;

	if (ipc_unpack(&santa__ipc__error__descriptor, m->data, m->len, &msg) < 0) {
		snprintf(why, IPC_WHY_MAX, "undecodable error frame");
		return IPC_E_INVALID;
	}
	e = (Santa__Ipc__Error *)msg;
	err = ipc_error_from_wire(e->code);
	if (m->id == 0) {
		/* The peer ends the connection and says why. */
		snprintf(why, IPC_WHY_MAX, "peer refused the connection: %.128s", e->message);
		protobuf_c_message_free_unpacked(msg, NULL);
		return err;
	}
	slot = c->state == IPC_CONN_READY ? pend_lookup(c, m->id, why) : IPC_E_INVALID;
	if (slot >= 0)
		pend_finish(c, slot, err, e->message, NULL);
	else if (slot != -1 && c->state != IPC_CONN_READY)
		snprintf(why, IPC_WHY_MAX, "error frame during the handshake");
	protobuf_c_message_free_unpacked(msg, NULL);
	return slot >= -1 ? 0 : slot;
}

typedef int (*rx_fn)(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why);

#define ST(s) (1u << (s))
#define ST_CLIENT_HS (ST(IPC_CONN_WAIT_CHALLENGE) | ST(IPC_CONN_WAIT_REPLY))

/* Which frame is welcome in which state. */
static const struct {
	rx_fn fn;
	unsigned states;
	bool handshake;       /* must come in one frame */
} rx_table[IPC_K_MAX] = {
	[IPC_K_CHALLENGE] = { ipc_rx_challenge, ST(IPC_CONN_WAIT_CHALLENGE), true },
	[IPC_K_HELLO] = { ipc_rx_hello, ST(IPC_CONN_WAIT_HELLO), true },
	[IPC_K_HELLO_REPLY] = { ipc_rx_hello_reply, ST(IPC_CONN_WAIT_REPLY), true },
	[IPC_K_CALL] = { rx_call, ST(IPC_CONN_READY), false },
	[IPC_K_ONEWAY] = { rx_call, ST(IPC_CONN_READY), false },
	[IPC_K_REPLY] = { rx_reply, ST(IPC_CONN_READY), false },
	[IPC_K_ERROR] = { rx_error, ST(IPC_CONN_READY) | ST_CLIENT_HS, false },
};

static int conn_dispatch(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why)
{
	if (!(rx_table[m->kind].states & ST(c->state))) {
		snprintf(why, IPC_WHY_MAX, "unexpected frame of kind %u %s the handshake", m->kind,
			 c->state == IPC_CONN_READY ? "after" : "during");
		return IPC_E_INVALID;
	}
	if (rx_table[m->kind].handshake && m->fragmented) {
		snprintf(why, IPC_WHY_MAX, "fragmented handshake frame");
		return IPC_E_INVALID;
	}
	return rx_table[m->kind].fn(c, m, r, why);
}

/* Descriptors travel with the first frame of a message; keep one until the
 * message is complete. */
static int conn_stash_fd(ipc_conn *c, struct ipc_rcvd *r, bool complete, char *why)
{
	if (r->n_fds > 1 || (r->n_fds == 1 && c->rx_fd >= 0)) {
		snprintf(why, IPC_WHY_MAX, "more than one descriptor with a message");
		return IPC_E_INVALID;
	}
	if (!complete && r->n_fds == 1) {
		if (c->rx.have != r->n - sizeof(struct ipc_frame_hdr)) {
			snprintf(why, IPC_WHY_MAX, "descriptor on a continuation frame");
			return IPC_E_INVALID;
		}
		c->rx_fd = ipc_rcvd_take_fd(r);
	} else if (complete && c->rx_fd >= 0) {
		r->fds[r->n_fds++] = c->rx_fd;
		c->rx_fd = -1;
	}
	return 0;
}

static int conn_read_one(ipc_conn *c, char *why)
{
	uint8_t *buf = tls_buffer(&tls.rxbuf);
	struct ipc_rcvd r;
	struct ipc_msg m;
	int e;

	if (!buf) {
		snprintf(why, IPC_WHY_MAX, "out of memory");
		return -ENOMEM;
	}
	e = ipc_recv(c->fd, buf, &r);
	if (e == -EAGAIN || e == -EINTR)
		return 0;
	if (e < 0 || r.n == 0) {
		/* An empty datagram may still carry descriptors and a pidfd. */
		ipc_rcvd_close(&r);
		if (e < 0)
			snprintf(why, IPC_WHY_MAX, "receiving: %s", strerror(-e));
		else if (c->state != IPC_CONN_READY)
			snprintf(why, IPC_WHY_MAX,
				 "peer closed the connection during the handshake");
		else
			snprintf(why, IPC_WHY_MAX, "peer closed the connection");
		return IPC_E_DISCONNECTED;
	}
	if (r.truncated) {
		snprintf(why, IPC_WHY_MAX, "oversized frame or control data");
		e = IPC_E_INVALID;
	} else {
		e = ipc_rx_feed(&c->rx, buf, (size_t)r.n, &m, why, IPC_WHY_MAX);
	}
	if (e >= 0)
		e = conn_stash_fd(c, &r, e == 1, why) ?: e;
	if (e == 1)
		e = conn_dispatch(c, &m, &r, why);
	ipc_rcvd_close(&r);
	return e < 0 ? e : 0;
}

static int conn_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	ipc_conn *c = userdata;
	char why[IPC_WHY_MAX];
	int e = 0;

	ipc_conn_ref(c);
	if (revents & EPOLLOUT)
		ipc_conn_flush(c);
	if (c->state != IPC_CONN_CLOSED && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		why[0] = '\0';
		e = conn_read_one(c, why);
		if (e < 0)
			ipc_conn_close_reason(c, e, "%s", why);
	}
	ipc_conn_unref(c);
	return 0;
}

/* --- Creating --- */

int ipc_conn_new(sd_event *ev, int fd, bool server_side, const ipc_limits *limits,
		 const ipc_trust *trust, ipc_conn **ret)
{
	ipc_conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->n_ref = 1;
	c->fd = fd;
	c->rx_fd = -1;
	c->id = ipc_next_conn_id();
	c->peer.conn_id = c->id;
	c->server_side = server_side;
	c->state = server_side ? IPC_CONN_WAIT_HELLO : IPC_CONN_WAIT_CHALLENGE;
	c->ev = sd_event_ref(ev);
	c->trust = trust;
	ipc_limits_fill(&c->limits, limits);
	ipc_rx_init(&c->rx, c->limits.max_message);
	c->handshake_deadline = conn_now(c) + c->limits.handshake_usec;
	r = sd_event_add_io(ev, &c->io, fd, EPOLLIN, conn_io_cb, c);
	if (r >= 0)
		r = sd_event_add_time(ev, &c->timer, CLOCK_MONOTONIC, c->handshake_deadline, 1000,
				      conn_timer_cb, c);
	if (r < 0) {
		c->fd = -1;     /* the caller still owns it */
		conn_teardown(c);
		conn_free(c);
		return r;
	}
	c->timer_at = c->handshake_deadline;
	c->timer_armed = true;
	*ret = c;
	return 0;
}

