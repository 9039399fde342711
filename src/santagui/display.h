/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where santagui shows its notices: desktop notifications through
 * libnotify (org.freedesktop.Notifications on the session bus), or a
 * terminal (stdout), as text for a person or as one JSON object per line
 * for scripts and tests. Both show the same notices and bundle progress.
 *
 * The detail action opens the URL with xdg-open, and only http and https
 * URLs: the template comes from the configuration or a sync server, and a
 * file: or custom scheme could start a program on the user's behalf.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "notice.h"
#include "notifier.pb-c.h"

typedef struct display display;

/* Printing to OUT, which must outlive the display. */
int display_terminal_new(FILE *out, bool json, display **ret);
/* Desktop notifications; -EOPNOTSUPP when built without libnotify, -EIO
 * when no notification server can be reached. */
int display_desktop_new(const char *app_name, display **ret);
display *display_free(display *d);

/* Show N. *RET_ID (may be NULL) names it for the calls below. */
int display_show(display *d, const notice *n, uint64_t *ret_id);

/* The bundle of notice ID is being hashed: counts so far. */
void display_bundle_progress(display *d, uint64_t id, const Santa__BundleProgress *p);

/* Hashing of notice ID's bundle ended: BUNDLE_HASH and BINARY_COUNT on
 * success (ERR 0; an empty hash means the file belongs to no bundle), or
 * the reason it failed. */
void display_bundle_done(display *d, uint64_t id, int err, const char *bundle_hash,
			 unsigned binary_count);

/* Whether URL may be opened (http or https, no control characters). */
bool display_url_allowed(const char *url);
