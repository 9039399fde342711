/* SPDX-License-Identifier: Apache-2.0 */
#include "gui.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <systemd/sd-login.h>

#include "daemon.h"
#include "eventlog.h"
#include "log.h"
#include "notifier.pb-c.h"
#include "sha256.h"
#include "synclink.h"

#define GUI_CALL_USEC 10000000u
#define GUI_STR_MAX PATH_MAX
#define GUI_ROLE IPC_ROLE_BIT(IPC_ROLE_GUI)
#define GUI_ANYONE (-2L)          /* a note any active GUI may show */
#define GUI_DEFAULT_UNKNOWN "The following application has been blocked from executing<br />" \
	"because its trustworthiness cannot be determined."
#define GUI_DEFAULT_BANNED "The following application has been blocked from executing<br />" \
	"because it has been deemed malicious."

/* The notifier's method indexes, in proto/notifier.proto's order. */
enum {
	GUI_M_BLOCK = 0,
	GUI_M_MODE = 1,
	GUI_M_RULE_SYNC = 2,
};

/* A notification waiting for, or on its way to, a GUI: the method and
 * the packed message, so that a queued one owns one allocation. */
typedef struct gui_note {
	unsigned method;
	long uid;                  /* a block's user (gui_target), or GUI_ANYONE */
	uint8_t *packed;
	size_t len;
	struct gui_note *next;
} gui_note;

/* A block handed over by the recorder thread, not yet built. */
typedef struct gui_inbox_item {
	gui_block_info info;       /* strings owned */
	struct gui_inbox_item *next;
} gui_inbox_item;

/* A block santad asked a GUI to hash the bundle of. */
typedef struct gui_pending {
	Santa__Event *event;       /* santad's own copy, unpacked */
	char *path;
	long uid;                  /* the blocked process's */
	uint64_t expires_usec;
	struct gui_pending *next;
} gui_pending;

typedef struct gui_client {
	gui *g;
	ipc_conn *conn;            /* santad -> the GUI's notifier endpoint */
	ipc_peer peer;             /* the GUI that registered it */
	char *session;             /* logind session, or NULL */
	bool seated;               /* the session is on a seat (not ssh) */
	uint64_t seq;              /* registration order */
	bool ready;
	struct gui_client *next;
} gui_client;

struct gui {
	santad *d;
	sd_event *ev;
	const ipc_trust *trust;
	gui_client *clients;
	size_t n_clients;
	gui_client *active;
	bool console;              /* active is the GUI of a seat's session */
	uint64_t next_seq;
	bool logind;
	sd_login_monitor *monitor;
	sd_event_source *monitor_src;
	/* Waiting for an active GUI, oldest first. */
	gui_note *queue_head, *queue_tail;
	size_t n_queued;
	uint32_t dropped_since;    /* told to the GUI with the next one */
	uint64_t dropped_total;
	gui_pending *pending;
	size_t n_pending;
	/* From the recorder thread. */
	pthread_mutex_t inbox_lock;
	gui_inbox_item *inbox_head, *inbox_tail;
	size_t n_inbox;
	uint64_t inbox_dropped;
	int efd;
	sd_event_source *efd_src;
	char serial[128];
	char uuid[64];
	void (*count_hook)(uint64_t n_clients);
};

static void gui_elect(gui *g);
static bool gui_client_eligible(const gui *g, const gui_client *c);

static void gui_count_changed(gui *g)
{
	if (g->count_hook)
		g->count_hook(g->n_clients);
}

static uint64_t gui_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* --- The queue of notifications --- */

static void gui_note_free(gui_note *n)
{
	if (!n)
		return;
	free(n->packed);
	free(n);
}

static gui_note *gui_note_new(unsigned method, long uid, const ProtobufCMessage *m)
{
	gui_note *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->method = method;
	n->uid = uid;
	n->len = protobuf_c_message_get_packed_size(m);
	n->packed = malloc(n->len ? n->len : 1);
	if (!n->packed) {
		free(n);
		return NULL;
	}
	protobuf_c_message_pack(m, n->packed);
	return n;
}

/* Drop the oldest queued note: of UID, or of anyone when ANY. */
static void gui_drop_oldest(gui *g, bool any, long uid)
{
	gui_note *prev = NULL;

	for (gui_note **pp = &g->queue_head; *pp; prev = *pp, pp = &(*pp)->next) {
		gui_note *old = *pp;

		if (!any && old->uid != uid)
			continue;
		*pp = old->next;
		if (g->queue_tail == old)
			g->queue_tail = prev;
		g->n_queued--;
		gui_note_free(old);
		g->dropped_since++;
		g->dropped_total++;
		return;
	}
}

/* Queue N. One user's notes take at most GUI_QUEUE_PER_UID places, so that
 * a user who makes many blocks with no GUI of theirs to show them cannot
 * push other users' notes out; past that, or past GUI_QUEUE_MAX, the
 * oldest goes. */
static void gui_enqueue(gui *g, gui_note *n)
{
	size_t mine = 0;

	for (gui_note *q = g->queue_head; q; q = q->next)
		mine += q->uid == n->uid;
	if (mine >= GUI_QUEUE_PER_UID)
		gui_drop_oldest(g, false, n->uid);
	else if (g->n_queued >= GUI_QUEUE_MAX)
		gui_drop_oldest(g, true, 0);
	n->next = NULL;
	if (g->queue_tail)
		g->queue_tail->next = n;
	else
		g->queue_head = n;
	g->queue_tail = n;
	g->n_queued++;
}

static const ProtobufCMessageDescriptor *gui_note_desc(unsigned method)
{
	return santa__notifier__descriptor.methods[method].input;
}

/* The dropped count travels in the message itself: set it on the copy
 * that goes out. */
static void gui_set_dropped(ProtobufCMessage *m, unsigned method, uint32_t dropped)
{
	if (method == GUI_M_BLOCK)
		((Santa__BlockNotification *)m)->dropped_before = dropped;
	else if (method == GUI_M_MODE)
		((Santa__ClientModeNotification *)m)->dropped_before = dropped;
	else
		((Santa__RuleSyncNotification *)m)->dropped_before = dropped;
}

typedef struct gui_sending {
	gui *g;
	gui_note *note;
} gui_sending;

static void gui_delivered(ipc_conn *c, int err, const char *errmsg,
			  const ProtobufCMessage *reply, void *userdata)
{
	gui_sending *s = userdata;
	gui *g = s->g;

	if (err < 0) {
		/* Keep it for whichever GUI is active next. */
		log_debug("Delivering a notification to a GUI failed: %s%s%s; queued again",
			  ipc_strerror(err), errmsg ? ": " : "", nz(errmsg));
		if (g)
			gui_enqueue(g, s->note);
		else
			gui_note_free(s->note);
	} else {
		gui_note_free(s->note);
	}
	free(s);
}

/* The GUI a note for UID goes to: the newest GUI of that user's own (with
 * logind, in an active session); else the GUI of the user at the console
 * (a seat's active session), who sees every block, as on macOS. Nobody
 * else: a user's GUI never shows another user's programs, unless it is at
 * the console. Notes for anyone (mode changes, rule syncs) go to the
 * active GUI. NULL: the note waits. */
static gui_client *gui_target(const gui *g, long uid)
{
	gui_client *best = NULL;

	if (uid == GUI_ANYONE)
		return g->active;
	for (gui_client *c = g->clients; c; c = c->next)
		if ((long)c->peer.uid == uid && gui_client_eligible(g, c) &&
		    (!best || c->seq > best->seq))
			best = c;
	return best ? best : g->console ? g->active : NULL;
}

/* Send N to the GUI C; the note is the callback's until it is done. */
static int gui_send(gui *g, gui_client *c, gui_note *n)
{
	const ProtobufCMessageDescriptor *desc = gui_note_desc(n->method);
	ProtobufCMessage *m;
	gui_sending *s;
	int r;

	m = protobuf_c_message_unpack(desc, NULL, n->len, n->packed);
	s = calloc(1, sizeof(*s));
	if (!m || !s) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		free(s);
		return -ENOMEM;
	}
	gui_set_dropped(m, n->method, g->dropped_since);
	s->g = g;
	s->note = n;
	r = ipc_call_async(c->conn, n->method, m, -1, GUI_CALL_USEC, gui_delivered, s);
	protobuf_c_message_free_unpacked(m, NULL);
	if (r < 0) {
		free(s);
		return r;
	}
	g->dropped_since = 0;
	return 0;
}

/* Send every queued note that has a GUI to go to, oldest first; the
 * others keep their places. */
static void gui_flush(gui *g)
{
	gui_note *prev = NULL;

	for (gui_note **pp = &g->queue_head; *pp;) {
		gui_note *n = *pp;
		gui_client *c = gui_target(g, n->uid);

		if (!c) {
			prev = n;
			pp = &n->next;
			continue;
		}
		*pp = n->next;
		if (g->queue_tail == n)
			g->queue_tail = prev;
		g->n_queued--;
		if (gui_send(g, c, n) < 0) {
			/* Back in its place; tried again on the next change. */
			n->next = *pp;
			*pp = n;
			if (!n->next)
				g->queue_tail = n;
			g->n_queued++;
			return;
		}
	}
}

static void gui_post(gui *g, unsigned method, long uid, const ProtobufCMessage *m)
{
	gui_note *n = gui_note_new(method, uid, m);

	if (!n) {
		g->dropped_since++;
		g->dropped_total++;
		return;
	}
	gui_enqueue(g, n);
	gui_flush(g);
}

/* --- Building notifications --- */

static const char *gui_block_decision(santad_reason r)
{
	switch (r) {
	case SANTAD_REASON_BINARY: return "BLOCK_BINARY";
	case SANTAD_REASON_CERT: return "BLOCK_CERTIFICATE";
	case SANTAD_REASON_TEAMID: return "BLOCK_TEAMID";
	case SANTAD_REASON_SIGNINGID: return "BLOCK_SIGNINGID";
	case SANTAD_REASON_CDHASH: return "BLOCK_CDHASH";
	case SANTAD_REASON_SCOPE: return "BLOCK_SCOPE";
	default: return "BLOCK_UNKNOWN";
	}
}

static void gui_fill_event(const gui_block_info *b, Santa__Event *e, char *dir, size_t size)
{
	const char *slash = strrchr(b->path, '/');

	snprintf(dir, size, "%.*s", slash && slash != b->path ? (int)(slash - b->path) : 1,
		 b->path);
	e->file_sha256 = (char *)nz(b->sha256);
	e->file_path = dir;
	e->file_name = (char *)(slash ? slash + 1 : b->path);
	e->executing_user = (char *)nz(b->user);
	e->execution_time = b->when;
	e->decision = (char *)gui_block_decision(b->reason);
	e->pid = b->pid;
	e->ppid = b->ppid;
	e->parent_name = (char *)nz(b->parent_name);
	e->custom_msg = (char *)nz(b->custom_msg);
	e->custom_url = (char *)nz(b->custom_url);
}

static void gui_pending_free(gui_pending *p)
{
	if (!p)
		return;
	if (p->event)
		protobuf_c_message_free_unpacked(&p->event->base, NULL);
	free(p->path);
	free(p);
}

static Santa__Event *gui_event_copy(const Santa__Event *e)
{
	size_t len = protobuf_c_message_get_packed_size(&e->base);
	uint8_t *buf = malloc(len ? len : 1);
	Santa__Event *copy;

	if (!buf)
		return NULL;
	protobuf_c_message_pack(&e->base, buf);
	copy = (Santa__Event *)protobuf_c_message_unpack(&santa__event__descriptor, NULL, len, buf);
	free(buf);
	return copy;
}

/* Forget the expired, and the oldest beyond the limit (newest are first). */
static void gui_prune_pending(gui *g, size_t keep)
{
	uint64_t now = gui_now_usec();
	size_t n = 0;

	for (gui_pending **pp = &g->pending; *pp;) {
		gui_pending *p = *pp;

		if (p->expires_usec > now && n < keep) {
			n++;
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		gui_pending_free(p);
		g->n_pending--;
	}
}

static void gui_remember_pending(gui *g, const Santa__Event *e, const char *path, long uid)
{
	gui_pending *p;

	gui_prune_pending(g, GUI_MAX_PENDING - 1);
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->event = gui_event_copy(e);
	p->path = strdup(path);
	if (!p->event || !p->path) {
		gui_pending_free(p);
		return;
	}
	p->uid = uid;
	p->expires_usec = gui_now_usec() + GUI_PENDING_USEC;
	p->next = g->pending;
	g->pending = p;
	g->n_pending++;
}

static void gui_build_block(gui *g, const gui_block_info *b)
{
	const santa_config *cfg = santad_config(g->d);
	Santa__BlockNotification n = SANTA__BLOCK_NOTIFICATION__INIT;
	Santa__Event e = SANTA__EVENT__INIT;
	Santa__Rule rule = SANTA__RULE__INIT;
	bool by_rule = b->reason != SANTAD_REASON_UNKNOWN;
	char dir[PATH_MAX], host[256] = "";

	if (cfg->enable_silent_mode)
		return;
	gui_fill_event(b, &e, dir, sizeof(dir));
	if (b->rule_identifier || b->reason == SANTAD_REASON_BINARY) {
		rule.identifier = (char *)(b->rule_identifier ? b->rule_identifier : nz(b->sha256));
		rule.rule_type = b->rule_type ? b->rule_type : SANTA__RULE_TYPE__BINARY;
		rule.policy = b->rule_policy ? b->rule_policy : SANTA__POLICY__BLOCKLIST;
		n.rule = &rule;
	}
	gethostname(host, sizeof(host) - 1);
	n.event = &e;
	n.reason = (char *)santad_reason_name(b->reason);
	n.message = (char *)(b->custom_msg && b->custom_msg[0] ? b->custom_msg
		    : by_rule ? (cfg->banned_block_message ? cfg->banned_block_message
							   : GUI_DEFAULT_BANNED)
		    : (cfg->unknown_block_message ? cfg->unknown_block_message
						  : GUI_DEFAULT_UNKNOWN));
	n.url_template = (char *)(b->custom_url && b->custom_url[0] ? b->custom_url
								   : nz(cfg->event_detail_url));
	n.detail_text = (char *)nz(cfg->event_detail_text);
	n.machine_id = (char *)nz(cfg->machine_id);
	n.hostname = host;
	n.serial = g->serial;
	n.uuid = g->uuid;
	n.needs_bundle_hash = santad_bundles_enabled(g->d) && b->sha256;
	n.raised_at = b->when;
	if (n.needs_bundle_hash)
		gui_remember_pending(g, &e, b->path, b->uid);
	gui_post(g, GUI_M_BLOCK, b->uid, &n.base);
}

void gui_post_client_mode(gui *g, santa_client_mode mode)
{
	Santa__ClientModeNotification n = SANTA__CLIENT_MODE_NOTIFICATION__INIT;
	const santa_config *cfg;
	struct timespec ts;

	if (!g || (cfg = santad_config(g->d))->enable_silent_mode)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n.mode = mode == SANTA_MODE_LOCKDOWN ? SANTA__CLIENT_MODE__LOCKDOWN
					     : SANTA__CLIENT_MODE__MONITOR;
	n.message = (char *)nz(mode == SANTA_MODE_LOCKDOWN ? cfg->mode_notification_lockdown
							   : cfg->mode_notification_monitor);
	n.raised_at = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	gui_post(g, GUI_M_MODE, GUI_ANYONE, &n.base);
}

void gui_post_rule_sync(gui *g, const char *message)
{
	Santa__RuleSyncNotification n = SANTA__RULE_SYNC_NOTIFICATION__INIT;
	struct timespec ts;

	if (!g || santad_config(g->d)->enable_silent_mode)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n.message = (char *)nz(message);
	n.raised_at = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	gui_post(g, GUI_M_RULE_SYNC, GUI_ANYONE, &n.base);
}

/* --- Blocks from the recorder thread --- */

static void gui_inbox_item_free(gui_inbox_item *it)
{
	if (!it)
		return;
	free((char *)it->info.path);
	free((char *)it->info.sha256);
	free((char *)it->info.custom_msg);
	free((char *)it->info.custom_url);
	free((char *)it->info.rule_identifier);
	free((char *)it->info.user);
	free((char *)it->info.parent_name);
	free(it);
}

static char *gui_dup(const char *s, bool *failed)
{
	char *d;

	if (!s)
		return NULL;
	d = strndup(s, GUI_STR_MAX);
	if (!d)
		*failed = true;
	return d;
}

void gui_post_block(gui *g, const gui_block_info *b)
{
	gui_inbox_item *it;
	bool failed = false;
	uint64_t one = 1;

	if (!g || !b->path)
		return;
	it = calloc(1, sizeof(*it));
	if (!it)
		return;
	it->info = *b;
	it->info.path = gui_dup(b->path, &failed);
	it->info.sha256 = gui_dup(b->sha256, &failed);
	it->info.custom_msg = gui_dup(b->custom_msg, &failed);
	it->info.custom_url = gui_dup(b->custom_url, &failed);
	it->info.rule_identifier = gui_dup(b->rule_identifier, &failed);
	it->info.user = gui_dup(b->user, &failed);
	it->info.parent_name = gui_dup(b->parent_name, &failed);

	pthread_mutex_lock(&g->inbox_lock);
	if (failed || g->n_inbox >= GUI_INBOX_MAX) {
		g->inbox_dropped++;
		pthread_mutex_unlock(&g->inbox_lock);
		gui_inbox_item_free(it);
		return;
	}
	if (g->inbox_tail)
		g->inbox_tail->next = it;
	else
		g->inbox_head = it;
	g->inbox_tail = it;
	g->n_inbox++;
	pthread_mutex_unlock(&g->inbox_lock);
	(void)!write(g->efd, &one, sizeof(one));
}

static int gui_on_inbox(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	gui *g = userdata;
	gui_inbox_item *it;
	uint64_t n, lost;

	(void)!read(fd, &n, sizeof(n));
	pthread_mutex_lock(&g->inbox_lock);
	it = g->inbox_head;
	g->inbox_head = g->inbox_tail = NULL;
	g->n_inbox = 0;
	lost = g->inbox_dropped;
	g->inbox_dropped = 0;
	pthread_mutex_unlock(&g->inbox_lock);

	g->dropped_since += (uint32_t)lost;
	g->dropped_total += lost;
	while (it) {
		gui_inbox_item *next = it->next;

		gui_build_block(g, &it->info);
		gui_inbox_item_free(it);
		it = next;
	}
	return 0;
}

/* --- Registrations and the active GUI --- */

static bool gui_client_eligible(const gui *g, const gui_client *c)
{
	if (!c->ready)
		return false;
	if (!g->logind)
		return true;
	return c->session && sd_session_is_active(c->session) > 0;
}

/* The active GUI: the newest eligible one at a seat, else the newest
 * eligible one; then whatever waited for a GUI that is now there. */
static void gui_elect(gui *g)
{
	gui_client *best = NULL;
	char who[200];

	for (gui_client *c = g->clients; c; c = c->next)
		if (gui_client_eligible(g, c) &&
		    (!best || c->seated > best->seated ||
		     (c->seated == best->seated && c->seq > best->seq)))
			best = c;
	if (best != g->active) {
		g->active = best;
		if (best)
			log_info("The GUI of %s%s%s is now the active one%s",
				 ipc_peer_describe(&best->peer, who, sizeof(who)),
				 best->session ? ", session " : "", nz(best->session),
				 best->seated ? ", at the console" : "");
		else
			log_info("No GUI is active now; notifications are queued");
	}
	g->console = best && best->seated;
	gui_flush(g);
}

static void gui_client_free(gui_client *c)
{
	ipc_conn *conn;

	if (!c)
		return;
	conn = c->conn;
	c->conn = NULL;
	if (conn) {
		ipc_conn_close(conn);
		ipc_conn_unref(conn);
	}
	free(c->session);
	free(c);
}

static void gui_client_remove(gui *g, gui_client *c)
{
	for (gui_client **pp = &g->clients; *pp; pp = &(*pp)->next) {
		if (*pp != c)
			continue;
		*pp = c->next;
		g->n_clients--;
		gui_count_changed(g);
		break;
	}
	if (g->active == c)
		g->active = NULL;
	gui_client_free(c);
	gui_elect(g);
}

static void gui_client_closed(ipc_conn *conn, int err, const char *reason, void *userdata)
{
	gui_client *c = userdata;
	char who[200];

	if (!c || c->conn != conn)
		return;
	log_info("The GUI of %s went away: %s", ipc_peer_describe(&c->peer, who, sizeof(who)),
		 nz(reason));
	gui_client_remove(c->g, c);
}

static void gui_client_ready(ipc_conn *conn, int err, void *userdata)
{
	gui_client *c = userdata;
	char who[200];

	if (!c || c->conn != conn || err < 0)
		return;   /* a failure also closes: gui_client_closed */
	c->ready = true;
	log_info("Connected to the notifier of %s", ipc_peer_describe(&c->peer, who, sizeof(who)));
	gui_elect(c->g);
}

/* Make room: a user's newest GUI replaces its oldest, and the total is
 * bounded. */
static int gui_make_room(gui *g, uid_t uid)
{
	gui_client *oldest_uid = NULL;
	size_t n_uid = 0;

	for (gui_client *c = g->clients; c; c = c->next) {
		if (c->peer.uid != uid)
			continue;
		n_uid++;
		if (!oldest_uid || c->seq < oldest_uid->seq)
			oldest_uid = c;
	}
	if (n_uid >= GUI_MAX_PER_UID)
		gui_client_remove(g, oldest_uid);
	else if (g->n_clients >= GUI_MAX_CLIENTS)
		return -ENOBUFS;
	return 0;
}

void gui_set_listener(gui *g, ipc_call *call)
{
	Santa__Empty empty = SANTA__EMPTY__INIT;
	const ipc_peer *peer = ipc_call_peer(call);
	ipc_conn_opts opts = { .accept_roles = GUI_ROLE, .on_close = gui_client_closed };
	int fd = ipc_call_take_fd(call);
	gui_client *c = NULL;
	char who[200];
	int r;

	if (fd < 0) {
		ipc_call_fail(call, IPC_E_INVALID, "SetNotificationListener: no endpoint attached");
		return;
	}
	r = gui_make_room(g, peer->uid);
	if (r < 0 || !(c = calloc(1, sizeof(*c)))) {
		close(fd);
		ipc_call_fail(call, IPC_E_LIMIT, "SetNotificationListener: too many GUIs");
		return;
	}
	c->g = g;
	c->peer = *peer;
	c->seq = ++g->next_seq;
	if (g->logind && sd_pid_get_session(peer->pid, &c->session) < 0)
		c->session = NULL;
	/* A session is the GUI's only when it is its user's: a GUI left
	 * behind by `su - USER` in the console user's session, or a pid
	 * reused since the GUI connected, has none, and shows nothing. */
	if (c->session) {
		uid_t owner;

		if (sd_session_get_uid(c->session, &owner) < 0 || owner != peer->uid) {
			free(c->session);
			c->session = NULL;
		}
	}
	if (c->session) {
		char *seat = NULL;

		c->seated = sd_session_get_seat(c->session, &seat) >= 0 && seat && *seat;
		free(seat);
	}
	opts.userdata = c;
	r = ipc_endpoint_connect(g->ev, fd, peer, g->trust, &santa__notifier__descriptor, &opts,
				 gui_client_ready, &c->conn);
	if (r < 0) {
		free(c->session);
		free(c);
		ipc_call_fail(call, r, "SetNotificationListener: connecting to the endpoint: %s",
			      ipc_strerror(r));
		return;
	}
	c->next = g->clients;
	g->clients = c;
	g->n_clients++;
	gui_count_changed(g);
	log_info("Registered the GUI of %s%s%s", ipc_peer_describe(peer, who, sizeof(who)),
		 c->session ? ", session " : "", nz(c->session));
	ipc_call_reply(call, &empty.base);
}

static int gui_on_logind(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	gui *g = userdata;

	sd_login_monitor_flush(g->monitor);
	gui_elect(g);
	return 0;
}

/* --- Bundle results --- */

/* The bundle request for E, when the GUI of CALLER_UID may answer it: the
 * blocked user's, or the console's (gui_target). */
static gui_pending *gui_take_pending(gui *g, const Santa__Event *e, uid_t caller_uid)
{
	char path[PATH_MAX];
	uint64_t now = gui_now_usec();

	if (!e->file_path || !e->file_name || !e->file_sha256)
		return NULL;
	snprintf(path, sizeof(path), "%s%s%s", e->file_path,
		 strcmp(e->file_path, "/") ? "/" : "", e->file_name);
	for (gui_pending **pp = &g->pending; *pp; pp = &(*pp)->next) {
		gui_pending *p = *pp;

		if (p->expires_usec <= now || strcmp(p->path, path) != 0 ||
		    strcmp(p->event->file_sha256, e->file_sha256) != 0)
			continue;
		if ((long)caller_uid != p->uid &&
		    !(g->console && g->active->peer.uid == caller_uid))
			continue;
		*pp = p->next;
		g->n_pending--;
		return p;
	}
	return NULL;
}

static bool gui_hex64(const char *s)
{
	uint8_t tmp[SANTA_SHA256_LEN];

	return s && strlen(s) == SANTA_SHA256_HEX_LEN && santa_sha256_from_hex(s, tmp) == 0;
}

static int gui_casecmp(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* The bundle hash of the related events: SHA-256 over their hex hashes,
 * sorted case-insensitively and concatenated (see santabundleservice). */
static int gui_bundle_hash(Santa__Event *const *ev, size_t n, char out[SANTA_SHA256_HEX_LEN + 1])
{
	uint8_t digest[SANTA_SHA256_LEN];
	const char **hs = calloc(n ? n : 1, sizeof(*hs));
	char *cat = malloc(n * SANTA_SHA256_HEX_LEN + 1);
	int r = 0;

	if (!hs || !cat) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		hs[i] = ev[i]->file_sha256;
	qsort(hs, n, sizeof(*hs), gui_casecmp);
	for (size_t i = 0; i < n; i++)
		memcpy(cat + i * SANTA_SHA256_HEX_LEN, hs[i], SANTA_SHA256_HEX_LEN);
	if (!EVP_Digest(cat, n * SANTA_SHA256_HEX_LEN, digest, NULL, EVP_sha256(), NULL))
		r = -EIO;
	else
		santa_hex(digest, sizeof(digest), out);
out:
	free(hs);
	free(cat);
	return r;
}

static bool gui_str_ok(const char *s)
{
	return !s || strnlen(s, GUI_STR_MAX + 1) <= GUI_STR_MAX;
}

static const char *gui_check_related(const Santa__EventList *el, const char *hash)
{
	char want[SANTA_SHA256_HEX_LEN + 1];

	for (size_t i = 1; i < el->n_events; i++) {
		const Santa__Event *e = el->events[i];

		if (!e->decision || strcmp(e->decision, "BUNDLE_BINARY") != 0)
			return "a related event is not a BUNDLE_BINARY event";
		if (!gui_hex64(e->file_sha256))
			return "a related event has no SHA-256";
		if (!gui_str_ok(e->file_path) || !gui_str_ok(e->file_name) ||
		    !gui_str_ok(e->file_bundle_path) || !gui_str_ok(e->file_bundle_id) ||
		    !gui_str_ok(e->file_bundle_name) ||
		    !gui_str_ok(e->file_bundle_executable_rel_path))
			return "a related event has an overlong string";
		if (!e->file_bundle_hash || strcasecmp(e->file_bundle_hash, hash) != 0)
			return "a related event names another bundle";
	}
	if (gui_bundle_hash(el->events + 1, el->n_events - 1, want) < 0 ||
	    strcasecmp(want, hash) != 0)
		return "the related events do not hash to the bundle hash";
	return NULL;
}

/* The event file's whole path; the sync protocol splits it in two. */
static void gui_event_path(const Santa__Event *e, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", nz(e->file_path),
		 e->file_path && strcmp(e->file_path, "/") ? "/" : "", nz(e->file_name));
}

/* The event log's action=BUNDLE lines, one per executable of the bundle as
 * the original writes them, through the recorder: in order with every
 * other line, in the log the administrator chose, never waiting. */
static void gui_log_bundle(gui *g, const Santa__EventList *el)
{
	char path[2 * PATH_MAX + 2];
	size_t dropped = 0;

	for (size_t i = 1; i < el->n_events; i++) {
		const Santa__Event *e = el->events[i];
		eventlog_field f[] = {
			{ "action", "BUNDLE" },
			{ "sha256", e->file_sha256 },
			{ "bundlehash", e->file_bundle_hash },
			{ "bundlename", e->file_bundle_name },
			{ "bundleid", e->file_bundle_id },
			{ "bundlepath", e->file_bundle_path },
			{ "path", path },
		};

		gui_event_path(e, path, sizeof(path));
		if (!recorder_log_line(g->d->rec, f, sizeof(f) / sizeof(f[0])))
			dropped++;
	}
	if (dropped)
		log_warning("The event log's queue is full: %zu of %zu BUNDLE lines dropped",
			    dropped, el->n_events - 1);
}

static void gui_stamp(Santa__Event *mine, const Santa__Event *theirs)
{
	/* Strings of MINE were unpacked by protobuf-c: replace them with
	 * copies it will free the same way (the default allocator). */
	char **fields[] = { &mine->file_bundle_id, &mine->file_bundle_path,
			    &mine->file_bundle_executable_rel_path, &mine->file_bundle_name,
			    &mine->file_bundle_version, &mine->file_bundle_version_string,
			    &mine->file_bundle_hash };
	const char *values[] = { theirs->file_bundle_id, theirs->file_bundle_path,
				 theirs->file_bundle_executable_rel_path,
				 theirs->file_bundle_name, theirs->file_bundle_version,
				 theirs->file_bundle_version_string, theirs->file_bundle_hash };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *copy = strdup(nz(values[i]));

		if (!copy)
			continue;
		if (*fields[i] != protobuf_c_empty_string)
			free(*fields[i]);
		*fields[i] = copy;
	}
	mine->file_bundle_hash_millis = theirs->file_bundle_hash_millis;
	mine->file_bundle_binary_count = (uint32_t)theirs->file_bundle_binary_count;
}

/* Store the block's event with its bundle fields in place of the one
 * stored at the block (the original replaces it too), and the bundle's
 * executables once each; then hand the block to the sync service at once,
 * as at the block. */
static void gui_store_bundle(gui *g, Santa__Event *mine, const Santa__EventList *el)
{
	santad *d = g->d;
	size_t dropped = 0, n = el->n_events;
	Santa__Event *stored = NULL, *block = mine;
	Santa__Event **all;
	int r;

	if (!d->events)
		return;   /* no sync server: events are not kept */
	/* The recorder hands santad a block's event before it shows the block:
	 * store whatever still waits, so that the block's is found. */
	santad_store_events(d);
	r = eventdb_find(d->events, mine, &stored);
	if (r < 0)
		log_warning_errno(r, "Looking up the stored event of '%s/%s' failed; storing "
				  "the bundle's version as a new one", mine->file_path,
				  mine->file_name);
	if (stored) {
		/* Keep what the recorder knew (sessions, users) and add the
		 * bundle. */
		gui_stamp(stored, mine);
		block = stored;
	}
	all = calloc(n, sizeof(*all));
	if (!all) {
		santa__event__free_unpacked(stored, NULL);
		return;
	}
	all[0] = block;
	memcpy(all + 1, el->events + 1, (n - 1) * sizeof(*all));
	r = eventdb_replace(d->events, all, n, &dropped);
	if (r < 0) {
		dropped = n;
		log_warning_errno(r, "Storing %zu bundle events failed, dropping them", n);
	}
	atomic_fetch_add(&d->counters.events_stored, n - dropped);
	atomic_fetch_add(&d->counters.events_dropped, dropped);
	if (r == 0 && block->id > 0)
		synclink_post_events(d->sync_link, &block, 1);
	free(all);
	santa__event__free_unpacked(stored, NULL);
}

void gui_sync_bundle_event(gui *g, ipc_call *call, const Santa__EventList *el)
{
	Santa__Empty empty = SANTA__EMPTY__INIT;
	const Santa__Event *first = el->n_events ? el->events[0] : NULL;
	const char *why = NULL;
	gui_pending *p = NULL;
	char who[200];

	ipc_peer_describe(ipc_call_peer(call), who, sizeof(who));
	if (!first || !gui_hex64(first->file_bundle_hash))
		why = "the first event has no bundle hash";
	else if (!(p = gui_take_pending(g, first, ipc_call_peer(call)->uid)))
		why = "santad asked for no bundle of that file";
	else if (first->file_bundle_binary_count != el->n_events - 1)
		why = "the binary count does not match the related events";
	else
		why = gui_check_related(el, first->file_bundle_hash);
	if (why) {
		log_warning("Refusing the bundle events of %s: %s", who, why);
		ipc_call_fail(call, IPC_E_INVALID, "SyncBundleEvent: %s", why);
		gui_pending_free(p);
		return;
	}

	gui_stamp(p->event, first);
	gui_log_bundle(g, el);
	gui_store_bundle(g, p->event, el);
	log_info("Recorded the bundle '%s' (%s, %zu %s) of '%s' from %s",
		 nz(first->file_bundle_name), first->file_bundle_hash, el->n_events - 1,
		 log_plural(el->n_events - 1, "executable", "executables"), p->path, who);
	gui_pending_free(p);
	ipc_call_reply(call, &empty.base);
}

/* --- Life --- */

static void gui_read_dmi(const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/sys/class/dmi/id/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* logind runs and manages seats: it lists at least one (seat0 on any
 * machine with a display). An image may ship the directory empty, and a
 * headless logind has no seat where a GUI could be active. */
static bool gui_logind_has_seats(void)
{
	char **seats = NULL;
	int n = sd_get_seats(&seats);

	for (int i = 0; i < n; i++)
		free(seats[i]);
	free(seats);
	return n > 0;
}

static int gui_watch_logind(gui *g)
{
	int r;

	g->logind = gui_logind_has_seats();
	if (!g->logind)
		return 0;
	r = sd_login_monitor_new("session", &g->monitor);
	if (r >= 0)
		r = sd_event_add_io(g->ev, &g->monitor_src, sd_login_monitor_get_fd(g->monitor),
				    (uint32_t)sd_login_monitor_get_events(g->monitor),
				    gui_on_logind, g);
	return r;
}

int gui_new(santad *d, sd_event *ev, const ipc_trust *trust, gui **ret)
{
	gui *g = calloc(1, sizeof(*g));
	int r;

	if (!g)
		return -ENOMEM;
	g->d = d;
	g->ev = ev;
	g->trust = trust;
	pthread_mutex_init(&g->inbox_lock, NULL);
	gui_read_dmi("product_serial", g->serial, sizeof(g->serial));
	gui_read_dmi("product_uuid", g->uuid, sizeof(g->uuid));
	g->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = g->efd < 0 ? -errno : sd_event_add_io(ev, &g->efd_src, g->efd, EPOLLIN,
						 gui_on_inbox, g);
	if (r >= 0)
		r = gui_watch_logind(g);
	if (r < 0) {
		gui_free(g);
		return r;
	}
	log_info("Waiting for GUIs: a block goes to its user's GUI%s",
		 g->logind ? " (in an active session), else to the one at the console" :
		 " (no logind: no GUI is at the console)");
	*ret = g;
	return 0;
}

gui *gui_free(gui *g)
{
	gui_inbox_item *it;
	gui_client *c;
	gui_note *n;
	gui_pending *p;

	if (!g)
		return NULL;
	g->active = NULL;
	while ((c = g->clients)) {
		g->clients = c->next;
		gui_client_free(c);
	}
	while ((n = g->queue_head)) {
		g->queue_head = n->next;
		gui_note_free(n);
	}
	while ((p = g->pending)) {
		g->pending = p->next;
		gui_pending_free(p);
	}
	while ((it = g->inbox_head)) {
		g->inbox_head = it->next;
		gui_inbox_item_free(it);
	}
	sd_event_source_disable_unref(g->efd_src);
	sd_event_source_disable_unref(g->monitor_src);
	sd_login_monitor_unref(g->monitor);
	if (g->efd > 0)
		close(g->efd);
	pthread_mutex_destroy(&g->inbox_lock);
	free(g);
	return NULL;
}

void gui_set_count_hook(gui *g, void (*hook)(uint64_t n_clients))
{
	if (!g)
		return;
	g->count_hook = hook;
	gui_count_changed(g);
}

size_t gui_client_count(const gui *g)
{
	return g ? g->n_clients : 0;
}

uint64_t gui_dropped_count(const gui *g)
{
	return g ? g->dropped_total : 0;
}
