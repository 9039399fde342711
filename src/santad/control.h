/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's control service (santactl, santasyncservice, santagui): the
 * Santad service of proto/santad.proto served on RunDirectory/santad.sock.
 *
 * PLACEHOLDER written by the santad engineer so that santad links; the
 * control engineer owns this file and replaces it.
 */
#pragma once

#include <systemd/sd-event.h>

#include "ipc.h"
#include "santad.h"

typedef struct control control;

/* Serve the control interface on LISTEN_FD (bound and listening; taken over
 * by the control service), validating peers against TRUST, on EV (santad's
 * main loop). */
int control_start(santad *d, sd_event *ev, int listen_fd,
		  const ipc_trust *trust, control **ret);
control *control_free(control *c);
