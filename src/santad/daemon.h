/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon context behind santad.h, and what main.c and santad.c share.
 * Everything here belongs to the main loop thread; the decision threads
 * only see the authorizer and the recorder.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "auth.h"
#include "config.h"
#include "eventdb.h"
#include "mounts.h"
#include "policy.h"
#include "recorder.h"
#include "ruledb.h"
#include "santad.h"
#include "syncstate.h"

struct santad {
	const char *config_file;        /* --config, NULL: default search */
	santa_config cfg;
	sd_event *ev;
	santad_counters counters;
	recorder *rec;
	authorizer *auth;
	mounts *mounts;
	ruledb *rules;
	eventdb *events;
	syncstate sync;
	uint64_t root_dev;              /* st_dev of "/" */
	int lock_fd;
	void *control;                  /* control service, see control.h */
	void *trust;                    /* ipc_trust, when built with IPC */
	struct gui *gui;                /* santagui's side (gui.h) */
	struct synclink *sync_link;     /* santasyncservice (synclink.h) */
};

/* Build the policy from the config and the sync state, publish it, and
 * flush what the change requires. ERRBUF says why a policy was refused. */
int santad_publish_policy(santad *d, const char *why, char *errbuf, size_t errsize);

/* Store the sync events the recorder built (main loop). */
void santad_store_events(santad *d);
