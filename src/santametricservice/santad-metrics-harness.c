/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test tool: santad's metric export (src/santad/metrics.c) over a
 * stubbed santad, for end-to-end tests of the export before and apart from
 * the real daemon. It counts an allowed exec every 100 ms, exports every
 * MetricExportInterval seconds to the metric service at SOCKET, and exits
 * after SECONDS. Run it as "santad" from a trusted directory, as root.
 *
 *   santad-metrics-harness --config FILE --socket PATH --seconds N
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "ipc.h"
#include "log.h"
#include "metrics.h"
#include "santad-stub.h"

static int count_exec(sd_event_source *src, uint64_t usec, void *userdata)
{
	metrics_exec(SANTAD_DECISION_ALLOW, SANTAD_REASON_BINARY, true, 10);
	atomic_fetch_add(&stub_counters.exec_events, 1);
	atomic_fetch_add(&stub_counters.exec_cache_hits, 1);
	sd_event_source_set_time(src, usec + 100000);
	sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
	return 0;
}

static int time_up(sd_event_source *src, uint64_t usec, void *userdata)
{
	return sd_event_exit(sd_event_source_get_event(src), 0);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ 0 },
	};
	const char *config = NULL, *socket = NULL;
	unsigned seconds = 10;
	ipc_trust *trust = NULL;
	sd_event *ev = NULL;
	char err[512];
	uint64_t now;
	sigset_t mask;
	int c, r;

	log_open("santad");
	while ((c = getopt_long(argc, argv, "c:s:t:", longopts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 's')
			socket = optarg;
		else if (c == 't')
			seconds = (unsigned)strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	if (!socket || santa_config_load(config, &stub_config, err, sizeof(err)) < 0) {
		fprintf(stderr, "usage: santad-metrics-harness --config FILE --socket PATH "
			"--seconds N\n");
		return 2;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sd_event_default(&ev) < 0 || ipc_trust_new(&trust) < 0 ||
	    ipc_trust_add_defaults(trust, stub_config.trusted_executables) < 0 ||
	    sd_event_add_signal(ev, NULL, SIGTERM, NULL, NULL) < 0)
		return 1;
	sd_event_now(ev, CLOCK_MONOTONIC, &now);
	if (sd_event_add_time(ev, NULL, CLOCK_MONOTONIC, now + seconds * 1000000ULL, 0,
			      time_up, NULL) < 0 ||
	    sd_event_add_time(ev, NULL, CLOCK_MONOTONIC, now, 0, count_exec, NULL) < 0)
		return 1;
	r = metrics_start(NULL, ev, trust, socket);
	if (r < 0)
		return 1;
	r = sd_event_loop(ev);
	metrics_stop();
	ipc_trust_free(trust);
	sd_event_unref(ev);
	santa_config_done(&stub_config);
	return r < 0 ? 1 : 0;
}
