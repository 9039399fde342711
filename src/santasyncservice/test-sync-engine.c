/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stages of a sync against a scripted server and a fake santad: what is
 * sent, what santad is asked to change, and above all what is NOT changed
 * when the server fails half-way.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sync_engine.h"

#define HASH(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
	c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

/* --- A scripted server --- */

typedef struct step {
	const char *stage;
	int err;              /* 0: 200 with BODY; else the transport error */
	const char *body;
} step;

typedef struct fake_server {
	const step *script;
	size_t n_script;
	size_t next;
	char *sent_stage[64];
	char *sent_body[64];
	size_t n_sent;
} fake_server;

static int fake_post(void *ud, const char *stage, const char *body, size_t len,
		     sync_buf *ret, char *errbuf, size_t errsize)
{
	fake_server *s = ud;
	const step *st;

	assert_true(s->n_sent < 64);
	s->sent_stage[s->n_sent] = strdup(stage);
	s->sent_body[s->n_sent] = strndup(body, len);
	s->n_sent++;
	if (s->next >= s->n_script) {
		snprintf(errbuf, errsize, "no scripted answer for %s", stage);
		return -ECONNREFUSED;
	}
	st = &s->script[s->next++];
	if (strcmp(st->stage, stage) != 0)
		fail_msg("request %zu went to %s, the script expected %s", s->next, stage,
			 st->stage);
	if (st->err) {
		snprintf(errbuf, errsize, "HTTP 500");
		return st->err;
	}
	ret->data = strdup(st->body);
	ret->len = strlen(st->body);
	return 0;
}

static const sync_transport_ops fake_transport = { .post = fake_post };

static void fake_server_done(fake_server *s)
{
	for (size_t i = 0; i < s->n_sent; i++) {
		free(s->sent_stage[i]);
		free(s->sent_body[i]);
	}
}

/* --- A fake santad --- */

typedef struct add_call {
	uint64_t batch_id;
	bool final;
	int cleanup;
	size_t n_rules;
	char first_id[80];
} add_call;

typedef struct fake_daemon {
	int mode;
	bool clean_required;
	int64_t last_full;
	int sync_type_required;
	uint32_t saved_interval;     /* full_sync_interval santad saved; 0 none */
	int64_t event_ids[8];
	size_t n_events;
	int64_t removed[16];
	size_t n_removed;
	add_call adds[16];
	size_t n_adds;
	int fail_add;                /* fail the Nth AddRules call (1-based) */
	Santa__SyncSettings *updates[8];
	size_t n_updates;
	int finished[4];             /* statuses santad was told, in order */
	size_t n_finished;
	char *notices[8];            /* PostRuleSyncNotification messages */
	size_t n_notices;
	bool fail_notice;
} fake_daemon;

/* Replies come back heap-allocated as an unpacked message would. */
static void *roundtrip(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	void *out;

	protobuf_c_message_pack(m, buf);
	out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	return out;
}

static int fake_status(void *ud, Santa__StatusReply **ret)
{
	fake_daemon *d = ud;
	Santa__StatusReply st = SANTA__STATUS_REPLY__INIT;

	st.mode = (Santa__ClientMode)d->mode;
	st.binary_rules = 2;
	st.teamid_rules = 1;
	st.events_pending_upload = d->n_events;
	st.clean_required = d->clean_required;
	st.last_successful_full = d->last_full;
	*ret = roundtrip(&st.base);
	return 0;
}

static int fake_get_settings(void *ud, Santa__SyncSettings **ret)
{
	fake_daemon *d = ud;
	Santa__SyncSettings s = SANTA__SYNC_SETTINGS__INIT;

	s.has_sync_type_required = true;
	s.sync_type_required = (Santa__SyncType)d->sync_type_required;
	s.has_full_sync_interval = d->saved_interval != 0;
	s.full_sync_interval = d->saved_interval;
	*ret = roundtrip(&s.base);
	return 0;
}

static int fake_events_pending(void *ud, uint32_t limit, int64_t after,
			       Santa__EventList **ret)
{
	fake_daemon *d = ud;
	Santa__EventList l = SANTA__EVENT_LIST__INIT;
	Santa__Event ev[8], *evp[8];

	for (size_t i = 0; i < d->n_events && l.n_events < limit; i++) {
		if (d->event_ids[i] <= after)
			continue;
		santa__event__init(&ev[l.n_events]);
		ev[l.n_events].id = d->event_ids[i];
		ev[l.n_events].file_sha256 = HASH("e");
		ev[l.n_events].decision = "BLOCK_UNKNOWN";
		ev[l.n_events].file_name = "app";
		evp[l.n_events] = &ev[l.n_events];
		l.n_events++;
	}
	l.events = evp;
	*ret = roundtrip(&l.base);
	return 0;
}

static int fake_remove_events(void *ud, const int64_t *ids, size_t n)
{
	fake_daemon *d = ud;

	for (size_t i = 0; i < n; i++) {
		assert_true(d->n_removed < 16);
		d->removed[d->n_removed++] = ids[i];
	}
	return 0;
}

static int fake_add_rules(void *ud, const Santa__AddRulesRequest *req)
{
	fake_daemon *d = ud;
	add_call *c;

	if (d->fail_add && (size_t)d->fail_add == d->n_adds + 1)
		return -EIO;
	assert_true(d->n_adds < 16);
	c = &d->adds[d->n_adds++];
	c->batch_id = req->batch_id;
	c->final = req->final;
	c->cleanup = req->cleanup;
	c->n_rules = req->n_rules;
	snprintf(c->first_id, sizeof(c->first_id), "%s",
		 req->n_rules ? req->rules[0]->identifier : "");
	return 0;
}

static int fake_update_settings(void *ud, const Santa__SyncSettings *s)
{
	fake_daemon *d = ud;

	assert_true(d->n_updates < 8);
	d->updates[d->n_updates++] = roundtrip(&s->base);
	return 0;
}

static int fake_sync_finished(void *ud, Santa__SyncStatus status)
{
	fake_daemon *d = ud;

	assert_true(d->n_finished < 4);
	d->finished[d->n_finished++] = status;
	return 0;
}

static int fake_post_notification(void *ud, const char *message)
{
	fake_daemon *d = ud;

	assert_true(d->n_notices < 8);
	d->notices[d->n_notices++] = strdup(message);
	return d->fail_notice ? -EIO : 0;
}

static const sync_daemon_ops fake_daemon_ops = {
	.status = fake_status,
	.get_settings = fake_get_settings,
	.events_pending = fake_events_pending,
	.remove_events = fake_remove_events,
	.add_rules = fake_add_rules,
	.update_settings = fake_update_settings,
	.sync_finished = fake_sync_finished,
	.post_notification = fake_post_notification,
};

static void fake_daemon_done(fake_daemon *d)
{
	for (size_t i = 0; i < d->n_updates; i++)
		protobuf_c_message_free_unpacked(&d->updates[i]->base, NULL);
	for (size_t i = 0; i < d->n_notices; i++)
		free(d->notices[i]);
}

static int64_t fixed_now(void)
{
	return 1700000000;
}

static void quiet_log(void *ud, int level, const char *line)
{
	(void)ud;
	(void)level;
	(void)line;
}

static sync_engine make_engine(fake_daemon *d, fake_server *s)
{
	sync_engine e = {
		.daemon = &fake_daemon_ops,
		.daemon_ud = d,
		.transport = &fake_transport,
		.transport_ud = s,
		.log = quiet_log,
		.sync_base_url = "http://127.0.0.1:1/",
		.machine_id = "m1",
		.host = { .santa_version = "2026.1" },
		.now = fixed_now,
	};

	return e;
}

#define RULES_P1 "{\"rules\":[{\"identifier\":\"" HASH("a") "\",\"policy\":\"BLOCKLIST\"," \
	"\"rule_type\":\"BINARY\"},{\"identifier\":\"T1\",\"policy\":\"ALLOWLIST\"," \
	"\"rule_type\":\"TEAMID\"}],\"cursor\":\"p2\"}"
#define RULES_P2 "{\"rules\":[{\"identifier\":\"" HASH("b") "\",\"policy\":\"WHITELIST\"," \
	"\"rule_type\":\"BINARY\"},{\"identifier\":\"\",\"policy\":\"BLOCKLIST\"," \
	"\"rule_type\":\"BINARY\"}]}"

/* --- Tests --- */

static void test_full_sync(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{\"client_mode\":\"LOCKDOWN\",\"batch_size\":2,"
				  "\"blocked_path_regex\":\"^/tmp/\"}" },
		{ "eventupload", 0, "{}" },
		{ "eventupload", 0, "" },
		{ "ruledownload", 0, RULES_P1 },
		{ "ruledownload", 0, RULES_P2 },
		{ "postflight", 0, "" },
	};
	fake_daemon d = { .mode = 1, .last_full = 5, .event_ids = { 3, 4, 9 }, .n_events = 3 };
	fake_server s = { .script = script, .n_script = 6 };
	sync_engine e = make_engine(&d, &s);
	Santa__SyncSettings *u;
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_int_equal(s.next, 6);
	assert_non_null(strstr(s.sent_body[0], "\"client_mode\":\"MONITOR\""));
	assert_non_null(strstr(s.sent_body[0], "\"request_clean_sync\":false"));
	assert_non_null(strstr(s.sent_body[0], "\"binary_rule_count\":2"));
	assert_non_null(strstr(s.sent_body[4], "\"cursor\":\"p2\""));
	assert_string_equal(s.sent_body[5], "{\"rules_received\":4,\"rules_processed\":3,"
			    "\"machine_id\":\"m1\",\"syncType\":\"NORMAL\"}");

	/* Events: two batches of two and one, each removed after its 200. */
	assert_int_equal(res.events_uploaded, 3);
	assert_int_equal(d.n_removed, 3);
	assert_int_equal(d.removed[2], 9);

	/* Rules: one staged set, applied once, no cleanup. */
	assert_int_equal(d.n_adds, 1);
	assert_true(d.adds[0].final);
	assert_int_equal(d.adds[0].n_rules, 3);
	assert_int_equal(d.adds[0].cleanup, SANTA__RULE_CLEANUP__CLEANUP_NONE);
	assert_int_equal(res.rules_received, 4);
	assert_int_equal(res.rules_processed, 3);

	/* Settings, once, after postflight. */
	assert_int_equal(d.n_updates, 1);
	u = d.updates[0];
	assert_true(u->has_client_mode);
	assert_int_equal(u->client_mode, SANTA__CLIENT_MODE__LOCKDOWN);
	assert_true(u->has_blocked_path_regex);
	assert_string_equal(u->blocked_path_regex, "^/tmp/");
	assert_false(u->has_allowed_path_regex);
	assert_int_equal(u->batch_size, 2);
	/* The server did not say: the configuration's interval holds. */
	assert_false(u->has_full_sync_interval);
	assert_int_equal(res.full_sync_interval, 0);
	assert_int_equal(u->last_full_sync, 1700000000);
	/* A normal sync leaves santad's clean-sync request alone. */
	assert_false(u->has_sync_type_required);

	/* santad hears how it ended, once, for its metrics. */
	assert_int_equal(d.n_finished, 1);
	assert_int_equal(d.finished[0], SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	fake_server_done(&s);
	fake_daemon_done(&d);
}

static void test_lost_page_changes_nothing(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{\"client_mode\":\"LOCKDOWN\",\"sync_type\":\"clean\"}" },
		{ "ruledownload", 0, RULES_P1 },
		{ "ruledownload", -EIO, NULL },
	};
	fake_daemon d = { .mode = 1, .last_full = 5 };
	fake_server s = { .script = script, .n_script = 3 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED);
	assert_int_equal(d.n_adds, 0);
	assert_int_equal(d.n_updates, 0);
	assert_int_equal(d.n_finished, 1);
	assert_int_equal(d.finished[0], SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED);
	fake_server_done(&s);
}

static void test_truncated_page_changes_nothing(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, RULES_P1 },
		{ "ruledownload", 0, "{\"rules\":[{\"identifier\":\"x\",\"pol" },
	};
	fake_daemon d = { .mode = 1, .last_full = 5 };
	fake_server s = { .script = script, .n_script = 3 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED);
	assert_int_equal(d.n_adds, 0);
	assert_int_equal(d.n_updates, 0);
	fake_server_done(&s);
}

static void test_preflight_failure(void **state)
{
	static const step script[] = {
		{ "preflight", -EIO, NULL },
	};
	fake_daemon d = { .mode = 1, .last_full = 5, .event_ids = { 1 }, .n_events = 1 };
	fake_server s = { .script = script, .n_script = 1 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_PREFLIGHT_FAILED);
	assert_int_equal(s.n_sent, 1);
	assert_int_equal(d.n_removed + d.n_adds + d.n_updates, 0);
	fake_server_done(&s);
}

static void test_eventupload_failure_keeps_events(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{}" },
		{ "eventupload", -EIO, NULL },
	};
	fake_daemon d = { .mode = 1, .last_full = 5, .event_ids = { 1, 2 }, .n_events = 2 };
	fake_server s = { .script = script, .n_script = 2 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_EVENT_UPLOAD_FAILED);
	assert_int_equal(d.n_removed, 0);
	assert_int_equal(d.n_updates, 0);
	fake_server_done(&s);
}

static void test_postflight_failure_keeps_settings(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{\"client_mode\":\"LOCKDOWN\",\"full_sync_interval\":900}" },
		{ "ruledownload", 0, RULES_P2 },
		{ "postflight", -EIO, NULL },
	};
	fake_daemon d = { .mode = 1, .last_full = 5, .saved_interval = 1200 };
	fake_server s = { .script = script, .n_script = 3 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_POSTFLIGHT_FAILED);
	assert_int_equal(d.n_adds, 1);
	assert_int_equal(d.n_updates, 0);
	/* The next sync waits as long as the last successful one said. */
	assert_int_equal(res.full_sync_interval, 1200);
	fake_server_done(&s);
}

static void test_interval_after_success(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{\"full_sync_interval\":900}" },
		{ "ruledownload", 0, "{}" },
		{ "postflight", 0, "" },
	};
	fake_daemon d = { .mode = 1, .last_full = 5, .saved_interval = 1200 };
	fake_server s = { .script = script, .n_script = 3 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_int_equal(res.full_sync_interval, 900);
	assert_int_equal(d.n_updates, 1);
	assert_true(d.updates[0]->has_full_sync_interval);
	assert_int_equal(d.updates[0]->full_sync_interval, 900);
	fake_server_done(&s);
	fake_daemon_done(&d);
}

/* A service that is stopping does not report its last sync: santad may be
 * stopping too, and would not answer. */
static void test_cancelled_sync_not_reported(void **state)
{
	static const step script[] = {
		{ "preflight", -ECANCELED, NULL },
	};
	fake_daemon d = { .mode = 1, .last_full = 5 };
	fake_server s = { .script = script, .n_script = 1 };
	sync_engine e = make_engine(&d, &s);
	atomic_int cancel = 1;
	sync_result res;

	(void)state;
	e.cancel = &cancel;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_PREFLIGHT_FAILED);
	assert_int_equal(d.n_finished, 0);
	fake_server_done(&s);
}

static void run_clean(int requested, const char *server_type, int want_cleanup)
{
	char pre[128];
	step script[] = {
		{ "preflight", 0, pre },
		{ "ruledownload", 0, RULES_P2 },
		{ "postflight", 0, "{}" },
	};
	fake_daemon d = { .mode = 2, .last_full = 5 };
	fake_server s = { .script = script, .n_script = 3 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	snprintf(pre, sizeof(pre), "{\"sync_type\":\"%s\"}", server_type);
	assert_int_equal(sync_engine_run(&e, requested, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_non_null(strstr(s.sent_body[0], requested ? "\"request_clean_sync\":true" :
						 "\"request_clean_sync\":false"));
	assert_int_equal(d.n_adds, 1);
	assert_int_equal(d.adds[0].cleanup, want_cleanup);
	/* A requested clean sync is recorded before anything else, and
	 * cleared by the final settings if the sync was a clean one; else the
	 * next sync asks again. */
	if (requested) {
		assert_int_equal(d.n_updates, 2);
		assert_int_equal(d.updates[0]->sync_type_required, requested);
		assert_false(d.updates[0]->has_client_mode);
	}
	assert_int_equal(d.updates[d.n_updates - 1]->has_sync_type_required,
			 want_cleanup != SANTA__RULE_CLEANUP__CLEANUP_NONE);
	assert_int_equal(d.updates[d.n_updates - 1]->sync_type_required, 0);
	fake_server_done(&s);
	fake_daemon_done(&d);
}

static void test_clean_syncs(void **state)
{
	const int C = SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN;
	const int A = SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL;

	(void)state;
	run_clean(0, "normal", SANTA__RULE_CLEANUP__CLEANUP_NONE);
	run_clean(0, "clean", SANTA__RULE_CLEANUP__CLEANUP_NON_TRANSITIVE);
	run_clean(0, "clean_all", SANTA__RULE_CLEANUP__CLEANUP_ALL);
	run_clean(C, "clean", SANTA__RULE_CLEANUP__CLEANUP_NON_TRANSITIVE);
	run_clean(C, "", SANTA__RULE_CLEANUP__CLEANUP_NONE);
	run_clean(A, "clean", SANTA__RULE_CLEANUP__CLEANUP_ALL);
	run_clean(A, "normal", SANTA__RULE_CLEANUP__CLEANUP_NONE);
}

static void test_first_sync_requests_clean(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, "{}" },
		{ "postflight", 0, "{}" },
	};
	fake_daemon d = { .mode = 1, .last_full = 0 };
	fake_server s = { .script = script, .n_script = 3 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_non_null(strstr(s.sent_body[0], "\"request_clean_sync\":true"));
	/* No rules: nothing to apply, even for a clean sync. */
	assert_int_equal(d.n_adds, 0);
	fake_server_done(&s);
	fake_daemon_done(&d);
}

static void test_endless_cursor(void **state)
{
	static step script[8];
	static char bodies[8][64];
	fake_daemon d = { .mode = 1, .last_full = 5 };
	fake_server s = { .script = script, .n_script = 8 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	script[0] = (step){ "preflight", 0, "{}" };
	for (int i = 1; i < 8; i++) {
		snprintf(bodies[i], sizeof(bodies[i]), "{\"rules\":[],\"cursor\":\"c%d\"}", i);
		script[i] = (step){ "ruledownload", 0, bodies[i] };
	}
	e.max_rule_pages = 5;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED);
	assert_int_equal(s.n_sent, 6);
	assert_int_equal(d.n_adds + d.n_updates, 0);
	fake_server_done(&s);
}

static void test_repeated_cursor(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, "{\"rules\":[],\"cursor\":\"same\"}" },
		{ "ruledownload", 0, "{\"rules\":[],\"cursor\":\"same\"}" },
	};
	fake_daemon d = { .mode = 1, .last_full = 5 };
	fake_server s = { .script = script, .n_script = 3 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED);
	assert_int_equal(s.n_sent, 3);
	fake_server_done(&s);
}

static void test_rule_budget(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, RULES_P1 },
		{ "ruledownload", 0, RULES_P2 },
	};
	fake_daemon d = { .mode = 1, .last_full = 5 };
	fake_server s = { .script = script, .n_script = 3 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	e.max_rules = 3;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED);
	assert_int_equal(d.n_adds, 0);
	fake_server_done(&s);
}

static void test_rules_in_several_calls(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{\"sync_type\":\"clean_all\"}" },
		{ "ruledownload", 0, RULES_P1 },
		{ "ruledownload", 0, RULES_P2 },
		{ "postflight", 0, "{}" },
	};
	fake_daemon d = { .mode = 1, .last_full = 5 };
	fake_server s = { .script = script, .n_script = 4 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	e.rules_per_call = 2;
	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_int_equal(d.n_adds, 2);
	assert_int_equal(d.adds[0].n_rules, 2);
	assert_false(d.adds[0].final);
	assert_int_equal(d.adds[1].n_rules, 1);
	assert_true(d.adds[1].final);
	assert_int_equal(d.adds[0].batch_id, d.adds[1].batch_id);
	assert_int_not_equal(d.adds[0].batch_id, 0);
	assert_int_equal(d.adds[1].cleanup, SANTA__RULE_CLEANUP__CLEANUP_ALL);
	assert_string_equal(d.adds[1].first_id, HASH("b"));
	fake_server_done(&s);
	fake_daemon_done(&d);
}

static void test_add_rules_failure(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{\"client_mode\":\"LOCKDOWN\"}" },
		{ "ruledownload", 0, RULES_P2 },
	};
	fake_daemon d = { .mode = 1, .last_full = 5, .fail_add = 1 };
	fake_server s = { .script = script, .n_script = 2 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_RULE_DOWNLOAD_FAILED);
	assert_int_equal(d.n_updates, 0);
	assert_int_equal(s.n_sent, 2);   /* no postflight */
	fake_server_done(&s);
}

static void test_missing_config(void **state)
{
	fake_daemon d = { 0 };
	fake_server s = { 0 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	e.sync_base_url = NULL;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_MISSING_SYNC_BASE_URL);
	e.sync_base_url = "http://x/";
	e.machine_id = "";
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_MISSING_MACHINE_ID);
	assert_int_equal(s.n_sent, 0);
	/* Not a sync that started: santad is not bothered. */
	assert_int_equal(d.n_finished, 0);
}

static void test_post_events(void **state)
{
	static const step script[] = {
		{ "eventupload", 0, "{}" },
	};
	fake_daemon d = { 0 };
	fake_server s = { .script = script, .n_script = 1 };
	sync_engine e = make_engine(&d, &s);
	Santa__Event a = SANTA__EVENT__INIT, b = SANTA__EVENT__INIT;
	Santa__Event *evs[] = { &a, &b };

	(void)state;
	a.id = 11;
	a.decision = "BLOCK_BINARY";
	b.decision = "BLOCK_BINARY";   /* not stored: nothing to remove */
	assert_int_equal(sync_engine_post_events(&e, evs, 2), 0);
	assert_int_equal(d.n_removed, 1);
	assert_int_equal(d.removed[0], 11);
	assert_non_null(strstr(s.sent_body[0], "\"decision\":\"BLOCK_BINARY\""));
	fake_server_done(&s);
}

#define ALLOW(id, extra) "{\"identifier\":\"" id "\",\"policy\":\"ALLOWLIST\"," \
	"\"rule_type\":\"BINARY\"" extra "}"
/* A rule's extra keys: one of bundle B's two binaries. */
#define IN_BUNDLE_B ",\"file_bundle_hash\":\"" HASH("b") "\",\"file_bundle_binary_count\":2"

/* A blocked file uploaded in one sync, allowed in it, is announced once the
 * whole sync succeeded: not after a failed postflight, but at the next
 * sync that succeeds, and only once. */
static void test_unblock_notice_after_success(void **state)
{
	static const step script[] = {
		{ "preflight", 0, "{}" },
		{ "eventupload", 0, "{}" },
		{ "ruledownload", 0, "{\"rules\":[" ALLOW(HASH("e"), "") ","
				     ALLOW(HASH("f"), "") "]}" },
		{ "postflight", -EIO, NULL },
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, "{\"rules\":[]}" },
		{ "postflight", 0, "" },
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, "{\"rules\":[]}" },
		{ "postflight", 0, "" },
	};
	fake_daemon d = { .last_full = 5, .event_ids = { 3 }, .n_events = 1 };
	fake_server s = { .script = script, .n_script = 10 };
	sync_unblock u = { 0 };
	sync_engine e = make_engine(&d, &s);
	sync_result res;

	(void)state;
	e.unblock = &u;
	assert_int_equal(sync_engine_run(&e, 0, &res),
			 SANTA__SYNC_STATUS__SYNC_STATUS_POSTFLIGHT_FAILED);
	assert_int_equal(d.n_adds, 1);
	assert_int_equal(d.n_notices, 0);

	d.n_events = 0;
	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_int_equal(d.n_notices, 1);
	assert_string_equal(d.notices[0], "app can now be run");
	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_int_equal(d.n_notices, 1);
	assert_int_equal(s.next, 10);
	fake_server_done(&s);
	fake_daemon_done(&d);
}

/* A bundle is announced by its name once all its binaries' rules arrived,
 * over two syncs; allowed executions are not remembered; a notice santad
 * refuses fails nothing and is not tried again. */
static void test_unblock_bundle(void **state)
{
	static const step script[] = {
		{ "eventupload", 0, "{}" },
		{ "eventupload", 0, "{}" },
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, "{\"rules\":[" ALLOW(HASH("1"), IN_BUNDLE_B) ","
				     ALLOW(HASH("1"), "") "," ALLOW(HASH("2"), "") "]}" },
		{ "postflight", 0, "" },
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, "{\"rules\":[" ALLOW(HASH("3"), IN_BUNDLE_B) "]}" },
		{ "postflight", 0, "" },
		{ "preflight", 0, "{}" },
		{ "ruledownload", 0, "{\"rules\":[]}" },
		{ "postflight", 0, "" },
	};
	fake_daemon d = { .last_full = 5, .fail_notice = true };
	fake_server s = { .script = script, .n_script = 11 };
	sync_unblock u = { 0 };
	sync_engine e = make_engine(&d, &s);
	Santa__Event file = SANTA__EVENT__INIT, inbundle, allowed = SANTA__EVENT__INIT;
	Santa__Event *first[] = { &file, &allowed }, *second[] = { &inbundle };
	sync_result res;

	(void)state;
	e.unblock = &u;
	file.file_sha256 = HASH("1");
	file.file_name = "tool";
	file.decision = "BLOCK_UNKNOWN";
	allowed.file_sha256 = HASH("2");
	allowed.file_name = "other";
	allowed.decision = "ALLOW_UNKNOWN";
	inbundle = file;
	inbundle.file_bundle_hash = HASH("b");
	inbundle.file_bundle_name = "Toolkit";
	assert_int_equal(sync_engine_post_events(&e, first, 2), 0);
	assert_int_equal(sync_engine_post_events(&e, second, 1), 0);

	/* One of the bundle's two rules; the file's own rule no longer counts
	 * (its bundle's event replaced it); the allowed one was never kept. */
	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_int_equal(d.n_notices, 0);

	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_int_equal(d.n_notices, 1);
	assert_string_equal(d.notices[0], "Toolkit can now be run");
	assert_int_equal(sync_engine_run(&e, 0, &res), SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS);
	assert_int_equal(d.n_notices, 1);
	assert_int_equal(s.next, 11);
	fake_server_done(&s);
	fake_daemon_done(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_sync),
		cmocka_unit_test(test_lost_page_changes_nothing),
		cmocka_unit_test(test_truncated_page_changes_nothing),
		cmocka_unit_test(test_preflight_failure),
		cmocka_unit_test(test_eventupload_failure_keeps_events),
		cmocka_unit_test(test_postflight_failure_keeps_settings),
		cmocka_unit_test(test_interval_after_success),
		cmocka_unit_test(test_cancelled_sync_not_reported),
		cmocka_unit_test(test_clean_syncs),
		cmocka_unit_test(test_first_sync_requests_clean),
		cmocka_unit_test(test_endless_cursor),
		cmocka_unit_test(test_repeated_cursor),
		cmocka_unit_test(test_rule_budget),
		cmocka_unit_test(test_rules_in_several_calls),
		cmocka_unit_test(test_add_rules_failure),
		cmocka_unit_test(test_missing_config),
		cmocka_unit_test(test_post_events),
		cmocka_unit_test(test_unblock_notice_after_success),
		cmocka_unit_test(test_unblock_bundle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
