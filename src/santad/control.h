/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's control service: the Santad service of proto/santad.proto,
 * served on RunDirectory/santad.sock to santactl, santasyncservice and
 * santagui.
 *
 * Who may call what is one table in control.c: the IPC layer refuses a
 * call outside it before any handler runs. Root santactl and the sync
 * service get the privileged methods (rule changes, events, sync
 * settings, cache flush); santagui its two; every peer of ours the
 * read-only ones (status, cache check, dry-run decisions). Each handler
 * checks its request field by field and answers a bad one with an error
 * that names the field.
 */
#pragma once

#include <systemd/sd-event.h>

#include "ipc.h"
#include "santad.h"

typedef struct control control;

/* Serve the control interface on LISTEN_FD (bound and listening; the
 * control service owns it once this succeeds, and closes it in
 * control_free; on failure it is left to the caller), validating peers
 * against TRUST (which must outlive the service), on EV (santad's main
 * loop). Returns 0 or -errno. */
int control_start(santad *d, sd_event *ev, int listen_fd,
		  const ipc_trust *trust, control **ret);
/* Stop serving: every connection is closed, staged rule batches are
 * dropped. Accepts NULL; returns NULL. */
control *control_free(control *c);
