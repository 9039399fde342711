/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket activation, service side.
 *
 * santasyncservice, santametricservice and santabundleservice never create
 * their listening sockets: whoever starts them (systemd's .socket units, or
 * santad's launcher when systemd does not manage them) has created the
 * socket with the right owner and mode, and passes it the way systemd does:
 * descriptor 3 onwards, $LISTEN_FDS descriptors, $LISTEN_PID naming the
 * process they are for, $LISTEN_FDNAMES naming each. A service run by hand,
 * with nothing passed, refuses to start instead of creating a socket with
 * whatever owner and mode its own user would give it.
 */
#pragma once

/*
 * The listening socket handed to this process and named NAME in
 * $LISTEN_FDNAMES (NULL: the only one passed, whatever its name).
 *
 * The descriptor must be an AF_UNIX SOCK_SEQPACKET socket that listens. It
 * is returned close-on-exec and non-blocking (the launcher's copy shares
 * that flag, and never accepts); every other passed descriptor is closed, and
 * the LISTEN_* variables are removed so that nothing this process starts
 * believes they are meant for it.
 *
 * Returns the descriptor (>= 3), or:
 *   -ENOENT     nothing was passed to this process (no LISTEN_PID, or
 *               another process's), or no passed descriptor is named NAME;
 *   -EINVAL     the variables are malformed, or NAME is NULL and several
 *               descriptors were passed;
 *   -ENOTSOCK, -EAFNOSUPPORT, -EPROTOTYPE, -EDESTADDRREQ
 *               the descriptor is not a socket, not AF_UNIX, not
 *               SOCK_SEQPACKET, or not listening.
 */
int santa_listen_fd(const char *name);
