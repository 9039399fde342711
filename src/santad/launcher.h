/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad as the launcher of the other services, when systemd does not
 * manage them (containers, CI, a first try by hand).
 *
 * It plays the part of systemd's .socket and .service units:
 *  - it creates each service's listening socket in RunDirectory, owned by
 *    root, with the mode that lets exactly the right users connect;
 *  - it starts santametricservice at once, santasyncservice on the first
 *    connection to its socket (the socket exists only when SyncBaseURL is
 *    set), and santabundleservice on the first connection to its socket;
 *  - each child gets a clean environment, no descriptor but its socket
 *    (as fd 3 with LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES, as systemd
 *    passes it), its user (ServiceUser, `nobody` by default; root for the
 *    bundle service), no new privileges, and SIGKILL when santad dies;
 *  - a service that dies is started again, after a delay that doubles
 *    with each quick death; launcher_free() stops them all.
 *
 * Under systemd (see launcher_mode_detect) it does none of that: the
 * units own the sockets and the processes, and the launcher only tells
 * santad where to connect. Either way santad connects by path, and the
 * services do not know which of the two started them.
 *
 * The launcher must be created and driven from santad's main thread: the
 * parent-death signal fires when the *thread* that forked exits. santad
 * must connect to the services asynchronously (ipc_connect on the same
 * sd_event), never with a blocking call, since an on-demand service is
 * started from that same loop.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "config.h"

typedef enum launcher_service {
	LAUNCHER_SYNC = 0,      /* santasyncservice */
	LAUNCHER_METRIC,        /* santametricservice */
	LAUNCHER_BUNDLE,        /* santabundleservice */
	LAUNCHER_SERVICE_MAX,
} launcher_service;

typedef enum launcher_mode {
	LAUNCHER_MODE_AUTO = 0, /* launcher_mode_detect() decides */
	LAUNCHER_MODE_SANTAD,   /* santad creates sockets and starts services */
	LAUNCHER_MODE_SYSTEMD,  /* systemd's units do; santad only connects */
} launcher_mode;

typedef struct launcher launcher;

typedef struct launcher_opts {
	launcher_mode mode;
	/* Executables are looked up in TrustedExecutables (a file named as
	 * the service, or a directory holding it), then here; NULL means the
	 * installed SANTA_LIBEXECDIR. */
	const char *libexec_dir;
	/* First restart delay after a quick death, doubling up to
	 * restart_max_usec; 0 = 250 ms and 30 s. */
	uint64_t restart_usec;
	uint64_t restart_max_usec;
	/* How long launcher_free() waits after SIGTERM before SIGKILL;
	 * 0 = 5 s. */
	uint64_t stop_timeout_usec;
} launcher_opts;

/*
 * Which launcher applies when OPTS asks for AUTO:
 *  1. $SANTA_SERVICE_LAUNCHER, "systemd" or "santad", if set (santad.service
 *     sets it to "systemd");
 *  2. otherwise systemd, if the machine runs systemd and santad itself
 *     runs as a systemd unit ($INVOCATION_ID);
 *  3. otherwise santad.
 * Returns LAUNCHER_MODE_SANTAD or LAUNCHER_MODE_SYSTEMD.
 */
launcher_mode launcher_mode_detect(void);

/*
 * Set up the services for CFG (RunDirectory, SyncBaseURL, ServiceUser,
 * TrustedExecutables; CFG must outlive the launcher). In santad mode this
 * creates the sockets and starts santametricservice before it returns.
 * OPTS may be NULL. Errors: -ENOENT for a missing ServiceUser or service
 * executable, -EPERM for an executable not owned by root or writable by
 * others, or what creating a socket failed with.
 */
int launcher_new(sd_event *ev, const santa_config *cfg,
		 const launcher_opts *opts, launcher **ret);

/* Stop every service (SIGTERM, then SIGKILL after the stop timeout; this
 * blocks for at most that long) and remove the sockets it created. Call it
 * after santad stopped answering fanotify: while it waits, santad's loop
 * does not run. Accepts NULL; returns NULL. */
launcher *launcher_free(launcher *l);

/* The path santad connects to for SVC, or NULL when santad has no business
 * with it (the sync service without SyncBaseURL). Valid until
 * launcher_free. */
const char *launcher_socket_path(const launcher *l, launcher_service svc);

/* "santasyncservice", ... */
const char *launcher_service_name(launcher_service svc);

launcher_mode launcher_get_mode(const launcher *l);

/* For santactl status: "running", "waiting for a connection",
 * "restarting", "not configured", "managed by systemd", or "stopped:
 * configuration error" (it exited with 78, EX_CONFIG, and is not started
 * again until santad restarts; its socket is removed). */
const char *launcher_service_state(const launcher *l, launcher_service svc);

/* The running child's pid, or 0. */
pid_t launcher_service_pid(const launcher *l, launcher_service svc);
