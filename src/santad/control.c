/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's control service (see control.h).
 *
 * control_methods[] is the whole access policy: per method, its handler,
 * whether it is privileged (root peers only) and which roles may call it.
 * The IPC layer enforces the table before a handler runs; the handlers
 * then check every field of the request, bound what a peer can make us
 * hold, and call santad's internal API (santad.h) on the main loop.
 *
 * Rule changes may come in several AddRules calls that share a batch id
 * (an import of a large file, a sync's rule pages). They are staged per
 * connection and applied in one transaction with the last call, so a
 * change is all or nothing. A staged batch dies with its connection, or
 * when it has been idle for CONTROL_BATCH_IDLE_USEC.
 */
#include "control.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "gui.h"
#include "log.h"
#include "santa-build.h"
#include "sha256.h"
#include "sync.pb-c.h"
#ifdef SANTAD_HAVE_METRICS
#include "metrics.h"
#endif

#define CONTROL_MAX_IDENTIFIER 1024
#define CONTROL_MAX_TEXT 4096            /* messages, custom_msg, regexes */
#define CONTROL_MAX_QUERY 16             /* identifiers per RuleForIdentifiers */
#define CONTROL_MAX_PAGE 1000            /* rules or events per page */
#define CONTROL_DEFAULT_EVENTS 100
#define CONTROL_MAX_REMOVE 10000         /* event ids per RemoveEvents */
#define CONTROL_MAX_BUNDLE_EVENTS 10000
#define CONTROL_MAX_BATCHES 8            /* staged rule batches, all peers */
#define CONTROL_BATCH_IDLE_USEC (300ull * 1000000ull)
/* How long Status waits for the sync service to answer: well inside
 * santactl's own deadline, so that a hung service (stopped, or stuck)
 * shows as "not answering" instead of holding status up. */
#define CONTROL_STATUS_PROBE_USEC (500ull * 1000ull)

#define ROLES_ADMIN (IPC_ROLE_BIT(IPC_ROLE_SANTACTL) | IPC_ROLE_BIT(IPC_ROLE_SYNCSERVICE))
#define ROLES_GUI IPC_ROLE_BIT(IPC_ROLE_GUI)
#define ROLES_ANY 0u
/* Every executable of ours that has a reason to call santad: the peer
 * table of docs/process-model.md, nothing more. (A file called "test" in a
 * TrustedExecutables directory is IPC_ROLE_TEST and is refused here.) */
#define ROLES_ACCEPTED (ROLES_ADMIN | ROLES_GUI | IPC_ROLE_BIT(IPC_ROLE_BUNDLESERVICE) | \
			IPC_ROLE_BIT(IPC_ROLE_METRICSERVICE))

typedef struct control_batch {
	struct control_batch *next;
	ipc_conn *conn;             /* dropped in on_close, so never dangling */
	uint64_t id;
	Santa__RuleCleanup cleanup;
	santad_rule_batch *rules;
	uint64_t received;
	uint64_t last_usec;         /* CLOCK_MONOTONIC of the last call */
} control_batch;

/* A Status call waiting for the sync service's answer. */
typedef struct control_status_req {
	struct control_status_req *next;
	control *c;                 /* NULL once control_free ran */
	ipc_call *call;
} control_status_req;

struct control {
	santad *d;
	ipc_server *server;
	ipc_method *methods;        /* in the service descriptor's order */
	ipc_service service;
	control_batch *batches;
	size_t n_batches;
	control_status_req *status_reqs;
};

/* --- Helpers --- */

static const char *control_peer(ipc_call *call, char *buf, size_t size)
{
	return ipc_peer_describe(ipc_call_peer(call), buf, size);
}

/* The IPC layer lets the sync service call privileged methods whatever
 * its uid, because it runs as ServiceUser. Anyone may run that executable,
 * though, so it only counts as the sync service under root or that user,
 * whom other users cannot ptrace. Fails the call and returns false for
 * anyone else. */
static bool control_privileged_peer(const control *c, ipc_call *call)
{
	const ipc_peer *p = ipc_call_peer(call);
	const santa_config *cfg = santad_config(c->d);
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (p->uid == 0)
		return true;
	if (p->role == IPC_ROLE_SYNCSERVICE && cfg->service_user &&
	    getpwnam_r(cfg->service_user, &pw, buf, sizeof(buf), &res) == 0 && res &&
	    res->pw_uid == p->uid)
		return true;
	ipc_call_fail(call, IPC_E_NOT_PERMITTED, "not permitted for uid %u", (unsigned)p->uid);
	return false;
}

/* A request with fields this santad does not know was built for another
 * protocol; refusing it beats acting on half of it. */
static bool control_unknown_fields(ipc_call *call, const ProtobufCMessage *m)
{
	if (m->n_unknown_fields == 0)
		return false;
	ipc_call_fail(call, IPC_E_INVALID, "%s: unknown field %u", m->descriptor->short_name,
		      m->unknown_fields[0].tag);
	return true;
}

static bool control_is_hex(const char *s, size_t want)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!isxdigit((unsigned char)s[n]))
			return false;
	return n == want;
}

static bool control_sync_configured(const control *c)
{
	const santa_config *cfg = santad_config(c->d);

	return cfg->sync_base_url && *cfg->sync_base_url;
}

static uint64_t control_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static char *control_str(const char *s)
{
	return (char *)(s ? s : "");
}

/* A santad_rule as a Santa__Rule whose strings point into R. */
static void control_rule_to_proto(const santad_rule *r, Santa__Rule *out)
{
	santa__rule__init(out);
	out->identifier = control_str(r->identifier);
	out->policy = r->policy;
	out->rule_type = r->rule_type;
	out->custom_msg = control_str(r->custom_msg);
	out->custom_url = control_str(r->custom_url);
	out->creation_time = r->creation_time;
	out->file_bundle_hash = control_str(r->file_bundle_hash);
	out->file_bundle_binary_count = r->file_bundle_binary_count;
}

/* A Santa__Rule as a santad_rule whose strings point into R; empty
 * strings are "unset" for santad. */
static void control_rule_from_proto(const Santa__Rule *r, santad_rule *out)
{
	memset(out, 0, sizeof(*out));
	out->identifier = r->identifier;
	out->policy = r->policy;
	out->rule_type = r->rule_type;
	out->custom_msg = *r->custom_msg ? r->custom_msg : NULL;
	out->custom_url = *r->custom_url ? r->custom_url : NULL;
	out->creation_time = r->creation_time;
	out->file_bundle_hash = *r->file_bundle_hash ? r->file_bundle_hash : NULL;
	out->file_bundle_binary_count = r->file_bundle_binary_count;
}

static void control_reply_empty(ipc_call *call)
{
	Santa__Empty e = SANTA__EMPTY__INIT;

	ipc_call_reply(call, &e.base);
}

/* --- Status and read-only queries --- */

static void control_status_sync(control *c, Santa__StatusReply *rep)
{
	Santa__SyncSettings ss = SANTA__SYNC_SETTINGS__INIT;
	const santa_config *cfg = santad_config(c->d);

	rep->sync_server = control_str(cfg->sync_base_url);
	if (santad_sync_settings_get(c->d, &ss) < 0)
		return;
	rep->clean_required = ss.has_sync_type_required &&
			      ss.sync_type_required != SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL;
	rep->last_successful_full = ss.has_last_full_sync ? ss.last_full_sync : 0;
	rep->last_successful_rule = ss.has_last_rule_sync ? ss.last_rule_sync : 0;
}

static int control_status_counts(control *c, Santa__StatusReply *rep)
{
	santad_rule_counts rc;
	uint64_t events = 0;
	int r;

	r = santad_rules_count(c->d, &rc);
	if (r < 0)
		return r;
	r = santad_events_count(c->d, &events);
	if (r < 0)
		return r;
	rep->binary_rules = rc.binary;
	rep->certificate_rules = rc.certificate;
	rep->teamid_rules = rc.teamid;
	rep->signingid_rules = rc.signingid;
	rep->cdhash_rules = rc.cdhash;
	rep->compiler_rules = rc.compiler;
	rep->transitive_rule_count = rc.transitive;
	rep->events_pending_upload = events;
	rep->static_rule_count = santad_static_rule_count(c->d);
	rep->cache_count = santad_cache_count(c->d);
	santad_cache_counts(c->d, &rep->root_cache_count, &rep->non_root_cache_count);
	return 0;
}

#ifdef SANTAD_HAVE_METRICS
static void control_metrics(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	Santa__MetricsReply rep = SANTA__METRICS_REPLY__INIT;
	char *text = NULL;
	int r;

	if (control_unknown_fields(call, req))
		return;
	r = metrics_rawjson(&text);
	if (r < 0) {
		ipc_call_fail(call, r, "Metrics: taking a snapshot: %s", strerror(-r));
		return;
	}
	rep.rawjson = text;
	ipc_call_reply(call, &rep.base);
	free(text);
}

/* The metric export's state, for status: fills SVC, returns 1. */
static size_t control_status_metrics(Santa__StatusReply *rep, Santa__ServiceState *svc)
{
	rep->metric_error = control_str(metrics_error());
	santa__service_state__init(svc);
	svc->name = "santametricservice";
	svc->state = control_str(metrics_export_state());
	return 1;
}
#else
static void control_metrics(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	/* Answered with a clear error rather than as an unknown method, which
	 * would cost the caller its connection. */
	ipc_call_fail(call, IPC_E_INVALID, "Metrics: this santad was built without metrics");
}

static size_t control_status_metrics(Santa__StatusReply *rep, Santa__ServiceState *svc)
{
	return 0;
}
#endif

/* Answer CALL with santad's state; SYNC_STATE is the sync service's, or
 * NULL when no sync server is configured. */
static void control_status_answer(control *c, ipc_call *call, const char *sync_state)
{
	Santa__StatusReply rep = SANTA__STATUS_REPLY__INIT;
	Santa__ServiceState states[2], *svcs[2];
	const santa_config *cfg;
	const char *const *paths;
	int r;

	r = control_status_counts(c, &rep);
	if (r < 0) {
		ipc_call_fail(call, r, "Status: reading the rules database: %s", strerror(-r));
		return;
	}
	cfg = santad_config(c->d);
	rep.mode = (Santa__ClientMode)santad_client_mode(c->d);
	rep.fail_closed = santad_fail_closed(c->d);
	rep.log_type = control_str(santa_log_type_name(santad_log_type(c->d)));
	/* The original's "File Logging" is FileChangesRegex, which santad
	 * does not implement. */
	rep.file_logging = false;
	rep.n_watch_paths = santad_watch_paths(c->d, &paths);
	rep.watch_paths = (char **)paths;
	rep.transitive_rules = santad_transitive_rules(c->d);
	rep.bundle_scanning = santad_bundles_enabled(c->d);
	rep.driver_connected = santad_watching(c->d);
	rep.metric_url = control_str(cfg->metric_url);
	rep.metric_format = control_str(cfg->metric_format);
	rep.metric_export_interval = cfg->metric_export_interval;
	rep.version = SANTA_VERSION;
	control_status_sync(c, &rep);
	rep.n_services = control_status_metrics(&rep, &states[0]);
	if (sync_state) {
		santa__service_state__init(&states[rep.n_services]);
		states[rep.n_services].name = "santasyncservice";
		states[rep.n_services].state = (char *)sync_state;
		rep.n_services++;
	}
	for (size_t i = 0; i < rep.n_services; i++)
		svcs[i] = &states[i];
	rep.services = rep.n_services ? svcs : NULL;
	ipc_call_reply(call, &rep.base);
}

static void control_status_probed(const char *state, void *userdata)
{
	control_status_req *q = userdata;
	control *c = q->c;

	if (c) {
		control_status_req **pp = &c->status_reqs;

		while (*pp != q)
			pp = &(*pp)->next;
		*pp = q->next;
		control_status_answer(c, q->call, state);
	} else {
		ipc_call_fail(q->call, IPC_E_DISCONNECTED, "Status: santad is stopping");
	}
	free(q);
}

/* With a sync server configured, Status asks the sync service first, for
 * at most CONTROL_STATUS_PROBE_USEC, and answers when it knows. */
static void control_status(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	control *c = userdata;
	control_status_req *q;

	if (control_unknown_fields(call, req))
		return;
	if (!control_sync_configured(c)) {
		control_status_answer(c, call, NULL);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		control_status_answer(c, call, santad_sync_service_state(c->d));
		return;
	}
	q->c = c;
	q->call = call;
	q->next = c->status_reqs;
	c->status_reqs = q;
	if (santad_sync_service_probe(c->d, CONTROL_STATUS_PROBE_USEC, control_status_probed,
				      q) < 0) {
		c->status_reqs = q->next;
		free(q);
		control_status_answer(c, call, santad_sync_service_state(c->d));
	}
}

/* The descriptor that came with CALL if it is a regular file, else -1
 * after failing the call; -2 when it came without one and that is fine
 * (!REQUIRED). METHOD names the call in errors. */
static int control_take_file(ipc_call *call, const char *method, bool required)
{
	struct stat st;
	int fd = ipc_call_take_fd(call);

	if (fd < 0) {
		if (!required)
			return -2;
		ipc_call_fail(call, IPC_E_INVALID, "%s: the file's descriptor is missing", method);
		return -1;
	}
	/* Its type as the kernel holds it: a client's file on a FUSE mount
	 * must not hold the main loop up. */
	if (file_fstat_nosync(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		ipc_call_fail(call, IPC_E_INVALID, "%s: the descriptor is not a regular file",
			      method);
		return -1;
	}
	return fd;
}

static void control_check_cache(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	const Santa__FileRequest *fr = (const Santa__FileRequest *)req;
	Santa__CheckCacheReply rep = SANTA__CHECK_CACHE_REPLY__INIT;
	santad_decision dec = SANTAD_DECISION_NONE;
	control *c = userdata;
	int fd, r;

	if (control_unknown_fields(call, req))
		return;
	if (strlen(fr->path) >= PATH_MAX) {
		ipc_call_fail(call, IPC_E_INVALID, "CheckCache: path longer than %d bytes", PATH_MAX);
		return;
	}
	fd = control_take_file(call, "CheckCache", true);
	if (fd < 0)
		return;
	r = santad_cache_check_fd(c->d, fd, &dec);
	close(fd);
	if (r < 0) {
		ipc_call_fail(call, r, "CheckCache: %s", strerror(-r));
		return;
	}
	rep.cached = dec != SANTAD_DECISION_NONE;
	rep.decision = control_str(rep.cached ? santad_decision_name(dec) : NULL);
	ipc_call_reply(call, &rep.base);
}

static int control_check_decision_request(ipc_call *call, const Santa__DecisionRequest *dr,
					  char sha[SANTA_SHA256_HEX_LEN + 1])
{
	if (dr->path[0] != '/' || strlen(dr->path) >= PATH_MAX) {
		ipc_call_fail(call, IPC_E_INVALID,
			      "DecisionForFile: path must be absolute and shorter than %d bytes",
			      PATH_MAX);
		return -1;
	}
	if (!control_is_hex(dr->sha256, SANTA_SHA256_HEX_LEN)) {
		ipc_call_fail(call, IPC_E_INVALID,
			      "DecisionForFile: sha256 must be 64 hexadecimal digits");
		return -1;
	}
	for (size_t i = 0; i <= SANTA_SHA256_HEX_LEN; i++)
		sha[i] = (char)tolower((unsigned char)dr->sha256[i]);
	return 0;
}

static void control_decision(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	const Santa__DecisionRequest *dr = (const Santa__DecisionRequest *)req;
	Santa__DecisionReply rep = SANTA__DECISION_REPLY__INIT;
	Santa__Rule rule;
	santad_verdict v = { 0 };
	char sha[SANTA_SHA256_HEX_LEN + 1], err[256];
	control *c = userdata;
	int fd, r;

	if (control_unknown_fields(call, req) || control_check_decision_request(call, dr, sha) < 0)
		return;
	/* The file santactl hashed, if it sent it: santad looks at what a
	 * client opened, never at a path it would resolve as root for it. */
	fd = control_take_file(call, "DecisionForFile", false);
	if (fd == -1)
		return;
	r = santad_decide_dry_run(c->d, dr->path, fd, sha, &v, err, sizeof(err));
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		ipc_call_fail(call, r == -EINVAL ? IPC_E_INVALID : r, "DecisionForFile: %s", err);
		return;
	}
	rep.decision = control_str(santad_decision_name(v.decision));
	rep.reason = control_str(santad_reason_name(v.reason));
	rep.explanation = control_str(v.explanation);
	if (v.has_rule) {
		control_rule_to_proto(&v.rule, &rule);
		rep.rule = &rule;
		rep.custom_msg = control_str(v.rule.custom_msg);
	}
	ipc_call_reply(call, &rep.base);
	santad_verdict_done(&v);
}

static void control_get_sync_settings(ipc_call *call, const ProtobufCMessage *req,
				      void *userdata)
{
	Santa__SyncSettings ss = SANTA__SYNC_SETTINGS__INIT;
	control *c = userdata;
	int r;

	if (control_unknown_fields(call, req))
		return;
	r = santad_sync_settings_get(c->d, &ss);
	if (r < 0) {
		ipc_call_fail(call, r, "GetSyncSettings: %s", strerror(-r));
		return;
	}
	ipc_call_reply(call, &ss.base);
}

/* --- santagui (gui.c does the work) --- */

static struct gui *control_gui(control *c, ipc_call *call, const char *method)
{
	struct gui *g = santad_gui(c->d);

	if (!g)
		ipc_call_fail(call, IPC_E_INVALID, "%s: santad's GUI support is not running",
			      method);
	return g;
}

static void control_set_listener(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	control *c = userdata;
	struct gui *g;

	if (control_unknown_fields(call, req))
		return;
	g = control_gui(c, call, "SetNotificationListener");
	if (g)
		gui_set_listener(g, call);
}

static void control_sync_bundle_event(ipc_call *call, const ProtobufCMessage *req,
				      void *userdata)
{
	const Santa__EventList *el = (const Santa__EventList *)req;
	control *c = userdata;
	struct gui *g;

	if (control_unknown_fields(call, req))
		return;
	if (el->n_events == 0 || el->n_events > CONTROL_MAX_BUNDLE_EVENTS) {
		ipc_call_fail(call, IPC_E_INVALID, "SyncBundleEvent: between 1 and %d events, "
			      "not %zu", CONTROL_MAX_BUNDLE_EVENTS, el->n_events);
		return;
	}
	for (size_t i = 0; i < el->n_events; i++) {
		if (el->events[i]->base.n_unknown_fields) {
			ipc_call_fail(call, IPC_E_INVALID, "SyncBundleEvent: event %zu: unknown "
				      "field %u", i, el->events[i]->base.unknown_fields[0].tag);
			return;
		}
	}
	g = control_gui(c, call, "SyncBundleEvent");
	if (g)
		gui_sync_bundle_event(g, call, el);
}

/* --- Privileged: cache, rules, events, sync settings --- */

static void control_flush_cache(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	control *c = userdata;
	char who[256], why[300];
	int r;

	if (!control_privileged_peer(c, call) || control_unknown_fields(call, req))
		return;
	snprintf(why, sizeof(why), "flushcache by %s", control_peer(call, who, sizeof(who)));
	r = santad_cache_flush(c->d, why);
	if (r < 0) {
		ipc_call_fail(call, r, "FlushCache: %s", strerror(-r));
		return;
	}
	control_reply_empty(call);
}

/* --- AddRules and its staged batches --- */

static control_batch *control_batch_find(control *c, ipc_conn *conn)
{
	for (control_batch *b = c->batches; b; b = b->next)
		if (b->conn == conn)
			return b;
	return NULL;
}

static void control_batch_drop(control *c, control_batch *b)
{
	for (control_batch **p = &c->batches; *p; p = &(*p)->next) {
		if (*p == b) {
			*p = b->next;
			c->n_batches--;
			break;
		}
	}
	santad_rule_batch_free(b->rules);
	free(b);
}

/* Drop batches whose peer has gone quiet, so that a peer that starts an
 * import and never finishes it cannot hold a slot for ever. */
static void control_batch_expire(control *c)
{
	uint64_t now = control_now_usec();
	control_batch *b = c->batches, *next;

	for (; b; b = next) {
		next = b->next;
		if (now - b->last_usec > CONTROL_BATCH_IDLE_USEC) {
			log_notice("Dropping rule batch %" PRIu64 " of %" PRIu64
				   " %s: idle for more than %llu s", b->id, b->received,
				   log_plural(b->received, "rule", "rules"),
				   CONTROL_BATCH_IDLE_USEC / 1000000ull);
			control_batch_drop(c, b);
		}
	}
}

static control_batch *control_batch_new(control *c, ipc_conn *conn, uint64_t id,
					Santa__RuleCleanup cleanup)
{
	control_batch *b;

	control_batch_expire(c);
	if (c->n_batches >= CONTROL_MAX_BATCHES)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	if (santad_rule_batch_new(&b->rules) < 0) {
		free(b);
		return NULL;
	}
	b->conn = conn;
	b->id = id;
	b->cleanup = cleanup;
	b->next = c->batches;
	c->batches = b;
	c->n_batches++;
	return b;
}

/* The batch this call belongs to: the connection's open one, or a new
 * one. NULL after failing the call. */
static control_batch *control_batch_for(control *c, ipc_call *call,
					const Santa__AddRulesRequest *ar)
{
	ipc_conn *conn = ipc_call_conn(call);
	control_batch *b = control_batch_find(c, conn);

	if (b && b->id != ar->batch_id) {
		ipc_call_fail(call, IPC_E_INVALID, "AddRules: batch %" PRIu64
			      " is still open on this connection", b->id);
		return NULL;
	}
	if (b && b->cleanup != ar->cleanup) {
		ipc_call_fail(call, IPC_E_INVALID, "AddRules: cleanup differs from the batch's "
			      "first call");
		control_batch_drop(c, b);
		return NULL;
	}
	if (!b)
		b = control_batch_new(c, conn, ar->batch_id, ar->cleanup);
	if (!b)
		ipc_call_fail(call, IPC_E_LIMIT, "AddRules: too many rule batches open, or out "
			      "of memory");
	return b;
}

/* Validate and stage the call's rules; the error names the rule by its
 * index in the whole batch. */
static int control_batch_stage(ipc_call *call, control_batch *b,
			       const Santa__AddRulesRequest *ar)
{
	char err[256];

	for (size_t i = 0; i < ar->n_rules; i++) {
		santad_rule r;
		int e;

		if (ar->rules[i]->base.n_unknown_fields) {
			ipc_call_fail(call, IPC_E_INVALID, "AddRules: rule %" PRIu64
				      ": unknown field %u", b->received + i,
				      ar->rules[i]->base.unknown_fields[0].tag);
			return -1;
		}
		control_rule_from_proto(ar->rules[i], &r);
		err[0] = '\0';
		e = santad_rule_batch_add(b->rules, &r, err, sizeof(err));
		if (e < 0) {
			ipc_call_fail(call, e == -E2BIG ? IPC_E_LIMIT : IPC_E_INVALID,
				      "AddRules: rule %" PRIu64 ": %s", b->received + i,
				      err[0] ? err : strerror(-e));
			return -1;
		}
	}
	b->received += ar->n_rules;
	b->last_usec = control_now_usec();
	return 0;
}

static const char *control_cleanup_name(Santa__RuleCleanup cl)
{
	switch (cl) {
	case SANTA__RULE_CLEANUP__CLEANUP_NON_TRANSITIVE:
		return "non-transitive";
	case SANTA__RULE_CLEANUP__CLEANUP_ALL:
		return "all";
	default:
		return "none";
	}
}

static void control_batch_apply(control *c, ipc_call *call, control_batch *b)
{
	Santa__AddRulesReply rep = SANTA__ADD_RULES_REPLY__INIT;
	char err[256] = "", who[256];
	uint64_t applied = 0;
	int r;

	r = santad_rules_apply(c->d, b->rules, b->cleanup, &applied, err, sizeof(err));
	if (r < 0) {
		log_warning("Applying %" PRIu64 " %s (cleanup %s) from %s failed: %s",
			    b->received, log_plural(b->received, "rule", "rules"),
			    control_cleanup_name(b->cleanup),
			    control_peer(call, who, sizeof(who)), err[0] ? err : strerror(-r));
		ipc_call_fail(call, r == -EINVAL ? IPC_E_INVALID : r, "AddRules: %s",
			      err[0] ? err : strerror(-r));
		return;
	}
	log_notice("Applied %" PRIu64 " of %" PRIu64 " %s (cleanup %s) from %s", applied,
		   b->received, log_plural(b->received, "rule", "rules"),
		   control_cleanup_name(b->cleanup),
		   control_peer(call, who, sizeof(who)));
	rep.received = b->received;
	rep.applied = applied;
	ipc_call_reply(call, &rep.base);
}

static int control_check_add_rules(control *c, ipc_call *call,
				   const Santa__AddRulesRequest *ar)
{
	const ipc_peer *p = ipc_call_peer(call);

	if (control_unknown_fields(call, &ar->base))
		return -1;
	if (ar->cleanup != SANTA__RULE_CLEANUP__CLEANUP_NONE &&
	    ar->cleanup != SANTA__RULE_CLEANUP__CLEANUP_NON_TRANSITIVE &&
	    ar->cleanup != SANTA__RULE_CLEANUP__CLEANUP_ALL) {
		ipc_call_fail(call, IPC_E_INVALID, "AddRules: unknown cleanup %d", ar->cleanup);
		return -1;
	}
	if (ar->batch_id == 0 && !ar->final) {
		ipc_call_fail(call, IPC_E_INVALID, "AddRules: batch_id 0 must be final");
		return -1;
	}
	/* As the original's santactl: local changes are refused while a sync
	 * server or the configuration owns the rules. */
	if (p->role == IPC_ROLE_SANTACTL &&
	    (control_sync_configured(c) || santad_static_rule_count(c->d) > 0)) {
		ipc_call_fail(call, IPC_E_NOT_PERMITTED,
			      "SyncBaseURL/StaticRules is set, rules are managed centrally");
		return -1;
	}
	return 0;
}

static void control_add_rules(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	const Santa__AddRulesRequest *ar = (const Santa__AddRulesRequest *)req;
	Santa__AddRulesReply rep = SANTA__ADD_RULES_REPLY__INIT;
	control *c = userdata;
	control_batch *b;

	if (!control_privileged_peer(c, call) || control_check_add_rules(c, call, ar) < 0)
		return;
	b = control_batch_for(c, call, ar);
	if (!b)
		return;
	if (control_batch_stage(call, b, ar) < 0) {
		control_batch_drop(c, b);
		return;
	}
	if (!ar->final) {
		rep.received = b->received;
		ipc_call_reply(call, &rep.base);
		return;
	}
	control_batch_apply(c, call, b);
	control_batch_drop(c, b);
}

/* --- Rule queries --- */

static int control_check_query(ipc_call *call, const Santa__RuleQuery *q)
{
	if (q->n_identifiers == 0 || q->n_identifiers > CONTROL_MAX_QUERY) {
		ipc_call_fail(call, IPC_E_INVALID, "RuleForIdentifiers: between 1 and %d "
			      "identifiers, not %zu", CONTROL_MAX_QUERY, q->n_identifiers);
		return -1;
	}
	for (size_t i = 0; i < q->n_identifiers; i++) {
		const Santa__Rule *r = q->identifiers[i];

		if (r->base.n_unknown_fields || !*r->identifier ||
		    strlen(r->identifier) > CONTROL_MAX_IDENTIFIER ||
		    !santa_rule_type_name(r->rule_type)) {
			ipc_call_fail(call, IPC_E_INVALID, "RuleForIdentifiers: identifier %zu needs "
				      "an identifier of 1 to %d bytes and a known rule_type", i,
				      CONTROL_MAX_IDENTIFIER);
			return -1;
		}
	}
	return 0;
}

static void control_rule_for_identifiers(ipc_call *call, const ProtobufCMessage *req,
					 void *userdata)
{
	const Santa__RuleQuery *q = (const Santa__RuleQuery *)req;
	Santa__RuleList rep = SANTA__RULE_LIST__INIT;
	santad_rule keys[CONTROL_MAX_QUERY], found;
	Santa__Rule rule, *rules[1] = { &rule };
	control *c = userdata;
	int r;

	if (!control_privileged_peer(c, call) || control_unknown_fields(call, req) ||
	    control_check_query(call, q) < 0)
		return;
	for (size_t i = 0; i < q->n_identifiers; i++)
		control_rule_from_proto(q->identifiers[i], &keys[i]);
	r = santad_rules_find(c->d, keys, q->n_identifiers, &found);
	if (r < 0 && r != -ENOENT) {
		ipc_call_fail(call, r, "RuleForIdentifiers: %s", strerror(-r));
		return;
	}
	if (r == 0) {
		control_rule_to_proto(&found, &rule);
		rep.rules = rules;
		rep.n_rules = 1;
	}
	ipc_call_reply(call, &rep.base);
	if (r == 0)
		santad_rule_done(&found);
}

/* The cursor is the decimal position santad_rules_list returned. */
static int control_parse_cursor(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	if (!*s) {
		*ret = 0;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0)
		return -1;
	*ret = v;
	return 0;
}

static void control_reply_rules(ipc_call *call, const santad_rule *rules, size_t n,
				int64_t next)
{
	Santa__RuleList rep = SANTA__RULE_LIST__INIT;
	Santa__Rule *protos = calloc(n ? n : 1, sizeof(*protos));
	Santa__Rule **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	char cursor[32] = "";

	if (!protos || !ptrs) {
		ipc_call_fail(call, -ENOMEM, "RetrieveAllRules: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		control_rule_to_proto(&rules[i], &protos[i]);
		ptrs[i] = &protos[i];
	}
	if (next > 0)
		snprintf(cursor, sizeof(cursor), "%" PRId64, next);
	rep.rules = ptrs;
	rep.n_rules = n;
	rep.cursor = cursor;
	ipc_call_reply(call, &rep.base);
out:
	free(protos);
	free(ptrs);
}

static void control_retrieve_all_rules(ipc_call *call, const ProtobufCMessage *req,
				       void *userdata)
{
	const Santa__RuleListRequest *lr = (const Santa__RuleListRequest *)req;
	santad_rule *rules = NULL;
	control *c = userdata;
	int64_t after, next = 0;
	size_t n = 0;
	int r;

	if (!control_privileged_peer(c, call) || control_unknown_fields(call, req))
		return;
	if (control_parse_cursor(lr->cursor, &after) < 0) {
		ipc_call_fail(call, IPC_E_INVALID, "RetrieveAllRules: bad cursor");
		return;
	}
	/* The original refuses to export what a sync server owns. */
	if (control_sync_configured(c)) {
		ipc_call_fail(call, IPC_E_NOT_PERMITTED,
			      "RetrieveAllRules: SyncBaseURL is set, rules are managed centrally");
		return;
	}
	r = santad_rules_list(c->d, after, lr->limit && lr->limit < CONTROL_MAX_PAGE ?
			      lr->limit : CONTROL_MAX_PAGE, &rules, &n, &next);
	if (r < 0) {
		ipc_call_fail(call, r, "RetrieveAllRules: %s", strerror(-r));
		return;
	}
	control_reply_rules(call, rules, n, next);
	santad_rules_free(rules, n);
}

/* --- Events for the sync service --- */

static void control_events_pending(ipc_call *call, const ProtobufCMessage *req,
				   void *userdata)
{
	const Santa__EventsRequest *er = (const Santa__EventsRequest *)req;
	Santa__EventList rep = SANTA__EVENT_LIST__INIT;
	Santa__Event **events = NULL;
	control *c = userdata;
	size_t n = 0;
	int r;

	if (!control_privileged_peer(c, call) || control_unknown_fields(call, req))
		return;
	if (er->after_id < 0) {
		ipc_call_fail(call, IPC_E_INVALID, "EventsPending: negative after_id");
		return;
	}
	r = santad_events_list(c->d, er->after_id, er->limit == 0 ? CONTROL_DEFAULT_EVENTS :
			       er->limit < CONTROL_MAX_PAGE ? er->limit : CONTROL_MAX_PAGE,
			       &events, &n);
	if (r < 0) {
		ipc_call_fail(call, r, "EventsPending: %s", strerror(-r));
		return;
	}
	rep.events = events;
	rep.n_events = n;
	ipc_call_reply(call, &rep.base);
	santad_events_free(events, n);
}

static void control_remove_events(ipc_call *call, const ProtobufCMessage *req,
				  void *userdata)
{
	const Santa__RemoveEventsRequest *rr = (const Santa__RemoveEventsRequest *)req;
	control *c = userdata;
	int r;

	if (!control_privileged_peer(c, call) || control_unknown_fields(call, req))
		return;
	if (rr->n_ids > CONTROL_MAX_REMOVE) {
		ipc_call_fail(call, IPC_E_INVALID, "RemoveEvents: more than %d ids",
			      CONTROL_MAX_REMOVE);
		return;
	}
	for (size_t i = 0; i < rr->n_ids; i++) {
		if (rr->ids[i] <= 0) {
			ipc_call_fail(call, IPC_E_INVALID, "RemoveEvents: id %zu is not positive", i);
			return;
		}
	}
	r = santad_events_remove(c->d, rr->ids, rr->n_ids);
	if (r < 0) {
		ipc_call_fail(call, r, "RemoveEvents: %s", strerror(-r));
		return;
	}
	control_reply_empty(call);
}

/* --- Sync settings and notifications --- */

static void control_update_sync_settings(ipc_call *call, const ProtobufCMessage *req,
					 void *userdata)
{
	const Santa__SyncSettings *ss = (const Santa__SyncSettings *)req;
	char err[256] = "", who[256];
	control *c = userdata;
	int r;

	if (!control_privileged_peer(c, call) || control_unknown_fields(call, req))
		return;
	if (strlen(ss->allowed_path_regex) > CONTROL_MAX_TEXT ||
	    strlen(ss->blocked_path_regex) > CONTROL_MAX_TEXT) {
		ipc_call_fail(call, IPC_E_INVALID, "UpdateSyncSettings: a path regex is longer "
			      "than %d bytes", CONTROL_MAX_TEXT);
		return;
	}
	r = santad_sync_settings_update(c->d, ss, err, sizeof(err));
	if (r < 0) {
		ipc_call_fail(call, r == -EINVAL ? IPC_E_INVALID : r, "UpdateSyncSettings: %s",
			      err[0] ? err : strerror(-r));
		return;
	}
	log_info("Updated sync settings from %s", control_peer(call, who, sizeof(who)));
	control_reply_empty(call);
}

static void control_post_rule_sync(ipc_call *call, const ProtobufCMessage *req,
				   void *userdata)
{
	const Santa__NotificationMessage *nm = (const Santa__NotificationMessage *)req;
	control *c = userdata;
	int r;

	if (!control_privileged_peer(c, call) || control_unknown_fields(call, req))
		return;
	if (strlen(nm->message) > CONTROL_MAX_TEXT) {
		ipc_call_fail(call, IPC_E_INVALID, "PostRuleSyncNotification: message longer "
			      "than %d bytes", CONTROL_MAX_TEXT);
		return;
	}
	r = santad_gui_post(c->d, nm->message);
	if (r < 0) {
		ipc_call_fail(call, r, "PostRuleSyncNotification: %s", strerror(-r));
		return;
	}
	control_reply_empty(call);
}

/* The sync service says how a sync ended: santad counts it in its
 * metrics (/santa/syncs). Only the sync service may say so. */
static void control_sync_finished(ipc_call *call, const ProtobufCMessage *req,
				  void *userdata)
{
	const Santa__SyncFinishedRequest *sf = (const Santa__SyncFinishedRequest *)req;
	control *c = userdata;

	if (!control_privileged_peer(c, call) || control_unknown_fields(call, req))
		return;
	if (sf->status > SANTA__SYNC_STATUS__SYNC_STATUS_UNKNOWN) {
		ipc_call_fail(call, IPC_E_INVALID, "SyncFinished: unknown status %u", sf->status);
		return;
	}
#ifdef SANTAD_HAVE_METRICS
	metrics_sync_result(sf->status == 0);
#endif
	log_debug("A sync finished with status %u", sf->status);
	control_reply_empty(call);
}

/* --- The method table and the server --- */

typedef struct control_method {
	const char *name;
	ipc_handler_fn handler;
	unsigned flags;
	uint32_t roles;
} control_method;

#define PRIV IPC_METHOD_PRIVILEGED

static const control_method control_methods[] = {
	/* Every peer of ours: read-only. */
	{ "Status", control_status, 0, ROLES_ANY },
	{ "CheckCache", control_check_cache, IPC_METHOD_ACCEPT_FD, ROLES_ANY },
	{ "DecisionForFile", control_decision, IPC_METHOD_ACCEPT_FD, ROLES_ANY },
	{ "GetSyncSettings", control_get_sync_settings, 0, ROLES_ANY },
	{ "Metrics", control_metrics, 0, ROLES_ANY },
	/* santagui only. */
	{ "SetNotificationListener", control_set_listener, IPC_METHOD_ACCEPT_FD, ROLES_GUI },
	{ "SyncBundleEvent", control_sync_bundle_event, 0, ROLES_GUI },
	/* Root santactl and the sync service. */
	{ "FlushCache", control_flush_cache, PRIV, ROLES_ADMIN },
	{ "AddRules", control_add_rules, PRIV, ROLES_ADMIN },
	{ "RuleForIdentifiers", control_rule_for_identifiers, PRIV, ROLES_ADMIN },
	{ "RetrieveAllRules", control_retrieve_all_rules, PRIV, ROLES_ADMIN },
	{ "EventsPending", control_events_pending, PRIV, ROLES_ADMIN },
	{ "RemoveEvents", control_remove_events, PRIV, ROLES_ADMIN },
	{ "UpdateSyncSettings", control_update_sync_settings, PRIV, ROLES_ADMIN },
	{ "PostRuleSyncNotification", control_post_rule_sync, PRIV, ROLES_ADMIN },
	/* The sync service only. */
	{ "SyncFinished", control_sync_finished, PRIV, IPC_ROLE_BIT(IPC_ROLE_SYNCSERVICE) },
};

#define N_METHODS (sizeof(control_methods) / sizeof(control_methods[0]))

/* control_methods[] in the order of the service descriptor, which is
 * what the IPC layer indexes by. Every method of the service must be in
 * the table: a method added to santad.proto without a handler here is a
 * start-up error, not a silently unserved call. */
static int control_build_methods(ipc_method **ret)
{
	const ProtobufCServiceDescriptor *desc = &santa__santad__descriptor;
	ipc_method *m = calloc(desc->n_methods, sizeof(*m));

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < N_METHODS; i++) {
		const ProtobufCMethodDescriptor *md =
			protobuf_c_service_descriptor_get_method_by_name(desc, control_methods[i].name);

		if (!md) {
			free(m);
			return -EINVAL;
		}
		m[md - desc->methods] = (ipc_method){ control_methods[i].handler,
						      control_methods[i].flags,
						      control_methods[i].roles };
	}
	for (unsigned i = 0; i < desc->n_methods; i++) {
		if (!m[i].handler) {
			log_error("Serving %s: method %s has no handler", desc->name,
				  desc->methods[i].name);
			free(m);
			return -EINVAL;
		}
	}
	*ret = m;
	return 0;
}

static void control_on_close(ipc_conn *conn, int err, const char *reason, void *userdata)
{
	control *c = userdata;
	control_batch *b = control_batch_find(c, conn);
	char who[256];

	ipc_peer_describe(ipc_conn_peer(conn), who, sizeof(who));
	if (b) {
		log_notice("Dropping rule batch %" PRIu64 " of %" PRIu64 " %s: %s closed", b->id,
			   b->received, log_plural(b->received, "rule", "rules"), who);
		control_batch_drop(c, b);
	}
	/* The IPC layer's reason names the peer already. */
	if (err && err != IPC_E_DISCONNECTED)
		log_info("Closed control connection: %s", reason ? reason : who);
	else
		log_debug("Closed control connection %s", who);
}

int control_start(santad *d, sd_event *ev, int listen_fd, const ipc_trust *trust,
		  control **ret)
{
	ipc_server_opts opts = { .on_close = control_on_close };
	control *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->d = d;
	r = control_build_methods(&c->methods);
	if (r < 0)
		goto fail;
	c->service = (ipc_service){
		.desc = &santa__santad__descriptor,
		.methods = c->methods,
		.accept_roles = ROLES_ACCEPTED,
		.userdata = c,
		/* The sync service runs as ServiceUser, not root, yet syncs
		 * rules; control_privileged_peer() checks its uid. */
		.privileged_roles = IPC_ROLE_BIT(IPC_ROLE_SYNCSERVICE),
	};
	opts.userdata = c;
	r = ipc_server_new(ev, listen_fd, trust, &c->service, &opts, &c->server);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	free(c->methods);
	free(c);
	return r;
}

control *control_free(control *c)
{
	if (!c)
		return NULL;
	/* Closing the connections runs on_close, which drops their batches. */
	c->server = ipc_server_free(c->server);
	while (c->batches)
		control_batch_drop(c, c->batches);
	/* Their probes still finish (the sync link fails them when it goes),
	 * without us. */
	for (control_status_req *q = c->status_reqs; q; q = q->next)
		q->c = NULL;
	free(c->methods);
	free(c);
	return NULL;
}
