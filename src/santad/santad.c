/* SPDX-License-Identifier: Apache-2.0 */
/* santad.h: the daemon as the control service and the metric export see it. */
#include "daemon.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gui.h"
#include "log.h"
#include "synclink.h"

#define RULE_TEXT_MAX 2048u
#define RULE_SIGNINGID_MAX 512u

/* --- settings in effect --- */

const santa_config *santad_config(const santad *d)
{
	return &d->cfg;
}

santa_client_mode santad_client_mode(const santad *d)
{
	policy *p = auth_policy(d->auth);
	santa_client_mode m = p->mode;

	policy_unref(p);
	return m;
}

bool santad_fail_closed(const santad *d)
{
	return d->cfg.fail_closed;
}

santa_log_type santad_log_type(const santad *d)
{
	return d->cfg.event_log_type;
}

bool santad_transitive_rules(const santad *d)
{
	policy *p = auth_policy(d->auth);
	bool t = p->transitive;

	policy_unref(p);
	return t;
}

bool santad_bundles_enabled(const santad *d)
{
	return d->sync.s.has_enable_bundles ? d->sync.s.enable_bundles : d->cfg.enable_bundles;
}

bool santad_watching(const santad *d)
{
	const char *const *paths;

	return d->auth && d->mounts && mounts_paths(d->mounts, &paths) > 0;
}

size_t santad_watch_paths(const santad *d, const char *const **ret_paths)
{
	static const char *const none[] = { NULL };

	if (!d->mounts) {
		*ret_paths = none;
		return 0;
	}
	return mounts_paths(d->mounts, ret_paths);
}

/* --- rules: validation and copies --- */

void santad_rule_done(santad_rule *r)
{
	if (!r)
		return;
	free(r->identifier);
	free(r->custom_msg);
	free(r->custom_url);
	free(r->file_bundle_hash);
	memset(r, 0, sizeof(*r));
}

void santad_rules_free(santad_rule *rules, size_t n)
{
	for (size_t i = 0; rules && i < n; i++)
		santad_rule_done(&rules[i]);
	free(rules);
}

static bool is_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; s[i] && isxdigit((unsigned char)s[i]); i++)
		;
	return i == len && !s[i];
}

static bool is_team_id(const char *s, size_t len)
{
	size_t i;

	for (i = 0; s[i] && isalnum((unsigned char)s[i]); i++)
		;
	return i == len && !s[i];
}

/* The identifier in the form it is stored in: hashes in lower case, team
 * IDs in upper case. NULL with a reason when it is not one of its type. */
static char *normalize_identifier(const char *id, int type, char *errbuf, size_t errsize)
{
	const char *colon;
	bool ok;
	char *out;

	switch (type) {
	case SANTA__RULE_TYPE__BINARY:
	case SANTA__RULE_TYPE__CERTIFICATE:
		ok = is_hex(id, 64);
		break;
	case SANTA__RULE_TYPE__CDHASH:
		ok = is_hex(id, 40);
		break;
	case SANTA__RULE_TYPE__TEAMID:
		ok = is_team_id(id, 10);
		break;
	case SANTA__RULE_TYPE__SIGNINGID:
		/* "TEAMID:signing.id", or "platform:signing.id". */
		colon = strchr(id, ':');
		ok = colon && colon[1] && strlen(id) <= RULE_SIGNINGID_MAX &&
		     (!strncmp(id, "platform:", 9) ||
		      (colon - id == 10 &&
		       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == 10));
		break;
	default:
		snprintf(errbuf, errsize, "unknown rule type %d", type);
		return NULL;
	}
	if (!ok) {
		snprintf(errbuf, errsize, "\"%.80s\" is not a valid %s identifier", id,
			 santa_rule_type_name(type) ? santa_rule_type_name(type) : "rule");
		return NULL;
	}
	out = strdup(id);
	if (!out) {
		snprintf(errbuf, errsize, "out of memory");
		return NULL;
	}
	for (char *p = out; *p && type != SANTA__RULE_TYPE__SIGNINGID; p++)
		*p = type == SANTA__RULE_TYPE__TEAMID ? (char)toupper((unsigned char)*p) :
			(char)tolower((unsigned char)*p);
	return out;
}

static int check_policy(const santad_rule *r, char *errbuf, size_t errsize)
{
	switch (r->policy) {
	case SANTA__POLICY__ALLOWLIST:
	case SANTA__POLICY__BLOCKLIST:
	case SANTA__POLICY__SILENT_BLOCKLIST:
	case SANTA__POLICY__REMOVE:
		return 0;
	case SANTA__POLICY__ALLOWLIST_COMPILER:
		if (r->rule_type == SANTA__RULE_TYPE__BINARY ||
		    r->rule_type == SANTA__RULE_TYPE__SIGNINGID)
			return 0;
		snprintf(errbuf, errsize, "compiler rules must be BINARY or SIGNINGID");
		return -EINVAL;
	case SANTA__POLICY__ALLOWLIST_TRANSITIVE:
		if (r->rule_type == SANTA__RULE_TYPE__BINARY)
			return 0;
		snprintf(errbuf, errsize, "transitive rules must be BINARY");
		return -EINVAL;
	default:
		snprintf(errbuf, errsize, "unknown policy %d", r->policy);
		return -EINVAL;
	}
}

static int check_text(const char *s, const char *what, char *errbuf, size_t errsize)
{
	if (s && strlen(s) > RULE_TEXT_MAX) {
		snprintf(errbuf, errsize, "%s longer than %u bytes", what, RULE_TEXT_MAX);
		return -EINVAL;
	}
	return 0;
}

static char *dup_opt(const char *s, bool *oom)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

static int rule_copy_valid(santad_rule *dst, const santad_rule *src, char *errbuf,
			   size_t errsize)
{
	bool oom = false;
	int r;

	memset(dst, 0, sizeof(*dst));
	if (!src->identifier || !*src->identifier) {
		snprintf(errbuf, errsize, "a rule has an empty identifier");
		return -EINVAL;
	}
	if ((r = check_policy(src, errbuf, errsize)) < 0 ||
	    (r = check_text(src->custom_msg, "custom message", errbuf, errsize)) < 0 ||
	    (r = check_text(src->custom_url, "custom URL", errbuf, errsize)) < 0 ||
	    (r = check_text(src->file_bundle_hash, "bundle hash", errbuf, errsize)) < 0)
		return r;
	dst->identifier = normalize_identifier(src->identifier, src->rule_type, errbuf, errsize);
	if (!dst->identifier)
		return -EINVAL;
	dst->policy = src->policy;
	dst->rule_type = src->rule_type;
	dst->custom_msg = dup_opt(src->custom_msg, &oom);
	dst->custom_url = dup_opt(src->custom_url, &oom);
	dst->file_bundle_hash = dup_opt(src->file_bundle_hash, &oom);
	dst->creation_time = src->creation_time;
	dst->file_bundle_binary_count = src->file_bundle_binary_count;
	if (oom) {
		santad_rule_done(dst);
		snprintf(errbuf, errsize, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* --- rule batches --- */

struct santad_rule_batch {
	santad_rule *rules;
	size_t n, cap;
};

int santad_rule_batch_new(santad_rule_batch **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

static void batch_clear(santad_rule_batch *b)
{
	santad_rules_free(b->rules, b->n);
	b->rules = NULL;
	b->n = b->cap = 0;
}

santad_rule_batch *santad_rule_batch_free(santad_rule_batch *b)
{
	if (b) {
		batch_clear(b);
		free(b);
	}
	return NULL;
}

size_t santad_rule_batch_size(const santad_rule_batch *b)
{
	return b->n;
}

int santad_rule_batch_add(santad_rule_batch *b, const santad_rule *r, char *errbuf,
			  size_t errsize)
{
	int r_err;

	if (b->n >= SANTAD_RULE_BATCH_MAX) {
		snprintf(errbuf, errsize, "more than %u rules in one batch", SANTAD_RULE_BATCH_MAX);
		return -E2BIG;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		santad_rule *p = realloc(b->rules, cap * sizeof(*p));

		if (!p) {
			snprintf(errbuf, errsize, "out of memory");
			return -ENOMEM;
		}
		b->rules = p;
		b->cap = cap;
	}
	r_err = rule_copy_valid(&b->rules[b->n], r, errbuf, errsize);
	if (r_err == 0)
		b->n++;
	return r_err;
}

/* Does the batch only add allows, so that no allow can become a deny? */
static bool batch_only_allows(const santad_rule_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->rules[i].policy != SANTA__POLICY__ALLOWLIST &&
		    b->rules[i].policy != SANTA__POLICY__ALLOWLIST_COMPILER &&
		    b->rules[i].policy != SANTA__POLICY__ALLOWLIST_TRANSITIVE)
			return false;
	return true;
}

/* The decision path's view of the batch: its BINARY rules. */
static ruleset *apply_to_ruleset(santad *d, const santad_rule_batch *b, int cleanup)
{
	ruleset_change *ch = calloc(b->n + 1, sizeof(*ch));
	ruleset *base = auth_rules(d->auth), *rs;
	size_t n = 0;

	if (!ch) {
		ruleset_unref(base);
		return NULL;
	}
	for (size_t i = 0; i < b->n; i++) {
		const santad_rule *r = &b->rules[i];

		if (r->rule_type != SANTA__RULE_TYPE__BINARY ||
		    santa_sha256_from_hex(r->identifier, ch[n].sha256) < 0)
			continue;
		ch[n].policy = (uint8_t)r->policy;
		ch[n].msg = r->custom_msg;
		ch[n].url = r->custom_url;
		n++;
	}
	rs = ruleset_apply(cleanup == SANTA__RULE_CLEANUP__CLEANUP_ALL ? NULL : base,
			   cleanup == SANTA__RULE_CLEANUP__CLEANUP_NON_TRANSITIVE, ch, n);
	free(ch);
	ruleset_unref(base);
	return rs;
}

int santad_rules_apply(santad *d, santad_rule_batch *b, Santa__RuleCleanup cleanup,
		       uint64_t *ret_applied, char *errbuf, size_t errsize)
{
	auth_flush flush = AUTH_FLUSH_DENIES;
	ruleset *rs;
	int r;

	r = ruledb_apply(d->rules, b->rules, b->n, cleanup, ret_applied, errbuf, errsize);
	if (r < 0)
		return r;
	rs = apply_to_ruleset(d, b, cleanup);
	if (!rs && ruledb_load_ruleset(d->rules, &rs) < 0) {
		/* The database has the rules; memory does not. Decisions go on
		 * from the old set until the next change or restart. */
		log_error("Rebuilding the rule index after a rule change failed: out of memory");
		batch_clear(b);
		return -ENOMEM;
	}
	/* A new allow cannot turn an allow into a deny: only cached denials
	 * (which the new allow may overturn) go. Anything else could. */
	if (cleanup != SANTA__RULE_CLEANUP__CLEANUP_NONE || !batch_only_allows(b))
		flush = AUTH_FLUSH_ALL;
	auth_publish(d->auth, NULL, rs, flush);
	log_info("Applied %llu rule changes (%zu received, cleanup %d), %zu binary rules in force%s",
		 (unsigned long long)*ret_applied, b->n, (int)cleanup, rs->n,
		 flush == AUTH_FLUSH_ALL ? ", caches flushed" : "");
	ruleset_unref(rs);
	batch_clear(b);
	/* A large batch leaves its strings' memory with the allocator, and
	 * the old index was as large as the new one: give it back. */
	malloc_trim(0);
	return 0;
}

int santad_rules_count(santad *d, santad_rule_counts *ret)
{
	return ruledb_counts(d->rules, ret);
}

size_t santad_static_rule_count(const santad *d)
{
	return d->cfg.n_static_rules;
}

static int precedence(int type)
{
	switch (type) {
	case SANTA__RULE_TYPE__CDHASH:
		return 0;
	case SANTA__RULE_TYPE__BINARY:
		return 1;
	case SANTA__RULE_TYPE__SIGNINGID:
		return 2;
	case SANTA__RULE_TYPE__CERTIFICATE:
		return 3;
	case SANTA__RULE_TYPE__TEAMID:
		return 4;
	default:
		return 5;
	}
}

static int copy_static(const santa_config_rule *s, santad_rule *ret)
{
	santad_rule src = {
		.identifier = s->identifier,
		.policy = s->policy,
		.rule_type = s->rule_type,
		.custom_msg = s->custom_msg,
		.custom_url = s->custom_url,
	};
	char err[128];

	return rule_copy_valid(ret, &src, err, sizeof(err));
}

static bool static_match(const santa_config_rule *s, const char *id, int type)
{
	return s->rule_type == type && s->identifier && !strcasecmp(s->identifier, id);
}

int santad_rules_find(santad *d, const santad_rule *keys, size_t n_keys, santad_rule *ret)
{
	char err[128];

	memset(ret, 0, sizeof(*ret));
	for (int pass = 0; pass < 2; pass++) {
		for (int prec = 0; prec < 5; prec++) {
			for (size_t i = 0; i < n_keys; i++) {
				char *id;
				int r = -ENOENT;

				if (!keys[i].identifier || precedence(keys[i].rule_type) != prec)
					continue;
				id = normalize_identifier(keys[i].identifier, keys[i].rule_type,
							  err, sizeof(err));
				if (!id)
					continue;
				for (size_t s = 0; pass == 0 && s < d->cfg.n_static_rules; s++)
					if (static_match(&d->cfg.static_rules[s], id,
							 keys[i].rule_type)) {
						r = copy_static(&d->cfg.static_rules[s], ret);
						break;
					}
				if (pass == 1)
					r = ruledb_find(d->rules, id, keys[i].rule_type, ret);
				free(id);
				if (r != -ENOENT)
					return r;
			}
		}
	}
	return -ENOENT;
}

int santad_rules_list(santad *d, int64_t after, size_t limit, santad_rule **ret_rules,
		      size_t *ret_n, int64_t *ret_next)
{
	return ruledb_list(d->rules, after, limit, ret_rules, ret_n, ret_next);
}

/* --- decisions and the cache --- */

void santad_verdict_done(santad_verdict *v)
{
	if (v)
		santad_rule_done(&v->rule);
}

static int verdict_rule(santad *d, const policy *p, const verdict *v, const char *sha_hex,
			santad_verdict *ret)
{
	if (!v->has_rule)
		return 0;
	ret->has_rule = true;
	if (v->rule_is_static)
		return copy_static(&p->static_rules[v->static_index].rule, &ret->rule);
	return ruledb_find(d->rules, sha_hex, SANTA__RULE_TYPE__BINARY, &ret->rule);
}

int santad_decide_dry_run(santad *d, const char *path, int fd, const char *sha256_hex,
			  santad_verdict *ret, char *errbuf, size_t errsize)
{
	uint8_t sha[SANTA_SHA256_LEN];
	char hex[SANTA_SHA256_HEX_LEN + 1];
	policy *p;
	ruleset *rs;
	verdict v;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!sha256_hex || santa_sha256_from_hex(sha256_hex, sha) < 0) {
		snprintf(errbuf, errsize, "\"%.80s\" is not a SHA-256", sha256_hex ? sha256_hex : "");
		return -EINVAL;
	}
	santa_hex(sha, SANTA_SHA256_LEN, hex);
	p = auth_policy(d->auth);
	rs = auth_rules(d->auth);
	/* As for an exec, Santa's own executables are allowed before any rule. */
	policy_decide_file(p, rs, sha, path && *path ? path : NULL, fd, &v);
	ret->decision = v.decision;
	ret->reason = v.reason;
	ret->silent = v.silent;
	ret->explanation = v.explanation;
	r = verdict_rule(d, p, &v, hex, ret);
	if (r < 0) {
		/* The index and the database disagree for a moment (a change
		 * being applied): the decision stands, without the rule. */
		ret->has_rule = false;
		santad_rule_done(&ret->rule);
	}
	policy_unref(p);
	ruleset_unref(rs);
	return 0;
}

uint64_t santad_cache_count(const santad *d)
{
	return auth_cache_count(d->auth);
}

void santad_cache_counts(const santad *d, uint64_t *ret_root, uint64_t *ret_non_root)
{
	uint64_t all = auth_cache_count(d->auth);
	uint64_t root = auth_cache_count_dev(d->auth, d->root_dev);

	*ret_root = root;
	*ret_non_root = all >= root ? all - root : 0;
}

int santad_cache_flush(santad *d, const char *why)
{
	auth_publish(d->auth, NULL, NULL, AUTH_FLUSH_ALL);
	log_info("Flushed the decision cache and the kernel's allows: %s", why ? why : "asked");
	return 0;
}

int santad_cache_check_fd(santad *d, int fd, santad_decision *ret_decision)
{
	return auth_cache_check_fd(d->auth, fd, ret_decision);
}

/* --- events --- */

int santad_events_count(santad *d, uint64_t *ret)
{
	*ret = 0;
	return d->events ? eventdb_count(d->events, ret) : 0;
}

int santad_events_list(santad *d, int64_t after_id, size_t limit, Santa__Event ***ret_events,
		       size_t *ret_n)
{
	*ret_events = NULL;
	*ret_n = 0;
	return d->events ? eventdb_list(d->events, after_id, limit, ret_events, ret_n) : 0;
}

void santad_events_free(Santa__Event **events, size_t n)
{
	for (size_t i = 0; events && i < n; i++)
		santa__event__free_unpacked(events[i], NULL);
	free(events);
}

int santad_events_remove(santad *d, const int64_t *ids, size_t n)
{
	return d->events ? eventdb_remove(d->events, ids, n) : 0;
}

/* Hand the stored events of blocked executions (id set) to the sync
 * service at once; unknown ones wait for the next sync. */
static void post_blocked(santad *d, Santa__Event **events, size_t n)
{
	Santa__Event *blocked[256];
	size_t k = 0;

	for (size_t i = 0; i < n && k < 256; i++)
		if (events[i]->id > 0 && events[i]->decision &&
		    !strncmp(events[i]->decision, "BLOCK_", 6))
			blocked[k++] = events[i];
	synclink_post_events(d->sync_link, blocked, k);
}

void santad_store_events(santad *d)
{
	Santa__Event *batch[256];
	size_t n, dropped;

	while ((n = recorder_take_events(d->rec, batch, 256)) > 0) {
		int r = d->events ? eventdb_add(d->events, batch, n, &dropped) : -ENODEV;

		if (r < 0) {
			dropped = n;
			log_warning_errno(r, "Storing %zu %s for the sync server failed, "
					  "dropping %s", n, log_plural(n, "event", "events"),
					  log_plural(n, "it", "them"));
		}
		atomic_fetch_add(&d->counters.events_stored, n - dropped);
		atomic_fetch_add(&d->counters.events_dropped, dropped);
		if (r == 0)
			post_blocked(d, batch, n);
		for (size_t i = 0; i < n; i++)
			recorder_event_free(batch[i]);
	}
}

/* --- sync settings and the policy --- */

int santad_sync_settings_get(santad *d, Santa__SyncSettings *ret)
{
	*ret = d->sync.s;
	return 0;
}

static void overrides_from_sync(const Santa__SyncSettings *s, policy_overrides *ov)
{
	memset(ov, 0, sizeof(*ov));
	ov->has_mode = s->has_client_mode &&
		       (s->client_mode == SANTA__CLIENT_MODE__MONITOR ||
			s->client_mode == SANTA__CLIENT_MODE__LOCKDOWN);
	ov->mode = (santa_client_mode)s->client_mode;
	ov->allowed_regex = s->has_allowed_path_regex ? s->allowed_path_regex : NULL;
	ov->blocked_regex = s->has_blocked_path_regex ? s->blocked_path_regex : NULL;
	ov->has_transitive = s->has_enable_transitive_rules;
	ov->transitive = s->enable_transitive_rules;
	ov->has_all_event_upload = s->has_enable_all_event_upload;
	ov->enable_all_event_upload = s->enable_all_event_upload;
	ov->has_disable_unknown = s->has_disable_unknown_event_upload;
	ov->disable_unknown_event_upload = s->disable_unknown_event_upload;
}

int santad_publish_policy(santad *d, const char *why, char *errbuf, size_t errsize)
{
	policy_overrides ov;
	policy *p, *old;
	bool flush;
	int r;

	overrides_from_sync(&d->sync.s, &ov);
	r = policy_new(&d->cfg, &ov, &p, errbuf, errsize);
	if (r < 0)
		return r;
	old = auth_policy(d->auth);
	flush = policy_change_needs_flush(old, p);
	/* Even a change that cannot turn an allow into a deny may overturn a
	 * cached denial (LOCKDOWN to MONITOR, a new allow regex). */
	auth_publish(d->auth, p, NULL, flush ? AUTH_FLUSH_ALL : AUTH_FLUSH_DENIES);
	if (old && old->mode != p->mode) {
		log_notice("Client mode is now %s (%s)", santa_client_mode_name(p->mode), why);
		if (d->gui)
			gui_post_client_mode(d->gui, p->mode);
	}
	if (flush && old)
		log_info("Policy changed (%s): decision cache and kernel allows flushed", why);
	policy_unref(old);
	policy_unref(p);
	return 0;
}

static int check_regex(const char *re, const char *key, char *errbuf, size_t errsize)
{
	pcre2_code *code;
	int err;
	PCRE2_SIZE off;

	if (!re || !*re)
		return 0;
	code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
	if (!code) {
		snprintf(errbuf, errsize, "%s \"%.80s\" does not compile (offset %zu)", key, re,
			 (size_t)off);
		return -EINVAL;
	}
	pcre2_code_free(code);
	return 0;
}

int santad_sync_settings_update(santad *d, const Santa__SyncSettings *s, char *errbuf,
				size_t errsize)
{
	int r;

	if (s->has_client_mode && s->client_mode != SANTA__CLIENT_MODE__MONITOR &&
	    s->client_mode != SANTA__CLIENT_MODE__LOCKDOWN) {
		snprintf(errbuf, errsize, "client mode %d is neither MONITOR nor LOCKDOWN",
			 (int)s->client_mode);
		return -EINVAL;
	}
	if ((s->has_allowed_path_regex &&
	     (r = check_regex(s->allowed_path_regex, "allowed_path_regex", errbuf, errsize)) < 0) ||
	    (s->has_blocked_path_regex &&
	     (r = check_regex(s->blocked_path_regex, "blocked_path_regex", errbuf, errsize)) < 0))
		return r;
	r = syncstate_update(&d->sync, s, errbuf, errsize);
	if (r < 0)
		return r;
	return santad_publish_policy(d, "sync settings changed", errbuf, errsize);
}

/* --- the GUI --- */

int santad_gui_post(santad *d, const char *message)
{
	if (d->gui)
		gui_post_rule_sync(d->gui, message);
	return 0;
}

struct gui *santad_gui(santad *d)
{
	return d->gui;
}

const char *santad_sync_service_state(const santad *d)
{
	return synclink_state(d->sync_link);
}

int santad_sync_service_probe(santad *d, uint64_t timeout_usec, santad_probe_fn cb,
			      void *userdata)
{
	if (!d->sync_link)
		return -ENOTCONN;
	return synclink_probe(d->sync_link, timeout_usec, cb, userdata);
}

const santad_counters *santad_get_counters(const santad *d)
{
	return &d->counters;
}
