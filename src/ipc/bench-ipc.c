/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Round trip of a small call through the IPC library against a raw
 * SOCK_SEQPACKET socketpair ping-pong of the same datagram size, each
 * between two processes.
 *
 * Both run under the same CPU policy (by default every process on one
 * CPU, the steadiest figure on a small VM; --cpus=split puts the callers on
 * one CPU and the servers on another; --cpus=any leaves placement to the
 * scheduler), in interleaved rounds whose order alternates; the figures
 * are medians over rounds, and the ratio is the median of the per-round
 * ratios, so that drift of the machine between rounds cancels out.
 *
 * Prints "name: value" lines (see bench/ipc.sh).
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc-internal.h"
#include "ipc.h"
#include "ipc_test.pb-c.h"

#define MAX_ROUNDS 64

struct bench_opts {
	int rounds;
	int iterations;
	size_t payload;
	enum { CPUS_ONE, CPUS_SPLIT, CPUS_ANY } cpus;
};

static int cpu_a = -1, cpu_b = -1;   /* the callers', the servers' */

static void pin_to(int cpu);

static const ProtobufCServiceDescriptor *echo_desc = &santa__ipctest__echo__descriptor;

static uint64_t now_nsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench-ipc: %s: %s\n", what, ipc_strerror(err));
	exit(1);
}

static ipc_trust *self_trust(void)
{
	char exe[4096];
	ipc_trust *t;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		die("reading /proc/self/exe", -errno);
	exe[n] = '\0';
	if (ipc_trust_new(&t) < 0 || ipc_trust_add_file(t, exe, IPC_ROLE_TEST) < 0)
		die("making the trust table", -ENOMEM);
	return t;
}

/* --- The two servers, each in a child process --- */

static void echo_handler(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	ipc_call_reply(call, req);
}

static pid_t spawn_ipc_server(const char *path)
{
	static const ipc_method methods[3] = { [0] = { .handler = echo_handler } };
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	pin_to(cpu_b);
	ipc_service svc = { .desc = echo_desc, .methods = methods };
	ipc_server *s;
	sd_event *ev;
	int fd, r;

	fd = ipc_listen_socket(path, 0600, (uid_t)-1, (gid_t)-1);
	if (fd < 0)
		die("listening", fd);
	r = sd_event_new(&ev);
	if (r >= 0)
		r = ipc_server_new(ev, fd, self_trust(), &svc, NULL, &s);
	if (r < 0)
		die("starting the server", r);
	sd_event_loop(ev);
	_exit(0);
}

static pid_t spawn_raw_echo(int fd, int other_end)
{
	pid_t pid = fork();
	char buf[IPC_FRAME_MAX];

	if (pid != 0)
		return pid;
	pin_to(cpu_b);
	close(other_end);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0 || send(fd, buf, (size_t)n, 0) != n)
			_exit(0);
	}
}

/* --- Measuring --- */

static double run_raw(int fd, size_t size, int iterations)
{
	char buf[IPC_FRAME_MAX];
	uint64_t start;

	memset(buf, 'x', size);
	start = now_nsec();
	for (int i = 0; i < iterations; i++)
		if (send(fd, buf, size, 0) != (ssize_t)size || recv(fd, buf, sizeof(buf), 0) <= 0)
			die("raw ping-pong", -errno);
	return (double)(now_nsec() - start) / 1000.0 / iterations;
}

static double run_blocking(ipc_client *cl, const ProtobufCMessage *req, int iterations)
{
	uint64_t start = now_nsec();

	for (int i = 0; i < iterations; i++) {
		ProtobufCMessage *reply;
		int r = ipc_client_call(cl, 0, req, -1, 0, &reply, NULL);

		if (r < 0)
			die("calling", r);
		protobuf_c_message_free_unpacked(reply, NULL);
	}
	return (double)(now_nsec() - start) / 1000.0 / iterations;
}

struct async_state {
	int done;
	int err;
};

static void async_reply(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
			void *userdata)
{
	struct async_state *st = userdata;

	st->done = 1;
	st->err = err;
}

static void async_ready(ipc_conn *c, int err, void *userdata)
{
	struct async_state *st = userdata;

	st->done = 1;
	st->err = err;
}

static double run_async(sd_event *ev, ipc_conn *c, const ProtobufCMessage *req, int iterations)
{
	struct async_state st;
	uint64_t start = now_nsec();

	for (int i = 0; i < iterations; i++) {
		st.done = 0;
		if (ipc_call_async(c, 0, req, -1, 0, async_reply, &st) < 0)
			die("calling", IPC_E_DISCONNECTED);
		while (!st.done)
			sd_event_run(ev, UINT64_MAX);
		if (st.err < 0)
			die("calling", st.err);
	}
	return (double)(now_nsec() - start) / 1000.0 / iterations;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){ .rounds = 9, .iterations = 20000, .payload = 32 };
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--rounds=", 9) == 0)
			o->rounds = atoi(argv[i] + 9);
		else if (strncmp(argv[i], "--iterations=", 13) == 0)
			o->iterations = atoi(argv[i] + 13);
		else if (strncmp(argv[i], "--payload=", 10) == 0)
			o->payload = (size_t)atoi(argv[i] + 10);
		else if (strcmp(argv[i], "--cpus=any") == 0)
			o->cpus = CPUS_ANY;
		else if (strcmp(argv[i], "--cpus=split") == 0)
			o->cpus = CPUS_SPLIT;
		else if (strcmp(argv[i], "--cpus=one") == 0)
			o->cpus = CPUS_ONE;
		else {
			fprintf(stderr, "usage: bench-ipc [--rounds=N] [--iterations=N] "
					"[--payload=BYTES] [--cpus=one|split|any]\n");
			exit(2);
		}
	}
	if (o->rounds < 1 || o->rounds > MAX_ROUNDS || o->iterations < 1 || o->payload > 16384) {
		fprintf(stderr, "bench-ipc: arguments out of range\n");
		exit(2);
	}
}

static void pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		die("pinning to a CPU", -errno);
}

/* The first two CPUs we may use: callers on A, servers on B (the same one
 * unless SPLIT). */
static void choose_cpus(int policy)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (policy == CPUS_ANY || sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (cpu_a < 0)
			cpu_a = cpu;
		else if (cpu_b < 0)
			cpu_b = cpu;
	}
	if (policy == CPUS_ONE || cpu_b < 0)
		cpu_b = cpu_a;
	if (policy == CPUS_SPLIT && cpu_b == cpu_a)
		die("--cpus=split needs two CPUs", -EINVAL);
}

struct rig {
	char dir[64], path[128];
	pid_t server, echo;
	int raw_fd;
	ipc_client *cl;
	sd_event *ev;
	ipc_conn *conn;
	ipc_trust *trust;
};

static void rig_start(struct rig *g)
{
	struct async_state st = { 0 };
	int sp[2], r;

	snprintf(g->dir, sizeof(g->dir), "/tmp/bench-ipc.XXXXXX");
	if (!mkdtemp(g->dir))
		die("making a directory", -errno);
	snprintf(g->path, sizeof(g->path), "%s/echo.sock", g->dir);
	g->server = spawn_ipc_server(g->path);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair", -errno);
	g->echo = spawn_raw_echo(sp[1], sp[0]);
	close(sp[1]);
	g->raw_fd = sp[0];
	g->trust = self_trust();

	/* The server may still be starting. */
	for (int i = 0; i < 200; i++) {
		r = ipc_client_connect(g->path, g->trust, echo_desc, 0, 0, &g->cl);
		if (r != IPC_E_DISCONNECTED)
			break;
		usleep(10000);
	}
	if (r < 0)
		die("connecting", r);
	if (sd_event_new(&g->ev) < 0)
		die("sd_event_new", -ENOMEM);
	r = ipc_connect(g->ev, g->path, g->trust, echo_desc, &(ipc_conn_opts){ .userdata = &st },
			async_ready, &g->conn);
	while (r == 0 && !st.done)
		sd_event_run(g->ev, UINT64_MAX);
	if (r < 0 || st.err < 0)
		die("connecting on the event loop", r < 0 ? r : st.err);
}

static void rig_stop(struct rig *g)
{
	ipc_conn_unref(g->conn);
	sd_event_unref(g->ev);
	ipc_client_free(g->cl);
	close(g->raw_fd);
	kill(g->server, SIGTERM);
	waitpid(g->server, NULL, 0);
	waitpid(g->echo, NULL, 0);
	unlink(g->path);
	rmdir(g->dir);
	ipc_trust_free(g->trust);
}

int main(int argc, char **argv)
{
	double raw[MAX_ROUNDS], ipc[MAX_ROUNDS], async[MAX_ROUNDS], ratio[MAX_ROUNDS];
	Santa__Ipctest__Blob req = SANTA__IPCTEST__BLOB__INIT;
	struct bench_opts o;
	struct rig g;
	uint8_t *data;
	size_t wire;

	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	choose_cpus(o.cpus);
	pin_to(cpu_a);
	data = calloc(1, o.payload + 1);
	if (!data)
		die("allocating", -ENOMEM);
	req.data = (ProtobufCBinaryData){ o.payload, data };
	/* The raw ping-pong moves datagrams of the size the call puts on the
	 * wire, header included. */
	wire = sizeof(struct ipc_frame_hdr) + protobuf_c_message_get_packed_size(&req.base);

	rig_start(&g);
	run_raw(g.raw_fd, wire, o.iterations / 10);
	run_blocking(g.cl, &req.base, o.iterations / 10);
	run_async(g.ev, g.conn, &req.base, o.iterations / 10);
	for (int i = 0; i < o.rounds; i++) {
		if (i % 2 == 0) {
			raw[i] = run_raw(g.raw_fd, wire, o.iterations);
			ipc[i] = run_blocking(g.cl, &req.base, o.iterations);
			async[i] = run_async(g.ev, g.conn, &req.base, o.iterations);
		} else {
			async[i] = run_async(g.ev, g.conn, &req.base, o.iterations);
			ipc[i] = run_blocking(g.cl, &req.base, o.iterations);
			raw[i] = run_raw(g.raw_fd, wire, o.iterations);
		}
		ratio[i] = ipc[i] / raw[i];
	}
	rig_stop(&g);

	printf("ipc_call_us: %.2f\n", median(ipc, o.rounds));
	printf("raw_pingpong_us: %.2f\n", median(raw, o.rounds));
	printf("ipc_call_vs_raw_ratio: %.2f\n", median(ratio, o.rounds));
	for (int i = 0; i < o.rounds; i++)
		ratio[i] = async[i] / raw[i];
	printf("ipc_async_call_us: %.2f\n", median(async, o.rounds));
	printf("ipc_async_call_vs_raw_ratio: %.2f\n", median(ratio, o.rounds));
	printf("ipc_bench_datagram_bytes: %zu\n", wire);
	printf("ipc_bench_cpus: %s\n", o.cpus == CPUS_ONE ? "one" : o.cpus == CPUS_SPLIT ? "split"
									   : "any");
	free(data);
	return 0;
}
