/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The BundleService of proto/bundle.proto, served to santagui and santad.
 *
 * Requests are worked one at a time on a worker thread (the bundle core
 * of bundle.h does blocking file I/O), a few more wait in a queue, and the
 * main loop relays the worker's progress to the caller's notifier endpoint
 * (at most every 100 ms, and once at the end) and sends the reply.
 *
 * The service runs as root so that it can read every file of a bundle,
 * but answers for a non-root caller only about a file that caller could
 * open itself: the blocked file is opened with the caller's uid and
 * primary gid as the filesystem identity (setfsuid/setfsgid, which also
 * drop root's file capabilities for that open). Otherwise any local user
 * with a GUI could have root list and hash executables it cannot read.
 * The caller's supplementary groups are not taken into account, so a
 * file readable only through one of them is refused.
 *
 * The service exits when it has been idle (no connection, no work) for
 * opts.idle_usec, or soon after a Spindown once its work is done; the
 * launcher starts it again on the next connection.
 */
#pragma once

#include <stdint.h>

#include <systemd/sd-event.h>

#include "ipc.h"

/* How long one bundle may take, at most, whatever the caller asks. */
#define BSVC_LIMIT_MS 600000u
#define BSVC_QUEUE_MAX 8u

typedef struct bsvc bsvc;

typedef struct bsvc_opts {
	uint32_t limit_ms;            /* 0: BSVC_LIMIT_MS */
	uint64_t idle_usec;           /* 0: never exit when idle */
	const char *dpkg_root;        /* NULL: the system's */
	const char *app_root;         /* NULL: /opt */
} bsvc_opts;

/* Serve on LISTEN_FD (taken) on EV. TRUST and OPTS' strings must outlive
 * the service. sd_event_exit(EV, 0) is called when it is time to stop. */
int bsvc_new(sd_event *ev, int listen_fd, const ipc_trust *trust, const bsvc_opts *opts,
	     bsvc **ret);
/* Cancels work in progress and waits for the worker. Accepts NULL. */
bsvc *bsvc_free(bsvc *s);
