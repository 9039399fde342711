/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santagui's main loop. Everything of ours runs on an sd_event (the IPC
 * library's loop); libnotify needs GLib's main loop for its action
 * signals. In desktop mode GLib's loop runs and drives the sd_event as
 * one of its sources (sd_event_prepare / sd_event_wait / sd_event_dispatch
 * on the sd_event's own pollable descriptor), so that both are served by
 * one thread with no polling interval.
 */
#pragma once

#include <stdbool.h>

#include <systemd/sd-event.h>

/* Run EV until sd_event_exit(); with GLIB, inside GLib's main loop.
 * Returns the exit code given to sd_event_exit, or -errno. */
int loop_run(sd_event *ev, bool glib);
