/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A live connection fed a peer's datagrams over a real socket: the
 * handshake on both sides, reassembly, request-id matching, dispatch to
 * handlers, error frames and closing. fuzz-ipc-frame covers the decoders
 * alone; this covers the state machines behind them. The harness is its
 * own peer and trusts its own executable, so validation passes and the
 * frames reach the code after it.
 *
 * Input: one mode byte, then datagrams, each a 16-bit little-endian length
 * and that many bytes (as in fuzz-ipc-frame).
 *   mode % 3 == 0: to a server, from the first frame on (hello, refusals);
 *   mode % 3 == 1: to a server, after the harness completed the handshake
 *                  (a hello echoing the server's nonce);
 *   mode % 3 == 2: to a client that has calls queued, as its server (the
 *                  challenge, hello reply, replies, calls, errors).
 * Each connection must end once the harness closes its end.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipc-internal.h"
#include "ipc.pb-c.h"
#include "ipc_test.pb-c.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { M_ECHO, M_PRIVILEGED, M_NOTIFY };

static struct fuzz_env {
	sd_event *ev;
	ipc_trust *trust;
	ipc_server *server;
	int raw_listen;              /* the harness as a server */
	char dir[64];
	char server_path[96];
	char client_path[96];
	unsigned closed;
	bool skip;
} env;

static void echo_handler(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	const Santa__Ipctest__Blob *in = (const Santa__Ipctest__Blob *)req;
	Santa__Ipctest__Blob out = SANTA__IPCTEST__BLOB__INIT;

	out.data = in->data;
	out.seq = in->seq;
	(void)ipc_call_reply(call, &out.base);
}

static void fail_handler(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	int fd = ipc_call_take_fd(call);

	if (fd >= 0)
		close(fd);
	(void)ipc_call_fail(call, IPC_E_PEER, "failed on purpose");
}

static const ipc_method methods[3] = {
	[M_ECHO] = { .handler = echo_handler, .flags = IPC_METHOD_ACCEPT_FD },
	[M_PRIVILEGED] = { .handler = echo_handler, .flags = IPC_METHOD_PRIVILEGED },
	[M_NOTIFY] = { .handler = fail_handler, .flags = IPC_METHOD_ACCEPT_FD },
};

static const ipc_service service = {
	.desc = &santa__ipctest__echo__descriptor,
	.methods = methods,
	.accept_roles = IPC_ROLE_BIT(IPC_ROLE_TEST),
};

static const ProtobufCServiceDescriptor *const callbacks[] = {
	&santa__ipctest__echo__descriptor, NULL,
};

static void on_close(ipc_conn *c, int err, const char *reason, void *userdata)
{
	env.closed++;
	if (getenv("FUZZ_IPC_CONN_VERBOSE"))
		fprintf(stderr, "fuzz-ipc-conn: %s side closed: %s (%s)\n",
			c->server_side ? "server" : "client", reason, ipc_strerror(err));
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void env_init(void)
{
	ipc_server_opts opts = { .on_close = on_close, .callbacks = callbacks };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char exe[256], why[256];
	ssize_t n;
	int fd;

	log_set_level(SANTA_LOG_ERR - 1);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		abort();
	exe[n] = '\0';
	/* Validation trusts only root's executables in root's directories
	 * (script/test's tree, not a package build's). */
	if (geteuid() != 0 || ipc_path_is_root_held(exe, why, sizeof(why)) < 0) {
		fprintf(stderr, "fuzz-ipc-conn: skipped: peers must be root and run from "
			"directories only root may write (%s)\n", geteuid() ? "not root" : why);
		env.skip = true;
		return;
	}
	snprintf(env.dir, sizeof(env.dir), "/tmp/fuzz-ipc-conn.XXXXXX");
	if (!mkdtemp(env.dir))
		abort();
	snprintf(env.server_path, sizeof(env.server_path), "%s/server.sock", env.dir);
	snprintf(env.client_path, sizeof(env.client_path), "%s/client.sock", env.dir);
	opts.limits.max_message = 256 * 1024;
	opts.limits.max_inflight = 16;
	if (sd_event_new(&env.ev) < 0 || ipc_trust_new(&env.trust) < 0 ||
	    ipc_trust_add_file(env.trust, exe, IPC_ROLE_TEST) < 0)
		abort();
	fd = ipc_listen_socket(env.server_path, 0600, (uid_t)-1, (gid_t)-1);
	if (fd < 0 || ipc_server_new(env.ev, fd, env.trust, &service, &opts, &env.server) < 0)
		abort();

	env.raw_listen = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", env.client_path);
	if (env.raw_listen < 0 || bind(env.raw_listen, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(env.raw_listen, 4) < 0)
		abort();
}

/* Run the loop without waiting, and throw away what the library sent. */
static void pump(int fd)
{
	uint8_t buf[IPC_FRAME_MAX];

	for (int i = 0; i < 8; i++)
		if (sd_event_run(env.ev, 0) <= 0)
			break;
	while (fd >= 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* Wait up to a second for one message from the library on FD. */
static int recv_msg(int fd, struct ipc_rx *rx, uint8_t *buf, struct ipc_msg *m)
{
	uint64_t end = now_usec() + 1000000;
	char why[IPC_WHY_MAX];

	while (now_usec() < end) {
		ssize_t n;

		(void)sd_event_run(env.ev, 1000);
		n = recv(fd, buf, IPC_FRAME_MAX, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return -1;
		if (n > 0 && ipc_rx_feed(rx, buf, (size_t)n, m, why, sizeof(why)) == 1)
			return 0;
	}
	return -1;
}

/* Answer the server's challenge as a well-behaved client would. */
static int handshake_as_client(int fd)
{
	static uint8_t buf[IPC_FRAME_MAX];
	Santa__Ipc__Hello hello = SANTA__IPC__HELLO__INIT;
	Santa__Ipc__Challenge *ch = NULL;
	struct ipc_rx rx;
	struct ipc_msg m;
	int r = -1;

	ipc_rx_init(&rx, 64 * 1024);
	if (recv_msg(fd, &rx, buf, &m) < 0 || m.kind != IPC_K_CHALLENGE ||
	    ipc_unpack(&santa__ipc__challenge__descriptor, m.data, m.len,
		       (ProtobufCMessage **)&ch) < 0)
		goto out;
	hello.protocol_version = IPC_PROTOCOL_VERSION;
	hello.service = (char *)santa__ipctest__echo__descriptor.name;
	hello.callback_service = (char *)santa__ipctest__echo__descriptor.name;
	hello.nonce = ch->nonce;
	hello.role = (char *)"test";
	if (ipc_send_small(fd, IPC_K_HELLO, 0, &hello.base) < 0)
		goto out;
	if (recv_msg(fd, &rx, buf, &m) < 0 || m.kind != IPC_K_HELLO_REPLY)
		goto out;
	r = 0;
out:
	if (ch)
		protobuf_c_message_free_unpacked(&ch->base, NULL);
	ipc_rx_reset(&rx);
	return r;
}

/* Send the input's datagrams on FD, letting the library run between them. */
static void send_datagrams(int fd, const uint8_t *data, size_t size)
{
	for (size_t off = 0; off + 2 <= size;) {
		size_t n = (size_t)data[off] | (size_t)data[off + 1] << 8;
		ssize_t w;

		off += 2;
		if (n > size - off)
			n = size - off;
		w = send(fd, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN) {
			pump(fd);
			w = send(fd, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
		if (w < 0 && errno != EAGAIN)
			return;         /* the library closed it */
		off += n;
		pump(fd);
	}
}

/* After the harness closed its end, the library must notice within a
 * second. */
static void wait_closed(unsigned before)
{
	uint64_t end = now_usec() + 1000000;

	while (env.closed == before) {
		if (now_usec() > end) {
			fprintf(stderr, "fuzz-ipc-conn: connection still open after the "
				"peer left\n");
			abort();
		}
		(void)sd_event_run(env.ev, 10000);
	}
}

static void against_server(const uint8_t *data, size_t size, bool handshake)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	unsigned before = env.closed;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", env.server_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	if (handshake && handshake_as_client(fd) < 0) {
		fprintf(stderr, "fuzz-ipc-conn: the server refused a proper handshake\n");
		abort();
	}
	send_datagrams(fd, data, size);
	close(fd);
	wait_closed(before);
}

static void reply_cb(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
		     void *userdata)
{
	unsigned *n = userdata;

	(*n)++;
	if (getenv("FUZZ_IPC_CONN_VERBOSE"))
		fprintf(stderr, "fuzz-ipc-conn: call completed: %s %s\n", ipc_strerror(err),
			errmsg ? errmsg : "");
}

static void against_client(const uint8_t *data, size_t size)
{
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	ipc_conn_opts opts = { .callback = &service, .on_close = on_close };
	unsigned before = env.closed, replies = 0, queued = 0;
	ipc_conn *c = NULL;
	struct pollfd p;
	int fd;

	opts.limits.max_message = 256 * 1024;
	opts.limits.max_inflight = 16;
	if (ipc_connect(env.ev, env.client_path, env.trust, &santa__ipctest__echo__descriptor,
			&opts, NULL, &c) < 0)
		abort();
	p = (struct pollfd){ .fd = env.raw_listen, .events = POLLIN };
	if (poll(&p, 1, 1000) != 1)
		abort();
	fd = accept4(env.raw_listen, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		abort();
	/* Queued until the handshake completes; ids are (n << 16) | slot, n from 1,
	 * slots from 0: 0x10000, 0x20001, 0x30002. */
	for (int i = 0; i < 3; i++) {
		req.seq = i;
		if (ipc_call_async(c, i == 2 ? M_NOTIFY : M_ECHO, &req.base, -1, 0, reply_cb,
				   &replies) == 0)
			queued++;
	}
	(void)ipc_send_oneway(c, M_NOTIFY, &req.base, -1);
	pump(-1);
	send_datagrams(fd, data, size);
	close(fd);
	wait_closed(before);
	if (replies != queued) {
		fprintf(stderr, "fuzz-ipc-conn: %u of %u calls completed\n", replies, queued);
		abort();
	}
	ipc_conn_unref(c);
	pump(-1);
}

static void list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[300], target[256];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0)
			fprintf(stderr, "  fd %s -> %.*s\n", de->d_name, (int)n, target);
	}
	if (d)
		closedir(d);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		abort();
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned runs;
	int before, now;

	if (!env.ev && !env.skip)
		env_init();
	if (env.skip || size < 1)
		return 0;
	before = count_fds();
	switch (data[0] % 3) {
	case 0:
		against_server(data + 1, size - 1, false);
		break;
	case 1:
		against_server(data + 1, size - 1, true);
		break;
	default:
		against_client(data + 1, size - 1);
		break;
	}
	/* Whatever the peer sent, every descriptor of the connection is
	 * closed with it. The first input may leave the loop's own (its
	 * timer descriptor) for good. */
	now = count_fds();
	if (runs++ > 0 && now > before) {
		fprintf(stderr, "fuzz-ipc-conn: %d descriptors left open (mode %d):\n",
			now - before, data[0] % 3);
		list_fds();
		abort();
	}
	return 0;
}
