/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test tool: connects to a metric service as santad does and sends the
 * sample set COUNT times, INTERVAL ms apart. The value of
 * /santa/executions{ALLOW,BINARY} is 40 + the export's index, so a test
 * sees which export arrived. With --bad it first sends a set the service
 * must refuse (a value without its field values).
 *
 *   metric-send [--config FILE] [--count N] [--interval MS] [--bad] SOCKET
 *
 * Exits 0 once everything was handed to the connection, 1 when the
 * connection failed (the reason on stderr).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "ipc.h"
#include "metricset.h"

typedef struct sender {
	sd_event *ev;
	ipc_conn *conn;
	unsigned count, sent, interval_ms;
	bool bad, done;
	int status;
} sender;

static void finish(sender *s, int status)
{
	if (s->done)
		return;
	s->done = true;
	s->status = status;
	sd_event_exit(s->ev, status);
}

static int send_one(sender *s)
{
	Santa__MetricSet *set = metric_set_sample();
	int r;

	if (!set)
		return -1;
	for (size_t i = 0; i < set->n_metrics; i++)
		if (strcmp(set->metrics[i]->name, "/santa/executions") == 0)
			set->metrics[i]->values[0]->int64_value = 40 + s->sent;
	r = ipc_send_oneway(s->conn, 0, &set->base, -1);
	metric_set_free(set);
	return r;
}

static int send_bad(sender *s)
{
	Santa__MetricSet *set = metric_set_sample();
	int r;

	if (!set)
		return -1;
	/* The first value of a two-field counter loses its field values. */
	for (size_t i = 0; i < set->n_metrics; i++)
		if (strcmp(set->metrics[i]->name, "/santa/executions") == 0)
			set->metrics[i]->values[0]->n_field_values = 0;
	r = ipc_send_oneway(s->conn, 0, &set->base, -1);
	/* Restored so that the free sees the strings it must free. */
	for (size_t i = 0; i < set->n_metrics; i++)
		if (strcmp(set->metrics[i]->name, "/santa/executions") == 0)
			set->metrics[i]->values[0]->n_field_values = 2;
	metric_set_free(set);
	return r;
}

static int tick(sd_event_source *src, uint64_t usec, void *userdata)
{
	sender *s = userdata;
	int r;

	if (s->sent == s->count) {
		/* Give the last message time to leave before exiting. */
		finish(s, 0);
		return 0;
	}
	r = send_one(s);
	if (r < 0) {
		fprintf(stderr, "metric-send: sending export %u failed: %s\n", s->sent,
			ipc_strerror(r));
		finish(s, 1);
		return 0;
	}
	s->sent++;
	sd_event_source_set_time(src, usec + (s->sent == s->count ? 300 : s->interval_ms)
				 * 1000ULL);
	sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
	return 0;
}

static void ready(ipc_conn *c, int err, void *userdata)
{
	sender *s = userdata;
	uint64_t now;

	if (err < 0) {
		fprintf(stderr, "metric-send: connecting failed: %s\n", ipc_strerror(err));
		finish(s, 1);
		return;
	}
	if (s->bad && send_bad(s) < 0) {
		finish(s, 1);
		return;
	}
	sd_event_now(s->ev, CLOCK_MONOTONIC, &now);
	if (sd_event_add_time(s->ev, NULL, CLOCK_MONOTONIC, now, 1000, tick, s) < 0)
		finish(s, 1);
}

static void closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	sender *s = userdata;

	fprintf(stderr, "metric-send: connection closed: %s\n",
		reason ? reason : ipc_strerror(err));
	finish(s, 1);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "interval", required_argument, NULL, 'i' },
		{ "bad", no_argument, NULL, 'b' },
		{ 0 },
	};
	sender s = { .count = 1, .interval_ms = 100, .status = 1 };
	const char *config = NULL;
	ipc_trust *trust = NULL;
	santa_config cfg;
	char err[512];
	int c;

	while ((c = getopt_long(argc, argv, "c:n:i:b", longopts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'n')
			s.count = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'i')
			s.interval_ms = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'b')
			s.bad = true;
		else
			return 2;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: metric-send [--config FILE] [--count N] "
			"[--interval MS] [--bad] SOCKET\n");
		return 2;
	}
	if (santa_config_load(config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "metric-send: %s\n", err);
		return 1;
	}
	ipc_conn_opts opts = {
		.accept_roles = IPC_ROLE_BIT(IPC_ROLE_METRICSERVICE),
		.on_close = closed,
		.userdata = &s,
	};
	if (sd_event_new(&s.ev) < 0 || ipc_trust_new(&trust) < 0 ||
	    ipc_trust_add_defaults(trust, cfg.trusted_executables) < 0 ||
	    ipc_connect(s.ev, argv[optind], trust, &santa__metric_service__descriptor, &opts,
			ready, &s.conn) < 0) {
		fprintf(stderr, "metric-send: connecting to \"%s\" failed\n", argv[optind]);
		return 1;
	}
	sd_event_loop(s.ev);
	ipc_conn_unref(s.conn);
	ipc_trust_free(trust);
	sd_event_unref(s.ev);
	santa_config_done(&cfg);
	return s.status;
}
