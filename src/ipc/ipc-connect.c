/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Making connections: to a listening socket by path, and anonymous
 * endpoints, their serving end and the end a peer connects over.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc-internal.h"

int ipc_socket_connect(const char *path, bool *ret_pidfd_ok)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Before connect(): the kernel attaches the server's credentials (and
	 * pidfd) to its challenge only if we asked before it was sent. */
	r = ipc_sock_passcred(fd, true, ret_pidfd_ok);
	if (r == 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

void ipc_conn_client_setup(ipc_conn *c, const ProtobufCServiceDescriptor *remote,
			      const ipc_conn_opts *opts,
			      void (*on_ready)(ipc_conn *c, int err, void *userdata))
{
	c->remote = remote;
	c->local = opts ? opts->callback : NULL;
	c->accept_roles = opts ? opts->accept_roles : 0;
	c->on_close = opts ? opts->on_close : NULL;
	c->cb_userdata = opts ? opts->userdata : NULL;
	c->on_ready = on_ready;
}

int ipc_connect(sd_event *ev, const char *path, const ipc_trust *trust,
		const ProtobufCServiceDescriptor *remote, const ipc_conn_opts *opts,
		void (*on_ready)(ipc_conn *c, int err, void *userdata), ipc_conn **ret)
{
	ipc_conn *c;
	int fd, r;

	if (!ev || !path || !trust || !remote || !ret)
		return -EINVAL;
	fd = ipc_socket_connect(path, NULL);
	if (fd < 0)
		return fd == -ENOMEM || fd == -EMFILE || fd == -ENFILE ? fd : IPC_E_DISCONNECTED;
	r = ipc_conn_new(ev, fd, false, opts ? &opts->limits : NULL, trust, &c);
	if (r < 0) {
		close(fd);
		return r;
	}
	ipc_conn_client_setup(c, remote, opts, on_ready);
	c->root_held = ipc_socket_root_held(path);
	*ret = c;
	return 0;
}

/* --- Endpoints --- */

int ipc_endpoint_new(sd_event *ev, const ipc_trust *trust, const ipc_service *service,
		     const ipc_peer *expected_peer, const ipc_server_opts *opts,
		     int *ret_remote_fd, ipc_conn **ret)
{
	ipc_conn *c;
	int sv[2], r;

	if (!ev || !trust || !service || !expected_peer || expected_peer->pid <= 0 ||
	    !ret_remote_fd || !ret)
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	r = ipc_conn_new(ev, sv[0], true, opts ? &opts->limits : NULL, trust, &c);
	if (r < 0) {
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	c->local = service;
	if (opts) {
		c->callbacks = opts->callbacks;
		c->on_connect = opts->on_connect;
		c->on_close = opts->on_close;
		c->cb_userdata = opts->userdata;
	}
	r = ipc_conn_start_endpoint(c, expected_peer);
	if (r < 0) {
		c->on_close = NULL;
		ipc_conn_unref(c);
		close(sv[1]);
		return r;
	}
	*ret_remote_fd = sv[1];
	*ret = c;
	return 0;
}

/* The endpoint must have been made by FROM: a socketpair's SO_PEERCRED
 * names the process that created it. */
static int endpoint_check(int fd, const ipc_peer *from, const ipc_trust *trust,
			  uint32_t accept_roles, ipc_peer *peer)
{
	char why[IPC_WHY_MAX];
	struct ucred cr;
	int type, pidfd, r;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
		return IPC_E_INVALID;
	r = ipc_peer_from_socket(fd, &cr, &pidfd);
	if (r < 0)
		return IPC_E_INVALID;
	if (cr.pid != from->pid || cr.uid != from->uid) {
		if (pidfd >= 0)
			close(pidfd);
		return IPC_E_NOT_PERMITTED;
	}
	r = ipc_peer_validate(trust, cr.pid, pidfd, cr.uid, cr.gid, peer, why, sizeof(why));
	if (pidfd >= 0)
		close(pidfd);
	if (r == -EACCES) {
		/* Pid and uid are FROM's: it was validated (or believed) then. */
		peer->role = from->role;
		snprintf(peer->exe, sizeof(peer->exe), "%s", from->exe);
	} else if (r < 0 || peer->exe_dev != from->exe_dev || peer->exe_ino != from->exe_ino) {
		return IPC_E_NOT_PERMITTED;
	}
	return ipc_role_allowed(peer->role, accept_roles) ? 0 : IPC_E_NOT_PERMITTED;
}

int ipc_endpoint_connect(sd_event *ev, int fd, const ipc_peer *from, const ipc_trust *trust,
			 const ProtobufCServiceDescriptor *remote, const ipc_conn_opts *opts,
			 void (*on_ready)(ipc_conn *c, int err, void *userdata), ipc_conn **ret)
{
	ipc_peer peer = { 0 };
	ipc_conn *c;
	int r;

	if (fd < 0)
		return -EBADF;
	if (!ev || !from || !trust || !remote || !ret) {
		close(fd);
		return -EINVAL;
	}
	r = endpoint_check(fd, from, trust, opts ? opts->accept_roles : 0, &peer);
	if (r == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		r = -errno;
	if (r == 0)
		r = ipc_conn_new(ev, fd, false, opts ? &opts->limits : NULL, trust, &c);
	if (r < 0) {
		close(fd);
		return r;
	}
	peer.conn_id = c->id;
	c->peer = peer;
	c->endpoint = true;
	ipc_conn_client_setup(c, remote, opts, on_ready);
	*ret = c;
	return 0;
}
