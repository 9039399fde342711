/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The connection to santad and the notifier endpoint santad calls back on.
 *
 * States: IDLE (waiting to retry) -> CONNECTING (handshake with santad)
 * -> REGISTERING (SetNotificationListener sent with the endpoint) ->
 * REGISTERED (santad connected over the endpoint). Any failure or closure
 * of either connection tears both down and retries after a delay that
 * doubles from 250 ms to 5 s, and resets once registered. santad's side
 * must call back within LINK_CALLBACK_USEC, as the original GUI waits 5 s.
 */
#include "app.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.pb-c.h"
#include "log.h"
#include "notice.h"
#include "santad.pb-c.h"

#define LINK_RETRY_MIN_USEC 250000u
#define LINK_RETRY_MAX_USEC 5000000u
#define LINK_CALLBACK_USEC 5000000u
#define LINK_CALL_USEC 10000000u

typedef enum link_phase {
	LINK_IDLE = 0,
	LINK_CONNECTING,
	LINK_REGISTERING,
	LINK_REGISTERED,
} link_phase;

struct link_state {
	app *a;
	link_phase phase;
	ipc_conn *santad;
	ipc_conn *endpoint;
	int remote_fd;               /* our endpoint's other end, until sent */
	bool santad_called_back;
	bool registered_reply;
	sd_event_source *timer;      /* retry, or the call-back deadline */
	ipc_service notifier;        /* the endpoint keeps a pointer to it */
	uint64_t retry_usec;
	unsigned set_listener;       /* method indexes in santa.Santad */
	unsigned sync_bundle;
};

static void link_schedule(link_state *l, uint64_t usec);

static unsigned link_method(const ProtobufCServiceDescriptor *d, const char *name)
{
	const ProtobufCMethodDescriptor *m;

	m = protobuf_c_service_descriptor_get_method_by_name(d, name);

	return m ? (unsigned)(m - d->methods) : UINT32_MAX;
}

ProtobufCMessage *app_message_copy(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	ProtobufCMessage *copy;

	if (!buf)
		return NULL;
	protobuf_c_message_pack(m, buf);
	copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	return copy;
}

/* --- The notifier, as santad calls it --- */

static void link_reply_empty(ipc_call *call)
{
	Santa__Empty empty = SANTA__EMPTY__INIT;

	ipc_call_reply(call, &empty.base);
}

/* Show N (built with result R) and answer CALL. The request belongs to
 * CALL: everything that reads it must be done before this. */
static void link_show(app *a, ipc_call *call, int r, notice *n, uint64_t *ret_id)
{
	if (r < 0) {
		ipc_call_fail(call, IPC_E_INVALID, "building the notice: %s", strerror(-r));
		return;
	}
	r = display_show(a->display, n, ret_id);
	if (r < 0)
		log_warning("Showing '%s' failed: %s", n->summary, strerror(-r));
	notice_done(n);
	link_reply_empty(call);
}

static void link_queue_bundle(app *a, const Santa__BlockNotification *b, uint64_t id)
{
	int r = bundler_enqueue(a->bundler, b->event, id);

	if (r < 0)
		log_warning("Queueing the bundle of '%s' for hashing failed: %s, ignoring",
			    b->event->file_name, strerror(-r));
}

static void link_on_block(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	const Santa__BlockNotification *b = (const Santa__BlockNotification *)req;
	app *a = userdata;
	uint64_t id = 0;
	notice n;
	int r;

	r = notice_block(b, &n);
	if (r < 0) {
		link_show(a, call, r, &n, NULL);
		return;
	}
	log_info("santad reports a block of '%s' (%s)", n.path, n.reason);
	if (n.url_too_long)
		log_warning("The detail URL for '%s' would be longer than %u bytes: shown "
			    "without it (check EventDetailURL)", n.path, NOTICE_URL_MAX);
	r = display_show(a->display, &n, &id);
	if (r < 0)
		log_warning("Showing '%s' failed: %s", n.summary, strerror(-r));
	notice_done(&n);
	if (r >= 0 && b->needs_bundle_hash && b->event)
		link_queue_bundle(a, b, id);
	link_reply_empty(call);
}

static void link_on_mode(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	notice n;
	int r = notice_mode((const Santa__ClientModeNotification *)req, &n);

	link_show(userdata, call, r, &n, NULL);
}

static void link_on_rule_sync(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	notice n;
	int r = notice_rule_sync((const Santa__RuleSyncNotification *)req, &n);

	link_show(userdata, call, r, &n, NULL);
}

/* santad is root; the original exports the notifier to root peers only. */
#define LINK_SANTAD IPC_ROLE_BIT(IPC_ROLE_SANTAD)
static const ipc_method link_methods[] = {
	[NOTIFIER_POST_BLOCK] = { link_on_block, IPC_METHOD_PRIVILEGED, LINK_SANTAD },
	[NOTIFIER_POST_CLIENT_MODE] = { link_on_mode, IPC_METHOD_PRIVILEGED, LINK_SANTAD },
	[NOTIFIER_POST_RULE_SYNC] = { link_on_rule_sync, IPC_METHOD_PRIVILEGED, LINK_SANTAD },
	[NOTIFIER_UPDATE_BUNDLE_PROGRESS] = { NULL, 0, 0 },
};

/* --- Tearing down and retrying --- */

static void link_teardown(link_state *l)
{
	ipc_conn *s = l->santad, *e = l->endpoint;

	/* Closing runs the close and reply callbacks at once: detach first,
	 * so that they see a connection that is no longer ours. */
	l->santad = NULL;
	l->endpoint = NULL;
	l->phase = LINK_IDLE;
	l->santad_called_back = false;
	l->registered_reply = false;
	if (l->remote_fd >= 0) {
		close(l->remote_fd);
		l->remote_fd = -1;
	}
	if (e) {
		ipc_conn_close(e);
		ipc_conn_unref(e);
	}
	if (s) {
		ipc_conn_close(s);
		ipc_conn_unref(s);
	}
}

static void link_fail(link_state *l, const char *what, int err)
{
	bool was_registered = l->phase == LINK_REGISTERED;

	if (was_registered)
		log_warning("Lost santad (%s: %s); reconnecting", what, ipc_strerror(err));
	else
		/* Once at info, then quietly: santad may be down for long. */
		log_msg(l->retry_usec == LINK_RETRY_MIN_USEC ? SANTA_LOG_INFO : SANTA_LOG_DEBUG,
			"Reaching santad failed (%s: %s); retrying in %llu ms", what,
			ipc_strerror(err), (unsigned long long)(l->retry_usec / 1000));
	link_teardown(l);
	link_schedule(l, was_registered ? LINK_RETRY_MIN_USEC : l->retry_usec);
	if (!was_registered)
		l->retry_usec = l->retry_usec * 2 > LINK_RETRY_MAX_USEC ? LINK_RETRY_MAX_USEC
									: l->retry_usec * 2;
}

static void link_check_registered(link_state *l)
{
	if (l->phase != LINK_REGISTERING || !l->santad_called_back || !l->registered_reply)
		return;
	l->phase = LINK_REGISTERED;
	l->retry_usec = LINK_RETRY_MIN_USEC;
	l->timer = sd_event_source_disable_unref(l->timer);
	log_info("Registered with santad at '%s': notifications will be shown here",
		 l->a->santad_path);
}

/* --- The endpoint santad connects back over --- */

static void link_endpoint_connected(ipc_conn *c, void *userdata)
{
	link_state *l = userdata;

	if (c != l->endpoint)
		return;
	l->santad_called_back = true;
	link_check_registered(l);
}

static void link_endpoint_closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	link_state *l = userdata;

	if (c != l->endpoint)
		return;
	/* Someone else than the santad it was made for: say who, every time,
	 * not only once as a santad that is away. */
	if (err == IPC_E_NOT_PERMITTED || err == IPC_E_INVALID)
		log_warning("Refused a connection on the notifier endpoint: %s",
			    reason ? reason : ipc_strerror(err));
	link_fail(l, reason ? reason : "santad closed the notifier endpoint", err);
}

static void link_registered_reply(ipc_conn *c, int err, const char *errmsg,
				  const ProtobufCMessage *reply, void *userdata)
{
	link_state *l = userdata;

	if (c != l->santad || l->phase != LINK_REGISTERING)
		return;
	if (l->remote_fd >= 0) {
		close(l->remote_fd);
		l->remote_fd = -1;
	}
	if (err < 0) {
		link_fail(l, errmsg ? errmsg : "SetNotificationListener", err);
		return;
	}
	l->registered_reply = true;
	link_check_registered(l);
}

static int link_callback_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	link_state *l = userdata;

	link_fail(l, "santad did not connect to the notifier endpoint in time", IPC_E_TIMEOUT);
	return 0;
}

static int link_register(link_state *l)
{
	ipc_server_opts opts = {
		.on_connect = link_endpoint_connected,
		.on_close = link_endpoint_closed,
		.userdata = l,
	};
	Santa__Empty empty = SANTA__EMPTY__INIT;
	int r;

	l->notifier = (ipc_service){
		.desc = &santa__notifier__descriptor,
		.methods = link_methods,
		.accept_roles = LINK_SANTAD,
		.userdata = l->a,
	};
	r = ipc_endpoint_new(l->a->ev, l->a->trust, &l->notifier, ipc_conn_peer(l->santad), &opts,
			     &l->remote_fd, &l->endpoint);
	if (r < 0)
		return r;
	l->phase = LINK_REGISTERING;
	r = ipc_call_async(l->santad, l->set_listener, &empty.base, l->remote_fd, LINK_CALL_USEC,
			   link_registered_reply, l);
	if (r < 0)
		return r;
	l->timer = sd_event_source_disable_unref(l->timer);
	return sd_event_add_time_relative(l->a->ev, &l->timer, CLOCK_MONOTONIC,
					  LINK_CALLBACK_USEC, 0, link_callback_deadline, l);
}

/* --- The connection to santad --- */

static void link_santad_closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	link_state *l = userdata;

	if (c != l->santad)
		return;
	link_fail(l, reason ? reason : "santad closed the connection", err);
}

static void link_santad_ready(ipc_conn *c, int err, void *userdata)
{
	link_state *l = userdata;
	int r;

	if (c != l->santad || l->phase != LINK_CONNECTING)
		return;
	if (err < 0) {
		link_fail(l, "handshake", err);
		return;
	}
	r = link_register(l);
	if (r < 0)
		link_fail(l, "registering the notifier endpoint", r);
}

static void link_connect(link_state *l)
{
	ipc_conn_opts opts = {
		.accept_roles = LINK_SANTAD,
		.on_close = link_santad_closed,
		.userdata = l,
	};
	int r;

	l->phase = LINK_CONNECTING;
	r = ipc_connect(l->a->ev, l->a->santad_path, l->a->trust, &santa__santad__descriptor,
			&opts, link_santad_ready, &l->santad);
	if (r < 0)
		link_fail(l, "connecting", r);
}

static int link_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	link_state *l = userdata;

	l->timer = sd_event_source_disable_unref(l->timer);
	link_connect(l);
	return 0;
}

static void link_schedule(link_state *l, uint64_t usec)
{
	int r;

	l->timer = sd_event_source_disable_unref(l->timer);
	r = sd_event_add_time_relative(l->a->ev, &l->timer, CLOCK_MONOTONIC, usec, 0,
				       link_retry, l);
	if (r < 0)
		log_error_errno(r, "Scheduling the reconnection to santad failed; "
			       "notifications stop until santagui restarts");
}

int link_start(app *a)
{
	link_state *l;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->a = a;
	l->remote_fd = -1;
	l->retry_usec = LINK_RETRY_MIN_USEC;
	l->set_listener = link_method(&santa__santad__descriptor, "SetNotificationListener");
	l->sync_bundle = link_method(&santa__santad__descriptor, "SyncBundleEvent");
	if (l->set_listener == UINT32_MAX || l->sync_bundle == UINT32_MAX) {
		free(l);
		return -EPROTO;
	}
	a->link = l;
	link_connect(l);
	return 0;
}

link_state *link_free(link_state *l)
{
	if (!l)
		return NULL;
	link_teardown(l);
	sd_event_source_disable_unref(l->timer);
	free(l);
	return NULL;
}

bool link_registered(const link_state *l)
{
	return l && l->phase == LINK_REGISTERED;
}

static void link_synced(ipc_conn *c, int err, const char *errmsg,
			const ProtobufCMessage *reply, void *userdata)
{
	if (err < 0)
		log_warning("Handing the bundle results to santad failed: %s%s%s, dropped",
			    ipc_strerror(err), errmsg ? ": " : "", errmsg ? errmsg : "");
	else
		log_info("Handed the bundle results to santad");
}

int link_sync_bundle_event(link_state *l, Santa__Event **events, size_t n)
{
	Santa__EventList list = SANTA__EVENT_LIST__INIT;

	if (!l || !l->santad || l->phase != LINK_REGISTERED)
		return -ENOTCONN;
	list.events = events;
	list.n_events = n;
	return ipc_call_async(l->santad, l->sync_bundle, &list.base, -1, LINK_CALL_USEC,
			      link_synced, l);
}
