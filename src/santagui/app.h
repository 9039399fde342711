/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santagui's parts and the state they share.
 *
 *  - link.c: the connection to santad. Connects, makes the notifier
 *    endpoint, registers it with SetNotificationListener, waits for santad
 *    to connect back over it, and starts over (with backoff) whenever
 *    either connection ends, so that a restarted santad finds its GUI
 *    again. Forwards bundle results with SyncBundleEvent.
 *  - bundler.c: the bundle hashing queue. For each block santad flags
 *    needs_bundle_hash, one at a time: connect to santabundleservice, make
 *    a progress endpoint, ask HashBundleBinaries, show progress, hand the
 *    result to santad. Spindown when the queue is empty.
 *  - notice.c / display*.c: what is shown, and where.
 *
 * Everything runs on one thread, on APP->ev.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "display.h"
#include "ipc.h"
#include "notifier.pb-c.h"
#include "santa.pb-c.h"

typedef struct link_state link_state;
typedef struct bundler bundler;

typedef struct app {
	sd_event *ev;
	santa_config cfg;
	ipc_trust *trust;
	display *display;
	char *santad_path;           /* RunDirectory/santad.sock */
	char *bundle_path;           /* RunDirectory/santabundleservice.sock */
	uint32_t bundle_timeout_ms;  /* 0: the service's limit */
	const char *hash_bundle;     /* --hash-bundle: hash this file's bundle */
	link_state *link;
	bundler *bundler;
} app;

/* --- link.c --- */
int link_start(app *a);
link_state *link_free(link_state *l);
/* Hand EVENTS (the blocked event first, then its bundle's binaries) to
 * santad. -ENOTCONN when santad is not connected. */
int link_sync_bundle_event(link_state *l, Santa__Event **events, size_t n);
bool link_registered(const link_state *l);

/* --- bundler.c --- */
int bundler_new(app *a, bundler **ret);
bundler *bundler_free(bundler *b);
/* Queue the bundle of EVENT (copied) for hashing; DISPLAY_ID is the
 * notice its progress belongs to. */
int bundler_enqueue(bundler *b, const Santa__Event *event, uint64_t display_id);
/* Call FN once the queue is empty and the service let go (--hash-bundle). */
void bundler_on_idle(bundler *b, void (*fn)(void *userdata), void *userdata);
/* Whether any job failed (for --hash-bundle's exit code). */
bool bundler_failed(const bundler *b);

/* --- Shared by link.c and bundler.c --- */

/* The notifier service's method indexes (proto/notifier.proto order). */
enum {
	NOTIFIER_POST_BLOCK = 0,
	NOTIFIER_POST_CLIENT_MODE = 1,
	NOTIFIER_POST_RULE_SYNC = 2,
	NOTIFIER_UPDATE_BUNDLE_PROGRESS = 3,
};

/* Deep copy of a protobuf message (pack and unpack), or NULL. */
ProtobufCMessage *app_message_copy(const ProtobufCMessage *m);
