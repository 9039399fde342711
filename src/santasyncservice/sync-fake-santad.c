/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sync-fake-santad: the part of santad's control service a sync touches,
 * with its state in a JSON file, for the sync tests and the benchmark.
 *
 *   sync-fake-santad --config FILE --state FILE
 *
 * The tests install a copy named "santad" in a directory listed in
 * TrustedExecutables, so that the IPC layer gives it santad's role. It
 * serves santa.Santad on RunDirectory/santad.sock: Status, GetSyncSettings,
 * EventsPending, RemoveEvents, AddRules (staged per connection by batch id,
 * applied with its cleanup on the final call, dropped with the connection),
 * UpdateSyncSettings (fields whose has_ flag is set),
 * PostRuleSyncNotification and SyncFinished. After every change it rewrites
 * the state file:
 *   {"settings": SyncSettings, "rules": [Rule], "events": [Event],
 *    "add_rules_calls": n, "applied_sets": n, "last_cleanup": n,
 *    "sync_results": [SyncStatus of each finished sync]}
 * in protobuf-c field names. On SIGUSR1 it sends the events listed in
 * STATE.post (a JSON array of Event) to santasyncservice with PostEvents,
 * as santad does for a blocked execution.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "santad.pb-c.h"
#include "sync.pb-c.h"

#define FAKE_MAX_STAGED 4

typedef struct fake_batch {
	ipc_conn *conn;
	uint64_t id;
	int cleanup;
	Santa__Rule **rules;
	size_t n_rules;
	size_t cap;
} fake_batch;

typedef struct fake {
	santa_config cfg;
	const char *state_path;
	sd_event *ev;
	ipc_trust *trust;
	ipc_server *server;
	Santa__SyncSettings *settings;
	Santa__Rule **rules;
	size_t n_rules;
	Santa__Event **events;
	size_t n_events;
	uint64_t add_calls;
	uint64_t applied_sets;
	int last_cleanup;
	json_object *sync_results;
	fake_batch staged[FAKE_MAX_STAGED];
	ipc_conn *sync_conn;
} fake;

/* --- protobuf-c messages <-> JSON, by reflection --- */

static json_object *fake_value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return json_object_new_string(*(char *const *)p ? *(char *const *)p : "");
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_ENUM:
		return json_object_new_int64(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
		return json_object_new_int64(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
		return json_object_new_int64(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
		return json_object_new_int64((int64_t)*(const uint64_t *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_object_new_double(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_object_new_boolean(*(const protobuf_c_boolean *)p);
	default:
		return NULL;
	}
}

static size_t fake_value_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static json_object *fake_to_json(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	json_object *o = json_object_new_object();

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(const char *const *)base;
			json_object *a = json_object_new_array();

			for (size_t k = 0; k < n; k++)
				json_object_array_add(a, fake_value_json(f, arr + k *
								 fake_value_size(f)));
			json_object_object_add(o, f->name, a);
		} else {
			json_object_object_add(o, f->name, fake_value_json(f, base));
		}
	}
	return o;
}

static void fake_set_value(const ProtobufCFieldDescriptor *f, void *p, json_object *v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		*(char **)p = strdup(json_object_get_string(v));
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_ENUM:
		*(int32_t *)p = (int32_t)json_object_get_int64(v);
		break;
	case PROTOBUF_C_TYPE_UINT32:
		*(uint32_t *)p = (uint32_t)json_object_get_int64(v);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
		*(int64_t *)p = json_object_get_int64(v);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)p = json_object_get_double(v);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = json_object_get_boolean(v);
		break;
	default:
		break;
	}
}

/* A heap message of type D from O (unknown keys ignored). */
static ProtobufCMessage *fake_from_json(const ProtobufCMessageDescriptor *d, json_object *o)
{
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	json_object *v;

	d->message_init(m);
	for (unsigned i = 0; o && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *base = (char *)m + f->offset;

		if (!json_object_object_get_ex(o, f->name, &v) || !v)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = json_object_array_length(v), sz = fake_value_size(f);
			char *arr = calloc(n ? n : 1, sz);

			for (size_t k = 0; k < n; k++)
				fake_set_value(f, arr + k * sz, json_object_array_get_idx(v, k));
			*(char **)base = arr;
			*(size_t *)((char *)m + f->quantifier_offset) = n;
		} else {
			fake_set_value(f, base, v);
		}
	}
	return m;
}

static void *fake_copy(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	void *out;

	protobuf_c_message_pack(m, buf);
	out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	return out;
}

/* --- State --- */

static void fake_save(fake *fk)
{
	json_object *o = json_object_new_object(), *rules, *events;
	char tmp[4096];

	rules = json_object_new_array_ext((int)fk->n_rules);
	for (size_t i = 0; i < fk->n_rules; i++)
		json_object_array_add(rules, fake_to_json(&fk->rules[i]->base));
	events = json_object_new_array();
	for (size_t i = 0; i < fk->n_events; i++)
		json_object_array_add(events, fake_to_json(&fk->events[i]->base));
	json_object_object_add(o, "settings", fake_to_json(&fk->settings->base));
	json_object_object_add(o, "rules", rules);
	json_object_object_add(o, "events", events);
	json_object_object_add(o, "add_rules_calls", json_object_new_int64((int64_t)fk->add_calls));
	json_object_object_add(o, "applied_sets",
			       json_object_new_int64((int64_t)fk->applied_sets));
	json_object_object_add(o, "last_cleanup", json_object_new_int(fk->last_cleanup));
	json_object_object_add(o, "sync_results", json_object_get(fk->sync_results));
	snprintf(tmp, sizeof(tmp), "%s.tmp", fk->state_path);
	if (json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PLAIN) == 0)
		(void)rename(tmp, fk->state_path);
	json_object_put(o);
}

static void fake_load(fake *fk)
{
	json_object *o = json_object_from_file(fk->state_path), *v;

	fk->settings = (Santa__SyncSettings *)fake_from_json(
		&santa__sync_settings__descriptor,
		o && json_object_object_get_ex(o, "settings", &v) ? v : NULL);
	if (o && json_object_object_get_ex(o, "rules", &v)) {
		fk->n_rules = json_object_array_length(v);
		fk->rules = calloc(fk->n_rules + 1, sizeof(*fk->rules));
		for (size_t i = 0; i < fk->n_rules; i++)
			fk->rules[i] = (Santa__Rule *)fake_from_json(
				&santa__rule__descriptor, json_object_array_get_idx(v, i));
	}
	if (o && json_object_object_get_ex(o, "events", &v)) {
		fk->n_events = json_object_array_length(v);
		fk->events = calloc(fk->n_events + 1, sizeof(*fk->events));
		for (size_t i = 0; i < fk->n_events; i++)
			fk->events[i] = (Santa__Event *)fake_from_json(
				&santa__event__descriptor, json_object_array_get_idx(v, i));
	}
	json_object_put(o);
}

/* --- Methods --- */

static void fake_status(ipc_call *call, const ProtobufCMessage *req, void *ud)
{
	fake *fk = ud;
	Santa__StatusReply st = SANTA__STATUS_REPLY__INIT;

	(void)req;
	st.mode = fk->settings->has_client_mode ? fk->settings->client_mode :
						  (Santa__ClientMode)fk->cfg.client_mode;
	for (size_t i = 0; i < fk->n_rules; i++) {
		switch (fk->rules[i]->rule_type) {
		case SANTA__RULE_TYPE__BINARY: st.binary_rules++; break;
		case SANTA__RULE_TYPE__CERTIFICATE: st.certificate_rules++; break;
		case SANTA__RULE_TYPE__TEAMID: st.teamid_rules++; break;
		case SANTA__RULE_TYPE__SIGNINGID: st.signingid_rules++; break;
		case SANTA__RULE_TYPE__CDHASH: st.cdhash_rules++; break;
		default: break;
		}
	}
	st.events_pending_upload = fk->n_events;
	st.clean_required = fk->settings->sync_type_required != 0;
	st.last_successful_full = fk->settings->last_full_sync;
	ipc_call_reply(call, &st.base);
}

static void fake_get_settings(ipc_call *call, const ProtobufCMessage *req, void *ud)
{
	fake *fk = ud;

	(void)req;
	ipc_call_reply(call, &fk->settings->base);
}

static void fake_events_pending(ipc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Santa__EventsRequest *r = (const Santa__EventsRequest *)req;
	Santa__EventList l = SANTA__EVENT_LIST__INIT;
	fake *fk = ud;

	l.events = calloc(fk->n_events + 1, sizeof(*l.events));
	for (size_t i = 0; i < fk->n_events && l.n_events < r->limit; i++)
		if (fk->events[i]->id > r->after_id)
			l.events[l.n_events++] = fk->events[i];
	ipc_call_reply(call, &l.base);
	free(l.events);
}

static void fake_remove_events(ipc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Santa__RemoveEventsRequest *r = (const Santa__RemoveEventsRequest *)req;
	Santa__Empty reply = SANTA__EMPTY__INIT;
	fake *fk = ud;
	size_t kept = 0;

	for (size_t i = 0; i < fk->n_events; i++) {
		bool gone = false;

		for (size_t k = 0; k < r->n_ids; k++)
			gone |= fk->events[i]->id == r->ids[k];
		if (gone)
			protobuf_c_message_free_unpacked(&fk->events[i]->base, NULL);
		else
			fk->events[kept++] = fk->events[i];
	}
	fk->n_events = kept;
	fake_save(fk);
	ipc_call_reply(call, &reply.base);
}

static fake_batch *fake_batch_for(fake *fk, ipc_conn *conn, uint64_t id)
{
	fake_batch *free_slot = NULL;

	for (int i = 0; i < FAKE_MAX_STAGED; i++) {
		if (fk->staged[i].conn == conn && fk->staged[i].id == id)
			return &fk->staged[i];
		if (!fk->staged[i].conn && !free_slot)
			free_slot = &fk->staged[i];
	}
	if (free_slot) {
		free_slot->conn = conn;
		free_slot->id = id;
	}
	return free_slot;
}

static void fake_batch_drop(fake_batch *b)
{
	for (size_t i = 0; i < b->n_rules; i++)
		protobuf_c_message_free_unpacked(&b->rules[i]->base, NULL);
	free(b->rules);
	memset(b, 0, sizeof(*b));
}

static bool fake_keep(const Santa__Rule *r, int cleanup)
{
	if (cleanup == SANTA__RULE_CLEANUP__CLEANUP_ALL)
		return false;
	if (cleanup == SANTA__RULE_CLEANUP__CLEANUP_NON_TRANSITIVE)
		return r->policy == SANTA__POLICY__ALLOWLIST_TRANSITIVE;
	return true;
}

static void fake_put_rule(fake *fk, Santa__Rule *r)
{
	for (size_t i = 0; i < fk->n_rules; i++) {
		if (fk->rules[i]->rule_type == r->rule_type &&
		    strcmp(fk->rules[i]->identifier, r->identifier) == 0) {
			protobuf_c_message_free_unpacked(&fk->rules[i]->base, NULL);
			if (r->policy == SANTA__POLICY__REMOVE) {
				fk->rules[i] = fk->rules[--fk->n_rules];
				protobuf_c_message_free_unpacked(&r->base, NULL);
			} else {
				fk->rules[i] = r;
			}
			return;
		}
	}
	if (r->policy == SANTA__POLICY__REMOVE) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return;
	}
	fk->rules[fk->n_rules++] = r;
}

static void fake_apply(fake *fk, fake_batch *b)
{
	size_t kept = 0;

	for (size_t i = 0; i < fk->n_rules; i++) {
		if (fake_keep(fk->rules[i], b->cleanup))
			fk->rules[kept++] = fk->rules[i];
		else
			protobuf_c_message_free_unpacked(&fk->rules[i]->base, NULL);
	}
	fk->n_rules = kept;
	fk->rules = realloc(fk->rules, (fk->n_rules + b->n_rules + 1) * sizeof(*fk->rules));
	for (size_t i = 0; i < b->n_rules; i++)
		fake_put_rule(fk, b->rules[i]);
	b->n_rules = 0;
	fk->applied_sets++;
	fk->last_cleanup = b->cleanup;
}

static void fake_add_rules(ipc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Santa__AddRulesRequest *r = (const Santa__AddRulesRequest *)req;
	Santa__AddRulesReply reply = SANTA__ADD_RULES_REPLY__INIT;
	fake *fk = ud;
	fake_batch *b = fake_batch_for(fk, ipc_call_conn(call), r->batch_id);

	fk->add_calls++;
	if (!b) {
		ipc_call_fail(call, IPC_E_LIMIT, "too many staged batches");
		return;
	}
	b->cleanup = r->cleanup;
	if (b->n_rules + r->n_rules > b->cap) {
		b->cap = (b->n_rules + r->n_rules) * 2;
		b->rules = realloc(b->rules, b->cap * sizeof(*b->rules));
	}
	for (size_t i = 0; i < r->n_rules; i++)
		b->rules[b->n_rules++] = fake_copy(&r->rules[i]->base);
	reply.received = r->n_rules;
	if (r->final) {
		reply.applied = b->n_rules;
		fake_apply(fk, b);
		fake_batch_drop(b);
		fake_save(fk);
	}
	ipc_call_reply(call, &reply.base);
}

/* Copy every field whose has_ flag is set in FROM into TO. */
static void fake_merge_settings(Santa__SyncSettings *to, const Santa__SyncSettings *from)
{
	const ProtobufCMessageDescriptor *d = &santa__sync_settings__descriptor;

	for (unsigned i = 0; i + 1 < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *has = &d->fields[i], *f = &d->fields[i + 1];
		char *dst = (char *)to + f->offset;
		const char *src = (const char *)from + f->offset;

		if (strncmp(has->name, "has_", 4) != 0 ||
		    !*(const protobuf_c_boolean *)((const char *)from + has->offset))
			continue;
		*(protobuf_c_boolean *)((char *)to + has->offset) = 1;
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			if (*(char **)dst != protobuf_c_empty_string)
				free(*(char **)dst);
			*(char **)dst = strdup(*(char *const *)src);
		} else {
			memcpy(dst, src, fake_value_size(f));
		}
	}
}

static void fake_update_settings(ipc_call *call, const ProtobufCMessage *req, void *ud)
{
	Santa__Empty reply = SANTA__EMPTY__INIT;
	fake *fk = ud;

	fake_merge_settings(fk->settings, (const Santa__SyncSettings *)req);
	fake_save(fk);
	ipc_call_reply(call, &reply.base);
}

static void fake_notification(ipc_call *call, const ProtobufCMessage *req, void *ud)
{
	Santa__Empty reply = SANTA__EMPTY__INIT;

	(void)req;
	(void)ud;
	ipc_call_reply(call, &reply.base);
}

static void fake_sync_finished(ipc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Santa__SyncFinishedRequest *sf = (const Santa__SyncFinishedRequest *)req;
	Santa__Empty reply = SANTA__EMPTY__INIT;
	fake *fk = ud;

	json_object_array_add(fk->sync_results, json_object_new_int64(sf->status));
	fake_save(fk);
	ipc_call_reply(call, &reply.base);
}

static void fake_closed(ipc_conn *c, int err, const char *reason, void *ud)
{
	fake *fk = ud;

	(void)err;
	(void)reason;
	/* A staged set dies with its connection, as in santad. */
	for (int i = 0; i < FAKE_MAX_STAGED; i++)
		if (fk->staged[i].conn == c)
			fake_batch_drop(&fk->staged[i]);
}

/* --- PostEvents on SIGUSR1 --- */

static void fake_posted(ipc_conn *c, int err, const char *errmsg,
			const ProtobufCMessage *reply, void *ud)
{
	(void)c;
	(void)reply;
	(void)ud;
	fprintf(stderr, "fake-santad: PostEvents: %s\n", err ? errmsg ? errmsg : "failed" : "ok");
}

static unsigned fake_method(const ProtobufCServiceDescriptor *d, const char *name)
{
	const ProtobufCMethodDescriptor *m =
		protobuf_c_service_descriptor_get_method_by_name(d, name);

	return m ? (unsigned)(m - d->methods) : UINT32_MAX;
}

static void fake_sync_ready(ipc_conn *c, int err, void *ud)
{
	fake *fk = ud;
	char path[4096];
	json_object *arr;
	Santa__PostEventsRequest req = SANTA__POST_EVENTS_REQUEST__INIT;

	if (err < 0) {
		fprintf(stderr, "fake-santad: connecting to the sync service: %s\n",
			ipc_strerror(err));
		return;
	}
	snprintf(path, sizeof(path), "%s.post", fk->state_path);
	arr = json_object_from_file(path);
	req.n_events = arr ? json_object_array_length(arr) : 0;
	req.events = calloc(req.n_events + 1, sizeof(*req.events));
	for (size_t i = 0; i < req.n_events; i++)
		req.events[i] = (Santa__Event *)fake_from_json(&santa__event__descriptor,
							      json_object_array_get_idx(arr, i));
	ipc_call_async(c, fake_method(&santa__sync_service__descriptor, "PostEvents"), &req.base,
		       -1, 0, fake_posted, fk);
	for (size_t i = 0; i < req.n_events; i++)
		protobuf_c_message_free_unpacked(&req.events[i]->base, NULL);
	free(req.events);
	json_object_put(arr);
}

static int fake_sigusr1(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	fake *fk = ud;
	ipc_conn_opts opts = { .accept_roles = IPC_ROLE_BIT(IPC_ROLE_SYNCSERVICE), .userdata = fk };
	char path[4096];

	(void)s;
	(void)si;
	if (fk->sync_conn && ipc_conn_is_ready(fk->sync_conn)) {
		fake_sync_ready(fk->sync_conn, 0, fk);
		return 0;
	}
	ipc_conn_unref(fk->sync_conn);
	fk->sync_conn = NULL;
	snprintf(path, sizeof(path), "%s/santasyncservice.sock", fk->cfg.run_directory);
	if (ipc_connect(fk->ev, path, fk->trust, &santa__sync_service__descriptor, &opts,
			fake_sync_ready, &fk->sync_conn) < 0)
		fprintf(stderr, "fake-santad: cannot connect to %s\n", path);
	return 0;
}

/* --- Main --- */

static const struct {
	const char *name;
	ipc_handler_fn fn;
} fake_handlers[] = {
	{ "Status", fake_status },
	{ "GetSyncSettings", fake_get_settings },
	{ "EventsPending", fake_events_pending },
	{ "RemoveEvents", fake_remove_events },
	{ "AddRules", fake_add_rules },
	{ "UpdateSyncSettings", fake_update_settings },
	{ "PostRuleSyncNotification", fake_notification },
	{ "SyncFinished", fake_sync_finished },
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state", required_argument, NULL, 's' },
		{ 0 },
	};
	const ProtobufCServiceDescriptor *sd = &santa__santad__descriptor;
	ipc_method *methods = calloc(sd->n_methods, sizeof(*methods));
	ipc_service service = { .desc = sd, .methods = methods };
	ipc_server_opts sopts = { .on_close = fake_closed };
	const char *config = NULL;
	fake fk = { 0 };
	char path[4096], err[512];
	sigset_t mask;
	int c, fd;

	log_open("fake-santad");
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 's')
			fk.state_path = optarg;
		else
			return 1;
	}
	if (!fk.state_path || santa_config_load(config, &fk.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fake-santad: %s\n", fk.state_path ? err : "--state is required");
		return 1;
	}
	fk.sync_results = json_object_new_array();
	fake_load(&fk);
	for (size_t i = 0; i < sizeof(fake_handlers) / sizeof(fake_handlers[0]); i++) {
		const ProtobufCMethodDescriptor *m =
			protobuf_c_service_descriptor_get_method_by_name(sd, fake_handlers[i].name);

		methods[m - sd->methods] = (ipc_method){ fake_handlers[i].fn, 0, 0 };
	}
	service.userdata = &fk;
	sopts.userdata = &fk;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	snprintf(path, sizeof(path), "%s/santad.sock", fk.cfg.run_directory);
	if (sd_event_default(&fk.ev) < 0 || ipc_trust_new(&fk.trust) < 0 ||
	    ipc_trust_add_defaults(fk.trust, fk.cfg.trusted_executables) < 0)
		return 1;
	fd = ipc_listen_socket(path, 0666, (uid_t)-1, (gid_t)-1);
	if (fd < 0 || ipc_server_new(fk.ev, fd, fk.trust, &service, &sopts, &fk.server) < 0) {
		fprintf(stderr, "fake-santad: cannot serve %s\n", path);
		return 1;
	}
	sd_event_add_signal(fk.ev, NULL, SIGTERM, NULL, NULL);
	sd_event_add_signal(fk.ev, NULL, SIGINT, NULL, NULL);
	sd_event_add_signal(fk.ev, NULL, SIGUSR1, fake_sigusr1, &fk);
	fake_save(&fk);
	fprintf(stderr, "fake-santad: serving %s\n", path);
	sd_event_loop(fk.ev);
	ipc_conn_unref(fk.sync_conn);
	ipc_server_free(fk.server);
	ipc_trust_free(fk.trust);
	unlink(path);
	santa_config_done(&fk.cfg);
	json_object_put(fk.sync_results);
	free(methods);
	return 0;
}
