/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's side of santagui: who gets the notifications, what they say,
 * and what happens to the bundle results santagui hands back.
 *
 * Registrations. Each santagui calls SetNotificationListener with one end
 * of its notifier endpoint; santad connects back over it
 * (ipc_endpoint_connect, proto/notifier.proto) and keeps the connection.
 * A GUI is eligible when it is connected and, with logind (sd_get_seats
 * lists a seat), its session (sd_pid_get_session of the GUI, and only if
 * that session is the GUI's user's) is active
 * (sd_session_is_active: the foreground one of its seat, or any session
 * without a seat, as ssh's). santad watches logind (sd_login_monitor) and
 * looks again when sessions change, as fast user switching does.
 *
 * Who is told what. A block goes to the newest eligible GUI of the user
 * who ran the program (its real uid); when that user has none, to the GUI
 * at the console (the active GUI, when its session is on a seat), as on
 * macOS, where the console user sees every block. Never to another user's
 * GUI otherwise: a GUI started over ssh, or any GUI on a machine without
 * logind, shows its own user's programs only. Mode changes and rule syncs
 * go to the active GUI: the newest eligible one on a seat, else the newest
 * eligible one. The bundle of a block is taken only from the GUI of the
 * blocked user or the one at the console.
 * At most GUI_MAX_CLIENTS registrations, GUI_MAX_PER_UID per user (a
 * user's newest replaces its oldest).
 *
 * The queue. A notification no GUI may show yet waits in a queue of
 * GUI_QUEUE_MAX, of which one user's take GUI_QUEUE_PER_UID at most; past
 * either the oldest (of that user's) is dropped and counted, and the next
 * delivered notification says how many were dropped. Whenever GUIs come,
 * go or change sessions, each waiting notification that now has a GUI is
 * sent to it, oldest first.
 *
 * Bundles. A block is flagged needs_bundle_hash when bundles are enabled
 * (EnableBundles, or the sync server's enable_bundles). santad remembers
 * what it flagged (GUI_MAX_PENDING, for GUI_PENDING_USEC) and accepts a
 * SyncBundleEvent only for a flagged block, from a registered GUI, whose
 * related events are BUNDLE_BINARY events that hash to the bundle hash
 * claimed. It then logs an action=BUNDLE line per related event through
 * the recorder (recorder_log_line), as the original does, and, when events
 * are stored at all (SyncBaseURL set), stores the block's event with the
 * bundle fields in place of the one stored at the block (eventdb_replace:
 * one event per blocked exec), the related events once each, and offers
 * the block's new version to the sync service at once.
 *
 * Threads: gui_post_block may be called from any thread (the recorder's);
 * everything else from the main loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "ipc.h"
#include "santad.h"
#include "santad.pb-c.h"

#define GUI_MAX_CLIENTS 32u
#define GUI_MAX_PER_UID 4u
#define GUI_QUEUE_MAX 64u
#define GUI_QUEUE_PER_UID 16u      /* of the queue, for one user's notes */
#define GUI_INBOX_MAX 256u
#define GUI_MAX_PENDING 64u
#define GUI_PENDING_USEC (15ull * 60 * 1000000)

typedef struct gui gui;

/* Set up on EV (santad's main loop), validating GUIs against TRUST. Both
 * must outlive the gui. Reads settings through D (santad.h) when it
 * builds each notification, so a reloaded config applies at once. */
int gui_new(santad *d, sd_event *ev, const ipc_trust *trust, gui **ret);
/* Closes every GUI connection; queued notifications are lost. */
gui *gui_free(gui *g);

/* --- For the control service (control.c); each finishes CALL. --- */

/* SetNotificationListener: connect to the endpoint that came with CALL. */
void gui_set_listener(gui *g, ipc_call *call);
/* SyncBundleEvent: EVENTS[0] is the blocked event with its bundle fields,
 * the rest the bundle's BUNDLE_BINARY events. */
void gui_sync_bundle_event(gui *g, ipc_call *call, const Santa__EventList *events);

/* --- For the decision path --- */

/* A denied exec, as the recorder knows it. Strings are copied. */
typedef struct gui_block_info {
	const char *path;          /* full path of the executed file */
	const char *sha256;        /* lower-case hex, or NULL */
	santad_reason reason;      /* UNKNOWN for a LOCKDOWN block */
	const char *custom_msg;    /* the deciding rule's, or NULL */
	const char *custom_url;
	int rule_policy;           /* Santa__Policy of the rule, 0 unknown */
	int rule_type;             /* Santa__RuleType, 0 unknown */
	const char *rule_identifier;
	const char *user;          /* who ran it */
	long uid;                  /* and their real uid; -1 unknown */
	const char *parent_name;
	pid_t pid;
	pid_t ppid;
	double when;               /* seconds since the epoch */
} gui_block_info;

/* Tell the blocked user's GUI (any thread; never blocks). Silent blocks
 * must not be posted. Dropped when EnableSilentMode is set. */
void gui_post_block(gui *g, const gui_block_info *b);

/* --- For santad's main loop --- */

/* The client mode changed to MODE (ModeNotificationMonitor/Lockdown). */
void gui_post_client_mode(gui *g, santa_client_mode mode);
/* A rule sync brought MESSAGE (NULL: the default sentence). */
void gui_post_rule_sync(gui *g, const char *message);

/* HOOK(n) is called with the number of registered GUIs now and whenever it
 * changes (metrics_set_gui_clients); NULL: not at all. */
void gui_set_count_hook(gui *g, void (*hook)(uint64_t n_clients));
/* Registered GUIs (status gui_clients), and notifications dropped. */
size_t gui_client_count(const gui *g);
uint64_t gui_dropped_count(const gui *g);
