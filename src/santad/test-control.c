/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control service against a fake santad: every method's request
 * checks, AddRules batches, paging, and who may call what.
 *
 * The server runs on its own thread and event loop; the tests call it with
 * the blocking client, as santactl does. The test binary is its own peer:
 * the server's trust table calls it santactl, the client's calls it
 * santad. Privileged calls need a root peer, so those tests are skipped
 * when not run as root (script/test runs them as root).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.h"
#include "gui.h"

#define SHA_A "84de9c61777ca36b13228e2446d53e966096e78db7a72c632b5c185b2ffe68a6"
#define SHA_B "0000000000000000000000000000000000000000000000000000000000000001"

/* --- A fake santad: rules in an array, a few settings --- */

#define FAKE_MAX_RULES 64

struct santad {
	santa_config cfg;
	santad_rule rules[FAKE_MAX_RULES];
	size_t n_rules;
	size_t n_static;
	int flushes;
	char last_gui[128];
	ino_t cached_ino;
	ino_t dry_run_ino;      /* of the descriptor the last dry run got; 0: none */
};

struct santad_rule_batch {
	santad_rule rules[FAKE_MAX_RULES];
	size_t n;
};

static santad fake;

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void rule_copy(santad_rule *dst, const santad_rule *src)
{
	*dst = *src;
	dst->identifier = dup_or_null(src->identifier);
	dst->custom_msg = dup_or_null(src->custom_msg);
	dst->custom_url = dup_or_null(src->custom_url);
	dst->file_bundle_hash = dup_or_null(src->file_bundle_hash);
}

void santad_rule_done(santad_rule *r)
{
	free(r->identifier);
	free(r->custom_msg);
	free(r->custom_url);
	free(r->file_bundle_hash);
	memset(r, 0, sizeof(*r));
}

void santad_rules_free(santad_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		santad_rule_done(&rules[i]);
	free(rules);
}

const santa_config *santad_config(const santad *d) { return &d->cfg; }
santa_client_mode santad_client_mode(const santad *d) { return d->cfg.client_mode; }
bool santad_fail_closed(const santad *d) { return d->cfg.fail_closed; }
santa_log_type santad_log_type(const santad *d) { return d->cfg.event_log_type; }
bool santad_transitive_rules(const santad *d) { return false; }
bool santad_bundles_enabled(const santad *d) { return false; }
bool santad_watching(const santad *d) { return true; }
uint64_t santad_cache_count(const santad *d) { return 7; }

void santad_cache_counts(const santad *d, uint64_t *ret_root, uint64_t *ret_non_root)
{
	*ret_root = 5;
	*ret_non_root = 2;
}
size_t santad_static_rule_count(const santad *d) { return d->n_static; }

size_t santad_watch_paths(const santad *d, const char *const **ret_paths)
{
	static const char *const paths[] = { "/tmp/watched" };

	*ret_paths = paths;
	return 1;
}

const char *santad_decision_name(santad_decision d)
{
	return d == SANTAD_DECISION_ALLOW ? "ALLOW" : d == SANTAD_DECISION_DENY ? "DENY" : "";
}

const char *santad_reason_name(santad_reason r)
{
	return r == SANTAD_REASON_BINARY ? "BINARY" : "UNKNOWN";
}

void santad_verdict_done(santad_verdict *v)
{
	if (v->has_rule)
		santad_rule_done(&v->rule);
}

static santad_rule *fake_find(const char *identifier, int type)
{
	for (size_t i = 0; i < fake.n_rules; i++)
		if (strcmp(fake.rules[i].identifier, identifier) == 0 &&
		    fake.rules[i].rule_type == type)
			return &fake.rules[i];
	return NULL;
}

int santad_decide_dry_run(santad *d, const char *path, int fd, const char *sha256_hex,
			  santad_verdict *ret, char *errbuf, size_t errsize)
{
	santad_rule *r = fake_find(sha256_hex, SANTA__RULE_TYPE__BINARY);
	struct stat st;

	d->dry_run_ino = fd >= 0 && fstat(fd, &st) == 0 ? st.st_ino : 0;
	memset(ret, 0, sizeof(*ret));
	ret->reason = r ? SANTAD_REASON_BINARY : SANTAD_REASON_UNKNOWN;
	ret->decision = (r ? r->policy == SANTA__POLICY__ALLOWLIST :
			 d->cfg.client_mode == SANTA_MODE_MONITOR) ?
			SANTAD_DECISION_ALLOW : SANTAD_DECISION_DENY;
	ret->explanation = "test";
	if (r) {
		ret->has_rule = true;
		rule_copy(&ret->rule, r);
	}
	return 0;
}

int santad_cache_flush(santad *d, const char *why)
{
	d->flushes++;
	return 0;
}

int santad_cache_check_fd(santad *d, int fd, santad_decision *ret_decision)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*ret_decision = st.st_ino == d->cached_ino ? SANTAD_DECISION_ALLOW : SANTAD_DECISION_NONE;
	return 0;
}

int santad_rules_count(santad *d, santad_rule_counts *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < d->n_rules; i++)
		if (d->rules[i].rule_type == SANTA__RULE_TYPE__BINARY)
			ret->binary++;
	return 0;
}

int santad_rule_batch_new(santad_rule_batch **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

santad_rule_batch *santad_rule_batch_free(santad_rule_batch *b)
{
	if (b)
		for (size_t i = 0; i < b->n; i++)
			santad_rule_done(&b->rules[i]);
	free(b);
	return NULL;
}

int santad_rule_batch_add(santad_rule_batch *b, const santad_rule *r, char *errbuf,
			  size_t errsize)
{
	if (!r->identifier || strlen(r->identifier) != 64) {
		snprintf(errbuf, errsize, "\"identifier\": not a SHA-256");
		return -EINVAL;
	}
	if (b->n >= FAKE_MAX_RULES)
		return -E2BIG;
	rule_copy(&b->rules[b->n++], r);
	return 0;
}

size_t santad_rule_batch_size(const santad_rule_batch *b)
{
	return b->n;
}

int santad_rules_apply(santad *d, santad_rule_batch *b, Santa__RuleCleanup cleanup,
		       uint64_t *ret_applied, char *errbuf, size_t errsize)
{
	if (cleanup != SANTA__RULE_CLEANUP__CLEANUP_NONE) {
		for (size_t i = 0; i < d->n_rules; i++)
			santad_rule_done(&d->rules[i]);
		d->n_rules = 0;
	}
	for (size_t i = 0; i < b->n; i++) {
		santad_rule *old = fake_find(b->rules[i].identifier, b->rules[i].rule_type);

		if (old)
			santad_rule_done(old);
		if (b->rules[i].policy == SANTA__POLICY__REMOVE) {
			if (old)
				*old = d->rules[--d->n_rules];
			santad_rule_done(&b->rules[i]);
			continue;
		}
		if (!old && d->n_rules == FAKE_MAX_RULES)
			return -E2BIG;
		*(old ? old : &d->rules[d->n_rules++]) = b->rules[i];
	}
	*ret_applied = b->n;
	b->n = 0;
	return 0;
}

int santad_rules_find(santad *d, const santad_rule *keys, size_t n_keys, santad_rule *ret)
{
	for (size_t i = 0; i < n_keys; i++) {
		santad_rule *r = fake_find(keys[i].identifier, keys[i].rule_type);

		if (r) {
			rule_copy(ret, r);
			return 0;
		}
	}
	return -ENOENT;
}

int santad_rules_list(santad *d, int64_t after, size_t limit, santad_rule **ret_rules,
		      size_t *ret_n, int64_t *ret_next)
{
	size_t start = (size_t)after, n = 0;

	*ret_rules = calloc(limit, sizeof(**ret_rules));
	if (!*ret_rules)
		return -ENOMEM;
	for (size_t i = start; i < d->n_rules && n < limit; i++)
		rule_copy(&(*ret_rules)[n++], &d->rules[i]);
	*ret_n = n;
	*ret_next = start + n < d->n_rules ? (int64_t)(start + n) : 0;
	return 0;
}

int santad_events_count(santad *d, uint64_t *ret)
{
	*ret = 3;
	return 0;
}

int santad_events_list(santad *d, int64_t after_id, size_t limit, Santa__Event ***ret_events,
		       size_t *ret_n)
{
	*ret_events = NULL;
	*ret_n = 0;
	return 0;
}

void santad_events_free(Santa__Event **events, size_t n)
{
	free(events);
}

int santad_events_remove(santad *d, const int64_t *ids, size_t n)
{
	return 0;
}

int santad_sync_settings_get(santad *d, Santa__SyncSettings *ret)
{
	ret->has_client_mode = true;
	ret->client_mode = (Santa__ClientMode)d->cfg.client_mode;
	return 0;
}

int santad_sync_settings_update(santad *d, const Santa__SyncSettings *s, char *errbuf,
				size_t errsize)
{
	if (s->has_client_mode && s->client_mode != SANTA__CLIENT_MODE__MONITOR &&
	    s->client_mode != SANTA__CLIENT_MODE__LOCKDOWN) {
		snprintf(errbuf, errsize, "client_mode: unknown mode %d", s->client_mode);
		return -EINVAL;
	}
	if (s->has_client_mode)
		d->cfg.client_mode = (santa_client_mode)s->client_mode;
	return 0;
}

/* No GUI in these tests: the GUI methods must say so. */
struct gui *santad_gui(santad *d)
{
	return NULL;
}

void gui_set_listener(gui *g, ipc_call *call)
{
	fail_msg("gui_set_listener called without a gui");
}

void gui_sync_bundle_event(gui *g, ipc_call *call, const Santa__EventList *events)
{
	fail_msg("gui_sync_bundle_event called without a gui");
}

int santad_gui_post(santad *d, const char *message)
{
	snprintf(d->last_gui, sizeof(d->last_gui), "%s", message);
	return 0;
}

/* The sync service, as santad's link to it would report it. */
static const char *fake_sync_state = "not answering";

const char *santad_sync_service_state(const santad *d)
{
	return fake_sync_state;
}

int santad_sync_service_probe(santad *d, uint64_t timeout_usec, santad_probe_fn cb,
			      void *userdata)
{
	cb(fake_sync_state, userdata);
	return 0;
}

/* --- The server thread --- */

static struct {
	pthread_t thread;
	int stop_pipe[2];
	char dir[64];
	char path[128];
	char exe[PATH_MAX];
	ipc_trust *server_trust;
	ipc_trust *client_trust;
} srv;

static int server_stop_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *server_main(void *arg)
{
	sd_event_source *stop = NULL;
	control *c = NULL;
	sd_event *ev = NULL;
	int fd;

	if (sd_event_new(&ev) < 0)
		return (void *)1;
	fd = ipc_listen_socket(srv.path, 0666, (uid_t)-1, (gid_t)-1);
	if (fd < 0 || control_start(&fake, ev, fd, srv.server_trust, &c) < 0 ||
	    sd_event_add_io(ev, &stop, srv.stop_pipe[0], EPOLLIN, server_stop_cb, NULL) < 0)
		return (void *)1;
	sd_event_loop(ev);
	sd_event_source_disable_unref(stop);
	control_free(c);
	sd_event_unref(ev);
	return NULL;
}

static int setup(void **state)
{
	santa_config_init(&fake.cfg);
	if (!realpath("/proc/self/exe", srv.exe))
		return -1;
	strcpy(srv.dir, "/tmp/santa-test-control-XXXXXX");
	if (!mkdtemp(srv.dir) || chmod(srv.dir, 0755) < 0)
		return -1;
	snprintf(srv.path, sizeof(srv.path), "%s/santad.sock", srv.dir);
	/* The same executable is santactl to the server and santad to the
	 * client. */
	if (ipc_trust_new(&srv.server_trust) < 0 || ipc_trust_new(&srv.client_trust) < 0 ||
	    ipc_trust_add_file(srv.server_trust, srv.exe, IPC_ROLE_SANTACTL) < 0 ||
	    ipc_trust_add_file(srv.client_trust, srv.exe, IPC_ROLE_SANTAD) < 0 ||
	    pipe2(srv.stop_pipe, O_CLOEXEC) < 0 ||
	    pthread_create(&srv.thread, NULL, server_main, NULL) != 0)
		return -1;
	for (int i = 0; i < 200 && access(srv.path, F_OK) < 0; i++)
		usleep(10000);
	return access(srv.path, F_OK);
}

static int teardown(void **state)
{
	(void)!write(srv.stop_pipe[1], "x", 1);
	pthread_join(srv.thread, NULL);
	unlink(srv.path);
	rmdir(srv.dir);
	ipc_trust_free(srv.server_trust);
	ipc_trust_free(srv.client_trust);
	for (size_t i = 0; i < fake.n_rules; i++)
		santad_rule_done(&fake.rules[i]);
	santa_config_done(&fake.cfg);
	return 0;
}

/* --- Client helpers --- */

static ipc_client *client(void)
{
	ipc_client *cl = NULL;

	assert_int_equal(ipc_client_connect(srv.path, srv.client_trust, &santa__santad__descriptor,
					    IPC_ROLE_BIT(IPC_ROLE_SANTAD), 0, &cl), 0);
	return cl;
}

static unsigned method(const char *name)
{
	const ProtobufCMethodDescriptor *m =
		protobuf_c_service_descriptor_get_method_by_name(&santa__santad__descriptor, name);

	assert_non_null(m);
	return (unsigned)(m - santa__santad__descriptor.methods);
}

/* Call NAME; returns the error (0 on success) and the reply or message. */
static int call(ipc_client *cl, const char *name, const ProtobufCMessage *req, int fd,
		ProtobufCMessage **reply, char **errmsg)
{
	*reply = NULL;
	*errmsg = NULL;
	return ipc_client_call(cl, method(name), req, fd, 0, reply, errmsg);
}

static void expect_error(ipc_client *cl, const char *name, const ProtobufCMessage *req,
			 int fd, int want, const char *msg_part)
{
	ProtobufCMessage *reply;
	char *errmsg;
	int r = call(cl, name, req, fd, &reply, &errmsg);

	assert_null(reply);
	assert_int_equal(r, want);
	assert_non_null(errmsg);
	if (!strstr(errmsg, msg_part))
		fail_msg("%s: error \"%s\" lacks \"%s\"", name, errmsg, msg_part);
	free(errmsg);
}

static void skip_unless_root(void)
{
	if (geteuid() != 0)
		skip();
}

static Santa__Rule *new_rule(const char *id, int policy)
{
	Santa__Rule *r = malloc(sizeof(*r));

	santa__rule__init(r);
	r->identifier = (char *)id;
	r->policy = policy;
	r->rule_type = SANTA__RULE_TYPE__BINARY;
	return r;
}

/* AddRules with one rule per identifier in IDS. */
static int add_rules(ipc_client *cl, const char *const *ids, size_t n, uint64_t batch,
		     bool final, char **errmsg)
{
	Santa__AddRulesRequest req = SANTA__ADD_RULES_REQUEST__INIT;
	Santa__Rule *rules[8];
	ProtobufCMessage *reply;
	int r;

	for (size_t i = 0; i < n; i++)
		rules[i] = new_rule(ids[i], SANTA__POLICY__BLOCKLIST);
	req.rules = rules;
	req.n_rules = n;
	req.batch_id = batch;
	req.final = final;
	r = call(cl, "AddRules", &req.base, -1, &reply, errmsg);
	for (size_t i = 0; i < n; i++)
		free(rules[i]);
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	return r;
}

/* --- Tests --- */

static void test_status(void **state)
{
	Santa__Empty req = SANTA__EMPTY__INIT;
	Santa__StatusReply *st;
	ProtobufCMessage *reply;
	ipc_client *cl = client();
	char *errmsg;

	assert_int_equal(call(cl, "Status", &req.base, -1, &reply, &errmsg), 0);
	st = (Santa__StatusReply *)reply;
	assert_int_equal(st->mode, SANTA__CLIENT_MODE__MONITOR);
	assert_string_equal(st->log_type, "file");
	assert_int_equal(st->n_watch_paths, 1);
	assert_string_equal(st->watch_paths[0], "/tmp/watched");
	assert_int_equal(st->cache_count, 7);
	assert_int_equal(st->root_cache_count, 5);
	assert_int_equal(st->non_root_cache_count, 2);
	assert_int_equal(st->events_pending_upload, 3);
	assert_true(st->driver_connected);
	assert_true(st->version[0] != '\0');
	assert_string_equal(st->sync_server, "");
	protobuf_c_message_free_unpacked(reply, NULL);
	ipc_client_free(cl);
}

/* With a sync server configured, status says how the sync service is. */
static void test_status_sync_service(void **state)
{
	Santa__Empty req = SANTA__EMPTY__INIT;
	Santa__StatusReply *st;
	ProtobufCMessage *reply;
	ipc_client *cl = client();
	char *errmsg;
	bool found = false;

	fake.cfg.sync_base_url = strdup("https://sync.example/");
	assert_int_equal(call(cl, "Status", &req.base, -1, &reply, &errmsg), 0);
	st = (Santa__StatusReply *)reply;
	assert_string_equal(st->sync_server, "https://sync.example/");
	for (size_t i = 0; i < st->n_services; i++) {
		if (strcmp(st->services[i]->name, "santasyncservice") == 0) {
			assert_string_equal(st->services[i]->state, "not answering");
			found = true;
		}
	}
	assert_true(found);
	protobuf_c_message_free_unpacked(reply, NULL);
	ipc_client_free(cl);
	free(fake.cfg.sync_base_url);
	fake.cfg.sync_base_url = NULL;
}

static void test_unknown_fields(void **state)
{
	ProtobufCMessageUnknownField uf = { .tag = 99, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
					    .len = 1, .data = (uint8_t *)"\x01" };
	Santa__Empty req = SANTA__EMPTY__INIT;
	ipc_client *cl = client();

	req.base.n_unknown_fields = 1;
	req.base.unknown_fields = &uf;
	expect_error(cl, "Status", &req.base, -1, IPC_E_INVALID, "unknown field 99");
	ipc_client_free(cl);
}

static void test_decision(void **state)
{
	Santa__DecisionRequest req = SANTA__DECISION_REQUEST__INIT;
	Santa__DecisionReply *dr;
	ProtobufCMessage *reply;
	ipc_client *cl = client();
	struct stat st;
	char *errmsg;
	int fd;

	req.path = "relative";
	req.sha256 = SHA_A;
	expect_error(cl, "DecisionForFile", &req.base, -1, IPC_E_INVALID, "absolute");
	req.path = "/bin/x";
	req.sha256 = "abc";
	expect_error(cl, "DecisionForFile", &req.base, -1, IPC_E_INVALID, "64 hexadecimal");
	req.sha256 = "84DE9C61777CA36B13228E2446D53E966096E78DB7A72C632B5C185B2FFE68A6";
	assert_int_equal(call(cl, "DecisionForFile", &req.base, -1, &reply, &errmsg), 0);
	dr = (Santa__DecisionReply *)reply;
	assert_string_equal(dr->decision, "ALLOW");
	assert_string_equal(dr->reason, "UNKNOWN");
	protobuf_c_message_free_unpacked(reply, NULL);
	assert_int_equal(fake.dry_run_ino, 0);

	/* The file santactl hashed may come along; it must be a file. */
	fd = open(srv.dir, O_RDONLY | O_DIRECTORY);
	expect_error(cl, "DecisionForFile", &req.base, fd, IPC_E_INVALID, "not a regular file");
	close(fd);
	fd = open(srv.exe, O_RDONLY);
	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	assert_int_equal(call(cl, "DecisionForFile", &req.base, fd, &reply, &errmsg), 0);
	protobuf_c_message_free_unpacked(reply, NULL);
	assert_int_equal(fake.dry_run_ino, st.st_ino);
	close(fd);
	ipc_client_free(cl);
}

static void test_check_cache(void **state)
{
	Santa__FileRequest req = SANTA__FILE_REQUEST__INIT;
	Santa__CheckCacheReply *cr;
	ProtobufCMessage *reply;
	ipc_client *cl = client();
	struct stat st;
	char *errmsg;
	int fd;

	expect_error(cl, "CheckCache", &req.base, -1, IPC_E_INVALID, "descriptor is missing");
	fd = open(srv.dir, O_RDONLY | O_DIRECTORY);
	expect_error(cl, "CheckCache", &req.base, fd, IPC_E_INVALID, "not a regular file");
	close(fd);

	fd = open(srv.exe, O_PATH);
	assert_true(fd >= 0);
	assert_int_equal(call(cl, "CheckCache", &req.base, fd, &reply, &errmsg), 0);
	assert_false(((Santa__CheckCacheReply *)reply)->cached);
	protobuf_c_message_free_unpacked(reply, NULL);
	fstat(fd, &st);
	fake.cached_ino = st.st_ino;
	assert_int_equal(call(cl, "CheckCache", &req.base, fd, &reply, &errmsg), 0);
	cr = (Santa__CheckCacheReply *)reply;
	assert_true(cr->cached);
	assert_string_equal(cr->decision, "ALLOW");
	protobuf_c_message_free_unpacked(reply, NULL);
	close(fd);
	ipc_client_free(cl);
}

static void test_add_and_find(void **state)
{
	Santa__RuleQuery q = SANTA__RULE_QUERY__INIT;
	Santa__Rule key = SANTA__RULE__INIT, *keys[] = { &key };
	const char *ids[] = { SHA_A };
	ProtobufCMessage *reply;
	Santa__RuleList *list;
	ipc_client *cl;
	char *errmsg;

	skip_unless_root();
	cl = client();
	assert_int_equal(add_rules(cl, ids, 1, 0, true, &errmsg), 0);
	key.identifier = SHA_A;
	key.rule_type = SANTA__RULE_TYPE__BINARY;
	q.identifiers = keys;
	q.n_identifiers = 1;
	assert_int_equal(call(cl, "RuleForIdentifiers", &q.base, -1, &reply, &errmsg), 0);
	list = (Santa__RuleList *)reply;
	assert_int_equal(list->n_rules, 1);
	assert_int_equal(list->rules[0]->policy, SANTA__POLICY__BLOCKLIST);
	protobuf_c_message_free_unpacked(reply, NULL);

	q.n_identifiers = 0;
	expect_error(cl, "RuleForIdentifiers", &q.base, -1, IPC_E_INVALID, "between 1 and");
	ipc_client_free(cl);
}

static void test_batches(void **state)
{
	const char *first[] = { SHA_A, SHA_B }, *bad[] = { SHA_B, "nope" };
	size_t before = fake.n_rules;
	ipc_client *cl, *other;
	char *errmsg = NULL;

	skip_unless_root();
	cl = client();
	other = client();
	/* Staged, not applied, until the final call. */
	assert_int_equal(add_rules(cl, first, 2, 42, false, &errmsg), 0);
	assert_int_equal(fake.n_rules, before);
	/* Another batch on the same connection is refused while one is open;
	 * another connection has its own. */
	assert_int_equal(add_rules(cl, first, 1, 43, true, &errmsg), IPC_E_INVALID);
	assert_non_null(strstr(errmsg, "batch 42 is still open"));
	free(errmsg);
	assert_int_equal(add_rules(other, first, 1, 0, true, &errmsg), 0);
	/* A bad rule in a later call names its index in the whole batch and
	 * drops the batch. */
	assert_int_equal(add_rules(cl, bad, 2, 42, true, &errmsg), IPC_E_INVALID);
	assert_non_null(strstr(errmsg, "rule 3: \"identifier\""));
	free(errmsg);
	assert_int_equal(add_rules(cl, first, 2, 44, false, &errmsg), 0);
	assert_int_equal(add_rules(cl, first, 0, 44, true, &errmsg), 0);
	assert_int_equal(fake.n_rules, 2);
	/* batch_id 0 is a batch of one call. */
	assert_int_equal(add_rules(cl, first, 1, 0, false, &errmsg), IPC_E_INVALID);
	free(errmsg);
	ipc_client_free(other);
	ipc_client_free(cl);
}

static void test_batch_dies_with_connection(void **state)
{
	const char *ids[] = { SHA_A };
	ipc_client *cl;
	char *errmsg = NULL;

	skip_unless_root();
	for (int i = 0; i < 12; i++) {
		/* More abandoned batches than may be open at once: each dies
		 * with its connection. */
		cl = client();
		assert_int_equal(add_rules(cl, ids, 1, 100 + i, false, &errmsg), 0);
		ipc_client_free(cl);
		usleep(20000);
	}
	cl = client();
	assert_int_equal(add_rules(cl, ids, 1, 7, true, &errmsg), 0);
	ipc_client_free(cl);
}

static void test_managed(void **state)
{
	Santa__RuleListRequest lr = SANTA__RULE_LIST_REQUEST__INIT;
	const char *ids[] = { SHA_A };
	ipc_client *cl;
	char *errmsg = NULL;

	skip_unless_root();
	cl = client();
	fake.cfg.sync_base_url = strdup("https://sync.example.com/");
	assert_int_equal(add_rules(cl, ids, 1, 0, true, &errmsg), IPC_E_NOT_PERMITTED);
	assert_non_null(strstr(errmsg, "managed centrally"));
	free(errmsg);
	expect_error(cl, "RetrieveAllRules", &lr.base, -1, IPC_E_NOT_PERMITTED, "SyncBaseURL");
	free(fake.cfg.sync_base_url);
	fake.cfg.sync_base_url = NULL;
	fake.n_static = 1;
	assert_int_equal(add_rules(cl, ids, 1, 0, true, &errmsg), IPC_E_NOT_PERMITTED);
	free(errmsg);
	fake.n_static = 0;
	ipc_client_free(cl);
}

static void test_paging(void **state)
{
	Santa__RuleListRequest lr = SANTA__RULE_LIST_REQUEST__INIT;
	ProtobufCMessage *reply;
	Santa__RuleList *list;
	ipc_client *cl;
	size_t seen = 0;
	char cursor[32] = "", *errmsg;

	skip_unless_root();
	cl = client();
	lr.limit = 1;
	do {
		lr.cursor = cursor;
		assert_int_equal(call(cl, "RetrieveAllRules", &lr.base, -1, &reply, &errmsg), 0);
		list = (Santa__RuleList *)reply;
		assert_true(list->n_rules <= 1);
		seen += list->n_rules;
		snprintf(cursor, sizeof(cursor), "%s", list->cursor);
		protobuf_c_message_free_unpacked(reply, NULL);
	} while (cursor[0] && seen < 100);
	assert_int_equal(seen, fake.n_rules);
	lr.cursor = "12x";
	expect_error(cl, "RetrieveAllRules", &lr.base, -1, IPC_E_INVALID, "bad cursor");
	ipc_client_free(cl);
}

static void test_events_and_settings(void **state)
{
	Santa__RemoveEventsRequest rr = SANTA__REMOVE_EVENTS_REQUEST__INIT;
	Santa__SyncSettings ss = SANTA__SYNC_SETTINGS__INIT;
	Santa__NotificationMessage nm = SANTA__NOTIFICATION_MESSAGE__INIT;
	Santa__Empty empty = SANTA__EMPTY__INIT;
	int64_t ids[] = { 4, 0 };
	ProtobufCMessage *reply;
	ipc_client *cl;
	char *errmsg;

	skip_unless_root();
	cl = client();
	rr.ids = ids;
	rr.n_ids = 2;
	expect_error(cl, "RemoveEvents", &rr.base, -1, IPC_E_INVALID, "id 1 is not positive");
	ss.has_client_mode = true;
	ss.client_mode = 7;
	expect_error(cl, "UpdateSyncSettings", &ss.base, -1, IPC_E_INVALID, "unknown mode 7");
	ss.client_mode = SANTA__CLIENT_MODE__LOCKDOWN;
	assert_int_equal(call(cl, "UpdateSyncSettings", &ss.base, -1, &reply, &errmsg), 0);
	protobuf_c_message_free_unpacked(reply, NULL);
	assert_int_equal(fake.cfg.client_mode, SANTA_MODE_LOCKDOWN);
	nm.message = "rules synced";
	assert_int_equal(call(cl, "PostRuleSyncNotification", &nm.base, -1, &reply, &errmsg), 0);
	protobuf_c_message_free_unpacked(reply, NULL);
	assert_string_equal(fake.last_gui, "rules synced");
	assert_int_equal(call(cl, "FlushCache", &empty.base, -1, &reply, &errmsg), 0);
	protobuf_c_message_free_unpacked(reply, NULL);
	assert_int_equal(fake.flushes, 1);
	fake.cfg.client_mode = SANTA_MODE_MONITOR;
	ipc_client_free(cl);
}

/* A peer of another role or uid gets only what the table grants it. */
static void test_refusals(void **state)
{
	Santa__Empty empty = SANTA__EMPTY__INIT;
	Santa__SyncFinishedRequest fin = SANTA__SYNC_FINISHED_REQUEST__INIT;
	ipc_client *cl = client();
	ProtobufCMessage *reply;
	char *errmsg;
	pid_t pid;
	int status;

	/* santactl may not act as the GUI. */
	assert_int_equal(call(cl, "SetNotificationListener", &empty.base, -1, &reply, &errmsg),
			 IPC_E_NOT_PERMITTED);
	free(errmsg);
	/* Nor count syncs in santad's metrics: only the sync service may. */
	assert_int_equal(call(cl, "SyncFinished", &fin.base, -1, &reply, &errmsg),
			 IPC_E_NOT_PERMITTED);
	free(errmsg);
	ipc_client_free(cl);
	if (geteuid() != 0)
		return;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* An unprivileged santactl: status yes, flushcache no. */
		ipc_client *ucl = NULL;
		int a, b;

		/* Not root, the child cannot look at the server and takes its
		 * word: the server's own trust table calls it santactl. */
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0 ||
		    ipc_client_connect(srv.path, srv.client_trust, &santa__santad__descriptor,
				       IPC_ROLE_BIT(IPC_ROLE_SANTACTL), 0, &ucl) < 0)
			_exit(2);
		a = ipc_client_call(ucl, method("Status"), &empty.base, -1, 0, &reply, &errmsg);
		b = ipc_client_call(ucl, method("FlushCache"), &empty.base, -1, 0, &reply, &errmsg);
		_exit(a == 0 && b == IPC_E_NOT_PERMITTED ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_status_sync_service),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_decision),
		cmocka_unit_test(test_check_cache),
		cmocka_unit_test(test_add_and_find),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_batch_dies_with_connection),
		cmocka_unit_test(test_managed),
		cmocka_unit_test(test_paging),
		cmocka_unit_test(test_events_and_settings),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
