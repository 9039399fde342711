/* SPDX-License-Identifier: Apache-2.0 */
#include "synclink.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sync.pb-c.h"

/* As the original's santad: the events of one file (or one bundle) go to
 * the service at most once per ten minutes; later ones wait in the store
 * for the next full sync. Kept here, not only in the service, so that it
 * holds when the service restarts. */
#define SYNCLINK_BACKOFF_USEC (600ULL * 1000000)
#define SYNCLINK_RECENT_MAX 1024

typedef struct synclink_recent {
	char key[65];                   /* file or bundle SHA-256, hex */
	uint64_t usec;                  /* CLOCK_MONOTONIC of the hand-over */
} synclink_recent;

struct synclink {
	sd_event *ev;
	const ipc_trust *trust;
	char *path;                     /* NULL: not configured */
	unsigned post_events;           /* PostEvents' index in santa.SyncService */
	ipc_conn *conn;
	bool ready;
	bool answering;                 /* the last call was answered */
	bool lost;                      /* had a connection once */
	unsigned failures;
	uint64_t retry_usec;
	sd_event_source *retry;
	sd_event_source *heartbeat;
	synclink_recent recent[SYNCLINK_RECENT_MAX];
};

typedef struct probe {
	synclink *link;
	synclink_probe_fn cb;
	void *userdata;
	uint64_t timeout_usec;
	sd_event_source *defer;         /* when answered without a call */
} probe;

static void link_connect(synclink *l);

const char *synclink_state(const synclink *l)
{
	if (!l || !l->path)
		return "not configured";
	if (!l->ready)
		return "connecting";
	return l->answering ? "running" : "not answering";
}

static int retry_fired(sd_event_source *s, uint64_t usec, void *userdata)
{
	link_connect(userdata);
	return 0;
}

static void schedule_retry(synclink *l)
{
	uint64_t now;

	l->retry_usec = l->retry_usec ? l->retry_usec * 2 : SYNCLINK_RETRY_FIRST_USEC;
	if (l->retry_usec > SYNCLINK_RETRY_MAX_USEC)
		l->retry_usec = SYNCLINK_RETRY_MAX_USEC;
	sd_event_now(l->ev, CLOCK_MONOTONIC, &now);
	if (l->retry) {
		sd_event_source_set_time(l->retry, now + l->retry_usec);
		sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
		return;
	}
	if (sd_event_add_time(l->ev, &l->retry, CLOCK_MONOTONIC, now + l->retry_usec, 0,
			      retry_fired, l) < 0)
		log_warning("Scheduling a reconnect to santasyncservice failed; events of "
			    "blocked executions wait for the next full sync");
}

static void on_ready(ipc_conn *c, int err, void *userdata)
{
	synclink *l = userdata;

	if (err < 0)
		return;         /* on_close follows with the reason */
	if (l->lost || l->failures)
		log_notice("Connected to santasyncservice again");
	else
		log_info("Connected to santasyncservice at \"%s\"", l->path);
	l->ready = true;
	l->answering = true;
	l->failures = 0;
	l->retry_usec = 0;
}

static void on_close(ipc_conn *c, int err, const char *reason, void *userdata)
{
	synclink *l = userdata;
	bool was_ready = l->ready;

	if (c != l->conn)
		return;
	l->conn = NULL;
	l->ready = false;
	ipc_conn_unref(c);
	if (was_ready) {
		log_warning("Lost the connection to santasyncservice: %s; reconnecting",
			    reason ? reason : ipc_strerror(err));
		l->lost = true;
	} else if (l->failures++ == 0) {
		log_warning("Connecting to santasyncservice at \"%s\" failed, retrying quietly: %s",
			    l->path, reason ? reason : ipc_strerror(err));
	}
	schedule_retry(l);
}

static void link_connect(synclink *l)
{
	ipc_conn_opts opts = {
		.accept_roles = IPC_ROLE_BIT(IPC_ROLE_SYNCSERVICE),
		.on_close = on_close,
		.userdata = l,
	};
	int r;

	if (l->conn || !l->path)
		return;
	r = ipc_connect(l->ev, l->path, l->trust, &santa__sync_service__descriptor, &opts,
			on_ready, &l->conn);
	if (r < 0) {
		l->conn = NULL;
		if (l->failures++ == 0)
			log_warning("Connecting to santasyncservice at \"%s\" failed, retrying "
				    "quietly: %s", l->path, ipc_strerror(r));
		schedule_retry(l);
	}
}

/* --- calls --- */

static void call_done(synclink *l, int err, uint64_t timeout_usec)
{
	bool was = l->answering;

	l->answering = err != IPC_E_TIMEOUT;
	if (was && !l->answering)
		log_warning("santasyncservice does not answer (no reply within %llu ms)",
			    (unsigned long long)(timeout_usec / 1000));
	else if (!was && l->answering && err == 0)
		log_notice("santasyncservice answers again");
}

static void post_done(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
		      void *userdata)
{
	synclink *l = userdata;

	if (c == l->conn)
		call_done(l, err, SYNCLINK_CALL_USEC);
	if (err < 0 && err != IPC_E_TIMEOUT && err != IPC_E_DISCONNECTED)
		log_warning("Handing events to santasyncservice failed: %s",
			    errmsg ? errmsg : ipc_strerror(err));
}

static int post(synclink *l, Santa__Event *const *events, size_t n, uint64_t timeout,
		ipc_reply_fn cb, void *userdata)
{
	Santa__PostEventsRequest req = SANTA__POST_EVENTS_REQUEST__INIT;

	if (!l->ready)
		return -ENOTCONN;
	req.events = (Santa__Event **)events;
	req.n_events = n;
	return ipc_call_async(l->conn, l->post_events, &req.base, -1, timeout, cb, userdata);
}

/* A bundle's events back off by the bundle's hash, others by the file's. */
static const char *event_key(const Santa__Event *ev)
{
	if (ev->file_bundle_hash && *ev->file_bundle_hash)
		return ev->file_bundle_hash;
	return ev->file_sha256 ? ev->file_sha256 : "";
}

/* Whether KEY was handed over in the last ten minutes; if not, note it
 * now, in place of the oldest entry. */
static bool recently_posted(synclink *l, const char *key, uint64_t now)
{
	synclink_recent *oldest = &l->recent[0];

	if (!*key || strlen(key) >= sizeof(oldest->key))
		return false;
	for (size_t i = 0; i < SYNCLINK_RECENT_MAX; i++) {
		synclink_recent *r = &l->recent[i];

		if (r->usec && now - r->usec < SYNCLINK_BACKOFF_USEC && strcmp(r->key, key) == 0)
			return true;
		if (r->usec < oldest->usec)
			oldest = r;
	}
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->usec = now ? now : 1;
	return false;
}

void synclink_post_events(synclink *l, Santa__Event *const *events, size_t n)
{
	Santa__Event **fresh;
	size_t k = 0;
	uint64_t now;
	int r;

	if (!l || !l->path || !n)
		return;
	if (!l->ready) {
		log_debug("Not handing %zu %s to santasyncservice now (not connected): the "
			  "next sync uploads %s", n, log_plural(n, "event", "events"),
			  log_plural(n, "it", "them"));
		return;
	}
	fresh = calloc(n, sizeof(*fresh));
	if (!fresh)
		return;
	sd_event_now(l->ev, CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < n; i++)
		if (!recently_posted(l, event_key(events[i]), now))
			fresh[k++] = events[i];
	r = k ? post(l, fresh, k, SYNCLINK_CALL_USEC, post_done, l) : 0;
	if (r < 0)
		log_debug("Not handing %zu %s to santasyncservice now (%s): the next sync "
			  "uploads %s", k, log_plural(k, "event", "events"), ipc_strerror(r),
			  log_plural(k, "it", "them"));
	free(fresh);
}

static int heartbeat_fired(sd_event_source *s, uint64_t usec, void *userdata)
{
	synclink *l = userdata;

	sd_event_source_set_time(s, usec + SYNCLINK_HEARTBEAT_USEC);
	/* An empty PostEvents: the service answers it and does nothing. */
	(void)post(l, NULL, 0, SYNCLINK_CALL_USEC, post_done, l);
	return 0;
}

/* --- probes --- */

static void probe_finish(probe *p, const char *state)
{
	p->cb(state, p->userdata);
	sd_event_source_unref(p->defer);
	free(p);
}

static void probe_done(ipc_conn *c, int err, const char *errmsg, const ProtobufCMessage *reply,
		       void *userdata)
{
	probe *p = userdata;
	synclink *l = p->link;

	if (c == l->conn)
		call_done(l, err, p->timeout_usec);
	probe_finish(p, err == 0 ? "running" : err == IPC_E_TIMEOUT ? "not answering" :
		     synclink_state(l));
}

static int probe_deferred(sd_event_source *s, void *userdata)
{
	probe *p = userdata;

	probe_finish(p, synclink_state(p->link));
	return 0;
}

int synclink_probe(synclink *l, uint64_t timeout_usec, synclink_probe_fn cb, void *userdata)
{
	probe *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->link = l;
	p->cb = cb;
	p->userdata = userdata;
	p->timeout_usec = timeout_usec;
	if (l->ready && post(l, NULL, 0, timeout_usec, probe_done, p) == 0)
		return 0;
	r = sd_event_add_defer(l->ev, &p->defer, probe_deferred, p);
	if (r < 0) {
		free(p);
		return r;
	}
	return 0;
}

/* --- life cycle --- */

/* The IPC layer calls a method by its index in the service descriptor:
 * find PostEvents by name, and check that it takes what we send, so that
 * reordering or changing sync.proto cannot make santad call another
 * method of the service. */
static int synclink_find_post_events(unsigned *ret)
{
	const ProtobufCServiceDescriptor *d = &santa__sync_service__descriptor;
	const ProtobufCMethodDescriptor *m =
		protobuf_c_service_descriptor_get_method_by_name(d, "PostEvents");

	if (!m || m->input != &santa__post_events_request__descriptor) {
		log_error("%s has no method PostEvents(PostEventsRequest): santad and "
			  "sync.proto disagree", d->name);
		return -EPROTO;
	}
	*ret = (unsigned)(m - d->methods);
	return 0;
}

int synclink_new(sd_event *ev, const ipc_trust *trust, const char *socket_path, synclink **ret)
{
	synclink *l = calloc(1, sizeof(*l));
	uint64_t now;
	int r;

	*ret = NULL;
	if (!l)
		return -ENOMEM;
	l->ev = ev;
	l->trust = trust;
	if (socket_path) {
		r = synclink_find_post_events(&l->post_events);
		if (r < 0) {
			free(l);
			return r;
		}
		l->path = strdup(socket_path);
		if (!l->path) {
			free(l);
			return -ENOMEM;
		}
		sd_event_now(ev, CLOCK_MONOTONIC, &now);
		r = sd_event_add_time(ev, &l->heartbeat, CLOCK_MONOTONIC,
				      now + SYNCLINK_HEARTBEAT_USEC, 0, heartbeat_fired, l);
		if (r < 0) {
			synclink_free(l);
			return r;
		}
		sd_event_source_set_enabled(l->heartbeat, SD_EVENT_ON);
		link_connect(l);
	}
	*ret = l;
	return 0;
}

synclink *synclink_free(synclink *l)
{
	if (!l)
		return NULL;
	if (l->conn) {
		ipc_conn *c = l->conn;

		/* Closing runs on_close, which must not reconnect. */
		l->conn = NULL;
		ipc_conn_close(c);
		ipc_conn_unref(c);
	}
	sd_event_source_unref(l->retry);
	sd_event_source_unref(l->heartbeat);
	free(l->path);
	free(l);
	return NULL;
}
