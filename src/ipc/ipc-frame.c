/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frames on the wire: decoding and reassembling what a peer sent, bounded
 * unpacking, packing and sending. Everything a peer controls passes
 * through ipc_rx_feed and ipc_unpack, which the fuzz harness drives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ipc-internal.h"

void ipc_limits_fill(ipc_limits *dst, const ipc_limits *src)
{
	ipc_limits l = src ? *src : (ipc_limits){ 0 };

	if (!l.max_message)
		l.max_message = IPC_DEFAULT_MAX_MESSAGE;
	if (l.max_message > IPC_MAX_MESSAGE_CEILING)
		l.max_message = IPC_MAX_MESSAGE_CEILING;
	if (!l.max_inflight)
		l.max_inflight = IPC_DEFAULT_MAX_INFLIGHT;
	if (l.max_inflight > IPC_MAX_INFLIGHT_CEILING)
		l.max_inflight = IPC_MAX_INFLIGHT_CEILING;
	if (!l.max_conns_per_uid)
		l.max_conns_per_uid = IPC_DEFAULT_MAX_CONNS_PER_UID;
	if (!l.handshake_usec)
		l.handshake_usec = IPC_DEFAULT_HANDSHAKE_USEC;
	if (!l.call_timeout_usec)
		l.call_timeout_usec = IPC_DEFAULT_CALL_TIMEOUT_USEC;
	*dst = l;
}

/* --- Reassembly --- */

void ipc_rx_init(struct ipc_rx *rx, uint32_t max_message)
{
	*rx = (struct ipc_rx){ .max_message = max_message };
}

void ipc_rx_reset(struct ipc_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
	rx->have = 0;
	rx->cap = 0;
	rx->active = false;
}

static int rx_check_header(const struct ipc_rx *rx, const struct ipc_frame_hdr *h, size_t n,
			   char *why, size_t whysz)
{
	if (h->magic != IPC_FRAME_MAGIC) {
		snprintf(why, whysz, "garbage frame (bad magic 0x%02x)", h->magic);
		return IPC_E_INVALID;
	}
	if (h->kind == 0 || h->kind >= IPC_K_MAX) {
		snprintf(why, whysz, "unknown frame kind %u", h->kind);
		return IPC_E_INVALID;
	}
	if (h->flags & ~(IPC_F_MORE | IPC_F_CONT)) {
		snprintf(why, whysz, "unknown frame flags 0x%x", h->flags);
		return IPC_E_INVALID;
	}
	if (h->len != n - sizeof(*h)) {
		snprintf(why, whysz, "truncated frame (header says %u payload bytes, got %zu)",
			 h->len, n - sizeof(*h));
		return IPC_E_INVALID;
	}
	if (h->total > rx->max_message) {
		snprintf(why, whysz, "oversized message (%u bytes, limit %u)", h->total,
			 rx->max_message);
		return IPC_E_LIMIT;
	}
	if (h->len > h->total) {
		snprintf(why, whysz, "frame of %u bytes in a message of %u", h->len, h->total);
		return IPC_E_INVALID;
	}
	return 0;
}

static int rx_first(struct ipc_rx *rx, const struct ipc_frame_hdr *h, const uint8_t *payload,
		    struct ipc_msg *out, char *why, size_t whysz)
{
	if (h->flags & IPC_F_CONT) {
		snprintf(why, whysz, "continuation frame without a first fragment");
		return IPC_E_INVALID;
	}
	if (!(h->flags & IPC_F_MORE)) {
		if (h->len != h->total) {
			snprintf(why, whysz, "truncated message (%u of %u bytes)", h->len,
				 h->total);
			return IPC_E_INVALID;
		}
		*out = (struct ipc_msg){ h->kind, h->method, h->id, payload, h->len, false };
		return 1;
	}
	/* Empty fragments would let a peer keep us reading forever. */
	if (h->len == 0 || h->len == h->total) {
		snprintf(why, whysz, "bad first fragment (%u of %u bytes)", h->len, h->total);
		return IPC_E_INVALID;
	}
	/* Room for what came, not for what the header announces: a peer must
	 * send the bytes to make us hold them. */
	rx->cap = h->len;
	rx->buf = malloc(rx->cap);
	if (!rx->buf) {
		snprintf(why, whysz, "out of memory reassembling a message");
		return -ENOMEM;
	}
	memcpy(rx->buf, payload, h->len);
	rx->have = h->len;
	rx->first = *h;
	rx->active = true;
	return 0;
}

static int rx_next(struct ipc_rx *rx, const struct ipc_frame_hdr *h, const uint8_t *payload,
		   struct ipc_msg *out, char *why, size_t whysz)
{
	const struct ipc_frame_hdr *f = &rx->first;
	bool more = h->flags & IPC_F_MORE;

	if (!(h->flags & IPC_F_CONT) || h->kind != f->kind || h->method != f->method ||
	    h->id != f->id || h->total != f->total) {
		snprintf(why, whysz, "frame interleaved with a fragmented message");
		return IPC_E_INVALID;
	}
	if (h->len == 0 || h->len > f->total - rx->have ||
	    (more && h->len == f->total - rx->have) ||
	    (!more && h->len != f->total - rx->have)) {
		snprintf(why, whysz, "bad fragment (%u bytes at %u of %u)", h->len, rx->have,
			 f->total);
		return IPC_E_INVALID;
	}
	if (rx->have + h->len > rx->cap) {
		uint32_t cap = rx->cap * 2 > rx->have + h->len ? rx->cap * 2 : rx->have + h->len;
		uint8_t *buf;

		if (cap > f->total)
			cap = f->total;
		buf = realloc(rx->buf, cap);
		if (!buf) {
			snprintf(why, whysz, "out of memory reassembling a message");
			return -ENOMEM;
		}
		rx->buf = buf;
		rx->cap = cap;
	}
	memcpy(rx->buf + rx->have, payload, h->len);
	rx->have += h->len;
	if (more)
		return 0;
	*out = (struct ipc_msg){ f->kind, f->method, f->id, rx->buf, f->total, true };
	rx->active = false;
	return 1;
}

int ipc_rx_feed(struct ipc_rx *rx, const uint8_t *frame, size_t n, struct ipc_msg *out,
		char *why, size_t whysz)
{
	struct ipc_frame_hdr h;
	int r;

	/* A message handed out earlier is done with by now. */
	if (!rx->active && rx->buf)
		ipc_rx_reset(rx);
	if (n < sizeof(h)) {
		snprintf(why, whysz, "truncated frame (%zu bytes, header is %zu)", n, sizeof(h));
		return IPC_E_INVALID;
	}
	memcpy(&h, frame, sizeof(h));
	r = rx_check_header(rx, &h, n, why, whysz);
	if (r < 0)
		return r;
	if (rx->active)
		return rx_next(rx, &h, frame + sizeof(h), out, why, whysz);
	return rx_first(rx, &h, frame + sizeof(h), out, why, whysz);
}

/* --- Bounded unpacking --- */

/*
 * protobuf-c allocates the decoded structure piece by piece; a small
 * message of many empty sub-messages could make it allocate far more than
 * it read. The budget caps the total at a fixed multiple of the input.
 * Memory comes from malloc so that the result is freed with the default
 * allocator.
 */
struct unpack_budget {
	size_t left;
};

static void *budget_alloc(void *data, size_t size)
{
	struct unpack_budget *b = data;

	if (size > b->left)
		return NULL;
	b->left -= size;
	return malloc(size);
}

static void budget_free(void *data, void *ptr)
{
	free(ptr);
}

int ipc_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
	       ProtobufCMessage **ret)
{
	struct unpack_budget b = { .left = 8 * len + 64 * 1024 };
	ProtobufCAllocator a = {
		.alloc = budget_alloc,
		.free = budget_free,
		.allocator_data = &b,
	};
	ProtobufCMessage *m;

	m = protobuf_c_message_unpack(desc, &a, len, data);
	if (!m)
		return IPC_E_INVALID;
	*ret = m;
	return 0;
}

/* --- Packing and sending --- */

int ipc_pack(const ProtobufCMessage *msg, uint8_t *scratch, uint8_t **ret_alloc,
	     const uint8_t **ret_buf, size_t *ret_len)
{
	uint8_t *buf = scratch;
	size_t size;

	*ret_alloc = NULL;
	*ret_buf = scratch;
	*ret_len = 0;
	if (!msg)
		return 0;
	size = protobuf_c_message_get_packed_size(msg);
	if (size > IPC_MAX_MESSAGE_CEILING)
		return IPC_E_LIMIT;
	if (size > IPC_FRAME_MAX) {
		buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		*ret_alloc = buf;
	}
	if (protobuf_c_message_pack(msg, buf) != size) {
		free(*ret_alloc);
		*ret_alloc = NULL;
		return IPC_E_INVALID;
	}
	*ret_buf = buf;
	*ret_len = size;
	return 0;
}

static int out_send_frame(int fd, struct ipc_out *out)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct ipc_frame_hdr h = out->hdr;
	size_t left = out->hdr.total - out->off;
	struct iovec iov[2];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	h.magic = IPC_FRAME_MAGIC;
	h.len = left > IPC_FRAME_PAYLOAD_MAX ? IPC_FRAME_PAYLOAD_MAX : (uint32_t)left;
	h.flags = (out->started ? IPC_F_CONT : 0) | (h.len < left ? IPC_F_MORE : 0);
	iov[0] = (struct iovec){ &h, sizeof(h) };
	iov[1] = (struct iovec){ (void *)out->payload, h.len };
	if (!out->started && out->fd >= 0) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &out->fd, sizeof(int));
	}
	n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	out->started = true;
	out->off += h.len;
	out->payload += h.len;
	return 1;
}

int ipc_out_send(int fd, struct ipc_out *out)
{
	int r;

	do {
		r = out_send_frame(fd, out);
		if (r <= 0)
			return r;
	} while (out->off < out->hdr.total);
	return 1;
}

int ipc_send_small(int fd, uint8_t kind, uint64_t id, const ProtobufCMessage *msg)
{
	uint8_t buf[1024];
	uint8_t *alloc;
	const uint8_t *payload;
	size_t len;
	struct ipc_out out = { .fd = -1 };
	int r;

	/* Handshake frames are small by construction; anything else here is a
	 * bug, not something to fragment. */
	if (msg && protobuf_c_message_get_packed_size(msg) > sizeof(buf))
		return IPC_E_LIMIT;
	r = ipc_pack(msg, buf, &alloc, &payload, &len);
	if (r < 0)
		return r;
	out.hdr = (struct ipc_frame_hdr){ .kind = kind, .id = id, .total = (uint32_t)len };
	out.payload = payload;
	r = ipc_out_send(fd, &out);
	if (r == 0)
		return -EAGAIN;
	return r < 0 ? r : 0;
}

/* --- Receiving --- */

static void rcvd_take_cmsg(struct ipc_rcvd *r, struct cmsghdr *cm)
{
	size_t len;

	if (cm->cmsg_level != SOL_SOCKET)
		return;
	len = cm->cmsg_len - CMSG_LEN(0);
	if (cm->cmsg_type == SCM_CREDENTIALS && len == sizeof(struct ucred)) {
		memcpy(&r->creds, CMSG_DATA(cm), sizeof(r->creds));
		r->have_creds = true;
	} else if (cm->cmsg_type == SCM_PIDFD && len == sizeof(int)) {
		int fd;

		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		if (r->pidfd >= 0)
			close(r->pidfd);
		r->pidfd = fd;
	} else if (cm->cmsg_type == SCM_RIGHTS) {
		for (size_t i = 0; i + sizeof(int) <= len; i += sizeof(int)) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i, sizeof(fd));
			if (r->n_fds < sizeof(r->fds) / sizeof(r->fds[0]))
				r->fds[r->n_fds++] = fd;
			else {
				close(fd);
				r->truncated = true;
			}
		}
	}
}

static int recv_flags(int fd, uint8_t *buf, struct ipc_rcvd *r, int flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int)) +
			 CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = { buf, IPC_FRAME_MAX };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;

	*r = (struct ipc_rcvd){ .pidfd = -1 };
	n = recvmsg(fd, &mh, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	r->n = n;
	if (mh.msg_controllen > 0)
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			rcvd_take_cmsg(r, cm);
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		r->truncated = true;
	return 0;
}

int ipc_recv(int fd, uint8_t *buf, struct ipc_rcvd *r)
{
	return recv_flags(fd, buf, r, MSG_DONTWAIT);
}

int ipc_recv_wait(int fd, uint8_t *buf, struct ipc_rcvd *r)
{
	return recv_flags(fd, buf, r, 0);
}

void ipc_rcvd_close(struct ipc_rcvd *r)
{
	if (r->pidfd >= 0)
		close(r->pidfd);
	r->pidfd = -1;
	for (unsigned i = 0; i < r->n_fds; i++)
		close(r->fds[i]);
	r->n_fds = 0;
}

int ipc_rcvd_take_fd(struct ipc_rcvd *r)
{
	int fd;

	if (r->n_fds == 0)
		return -1;
	fd = r->fds[0];
	memmove(r->fds, r->fds + 1, (r->n_fds - 1) * sizeof(int));
	r->n_fds--;
	return fd;
}

int ipc_sock_passcred(int fd, bool on, bool *ret_pidfd_ok)
{
	int v = on;

	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, sizeof(v)) < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSPIDFD, &v, sizeof(v)) < 0) {
		if (errno != ENOPROTOOPT)
			return -errno;
		if (ret_pidfd_ok)
			*ret_pidfd_ok = false;
		return 0;
	}
	if (ret_pidfd_ok)
		*ret_pidfd_ok = true;
	return 0;
}
