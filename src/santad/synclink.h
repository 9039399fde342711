/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's connection to santasyncservice, when a sync server is
 * configured.
 *
 * santad connects at start (which starts the service on demand, through
 * its socket), keeps the connection, and connects again with a growing
 * delay when it is lost (the service crashed or was killed: connecting
 * starts it again). Events of blocked executions are handed to the service
 * at once (PostEvents), as the original's santad does; the service uploads
 * them and removes them from santad's store. Everything else the service
 * pulls from santad's control socket. As the original's santad, the
 * events of one file (or bundle) are handed over at most once per ten
 * minutes; the rest wait in the store. An empty PostEvents every
 * SYNCLINK_HEARTBEAT_USEC tells whether the service still answers.
 *
 * Main loop thread only. Never blocks: every call is asynchronous.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "ipc.h"
#include "santa.pb-c.h"

#define SYNCLINK_HEARTBEAT_USEC (10 * 1000000ULL)
#define SYNCLINK_CALL_USEC (2 * 1000000ULL)
#define SYNCLINK_RETRY_FIRST_USEC (250 * 1000ULL)
#define SYNCLINK_RETRY_MAX_USEC (30 * 1000000ULL)

typedef struct synclink synclink;

/* SOCKET_PATH NULL: no sync server; the link only says "not configured". */
int synclink_new(sd_event *ev, const ipc_trust *trust, const char *socket_path,
		 synclink **ret);
synclink *synclink_free(synclink *l);

/* Hand EVENTS (stored, with their ids) to the service, but not those of a
 * file or bundle handed over in the last ten minutes. Not handed over when
 * the service is not connected: the next full sync uploads them from the
 * store. */
void synclink_post_events(synclink *l, Santa__Event *const *events, size_t n);

/* "not configured", "connecting", "running" or "not answering". */
const char *synclink_state(const synclink *l);

/* Ask now whether the service answers, within TIMEOUT_USEC: CB then runs on
 * the main loop with the state. Returns 0 when CB will run, -errno if not. */
typedef void (*synclink_probe_fn)(const char *state, void *userdata);
int synclink_probe(synclink *l, uint64_t timeout_usec, synclink_probe_fn cb, void *userdata);
