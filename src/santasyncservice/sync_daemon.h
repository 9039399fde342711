/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's side of a sync over the IPC layer: the engine's sync_daemon_ops
 * on a blocking ipc_client connected to santad's control socket. santad
 * grants these privileged methods to the SYNCSERVICE role, which the IPC
 * layer gives this process from the executable the kernel says it runs.
 */
#pragma once

#include "ipc.h"
#include "sync_engine.h"

/* Pass the connected ipc_client as the ops' userdata. */
extern const sync_daemon_ops sync_daemon_ipc_ops;

/* Connect to santad's socket at PATH (blocking, within the handshake
 * deadline), accepting only santad. */
int sync_daemon_connect(const char *path, const ipc_trust *trust, ipc_client **ret);
