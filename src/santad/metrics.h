/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's metrics: counters the decision path bumps without ever waiting,
 * a snapshot of them and of santad's state as a MetricSet
 * (proto/metric.proto), and its export to santametricservice every
 * MetricExportInterval seconds.
 *
 * The export keeps one connection to the metric service open. When the
 * service goes away (it crashed, the launcher restarts it), santad connects
 * again through a new handshake, with a growing delay, and sends the
 * export it could not send as soon as the new connection is up. Sending is
 * one-way: santad never waits for the writer.
 *
 * Threads: metrics_exec() and metrics_set_gui_clients() may be called from
 * any thread; they are a few relaxed atomic additions. Everything else runs
 * on santad's main loop.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "ipc.h"
#include "santad.h"

/* --- The decision path (any thread, never blocks) --- */

/* One answered exec permission event: its decision and reason (the event
 * log's), whether it was answered from santad's decision cache, and the
 * time from reading the event to answering it. */
void metrics_exec(santad_decision decision, santad_reason reason, bool cached,
		  uint64_t usec);

/* --- Facts only their owner knows (any thread) --- */

/* GUI connections (santagui) currently registered. */
void metrics_set_gui_clients(uint64_t n);
/* A sync with the sync server finished, well or not. */
void metrics_sync_result(bool success);

/* --- The main loop --- */

/*
 * Start exporting: when MetricURL is set and MetricFormat and MetricURL
 * pass the metric service's own check, connect to SOCKET_PATH (the metric
 * service's socket, from the launcher) on EV and export every
 * MetricExportInterval seconds. Otherwise metrics_error() says why not,
 * and santactl metrics still works. Call once, after D is set up.
 */
int metrics_start(santad *d, sd_event *ev, const ipc_trust *trust,
		  const char *socket_path);
/* Stop exporting and close the connection. Safe to call when not
 * started. */
void metrics_stop(void);

/* A fresh snapshot in the original's rawjson layout (see
 * src/santametricservice/format.h), for the Santad.Metrics call. Free
 * *RET_TEXT with free(). */
int metrics_rawjson(char **ret_text);

/* Why metrics are not exported although MetricURL is set, for
 * StatusReply.metric_error; NULL when they are or MetricURL is unset. */
const char *metrics_error(void);

/* The export for StatusReply.services ("santametricservice"): "exporting",
 * "connecting", "not answering", "not configured", "misconfigured". */
const char *metrics_export_state(void);
