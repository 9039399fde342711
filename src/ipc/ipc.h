/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The IPC layer every Santa process uses to talk to another.
 *
 * Connections are SOCK_SEQPACKET Unix sockets carrying protobuf-c messages
 * in small framed datagrams. Each connection has four properties:
 *
 *  1. Multiplexing: a server serves many clients; a connection carries many
 *     calls at once, each reply matched to its call by id, plus one-way
 *     messages, in both directions.
 *  2. Peer validation, on both ends, before any handler runs: the kernel
 *     says who the peer is (SO_PEERCRED and SO_PEERPIDFD for the client;
 *     SCM_CREDENTIALS and SCM_PIDFD on the server's first frame, so that a
 *     socket-activated service is seen, not its activator; SCM_CREDENTIALS
 *     on the hello at an endpoint); the peer must run one of the
 *     executables in the trust table and have a role the service accepts.
 *     Root peers (and ipc_service.privileged_roles) get the privileged
 *     interface, others the unprivileged one; a call outside it is refused
 *     with IPC_E_NOT_PERMITTED and never run, and the connection stays.
 *  3. Forced establishment: the server speaks first (a challenge, sent only
 *     after it validated the client), the client answers with a hello that
 *     echoes it, the server replies; all within handshake_usec. Calls made
 *     before that are queued and fail with the handshake's error, and a
 *     failure is reported to the caller at once.
 *
 * Wire: one datagram per frame, a 24-byte header (kind, flags, method
 * index, request id, lengths) and a protobuf payload; messages above 32 KiB
 * travel as fragments. A descriptor rides on a message's first frame
 * (SCM_RIGHTS), only for methods with IPC_METHOD_ACCEPT_FD. A malformed,
 * truncated, oversized or unknown frame, a stray descriptor, a peer over
 * its limits, or a refused handshake closes that connection only, with a
 * reason (naming the peer, see ipc_peer_describe) given to on_close.
 *  4. Two-way communication: a process makes an anonymous endpoint
 *     (ipc_endpoint_new), passes one end over a validated connection, and
 *     the receiver connects over it (ipc_endpoint_connect) with the same
 *     framing, validation and handshake.
 *
 * Errors: functions return 0 or a positive count on success and a negative
 * ipc_error (or -errno for plain system failures) otherwise. The library
 * never logs above debug; it reports connection closures with a reason
 * through ipc_server_opts.on_close / ipc_conn_opts.on_close, and the
 * daemon logs them.
 *
 * Threads: the library is single-threaded per event loop. A server, and
 * each connection, does all its work on the sd_event it was created on,
 * from that loop's thread; its functions must be called from that thread
 * only. Different loops in different threads are independent. Callbacks
 * (handlers, reply and close callbacks) are never run from inside the API
 * call that causes them (ipc_call_async never completes synchronously, a
 * send failure closes the connection from the loop), except in
 * ipc_conn_close, ipc_server_free and the ipc_conn_unref that drops the
 * last reference, which run them before they return.
 *
 * Reconnecting: the library never reuses a dead connection. When a
 * connection closes (on_close), every later call on it fails with
 * IPC_E_DISCONNECTED; talking to a restarted server means a new
 * ipc_connect (or ipc_client_connect), with a new validation and
 * handshake.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>
#include <systemd/sd-event.h>

/* Error taxonomy callers can act on. Values are negative. */
typedef enum ipc_error {
	IPC_OK = 0,
	IPC_E_DISCONNECTED = -10001,   /* peer gone, or never reached */
	IPC_E_TIMEOUT = -10002,        /* no answer within the deadline */
	IPC_E_NOT_PERMITTED = -10003,  /* peer or call not allowed */
	IPC_E_INVALID = -10004,        /* malformed, oversized or unknown */
	IPC_E_PEER = -10005,           /* the peer's handler reported an error */
	IPC_E_LIMIT = -10006,          /* a protocol limit would be exceeded */
} ipc_error;

/* A static string naming an ipc_error or -errno value. */
const char *ipc_strerror(int err);

/* The executables of this project. A peer's role comes from the
 * executable the kernel says it runs, never from what it sends, with two
 * documented exceptions where we may not read the peer's executable (we are
 * not root and the peer runs under another uid): a root peer is believed
 * (root could impersonate any of ours anyway); a non-root peer is believed
 * only for ipc_service.claimable_roles, or, by a client, when the socket it
 * connected to is root's in directories only root may write (the listener
 * was set up by root: systemd or santad). */
typedef enum ipc_role {
	IPC_ROLE_NONE = 0,
	IPC_ROLE_SANTAD,
	IPC_ROLE_SANTACTL,
	IPC_ROLE_SYNCSERVICE,
	IPC_ROLE_METRICSERVICE,
	IPC_ROLE_BUNDLESERVICE,
	IPC_ROLE_GUI,
	IPC_ROLE_TEST,          /* test programs; only ever trusted by tests */
	IPC_ROLE_MAX,
} ipc_role;

#define IPC_ROLE_BIT(r) (1u << (r))

const char *ipc_role_name(ipc_role role);
/* The role whose executable is called NAME ("santad", ...), or NONE. */
ipc_role ipc_role_from_name(const char *name);

/*
 * The trust table: which executables are ours, and as what role.
 *
 * An entry is a file or a directory (ending in '/'). A peer is trusted when
 * the file the kernel says it executes (/proc/PID/exe, checked by device and
 * inode against the entry, through a pidfd so a reused pid cannot pass) is
 * owned by root and not writable by group or others. A file entry gives its
 * role explicitly; a directory entry gives each file in it the role named by
 * its basename (ipc_role_from_name).
 */
typedef struct ipc_trust ipc_trust;

int ipc_trust_new(ipc_trust **ret);
ipc_trust *ipc_trust_free(ipc_trust *t);
int ipc_trust_add_file(ipc_trust *t, const char *path, ipc_role role);
int ipc_trust_add_dir(ipc_trust *t, const char *dir);
/* The installed executables (SANTA_SBINDIR, SANTA_BINDIR, SANTA_LIBEXECDIR)
 * plus each TrustedExecutables entry (files get the role of their basename). */
int ipc_trust_add_defaults(ipc_trust *t, char *const *trusted_executables);
/* This process's role in T: IPC_ROLE_NONE when its executable is not
 * listed or not held by root (then peers using the same table refuse it). */
ipc_role ipc_trust_self_role(const ipc_trust *t);

/* 0 when PATH (after resolving links) and every directory above it are
 * owned by root and writable by nobody else (a sticky directory such as
 * /tmp counts as safe), so that no other user can replace it; else
 * IPC_E_NOT_PERMITTED with the offending component named in WHY. */
int ipc_path_is_root_held(const char *path, char *why, size_t whysz);

/* Who the peer of a connection is, as the kernel said. */
typedef struct ipc_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	ipc_role role;
	char exe[256];          /* the executable's path, for log lines */
	uint64_t conn_id;       /* stable id of the connection, for log lines */
	/* The executable's identity, as validated. Both 0 for a root peer we
	 * were not allowed to inspect (we are not root; see ipc_trust). */
	uint64_t exe_dev;
	uint64_t exe_ino;
} ipc_peer;

/* "conn 12 (uid 0, pid 345, /usr/sbin/santad)": for every log line that
 * names a peer. Returns BUF. */
const char *ipc_peer_describe(const ipc_peer *p, char *buf, size_t size);

/*
 * Limits are part of the protocol. Zero fields take the defaults.
 * max_message: a larger message is refused locally (IPC_E_LIMIT) or, from
 *   the peer, closes the connection. Hard ceiling 64 MiB.
 * max_inflight: calls this side made and awaits (one more is refused
 *   locally with IPC_E_LIMIT), and calls and one-way messages this side
 *   serves and has not finished (one more from the peer closes the
 *   connection). Ceiling 65535.
 * max_conns_per_uid: a server accepts, then closes (IPC_E_LIMIT to the
 *   peer, a reason to on_close) the connection over the limit. Root is not
 *   counted.
 * The outgoing queue is bounded at 2 * max_message + 256 KiB: a peer that
 *   stops reading its replies is closed.
 */
typedef struct ipc_limits {
	uint32_t max_message;        /* bytes, after reassembly; default 4 MiB */
	uint32_t max_inflight;       /* calls in flight per connection; 256 */
	uint32_t max_conns_per_uid;  /* server side, non-root uids; 16 */
	uint64_t handshake_usec;     /* hello deadline; 2 s */
	uint64_t call_timeout_usec;  /* default per-call deadline; 30 s */
} ipc_limits;

typedef struct ipc_conn ipc_conn;
typedef struct ipc_call ipc_call;

/*
 * A service is a protoc-c service descriptor (method i = index i in
 * descriptor->methods) plus a table of handlers, one per method, in the
 * same order. A handler gets the decoded request and must eventually
 * finish the call with ipc_call_reply() or ipc_call_fail(), at once or
 * later (it may keep the ipc_call; REQUEST stays valid until then, and the
 * call keeps its connection alive). A NULL handler means the method is not
 * served: calling it closes the connection. For one-way messages
 * ipc_call_is_oneway() is true and the reply functions do nothing but free
 * the call. The service and its tables must outlive every connection.
 */
typedef void (*ipc_handler_fn)(ipc_call *call, const ProtobufCMessage *request,
			       void *userdata);

enum {
	IPC_METHOD_PRIVILEGED = 1u << 0,  /* root peers (and privileged_roles) only */
	IPC_METHOD_ACCEPT_FD = 1u << 1,   /* a descriptor may come with it */
};

typedef struct ipc_method {
	ipc_handler_fn handler;
	unsigned flags;
	uint32_t roles;          /* IPC_ROLE_BIT()s allowed; 0 = any accepted */
} ipc_method;

typedef struct ipc_service {
	const ProtobufCServiceDescriptor *desc;
	const ipc_method *methods;    /* desc->n_methods entries */
	uint32_t accept_roles;        /* who may connect at all */
	void *userdata;
	/* Roles that get the privileged interface whatever their uid (the sync
	 * service runs as nobody yet adds rules on santad). Anyone who can run
	 * that executable under a uid and ptrace it gets those calls: check
	 * the uid too in such handlers (ipc_call_peer()->uid). */
	uint32_t privileged_roles;
	/*
	 * Roles believed on the peer's word from a non-root peer whose
	 * executable we may not inspect: we are not root, and it runs under
	 * another uid (a service running as nobody serving santactl run by a
	 * user). Only for roles that grant nothing the peer's uid could not
	 * get by running that executable itself. 0: such peers are refused.
	 */
	uint32_t claimable_roles;
} ipc_service;

/* Reason a connection closed, passed to on_close handlers. */
typedef void (*ipc_close_fn)(ipc_conn *c, int err, const char *reason,
			     void *userdata);

/* --- The ipc_call a handler receives --- */

const ipc_peer *ipc_call_peer(const ipc_call *call);
ipc_conn *ipc_call_conn(const ipc_call *call);
bool ipc_call_is_privileged(const ipc_call *call);
bool ipc_call_is_oneway(const ipc_call *call);
/* The descriptor that came with the call, or -1. The caller owns it. */
int ipc_call_take_fd(ipc_call *call);
/* Finish a call. Both free CALL; after the peer went away they only free.
 * REPLY must be of the method's output type (NULL: an empty one). ERR for
 * ipc_call_fail is an ipc_error; anything else reaches the caller as
 * IPC_E_PEER with the message. */
int ipc_call_reply(ipc_call *call, const ProtobufCMessage *reply);
int ipc_call_fail(ipc_call *call, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --- Servers --- */

typedef struct ipc_server ipc_server;

typedef struct ipc_server_opts {
	ipc_limits limits;
	/* Called after validation and handshake, and when a connection ends. */
	void (*on_connect)(ipc_conn *c, void *userdata);
	ipc_close_fn on_close;
	void *userdata;
	/* The callback services (Hello.callback_service) this server knows how
	 * to call, NULL-terminated; a client naming another one is refused. */
	const ProtobufCServiceDescriptor *const *callbacks;
} ipc_server_opts;

/* Serve SERVICE on LISTEN_FD, an already bound and listening
 * SOCK_SEQPACKET socket (from sd_listen_fds or ipc_listen_socket). On
 * success the server owns LISTEN_FD (ipc_server_free closes it and every
 * connection, running on_close); on failure it is left to the caller. */
int ipc_server_new(sd_event *ev, int listen_fd, const ipc_trust *trust,
		   const ipc_service *service, const ipc_server_opts *opts,
		   ipc_server **ret);
ipc_server *ipc_server_free(ipc_server *s);
size_t ipc_server_conn_count(const ipc_server *s);

/* Create, bind and listen on a SOCK_SEQPACKET socket at PATH (replacing a
 * stale socket; anything else there is an error) with MODE, owned by
 * UID/GID (-1 leaves them). Returns the descriptor. */
int ipc_listen_socket(const char *path, mode_t mode, uid_t uid, gid_t gid);

/* --- Connections (either side) --- */

typedef struct ipc_conn_opts {
	ipc_limits limits;
	/* Roles the server must have; 0 = any trusted role. */
	uint32_t accept_roles;
	/* What this side exports on the connection, if anything: the peer may
	 * call it and send one-way messages to it. */
	const ipc_service *callback;
	ipc_close_fn on_close;
	void *userdata;
} ipc_conn_opts;

/* Completion of an asynchronous call: ERR is 0 with REPLY (freed after the
 * callback returns; steal it with ipc_reply_steal) or an ipc_error with
 * ERRMSG (may be NULL). */
typedef void (*ipc_reply_fn)(ipc_conn *c, int err, const char *errmsg,
			     const ProtobufCMessage *reply, void *userdata);

/* Connect to PATH, validate the server and complete the handshake on EV.
 * ON_READY (may be NULL) runs once: err 0 when the connection can be used,
 * else the reason; calls made before that are queued and fail with it.
 * Fails at once with IPC_E_DISCONNECTED when nobody listens on PATH. *RET
 * is the caller's reference (ipc_conn_unref); ipc_conn_get_userdata starts
 * out NULL, OPTS->userdata goes to ON_READY and on_close. */
int ipc_connect(sd_event *ev, const char *path, const ipc_trust *trust,
		const ProtobufCServiceDescriptor *remote,
		const ipc_conn_opts *opts,
		void (*on_ready)(ipc_conn *c, int err, void *userdata),
		ipc_conn **ret);

/* Call METHOD (index in the remote service) with REQ (NULL: an empty
 * request). FD, if >= 0, is sent with it (not closed). TIMEOUT_USEC 0 =
 * the connection's default. CB runs exactly once, from the loop, unless
 * this returns an error. */
int ipc_call_async(ipc_conn *c, unsigned method, const ProtobufCMessage *req,
		   int fd, uint64_t timeout_usec, ipc_reply_fn cb,
		   void *userdata);
/* A one-way message: no reply, no error from the peer. */
int ipc_send_oneway(ipc_conn *c, unsigned method, const ProtobufCMessage *req,
		    int fd);

const ipc_peer *ipc_conn_peer(const ipc_conn *c);
bool ipc_conn_is_ready(const ipc_conn *c);
bool ipc_conn_is_privileged(const ipc_conn *c); /* as granted by the server */
void ipc_conn_set_userdata(ipc_conn *c, void *userdata);
void *ipc_conn_get_userdata(const ipc_conn *c);
/* Close now: pending calls fail with IPC_E_DISCONNECTED, on_close runs.
 * Dropping the last reference of an open connection closes it the same
 * way, without on_close and on_ready. */
void ipc_conn_close(ipc_conn *c);
ipc_conn *ipc_conn_ref(ipc_conn *c);
ipc_conn *ipc_conn_unref(ipc_conn *c);

/* Take ownership of the reply passed to an ipc_reply_fn. Free it with
 * protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *ipc_reply_steal(const ProtobufCMessage *reply);

/* --- Endpoints: two-way communication --- */

/* Make an anonymous endpoint served by SERVICE on EV. *RET_REMOTE_FD is the
 * end to hand to EXPECTED_PEER (a ready connection's peer) over a validated
 * connection, then close here; only the process with that pid, still
 * running the executable it was validated as, may complete the handshake,
 * checked from the kernel's SCM_CREDENTIALS and SCM_PIDFD on its hello,
 * within OPTS->limits.handshake_usec of this call. OPTS: limits,
 * on_connect, on_close, userdata, callbacks. */
int ipc_endpoint_new(sd_event *ev, const ipc_trust *trust,
		     const ipc_service *service, const ipc_peer *expected_peer,
		     const ipc_server_opts *opts, int *ret_remote_fd,
		     ipc_conn **ret);

/* Connect over FD, an endpoint received from FROM (the peer of the
 * connection it arrived on). Refused with IPC_E_NOT_PERMITTED unless the
 * endpoint was created by that same process (a socketpair's SO_PEERCRED
 * names its creator) running the executable it was validated as. Takes
 * FD, also on failure. Then the same handshake as ipc_connect. */
int ipc_endpoint_connect(sd_event *ev, int fd, const ipc_peer *from,
			 const ipc_trust *trust,
			 const ProtobufCServiceDescriptor *remote,
			 const ipc_conn_opts *opts,
			 void (*on_ready)(ipc_conn *c, int err, void *userdata),
			 ipc_conn **ret);

/* --- A simple blocking client, for santactl and tests --- */

typedef struct ipc_client ipc_client;

/* Connect and handshake within TIMEOUT_USEC (0 = 2 s). It exports nothing:
 * a server call or one-way message to it closes it. */
int ipc_client_connect(const char *path, const ipc_trust *trust,
		       const ProtobufCServiceDescriptor *remote,
		       uint32_t accept_roles, uint64_t timeout_usec,
		       ipc_client **ret);
/* The same, also saying who failed it: *RET_REFUSED (if non-NULL) is true
 * when the error is the server's refusal of this process during the
 * handshake (its error frame: our executable or role is not one it
 * accepts, or we are over its limits), false when the server could not be
 * reached or answered wrongly, or this side refused the server. The
 * server does not say why; its log does. */
int ipc_client_connect_ex(const char *path, const ipc_trust *trust,
			  const ProtobufCServiceDescriptor *remote,
			  uint32_t accept_roles, uint64_t timeout_usec,
			  ipc_client **ret, bool *ret_refused);
/* Call and wait (TIMEOUT_USEC 0 = 30 s). On an error from the peer,
 * *RET_ERRMSG (if non-NULL) gets a malloc'd message. *RET_REPLY is freed
 * with protobuf_c_message_free_unpacked(m, NULL). After a timeout the
 * client stays usable (a late reply is skipped); after
 * IPC_E_DISCONNECTED or IPC_E_INVALID it is dead: free it and connect
 * again. */
int ipc_client_call(ipc_client *cl, unsigned method,
		    const ProtobufCMessage *req, int fd, uint64_t timeout_usec,
		    ProtobufCMessage **ret_reply, char **ret_errmsg);
const ipc_peer *ipc_client_peer(const ipc_client *cl);
bool ipc_client_is_privileged(const ipc_client *cl);
ipc_client *ipc_client_free(ipc_client *cl);
