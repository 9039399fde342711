/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stages of a sync. Each stage returns the status the whole sync ends
 * with if it fails (the original's SNTSyncStatusType), and logs one line
 * saying what failed and why, so that `santactl sync` shows it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sync_engine.h"

#define SYNC_DEFAULT_MAX_PAGES 10000u
#define SYNC_DEFAULT_MAX_RULES 2000000u
#define SYNC_DEFAULT_RULES_PER_CALL 5000u
#define SYNC_MAX_POST_EVENTS 1000u

typedef struct sync_ctx {
	const sync_engine *e;
	sync_result *res;
	Santa__StatusReply *status;
	int requested;
	sync_preflight_response pre;
	bool have_pre;
	Santa__Rule **rules;
	size_t n_rules;
	size_t cap_rules;
} sync_ctx;

static void sync_log(const sync_engine *e, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void sync_log(const sync_engine *e, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!e->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	e->log(e->log_ud, level, line);
}

void sync_buf_done(sync_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

static int64_t sync_now(const sync_engine *e)
{
	return e->now ? e->now() : (int64_t)time(NULL);
}

static void sync_free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static const char *sync_strerr(int err, char *buf, size_t size)
{
	snprintf(buf, size, "%s", strerror(err < 0 ? -err : err));
	return buf;
}

/* POST BODY to STAGE; on failure log "<what> failed: <reason>". */
static int sync_post(sync_ctx *c, const char *stage, const char *what, const char *body,
		     sync_buf *ret)
{
	const sync_engine *e = c->e;
	char err[512] = "";
	int r;

	r = e->transport->post(e->transport_ud, stage, body, strlen(body), ret, err,
			       sizeof(err));
	if (r < 0) {
		if (!*err)
			sync_strerr(r, err, sizeof(err));
		sync_log(e, SANTA_LOG_ERR, "%s failed: %s", what, err);
	}
	return r;
}

/* --- Preflight --- */

static int sync_requested_type(sync_ctx *c)
{
	const sync_engine *e = c->e;
	Santa__SyncSettings *ss = NULL;
	int requested = c->requested;
	int r;

	r = e->daemon->get_settings(e->daemon_ud, &ss);
	if (r < 0)
		return r;
	if (ss->has_sync_type_required && (int)ss->sync_type_required > requested)
		requested = (int)ss->sync_type_required;
	/* Until this sync succeeds, the interval is the one saved by the last
	 * sync that did (santad keeps it across restarts). */
	if (ss->has_full_sync_interval)
		c->res->full_sync_interval = ss->full_sync_interval;
	sync_free_msg(ss);

	/* A client that never completed a sync, or that santad marked as
	 * needing one, asks for a clean sync until one succeeds. */
	if (requested == SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL &&
	    (c->status->clean_required || c->status->last_successful_full == 0))
		requested = SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN;
	c->requested = requested;
	return 0;
}

static int sync_preflight_body(sync_ctx *c, char **ret)
{
	const sync_engine *e = c->e;
	const Santa__StatusReply *st = c->status;
	sync_preflight_request req = {
		.machine_id = e->machine_id,
		.serial_num = e->host.serial_num,
		.hostname = e->host.hostname,
		.os_version = e->host.os_version,
		.os_build = e->host.os_build,
		.model_identifier = e->host.model_identifier,
		.santa_version = e->host.santa_version,
		.primary_user = e->host.primary_user,
		.client_mode = st->mode,
		.request_clean_sync = c->requested != SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL,
		.binary_rule_count = st->binary_rules,
		.certificate_rule_count = st->certificate_rules,
		.compiler_rule_count = st->compiler_rules,
		.transitive_rule_count = st->transitive_rule_count,
		.teamid_rule_count = st->teamid_rules,
		.signingid_rule_count = st->signingid_rules,
		.cdhash_rule_count = st->cdhash_rules,
	};

	return sync_preflight_request_json(&req, ret);
}

static Santa__SyncStatus sync_stage_preflight(sync_ctx *c)
{
	const sync_engine *e = c->e;
	sync_buf resp = { 0 };
	char err[512] = "", *body = NULL;
	int r;

	r = e->daemon->status(e->daemon_ud, &c->status);
	if (r == 0)
		r = sync_requested_type(c);
	if (r < 0) {
		sync_log(e, SANTA_LOG_ERR, "Preflight failed: reading rule counts and sync "
			 "state from santad: %s", sync_strerr(r, err, sizeof(err)));
		return SANTA__SYNC_STATUS__SYNC_STATUS_DAEMON_TIMEOUT;
	}
	if (c->requested != SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL)
		sync_log(e, SANTA_LOG_INFO, "Requesting a %s sync from the server",
			 sync_type_name(c->requested));

	r = sync_preflight_body(c, &body);
	if (r == 0)
		r = sync_post(c, "preflight", "Preflight", body, &resp);
	free(body);
	if (r < 0)
		return SANTA__SYNC_STATUS__SYNC_STATUS_PREFLIGHT_FAILED;

	r = sync_preflight_response_parse(resp.data, resp.len, &c->pre, err, sizeof(err));
	sync_buf_done(&resp);
	if (r < 0) {
		sync_log(e, SANTA_LOG_ERR, "Preflight failed: %s", err);
		return SANTA__SYNC_STATUS__SYNC_STATUS_PREFLIGHT_FAILED;
	}
	c->have_pre = true;
	c->res->sync_type = sync_resolve_type(c->requested, &c->pre);
	c->res->batch_size = c->pre.batch_size;
	sync_log(e, SANTA_LOG_INFO, "Preflight complete: %s sync, batch size %u",
		 sync_type_name(c->res->sync_type), c->pre.batch_size);
	return SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS;
}

/* --- "NAME can now be run" --- */

static bool sync_is_hash(const char *s)
{
	return s && strlen(s) == 64;
}

static sync_unblock_entry *sync_unblock_find(sync_unblock *u, const char *hash)
{
	for (size_t i = 0; i < SYNC_UNBLOCK_MAX; i++)
		if (u->entries[i].hash[0] && strcasecmp(u->entries[i].hash, hash) == 0)
			return &u->entries[i];
	return NULL;
}

/* A free entry, else the oldest one. */
static sync_unblock_entry *sync_unblock_slot(sync_unblock *u)
{
	sync_unblock_entry *oldest = &u->entries[0];

	for (size_t i = 0; i < SYNC_UNBLOCK_MAX; i++) {
		if (!u->entries[i].hash[0])
			return &u->entries[i];
		if (u->entries[i].age < oldest->age)
			oldest = &u->entries[i];
	}
	return oldest;
}

/* Copy NAME, cut at a character boundary if it is too long. */
static void sync_unblock_name(char *dst, const char *name)
{
	size_t len = strlen(name);

	if (len >= SYNC_UNBLOCK_NAME_MAX) {
		len = SYNC_UNBLOCK_NAME_MAX - 1;
		while (len > 0 && ((unsigned char)name[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, name, len);
	dst[len] = '\0';
}

/* An uploaded event: remember a blocked file (or bundle) by the hash that
 * its allow rules will name, as the original keys its notifications. A
 * bundle's event replaces what its file's earlier event left. */
static void sync_unblock_remember(sync_unblock *u, const Santa__Event *ev)
{
	bool bundle = sync_is_hash(ev->file_bundle_hash);
	const char *hash = bundle ? ev->file_bundle_hash : ev->file_sha256;
	const char *name = bundle && ev->file_bundle_name && *ev->file_bundle_name ?
				   ev->file_bundle_name : ev->file_name;
	sync_unblock_entry *ent;

	if (!u || !ev->decision || strncmp(ev->decision, "BLOCK_", 6) != 0 ||
	    !sync_is_hash(hash) || !name || !*name)
		return;
	if (bundle && sync_is_hash(ev->file_sha256) &&
	    (ent = sync_unblock_find(u, ev->file_sha256)) != NULL)
		ent->hash[0] = '\0';
	ent = sync_unblock_find(u, hash);
	if (!ent) {
		ent = sync_unblock_slot(u);
		snprintf(ent->hash, sizeof(ent->hash), "%s", hash);
		ent->remaining = -1;
	}
	sync_unblock_name(ent->name, name);
	ent->age = ++u->clock;
}

/* An applied rule: count it against the remembered block it allows. Only a
 * BINARY rule names a file; a bundle's rules carry the bundle's hash, and
 * the first says how many binaries the bundle has. */
static void sync_unblock_count(sync_unblock *u, const Santa__Rule *rule)
{
	bool bundle = sync_is_hash(rule->file_bundle_hash);
	sync_unblock_entry *ent;

	if (rule->rule_type != SANTA__RULE_TYPE__BINARY ||
	    (rule->policy != SANTA__POLICY__ALLOWLIST &&
	     rule->policy != SANTA__POLICY__ALLOWLIST_COMPILER))
		return;
	ent = sync_unblock_find(u, bundle ? rule->file_bundle_hash : rule->identifier);
	if (!ent)
		return;
	if (ent->remaining > 0)
		ent->remaining--;
	else if (ent->remaining < 0 && bundle && rule->file_bundle_binary_count > 0)
		ent->remaining = (int64_t)rule->file_bundle_binary_count - 1;
	else
		ent->remaining = 0;
}

/* After a sync succeeded: one notice per file or bundle whose rules are
 * all applied, as the original posts one per app. A notice that santad
 * does not take is not tried again; the rules are in place either way. */
static void sync_unblock_announce(const sync_engine *e)
{
	char msg[SYNC_UNBLOCK_NAME_MAX + 32], err[128];
	int r;

	for (size_t i = 0; i < SYNC_UNBLOCK_MAX; i++) {
		sync_unblock_entry *ent = &e->unblock->entries[i];

		if (!ent->hash[0] || ent->remaining != 0)
			continue;
		snprintf(msg, sizeof(msg), "%s can now be run", ent->name);
		r = e->daemon->post_notification(e->daemon_ud, msg);
		if (r < 0)
			sync_log(e, SANTA_LOG_WARNING, "Telling the user that \"%s\" can now "
				 "be run failed: %s, continuing", ent->name,
				 sync_strerr(r, err, sizeof(err)));
		else
			sync_log(e, SANTA_LOG_INFO, "Told the user that \"%s\" can now be run",
				 ent->name);
		ent->hash[0] = '\0';
	}
}

/* --- Event upload --- */

static int64_t sync_max_event_id(const Santa__EventList *l, int64_t after)
{
	for (size_t i = 0; i < l->n_events; i++)
		if (l->events[i]->id > after)
			after = l->events[i]->id;
	return after;
}

/* Upload N events in one request, then remove those with an id. */
static int sync_upload_batch(sync_ctx *c, Santa__Event *const *events, size_t n)
{
	const sync_engine *e = c->e;
	sync_buf resp = { 0 };
	char err[512] = "", *body = NULL;
	int64_t *ids;
	size_t n_ids = 0, bundles;
	int r;

	r = sync_eventupload_request_json(events, n, e->machine_id, &body);
	if (r == 0)
		r = sync_post(c, "eventupload", "Event upload", body, &resp);
	free(body);
	if (r < 0)
		return r;
	r = sync_eventupload_response_parse(resp.data, resp.len, &bundles, err, sizeof(err));
	sync_buf_done(&resp);
	if (r < 0) {
		sync_log(e, SANTA_LOG_ERR, "Event upload failed: %s", err);
		return r;
	}
	if (bundles)
		sync_log(e, SANTA_LOG_INFO, "The server asked for the binaries of %zu "
			 "bundles, which this client does not collect, ignoring", bundles);
	for (size_t i = 0; i < n; i++)
		sync_unblock_remember(e->unblock, events[i]);

	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (events[i]->id > 0)
			ids[n_ids++] = events[i]->id;
	r = n_ids ? e->daemon->remove_events(e->daemon_ud, ids, n_ids) : 0;
	free(ids);
	if (r < 0)
		sync_log(e, SANTA_LOG_ERR, "Event upload failed: removing %zu uploaded events "
			 "from santad: %s", n_ids, sync_strerr(r, err, sizeof(err)));
	return r;
}

static Santa__SyncStatus sync_stage_eventupload(sync_ctx *c)
{
	const sync_engine *e = c->e;
	uint32_t batch = c->pre.batch_size;
	/* Events keep arriving during a sync: upload what was pending when it
	 * started (plus a batch of slack), not an endless stream. */
	uint64_t max_batches = c->status->events_pending_upload / batch + 2;
	int64_t after = 0;
	char err[128];
	int r;

	for (uint64_t i = 0; i < max_batches; i++) {
		Santa__EventList *l = NULL;

		r = e->daemon->events_pending(e->daemon_ud, batch, after, &l);
		if (r < 0) {
			sync_log(e, SANTA_LOG_ERR, "Event upload failed: reading events from "
				 "santad: %s", sync_strerr(r, err, sizeof(err)));
			return SANTA__SYNC_STATUS__SYNC_STATUS_EVENT_UPLOAD_FAILED;
		}
		if (l->n_events == 0) {
			sync_free_msg(l);
			break;
		}
		r = sync_upload_batch(c, l->events, l->n_events);
		after = sync_max_event_id(l, after);
		if (r == 0)
			c->res->events_uploaded += l->n_events;
		sync_free_msg(l);
		if (r < 0)
			return SANTA__SYNC_STATUS__SYNC_STATUS_EVENT_UPLOAD_FAILED;
	}
	if (c->res->events_uploaded)
		sync_log(e, SANTA_LOG_INFO, "Uploaded %llu events",
			 (unsigned long long)c->res->events_uploaded);
	return SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS;
}

/* --- Rule download --- */

static int sync_take_rules(sync_ctx *c, sync_rule_page *page)
{
	size_t need = c->n_rules + page->n_rules;
	Santa__Rule **grown;
	size_t cap;

	if (page->n_rules == 0)
		return 0;
	if (need > c->cap_rules) {
		cap = c->cap_rules ? c->cap_rules : 1024;
		while (cap < need)
			cap *= 2;
		grown = realloc(c->rules, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		c->rules = grown;
		c->cap_rules = cap;
	}
	memcpy(c->rules + c->n_rules, page->rules, page->n_rules * sizeof(*page->rules));
	c->n_rules = need;
	page->n_rules = 0;   /* now owned by C */
	return 0;
}

/* One page: request it with CURSOR, parse it, keep its rules, and return
 * its cursor in *NEXT (NULL at the end). */
static int sync_fetch_page(sync_ctx *c, const char *cursor, uint64_t budget,
			   char **next)
{
	const sync_engine *e = c->e;
	sync_rule_page page;
	sync_buf resp = { 0 };
	char err[512] = "", *body = NULL;
	int r;

	r = sync_ruledownload_request_json(cursor, e->machine_id, &body);
	if (r == 0)
		r = sync_post(c, "ruledownload", "Rule download", body, &resp);
	free(body);
	if (r < 0)
		return r;
	r = sync_rule_page_parse(resp.data, resp.len, budget, &page, err, sizeof(err));
	sync_buf_done(&resp);
	if (r < 0) {
		sync_log(e, SANTA_LOG_ERR, "Rule download failed: %s", err);
		return r;
	}
	if (page.n_bad)
		sync_log(e, SANTA_LOG_WARNING, "Ignoring %zu bad rules of %zu in a page "
			 "(first: %s)", page.n_bad, page.n_received, page.first_bad);
	c->res->rules_received += page.n_received;
	r = sync_take_rules(c, &page);
	*next = page.cursor;
	page.cursor = NULL;
	sync_rule_page_done(&page);
	if (r < 0) {
		sync_log(e, SANTA_LOG_ERR, "Rule download failed: out of memory");
		free(*next);
		*next = NULL;
	}
	return r;
}

static int sync_download_rules(sync_ctx *c)
{
	const sync_engine *e = c->e;
	uint32_t max_pages = e->max_rule_pages ? e->max_rule_pages : SYNC_DEFAULT_MAX_PAGES;
	uint64_t max_rules = e->max_rules ? e->max_rules : SYNC_DEFAULT_MAX_RULES;
	char *cursor = NULL, *next = NULL;
	int r = 0;

	for (uint32_t page = 0; page < max_pages; page++) {
		r = sync_fetch_page(c, cursor, max_rules - c->res->rules_received, &next);
		if (r == 0 && next && cursor && strcmp(next, cursor) == 0) {
			sync_log(e, SANTA_LOG_ERR, "Rule download failed: the server sent "
				 "the same cursor twice");
			r = -ELOOP;
		}
		free(cursor);
		cursor = next;
		next = NULL;
		if (r < 0 || !cursor)
			break;
	}
	if (r == 0 && cursor) {
		sync_log(e, SANTA_LOG_ERR, "Rule download failed: the server still had "
			 "more after %u pages", max_pages);
		r = -E2BIG;
	}
	free(cursor);
	return r;
}

static uint64_t sync_batch_id(void)
{
	uint64_t id = 0;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	return id ? id : 1;
}

/* Hand every rule to santad as one staged set, applied on the last call. */
static int sync_apply_rules(sync_ctx *c)
{
	const sync_engine *e = c->e;
	size_t per_call = e->rules_per_call ? e->rules_per_call : SYNC_DEFAULT_RULES_PER_CALL;
	Santa__AddRulesRequest req = SANTA__ADD_RULES_REQUEST__INIT;
	char err[128];
	int r = 0;

	req.batch_id = sync_batch_id();
	/* RuleCleanup and SyncType share their numbers: NORMAL is no cleanup,
	 * CLEAN removes non-transitive rules, CLEAN_ALL all of them. */
	req.cleanup = (Santa__RuleCleanup)c->res->sync_type;
	for (size_t off = 0; off < c->n_rules; off += per_call) {
		req.rules = c->rules + off;
		req.n_rules = c->n_rules - off < per_call ? c->n_rules - off : per_call;
		req.final = off + req.n_rules == c->n_rules;
		r = e->daemon->add_rules(e->daemon_ud, &req);
		if (r < 0)
			break;
	}
	if (r < 0)
		sync_log(e, SANTA_LOG_ERR, "Rule download failed: santad did not apply the "
			 "%zu rules: %s", c->n_rules, sync_strerr(r, err, sizeof(err)));
	return r;
}

static Santa__SyncStatus sync_stage_ruledownload(sync_ctx *c)
{
	const sync_engine *e = c->e;
	uint64_t bad;

	if (sync_download_rules(c) < 0)
		return SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED;
	bad = c->res->rules_received - c->n_rules;
	sync_log(e, SANTA_LOG_INFO, "Received %llu rules%s",
		 (unsigned long long)c->res->rules_received, bad ? " (some bad)" : "");

	/* As the original: no rules means nothing to apply, and a clean sync
	 * that brought none leaves the rules in place. */
	if (c->n_rules && sync_apply_rules(c) < 0)
		return SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED;
	for (size_t i = 0; e->unblock && i < c->n_rules; i++)
		sync_unblock_count(e->unblock, c->rules[i]);
	c->res->rules_processed = c->n_rules;
	if (c->n_rules)
		sync_log(e, SANTA_LOG_INFO, "Processed %zu rules", c->n_rules);
	return SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS;
}

/* --- Postflight and settings --- */

static void sync_fill_settings(const sync_ctx *c, Santa__SyncSettings *s)
{
	const sync_preflight_response *p = &c->pre;
	int64_t now = sync_now(c->e);

	s->has_client_mode = p->has_client_mode;
	s->client_mode = (Santa__ClientMode)p->client_mode;
	s->has_allowed_path_regex = p->allowed_path_regex != NULL;
	s->allowed_path_regex = p->allowed_path_regex ? p->allowed_path_regex :
							 (char *)protobuf_c_empty_string;
	s->has_blocked_path_regex = p->blocked_path_regex != NULL;
	s->blocked_path_regex = p->blocked_path_regex ? p->blocked_path_regex :
							 (char *)protobuf_c_empty_string;
	s->has_enable_bundles = p->has_enable_bundles;
	s->enable_bundles = p->enable_bundles;
	s->has_enable_transitive_rules = p->has_enable_transitive_rules;
	s->enable_transitive_rules = p->enable_transitive_rules;
	s->has_enable_all_event_upload = p->has_enable_all_event_upload;
	s->enable_all_event_upload = p->enable_all_event_upload;
	s->has_disable_unknown_event_upload = p->has_disable_unknown_event_upload;
	s->disable_unknown_event_upload = p->disable_unknown_event_upload;
	s->has_full_sync_interval = p->has_full_sync_interval;
	s->full_sync_interval = p->full_sync_interval;
	s->has_batch_size = true;
	s->batch_size = p->batch_size;
	s->has_last_full_sync = true;
	s->last_full_sync = now;
	s->has_last_rule_sync = true;
	s->last_rule_sync = now;
	/* A clean sync happened: stop asking for one. As the original, a
	 * request the server answered with a normal sync stays, and the next
	 * sync asks again. */
	if (c->res->sync_type != SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL) {
		s->has_sync_type_required = true;
		s->sync_type_required = SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL;
	}
}

static Santa__SyncStatus sync_stage_postflight(sync_ctx *c)
{
	const sync_engine *e = c->e;
	Santa__SyncSettings s = SANTA__SYNC_SETTINGS__INIT;
	sync_buf resp = { 0 };
	char err[128], *body = NULL;
	int r;

	r = sync_postflight_request_json(c->res->rules_received, c->res->rules_processed,
					 c->res->sync_type, e->machine_id, &body);
	if (r == 0)
		r = sync_post(c, "postflight", "Postflight", body, &resp);
	free(body);
	sync_buf_done(&resp);   /* the original ignores the body too */
	if (r < 0)
		return SANTA__SYNC_STATUS__SYNC_STATUS_POSTFLIGHT_FAILED;

	sync_fill_settings(c, &s);
	r = e->daemon->update_settings(e->daemon_ud, &s);
	if (r < 0) {
		sync_log(e, SANTA_LOG_ERR, "Postflight failed: santad did not save the "
			 "server's settings: %s", sync_strerr(r, err, sizeof(err)));
		return SANTA__SYNC_STATUS__SYNC_STATUS_POSTFLIGHT_FAILED;
	}
	if (c->pre.has_client_mode)
		sync_log(e, SANTA_LOG_INFO, "Client mode is now %s",
			 sync_client_mode_name(c->pre.client_mode));
	if (c->pre.has_full_sync_interval)
		c->res->full_sync_interval = c->pre.full_sync_interval;
	return SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS;
}

/* --- The whole sync --- */

static Santa__SyncStatus sync_record_request(const sync_engine *e, int requested)
{
	Santa__SyncSettings s = SANTA__SYNC_SETTINGS__INIT;
	char err[128];
	int r;

	if (requested == SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL)
		return SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS;
	s.has_sync_type_required = true;
	s.sync_type_required = (Santa__SyncType)requested;
	r = e->daemon->update_settings(e->daemon_ud, &s);
	if (r < 0) {
		sync_log(e, SANTA_LOG_ERR, "Recording the %s sync request in santad failed: %s",
			 sync_type_name(requested), sync_strerr(r, err, sizeof(err)));
		return SANTA__SYNC_STATUS__SYNC_STATUS_DAEMON_TIMEOUT;
	}
	return SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS;
}

static Santa__SyncStatus sync_check_config(const sync_engine *e)
{
	if (!e->sync_base_url || !*e->sync_base_url) {
		sync_log(e, SANTA_LOG_ERR, "No SyncBaseURL is configured, so there is "
			 "nothing to sync with");
		return SANTA__SYNC_STATUS__SYNC_STATUS_MISSING_SYNC_BASE_URL;
	}
	if (!e->machine_id || !*e->machine_id) {
		sync_log(e, SANTA_LOG_ERR, "No machine id: set MachineID or provide "
			 "/etc/machine-id");
		return SANTA__SYNC_STATUS__SYNC_STATUS_MISSING_MACHINE_ID;
	}
	return SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS;
}

/* Tell santad how the sync ended, so that its metrics count syncs by
 * result. Not worth failing the sync over: a santad that cannot hear it
 * has its own reasons logged by the daemon ops. */
static void sync_report(const sync_engine *e, Santa__SyncStatus st)
{
	if (!e->daemon->sync_finished || (e->cancel && atomic_load(e->cancel)))
		return;
	if (e->daemon->sync_finished(e->daemon_ud, st) < 0)
		log_debug("Telling santad that the sync ended with status %d failed", st);
}

static void sync_ctx_done(sync_ctx *c)
{
	for (size_t i = 0; i < c->n_rules; i++)
		sync_rule_free(c->rules[i]);
	free(c->rules);
	sync_free_msg(c->status);
	sync_preflight_response_done(&c->pre);
}

Santa__SyncStatus sync_engine_run(const sync_engine *e, int requested, sync_result *ret)
{
	Santa__SyncStatus (*const stages[])(sync_ctx *) = {
		sync_stage_preflight, sync_stage_eventupload,
		sync_stage_ruledownload, sync_stage_postflight,
	};
	sync_ctx c = { .e = e, .res = ret, .requested = requested };
	Santa__SyncStatus st;

	memset(ret, 0, sizeof(*ret));
	st = sync_check_config(e);
	if (st != SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS) {
		ret->status = st;
		return st;
	}
	if (e->transport->begin_sync)
		e->transport->begin_sync(e->transport_ud);
	st = sync_record_request(e, requested);
	if (st == SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS)
		sync_log(e, SANTA_LOG_INFO, "Sync starting with %s", e->sync_base_url);
	for (size_t i = 0; st == SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS &&
			   i < sizeof(stages) / sizeof(stages[0]); i++)
		st = stages[i](&c);
	if (st == SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS)
		sync_log(e, SANTA_LOG_INFO, "Sync completed successfully");
	sync_report(e, st);
	if (st == SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS && e->unblock &&
	    e->daemon->post_notification && !(e->cancel && atomic_load(e->cancel)))
		sync_unblock_announce(e);
	sync_ctx_done(&c);
	ret->status = st;
	return st;
}

int sync_engine_post_events(const sync_engine *e, Santa__Event *const *events, size_t n)
{
	sync_result res = { 0 };
	sync_ctx c = { .e = e, .res = &res };
	int r = 0;

	if (sync_check_config(e) != SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS)
		return -EINVAL;
	if (n > SYNC_MAX_POST_EVENTS)
		n = SYNC_MAX_POST_EVENTS;
	if (e->transport->begin_sync)
		e->transport->begin_sync(e->transport_ud);
	for (size_t off = 0; r == 0 && off < n; off += SYNC_DEFAULT_BATCH_SIZE) {
		size_t k = n - off < SYNC_DEFAULT_BATCH_SIZE ? n - off : SYNC_DEFAULT_BATCH_SIZE;

		r = sync_upload_batch(&c, events + off, k);
	}
	if (r == 0)
		sync_log(e, SANTA_LOG_INFO, "Uploaded %zu events of blocked executions", n);
	return r;
}
