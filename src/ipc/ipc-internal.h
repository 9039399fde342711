/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the IPC library shared by its files: the wire format, the
 * frame decoder (also driven by the fuzz harness), socket helpers and peer
 * validation. Nothing here is part of the public contract.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ipc.h"

/* glibc 2.36 predates these (Linux 6.5). */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 4
#endif

#define IPC_PROTOCOL_VERSION 1u

/*
 * The wire: one SOCK_SEQPACKET datagram per frame, a fixed header then the
 * payload. The header is in host byte order: both ends share a kernel.
 * A message larger than one frame is sent as consecutive frames, the first
 * with MORE, the others with CONT (and MORE but the last); frames of two
 * messages never interleave on one connection.
 */
#define IPC_FRAME_MAGIC 0xa5u
#define IPC_FRAME_MAX (32u * 1024u)    /* whole datagram, header included */

enum ipc_kind {
	IPC_K_CHALLENGE = 1,
	IPC_K_HELLO,
	IPC_K_HELLO_REPLY,
	IPC_K_CALL,
	IPC_K_REPLY,
	IPC_K_ERROR,
	IPC_K_ONEWAY,
	IPC_K_MAX,
};

enum {
	IPC_F_MORE = 1u << 0,   /* more fragments of this message follow */
	IPC_F_CONT = 1u << 1,   /* not the first fragment */
};

struct ipc_frame_hdr {
	uint8_t magic;
	uint8_t kind;
	uint16_t flags;
	uint32_t method;        /* index into the service's methods */
	uint64_t id;            /* request id; 0 for handshake frames */
	uint32_t len;           /* payload bytes in this frame */
	uint32_t total;         /* payload bytes of the whole message */
};

#define IPC_FRAME_PAYLOAD_MAX (IPC_FRAME_MAX - sizeof(struct ipc_frame_hdr))

_Static_assert(sizeof(struct ipc_frame_hdr) == 24, "wire header is 24 bytes");

/* Defaults for ipc_limits fields left at 0, and hard ceilings. */
#define IPC_DEFAULT_MAX_MESSAGE (4u * 1024u * 1024u)
#define IPC_DEFAULT_MAX_INFLIGHT 256u
#define IPC_DEFAULT_MAX_CONNS_PER_UID 16u
#define IPC_DEFAULT_HANDSHAKE_USEC (2ull * 1000000ull)
#define IPC_DEFAULT_CALL_TIMEOUT_USEC (30ull * 1000000ull)
#define IPC_MAX_INFLIGHT_CEILING 65535u     /* request ids carry a 16-bit slot */
#define IPC_MAX_MESSAGE_CEILING (64u * 1024u * 1024u)

void ipc_limits_fill(ipc_limits *dst, const ipc_limits *src);

/* --- Decoding received frames (ipc-frame.c) --- */

/* A whole message, once all its frames arrived. DATA points into the last
 * frame or into the reassembly buffer; valid until the next ipc_rx_feed. */
struct ipc_msg {
	uint8_t kind;
	uint32_t method;
	uint64_t id;
	const uint8_t *data;
	size_t len;
	bool fragmented;
};

struct ipc_rx {
	uint32_t max_message;
	bool active;                 /* a fragmented message is in progress */
	struct ipc_frame_hdr first;
	uint8_t *buf;
	uint32_t have;
	uint32_t cap;                /* grows as fragments arrive, up to first.total */
};

void ipc_rx_init(struct ipc_rx *rx, uint32_t max_message);
void ipc_rx_reset(struct ipc_rx *rx);
/* Feed one received datagram. Returns 1 with *OUT when a message is
 * complete, 0 when more fragments are needed, or IPC_E_INVALID /
 * IPC_E_LIMIT with a reason in WHY. */
int ipc_rx_feed(struct ipc_rx *rx, const uint8_t *frame, size_t n,
		struct ipc_msg *out, char *why, size_t whysz);

/* Unpack DATA as a DESC message with an allocator that caps what the
 * decoder may allocate. The result is freed with
 * protobuf_c_message_free_unpacked(m, NULL). */
int ipc_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
	       ProtobufCMessage **ret);

/* --- Sending (ipc-frame.c) --- */

/* A packed message ready to go out as one or more frames. */
struct ipc_out {
	struct ipc_frame_hdr hdr;    /* kind, method, id, total set */
	const uint8_t *payload;      /* what is left to send */
	size_t off;                  /* bytes of payload already sent */
	int fd;                      /* to attach to the first frame, or -1 */
	bool started;                /* first frame sent */
};

/* Pack MSG (NULL = empty) into *BUF; uses SCRATCH (IPC_FRAME_MAX bytes) when
 * it fits, else mallocs *RET_ALLOC, which the caller frees. */
int ipc_pack(const ProtobufCMessage *msg, uint8_t *scratch, uint8_t **ret_alloc,
	     const uint8_t **ret_buf, size_t *ret_len);
/* Send frames of OUT until it is all sent (1), the socket is full (0), or a
 * failure (-errno). Non-blocking. */
int ipc_out_send(int fd, struct ipc_out *out);

/* --- Receiving (ipc-frame.c) --- */

struct ipc_rcvd {
	ssize_t n;                   /* bytes of the datagram; 0 = end of stream */
	bool have_creds;
	struct ucred creds;          /* SCM_CREDENTIALS of the sender */
	int pidfd;                   /* SCM_PIDFD, or -1 */
	int fds[4];                  /* SCM_RIGHTS */
	unsigned n_fds;
	bool truncated;              /* MSG_TRUNC or MSG_CTRUNC */
};

/* Receive one datagram into BUF (IPC_FRAME_MAX bytes), non-blocking.
 * Returns 0, or -EAGAIN, or -errno. Descriptors that came with it are in
 * R and belong to the caller (ipc_rcvd_close). */
int ipc_recv(int fd, uint8_t *buf, struct ipc_rcvd *r);
/* The same, waiting as long as the socket's SO_RCVTIMEO allows. */
int ipc_recv_wait(int fd, uint8_t *buf, struct ipc_rcvd *r);
void ipc_rcvd_close(struct ipc_rcvd *r);
/* Take the first SCM_RIGHTS descriptor, or -1. */
int ipc_rcvd_take_fd(struct ipc_rcvd *r);

/* Send a one-frame message directly (handshake and refusal frames). */
int ipc_send_small(int fd, uint8_t kind, uint64_t id, const ProtobufCMessage *msg);
/* Turn SO_PASSCRED and SO_PASSPIDFD on or off; *RET_PIDFD_OK tells whether
 * the kernel knows SO_PASSPIDFD. */
int ipc_sock_passcred(int fd, bool on, bool *ret_pidfd_ok);

/* --- Peers (ipc-peer.c) --- */

/*
 * Validate process PID as a peer: read its executable through /proc, make
 * sure PIDFD still refers to a live process with that pid (so the pid was
 * not reused under us), and match it against the trust table. PIDFD < 0
 * means "open one now" (the narrower guarantee of kernels without
 * SO_PEERPIDFD: the pid could have been reused between the kernel's
 * answer and our pidfd_open). Fills *PEER on success. Returns 0,
 * IPC_E_NOT_PERMITTED with WHY, or -EACCES when we may not inspect the peer
 * (see ipc_peer_accept_uninspectable).
 */
int ipc_peer_validate(const ipc_trust *t, pid_t pid, int pidfd, uid_t uid, gid_t gid,
		      ipc_peer *peer, char *why, size_t whysz);
/* After ipc_peer_validate returned -EACCES: a root peer we are not allowed
 * to inspect is trusted as root, with the role it claims; a non-root one
 * only with a role in CLAIMABLE (see ipc_service.claimable_roles). */
int ipc_peer_accept_uninspectable(ipc_peer *peer, const char *claimed_role,
				  uint32_t claimable, char *why, size_t whysz);
/* Is PATH a socket owned by root, in directories only root may write? Then
 * whoever listens on it was handed the socket by root. */
bool ipc_socket_root_held(const char *path);
#define IPC_ALL_ROLES ((uint32_t)(IPC_ROLE_BIT(IPC_ROLE_MAX) - 1u) & ~IPC_ROLE_BIT(IPC_ROLE_NONE))
/* A non-blocking SOCK_SEQPACKET socket connected to PATH, with credentials
 * asked for (ipc_sock_passcred); -errno, or -ENAMETOOLONG for a path too
 * long for a socket address. */
int ipc_socket_connect(const char *path, bool *ret_pidfd_ok);
/* Kernel credentials of the peer of a connected socket, and a pidfd for it
 * (SO_PEERPIDFD, else pidfd_open). */
int ipc_peer_from_socket(int fd, struct ucred *ret_cred, int *ret_pidfd);
/* Does ROLE pass MASK (0 = any role but NONE)? */
bool ipc_role_allowed(ipc_role role, uint32_t mask);

uint64_t ipc_next_conn_id(void);

/* Map an error code received in an Error frame to the local taxonomy. */
int ipc_error_from_wire(uint32_t code);
uint32_t ipc_error_to_wire(int err);

int ipc_random(void *buf, size_t n);

/* --- Connections (ipc-conn.c), shared with the server and endpoints --- */

#define IPC_WHY_MAX 256

enum ipc_conn_state {
	IPC_CONN_WAIT_CHALLENGE,     /* client: connected, the server speaks first */
	IPC_CONN_WAIT_HELLO,         /* server: challenge sent */
	IPC_CONN_WAIT_REPLY,         /* client: hello sent */
	IPC_CONN_READY,
	IPC_CONN_CLOSED,
};

/* A call this side made, waiting for its reply. Slots live in one array
 * per connection; the request id carries the slot in its low 16 bits. */
struct ipc_pending {
	uint64_t id;                 /* 0: free */
	ipc_reply_fn cb;
	void *userdata;
	uint32_t method;
	uint64_t deadline;
	uint32_t prev, next;         /* deadline order, slot + 1, 0 = none */
	uint32_t next_free;          /* slot + 1 */
};

struct ipc_txq;

struct ipc_conn {
	unsigned n_ref;
	enum ipc_conn_state state;
	bool server_side;
	bool endpoint;               /* identity comes from the hello (server) or
					was checked on the received fd (client) */
	bool uninspectable;          /* server: a root client whose exe we may not read */
	bool want_out;
	bool timer_armed;
	int fd;
	uint64_t id;
	sd_event *ev;
	sd_event_source *io, *timer, *defer;
	uint64_t timer_at;
	uint64_t handshake_deadline;
	ipc_limits limits;
	ipc_peer peer;
	ipc_peer expected;           /* server end of an endpoint: who must say hello */
	bool privileged;
	uint8_t nonce[16];
	const ipc_trust *trust;
	const ipc_service *local;                  /* what this side serves */
	const ProtobufCServiceDescriptor *remote;  /* what this side may call */
	const ProtobufCServiceDescriptor *const *callbacks;
	uint32_t accept_roles;       /* client: the server's roles we accept */
	bool root_held;              /* client: see ipc_socket_root_held */
	struct ipc_rx rx;
	int rx_fd;                   /* descriptor of a message being reassembled */

	struct ipc_pending *pend;
	uint32_t n_slots, free_head, dl_head, dl_tail, n_pending;
	uint64_t next_seq;

	uint32_t n_incoming;
	struct ipc_call *call_cache;
	unsigned n_call_cache;

	struct ipc_txq *txq_head, *txq_tail;
	size_t txq_bytes;

	int close_err;               /* deferred close */
	char close_reason[256];

	void (*on_ready)(ipc_conn *c, int err, void *userdata);
	void (*on_connect)(ipc_conn *c, void *userdata);
	ipc_close_fn on_close;
	void *cb_userdata;
	void *userdata;

	ipc_server *server;
	ipc_conn *srv_prev, *srv_next;
	bool uid_counted;
	uid_t counted_uid;
};

int ipc_conn_new(sd_event *ev, int fd, bool server_side, const ipc_limits *limits,
		 const ipc_trust *trust, ipc_conn **ret);
/* Server side, just accepted: validate the client, send the challenge. */
void ipc_conn_start_server(ipc_conn *c);
/* Server side of an endpoint: send the challenge at once. */
int ipc_conn_start_endpoint(ipc_conn *c, const ipc_peer *expected);
void ipc_conn_close_reason(ipc_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Tell the peer the category of ERR in an ERROR frame, then close. */
void ipc_conn_refuse(ipc_conn *c, int err, const char *why);
/* Send what was queued, now that the connection is ready or writable. */
void ipc_conn_flush(ipc_conn *c);
bool ipc_conn_peer_privileged(const ipc_conn *c);
void ipc_conn_client_setup(ipc_conn *c, const ProtobufCServiceDescriptor *remote,
			   const ipc_conn_opts *opts,
			   void (*on_ready)(ipc_conn *c, int err, void *userdata));

/* ipc-handshake.c: the handshake frames, dispatched by ipc-conn.c. */
int ipc_rx_challenge(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why);
int ipc_rx_hello(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why);
int ipc_rx_hello_reply(ipc_conn *c, const struct ipc_msg *m, struct ipc_rcvd *r, char *why);

/* ipc-server.c: the server forgets a closed connection (drops its ref). */
void ipc_server_conn_gone(ipc_server *s, ipc_conn *c);

/* ipc-client.c: the socket of a blocking client, for tests that write
 * malformed frames on an established connection. */
int ipc_client_fd(const ipc_client *cl);
