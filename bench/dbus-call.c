/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbus-call: the round trip of a D-Bus method call on a private bus (sd-bus
 * client -> dbus-daemon -> sd-bus server -> back), a 64-byte array echoed,
 * against a raw SOCK_SEQPACKET socketpair ping-pong of the same 64 bytes
 * between two processes: the usual way Linux daemons talk, against the
 * floor any IPC pays. For bench/dbus.sh, which starts the bus.
 *
 *   dbus-call BUS_ADDRESS [--cpus=any] [--rounds N] [--calls N]
 *
 * Rounds alternate raw and D-Bus (the order rotating); each figure is the
 * mean of CALLS round trips; printed are the medians over rounds and the
 * median of per-round ratios. By default every process (both ends and the
 * bus daemon, which bench/dbus.sh pins too) runs on CPU 0, as bench-ipc's
 * default does, the steadiest figure on a small VM; --cpus=any lets the
 * scheduler place them.
 *
 * A measuring tool built by bench/dbus.sh, not part of Santa.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define PAYLOAD 64
#define BENCH_NAME "org.santa.Bench"
#define BENCH_PATH "/org/santa/Bench"
#define BENCH_IFACE "org.santa.Bench"

static bool pin = true;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void pin_here(void)
{
	cpu_set_t set;

	if (!pin)
		return;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		perror("dbus-call: pinning to CPU 0");
}

static int die(const char *what, int r)
{
	fprintf(stderr, "dbus-call: %s: %s\n", what, strerror(r < 0 ? -r : r));
	exit(1);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static sd_bus *bus_connect(const char *address)
{
	sd_bus *bus = NULL;
	int r;

	if ((r = sd_bus_new(&bus)) < 0 || (r = sd_bus_set_address(bus, address)) < 0 ||
	    (r = sd_bus_set_bus_client(bus, 1)) < 0 || (r = sd_bus_start(bus)) < 0)
		die("connecting to the bus", r);
	return bus;
}

/* --- the D-Bus server --- */

static int on_echo(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const void *data;
	size_t size;
	sd_bus_message *reply = NULL;
	int r;

	(void)userdata;
	(void)error;
	r = sd_bus_message_read_array(m, 'y', &data, &size);
	if (r < 0)
		return r;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append_array(reply, 'y', data, size);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 1;
}

static const sd_bus_vtable bench_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("Echo", "ay", "ay", on_echo, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

static void serve_dbus(const char *address, int ready_fd)
{
	sd_bus *bus = bus_connect(address);
	int r;

	pin_here();
	if ((r = sd_bus_add_object_vtable(bus, NULL, BENCH_PATH, BENCH_IFACE, bench_vtable,
					  NULL)) < 0 ||
	    (r = sd_bus_request_name(bus, BENCH_NAME, 0)) < 0)
		die("serving on the bus", r);
	(void)!write(ready_fd, "r", 1);
	close(ready_fd);
	for (;;) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			die("processing the bus", r);
		if (r == 0 && (r = sd_bus_wait(bus, UINT64_MAX)) < 0)
			die("waiting on the bus", r);
	}
}

static double dbus_round(sd_bus *bus, int calls)
{
	static const unsigned char payload[PAYLOAD] = { 1, 2, 3 };
	double t0 = now_us();

	for (int i = 0; i < calls; i++) {
		sd_bus_message *m = NULL, *reply = NULL;
		sd_bus_error err = SD_BUS_ERROR_NULL;
		const void *data;
		size_t size;
		int r;

		r = sd_bus_message_new_method_call(bus, &m, BENCH_NAME, BENCH_PATH, BENCH_IFACE,
						   "Echo");
		if (r >= 0)
			r = sd_bus_message_append_array(m, 'y', payload, sizeof(payload));
		if (r >= 0)
			r = sd_bus_call(bus, m, 0, &err, &reply);
		if (r >= 0)
			r = sd_bus_message_read_array(reply, 'y', &data, &size);
		if (r >= 0 && size != PAYLOAD)
			r = -EBADMSG;
		if (r < 0)
			die(err.message ? err.message : "calling Echo", r);
		sd_bus_error_free(&err);
		sd_bus_message_unref(m);
		sd_bus_message_unref(reply);
	}
	return (now_us() - t0) / calls;
}

/* A call the bus daemon answers itself (Peer.Ping), for scale. */
static double bus_ping_round(sd_bus *bus, int calls)
{
	double t0 = now_us();

	for (int i = 0; i < calls; i++) {
		sd_bus_error err = SD_BUS_ERROR_NULL;
		int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
					   "org.freedesktop.DBus.Peer", "Ping", &err, NULL, "");

		if (r < 0)
			die("pinging the bus", r);
		sd_bus_error_free(&err);
	}
	return (now_us() - t0) / calls;
}

/* --- the raw ping-pong --- */

static void serve_raw(int fd)
{
	unsigned char buf[PAYLOAD];
	ssize_t n;

	pin_here();
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (send(fd, buf, (size_t)n, 0) != n)
			break;
	_exit(0);
}

static double raw_round(int fd, int calls)
{
	unsigned char buf[PAYLOAD] = { 1, 2, 3 };
	double t0 = now_us();

	for (int i = 0; i < calls; i++)
		if (send(fd, buf, sizeof(buf), 0) != PAYLOAD || recv(fd, buf, sizeof(buf), 0) != PAYLOAD)
			die("raw ping-pong", errno);
	return (now_us() - t0) / calls;
}

int main(int argc, char **argv)
{
	int rounds = 9, calls = 2000, sv[2], ready[2];
	double *raw, *dbus, *ping, *ratio;
	pid_t raw_pid, dbus_pid;
	const char *address;
	sd_bus *bus;
	char c;

	if (argc < 2) {
		fprintf(stderr, "usage: dbus-call BUS_ADDRESS [--cpus=any] [--rounds N] "
			"[--calls N]\n");
		return 2;
	}
	address = argv[1];
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--cpus=any") == 0)
			pin = false;
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
			calls = atoi(argv[++i]);
		else
			die(argv[i], EINVAL);
	}
	if (rounds < 1 || calls < 1)
		die("rounds and calls", EINVAL);
	raw = calloc((size_t)rounds, sizeof(double));
	dbus = calloc((size_t)rounds, sizeof(double));
	ping = calloc((size_t)rounds, sizeof(double));
	ratio = calloc((size_t)rounds, sizeof(double));
	if (!raw || !dbus || !ping || !ratio)
		die("allocating", ENOMEM);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || pipe(ready) < 0)
		die("socketpair", errno);
	if ((raw_pid = fork()) < 0)
		die("fork", errno);
	if (raw_pid == 0) {
		close(sv[0]);
		serve_raw(sv[1]);
	}
	close(sv[1]);
	if ((dbus_pid = fork()) < 0)
		die("fork", errno);
	if (dbus_pid == 0) {
		close(ready[0]);
		serve_dbus(address, ready[1]);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		die("the D-Bus server did not start", EIO);
	close(ready[0]);
	pin_here();
	bus = bus_connect(address);

	raw_round(sv[0], calls / 10 + 1);     /* warm up */
	dbus_round(bus, calls / 10 + 1);
	for (int r = 0; r < rounds; r++) {
		if (r % 2 == 0) {
			raw[r] = raw_round(sv[0], calls);
			dbus[r] = dbus_round(bus, calls);
		} else {
			dbus[r] = dbus_round(bus, calls);
			raw[r] = raw_round(sv[0], calls);
		}
		ping[r] = bus_ping_round(bus, calls);
		ratio[r] = dbus[r] / raw[r];
	}
	printf("dbus_call_us: %.1f\n", median(dbus, rounds));
	printf("dbus_bus_ping_us: %.1f\n", median(ping, rounds));
	printf("dbus_bench_raw_pingpong_us: %.1f\n", median(raw, rounds));
	printf("dbus_call_vs_raw_ratio: %.2f\n", median(ratio, rounds));

	sd_bus_flush_close_unref(bus);
	close(sv[0]);
	kill(dbus_pid, SIGTERM);
	waitpid(dbus_pid, NULL, 0);
	waitpid(raw_pid, NULL, 0);
	return 0;
}
