/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A listening socket on an sd_event loop: accepts, counts connections per
 * uid, and hands each new connection to ipc-conn.c for validation and the
 * handshake.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc-internal.h"

/* Accepts per wake-up, so that a flood of connects cannot starve the
 * connections already there. */
#define ACCEPT_BATCH 16
/* Pause after running out of descriptors, rather than spin on a listening
 * socket that stays readable. */
#define ACCEPT_PAUSE_USEC (100 * 1000)

struct uid_count {
	uid_t uid;
	unsigned n;
};

struct ipc_server {
	sd_event *ev;
	sd_event_source *src, *pause;
	int fd;
	const ipc_trust *trust;
	const ipc_service *service;
	ipc_server_opts opts;
	ipc_conn *conns;
	size_t n_conns;
	struct uid_count *uids;
	size_t n_uids;
};

static struct uid_count *uid_slot(ipc_server *s, uid_t uid, bool create)
{
	struct uid_count *u;

	for (size_t i = 0; i < s->n_uids; i++)
		if (s->uids[i].uid == uid)
			return &s->uids[i];
	if (!create)
		return NULL;
	u = realloc(s->uids, (s->n_uids + 1) * sizeof(*u));
	if (!u)
		return NULL;
	s->uids = u;
	s->uids[s->n_uids] = (struct uid_count){ .uid = uid };
	return &s->uids[s->n_uids++];
}

/* Count C against its uid; false when over the limit. Root is not
 * counted: it could lift any limit anyway. */
static bool uid_admit(ipc_server *s, ipc_conn *c, uid_t uid)
{
	struct uid_count *u;

	if (uid == 0)
		return true;
	u = uid_slot(s, uid, true);
	if (!u || u->n >= s->opts.limits.max_conns_per_uid)
		return false;
	u->n++;
	c->uid_counted = true;
	c->counted_uid = uid;
	return true;
}

void ipc_server_conn_gone(ipc_server *s, ipc_conn *c)
{
	struct uid_count *u;

	if (c->uid_counted && (u = uid_slot(s, c->counted_uid, false)))
		u->n--;
	c->uid_counted = false;
	if (c->srv_prev)
		c->srv_prev->srv_next = c->srv_next;
	else
		s->conns = c->srv_next;
	if (c->srv_next)
		c->srv_next->srv_prev = c->srv_prev;
	c->srv_prev = c->srv_next = NULL;
	c->server = NULL;
	s->n_conns--;
	ipc_conn_unref(c);
}

static void server_admit(ipc_server *s, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	ipc_conn *c;

	if (ipc_conn_new(s->ev, fd, true, &s->opts.limits, s->trust, &c) < 0) {
		close(fd);
		return;
	}
	c->local = s->service;
	c->callbacks = s->opts.callbacks;
	c->on_connect = s->opts.on_connect;
	c->on_close = s->opts.on_close;
	c->cb_userdata = s->opts.userdata;
	c->server = s;
	c->srv_next = s->conns;
	if (s->conns)
		s->conns->srv_prev = c;
	s->conns = c;
	s->n_conns++;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		ipc_conn_close_reason(c, IPC_E_DISCONNECTED, "reading peer credentials: %m");
		return;
	}
	c->peer.pid = cr.pid;
	c->peer.uid = cr.uid;
	c->peer.gid = cr.gid;
	if (!uid_admit(s, c, cr.uid)) {
		char why[128];

		snprintf(why, sizeof(why), "more than %u connections from uid %u",
			 s->opts.limits.max_conns_per_uid, (unsigned)cr.uid);
		ipc_conn_refuse(c, IPC_E_LIMIT, why);
		return;
	}
	ipc_conn_start_server(c);
}

static int server_resume_cb(sd_event_source *src, uint64_t usec, void *userdata)
{
	ipc_server *s = userdata;

	s->pause = sd_event_source_disable_unref(s->pause);
	sd_event_source_set_enabled(s->src, SD_EVENT_ON);
	return 0;
}

static void server_pause(ipc_server *s)
{
	uint64_t now;

	if (s->pause || sd_event_now(s->ev, CLOCK_MONOTONIC, &now) < 0)
		return;
	if (sd_event_add_time(s->ev, &s->pause, CLOCK_MONOTONIC, now + ACCEPT_PAUSE_USEC, 0,
			      server_resume_cb, s) < 0)
		return;
	sd_event_source_set_enabled(s->src, SD_EVENT_OFF);
}

static int server_accept_cb(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	ipc_server *s = userdata;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int cfd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				server_pause(s);
			break;
		}
		server_admit(s, cfd);
	}
	return 0;
}

int ipc_server_new(sd_event *ev, int listen_fd, const ipc_trust *trust,
		   const ipc_service *service, const ipc_server_opts *opts, ipc_server **ret)
{
	ipc_server *s;
	int r;

	if (!ev || listen_fd < 0 || !trust || !service || !service->desc || !service->methods ||
	    !ret)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ev = sd_event_ref(ev);
	s->fd = listen_fd;
	s->trust = trust;
	s->service = service;
	if (opts)
		s->opts = *opts;
	ipc_limits_fill(&s->opts.limits, opts ? &opts->limits : NULL);
	r = sd_event_add_io(ev, &s->src, listen_fd, EPOLLIN, server_accept_cb, s);
	if (r < 0) {
		sd_event_unref(s->ev);
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

/* Closes every connection (their on_close runs) and the listening
 * socket. */
ipc_server *ipc_server_free(ipc_server *s)
{
	if (!s)
		return NULL;
	while (s->conns)
		ipc_conn_close_reason(s->conns, IPC_E_DISCONNECTED, "server shutting down");
	s->src = sd_event_source_disable_unref(s->src);
	s->pause = sd_event_source_disable_unref(s->pause);
	if (s->fd >= 0)
		close(s->fd);
	sd_event_unref(s->ev);
	free(s->uids);
	free(s);
	return NULL;
}

size_t ipc_server_conn_count(const ipc_server *s)
{
	return s ? s->n_conns : 0;
}

int ipc_listen_socket(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = path ? strlen(path) : 0;
	struct stat st;
	int fd, r = 0;

	if (len == 0 || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A stale socket of a previous run is replaced; anything else there is
	 * left alone and bind() fails. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) < 0)
		r = -errno;
	if (r == 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = -errno;
	if (r == 0 && chmod(path, mode) < 0)
		r = -errno;
	if (r == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0)
		r = -errno;
	if (r == 0 && listen(fd, SOMAXCONN) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}
