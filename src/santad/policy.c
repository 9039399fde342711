/* SPDX-License-Identifier: Apache-2.0 */
#include "policy.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "elfhead.h"
#include "ipc.h"
#include "santa-build.h"
#include "santa.pb-c.h"

static atomic_uint_fast64_t policy_generation;

/* --- rulesets --- */

ruleset *ruleset_new_empty(void)
{
	ruleset *rs = calloc(1, sizeof(*rs));

	if (rs)
		atomic_init(&rs->refs, 1);
	return rs;
}

ruleset *ruleset_ref(ruleset *rs)
{
	if (rs)
		atomic_fetch_add(&rs->refs, 1);
	return rs;
}

ruleset *ruleset_unref(ruleset *rs)
{
	if (!rs || atomic_fetch_sub(&rs->refs, 1) != 1)
		return NULL;
	for (size_t i = 0; i < rs->n_msgs; i++) {
		free(rs->msgs[i].msg);
		free(rs->msgs[i].url);
	}
	free(rs->msgs);
	free(rs->entries);
	free(rs);
	return NULL;
}

static int change_cmp(const void *a, const void *b)
{
	const ruleset_change *ca = *(const ruleset_change *const *)a;
	const ruleset_change *cb = *(const ruleset_change *const *)b;
	int c = memcmp(ca->sha256, cb->sha256, SANTA_SHA256_LEN);

	/* Equal hashes keep their input order (pointers into one array), so
	 * that the last change of a hash can be picked. */
	if (c)
		return c;
	return ca < cb ? -1 : ca > cb;
}

/* The changes sorted by hash, only the last change of each hash kept. */
static const ruleset_change **changes_sorted(const ruleset_change *changes, size_t n,
					     size_t *ret_n)
{
	const ruleset_change **v = malloc((n ? n : 1) * sizeof(*v));
	size_t out = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i] = &changes[i];
	qsort(v, n, sizeof(*v), change_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && !memcmp(v[i]->sha256, v[i + 1]->sha256, SANTA_SHA256_LEN))
			continue;
		v[out++] = v[i];
	}
	*ret_n = out;
	return v;
}

static bool keep_entry(const ruleset_entry *e, bool keep_transitive_only)
{
	return !keep_transitive_only || e->policy == SANTA__POLICY__ALLOWLIST_TRANSITIVE;
}

/* Merge the sorted base entries with the sorted changes. */
static size_t merge_entries(const ruleset *base, bool transitive_only,
			    const ruleset_change **ch, size_t n_ch, ruleset_entry *out)
{
	size_t i = 0, j = 0, k = 0, nb = base ? base->n : 0;

	while (i < nb || j < n_ch) {
		int c = i >= nb ? 1 : j >= n_ch ? -1 :
			memcmp(base->entries[i].sha256, ch[j]->sha256, SANTA_SHA256_LEN);

		if (c < 0) {
			if (keep_entry(&base->entries[i], transitive_only))
				out[k++] = base->entries[i];
			i++;
			continue;
		}
		if (c == 0)
			i++;
		if (ch[j]->policy != SANTA__POLICY__REMOVE) {
			memcpy(out[k].sha256, ch[j]->sha256, SANTA_SHA256_LEN);
			out[k++].policy = ch[j]->policy;
		}
		j++;
	}
	return k;
}

static int msg_set(ruleset_msg *m, const uint8_t *sha, const char *msg, const char *url)
{
	memcpy(m->sha256, sha, SANTA_SHA256_LEN);
	m->msg = msg ? strdup(msg) : NULL;
	m->url = url ? strdup(url) : NULL;
	if ((msg && !m->msg) || (url && !m->url)) {
		free(m->msg);
		free(m->url);
		return -ENOMEM;
	}
	return 0;
}

/* Messages of the new set: the base's for hashes still present and not
 * changed, and the changes' own. Both inputs sorted, so the output is. */
static int merge_msgs(const ruleset *base, ruleset *rs, const ruleset_change **ch,
		      size_t n_ch)
{
	size_t i = 0, j = 0, nb = base ? base->n_msgs : 0;

	rs->msgs = calloc(nb + n_ch + 1, sizeof(*rs->msgs));
	if (!rs->msgs)
		return -ENOMEM;
	while (i < nb || j < n_ch) {
		int c = i >= nb ? 1 : j >= n_ch ? -1 :
			memcmp(base->msgs[i].sha256, ch[j]->sha256, SANTA_SHA256_LEN);
		const uint8_t *sha = c < 0 ? base->msgs[i].sha256 : ch[j]->sha256;
		int r = 0;

		if (c < 0) {
			if (ruleset_find(rs, sha))
				r = msg_set(&rs->msgs[rs->n_msgs++], sha, base->msgs[i].msg,
					    base->msgs[i].url);
			i++;
		} else {
			if (c == 0)
				i++;
			if (ch[j]->policy != SANTA__POLICY__REMOVE && (ch[j]->msg || ch[j]->url))
				r = msg_set(&rs->msgs[rs->n_msgs++], sha, ch[j]->msg, ch[j]->url);
			j++;
		}
		if (r < 0) {
			rs->n_msgs--;
			return r;
		}
	}
	return 0;
}

ruleset *ruleset_apply(const ruleset *base, bool keep_transitive_only,
		       const ruleset_change *changes, size_t n)
{
	const ruleset_change **ch;
	size_t n_ch, nb = base ? base->n : 0;
	ruleset *rs = ruleset_new_empty();

	if (!rs)
		return NULL;
	ch = changes_sorted(changes, n, &n_ch);
	if (!ch)
		return ruleset_unref(rs);
	rs->entries = malloc((nb + n_ch + 1) * sizeof(*rs->entries));
	if (!rs->entries)
		goto fail;
	rs->n = merge_entries(base, keep_transitive_only, ch, n_ch, rs->entries);
	if (merge_msgs(base, rs, ch, n_ch) < 0)
		goto fail;
	free(ch);
	return rs;
fail:
	free(ch);
	return ruleset_unref(rs);
}

const ruleset_entry *ruleset_find(const ruleset *rs, const uint8_t sha256[SANTA_SHA256_LEN])
{
	size_t lo = 0, hi = rs ? rs->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(rs->entries[mid].sha256, sha256, SANTA_SHA256_LEN);

		if (c == 0)
			return &rs->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const ruleset_msg *ruleset_find_msg(const ruleset *rs, const uint8_t sha256[SANTA_SHA256_LEN])
{
	size_t lo = 0, hi = rs ? rs->n_msgs : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(rs->msgs[mid].sha256, sha256, SANTA_SHA256_LEN);

		if (c == 0)
			return &rs->msgs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t ruleset_memory(const ruleset *rs)
{
	size_t m;

	if (!rs)
		return 0;
	m = sizeof(*rs) + rs->n * sizeof(ruleset_entry) + rs->n_msgs * sizeof(ruleset_msg);
	for (size_t i = 0; i < rs->n_msgs; i++)
		m += (rs->msgs[i].msg ? strlen(rs->msgs[i].msg) + 1 : 0) +
		     (rs->msgs[i].url ? strlen(rs->msgs[i].url) + 1 : 0);
	return m;
}

/* --- policies --- */

static int strdup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

/* Compile the regex KEY, from the sync server (SYNCED) or from CFG's file. */
static int compile_regex(const santa_config *cfg, const char *key, const char *src,
			 bool synced, pcre2_code **ret, char *errbuf, size_t errsize)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	int err;

	*ret = NULL;
	if (!src || !*src)
		return 0;
	*ret = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
	if (*ret) {
		/* JIT makes a match a few hundred ns; without it (no JIT on
		 * this CPU) matching still works, only slower. */
		(void)pcre2_jit_compile(*ret, PCRE2_JIT_COMPLETE);
		return 0;
	}
	pcre2_get_error_message(err, msg, sizeof(msg));
	if (synced)
		snprintf(errbuf, errsize, "%s from the sync server \"%.80s\": %s at offset %zu",
			 key, src, (char *)msg, (size_t)off);
	else
		santa_config_error(cfg, key, errbuf, errsize, "\"%.80s\": %s at offset %zu",
				   src, (char *)msg, (size_t)off);
	return -EINVAL;
}

/* StaticRules[INDEX] of CFG, BINARY ones with their hash parsed. */
static int copy_static_rule(policy_static_rule *dst, const santa_config *cfg, size_t index,
			    char *errbuf, size_t errsize)
{
	const santa_config_rule *src = &cfg->static_rules[index];
	char key[64];

	memset(dst, 0, sizeof(*dst));
	dst->rule.policy = src->policy;
	dst->rule.rule_type = src->rule_type;
	if (strdup_opt(&dst->rule.identifier, src->identifier) < 0 ||
	    strdup_opt(&dst->rule.custom_msg, src->custom_msg) < 0 ||
	    strdup_opt(&dst->rule.custom_url, src->custom_url) < 0)
		return -ENOMEM;
	if (src->rule_type != SANTA__RULE_TYPE__BINARY)
		return 0;
	/* santa_config_load() refuses these already; a config built some
	 * other way gets the same message. */
	if (!src->identifier || santa_sha256_from_hex(src->identifier, dst->sha256) < 0) {
		snprintf(key, sizeof(key), "StaticRules[%zu]", index);
		santa_config_error(cfg, key, errbuf, errsize,
				   "\"identifier\": BINARY identifier \"%.80s\" is not a "
				   "SHA-256 (64 hex digits)", src->identifier ? src->identifier : "");
		return -EINVAL;
	}
	dst->has_sha256 = true;
	return 0;
}

static int policy_copy_strings(policy *p, const santa_config *cfg)
{
	if (strdup_opt(&p->unknown_block_message, cfg->unknown_block_message) < 0 ||
	    strdup_opt(&p->banned_block_message, cfg->banned_block_message) < 0 ||
	    strdup_opt(&p->event_detail_url, cfg->event_detail_url) < 0 ||
	    strdup_opt(&p->machine_id, cfg->machine_id) < 0)
		return -ENOMEM;
	return 0;
}

/* The install directories, then TrustedExecutables, as the IPC layer's
 * trust table has them (ipc_trust_add_defaults). */
static int policy_copy_own(policy *p, const santa_config *cfg)
{
	static const char *const dirs[] = { SANTA_SBINDIR "/", SANTA_BINDIR "/",
					    SANTA_LIBEXECDIR "/" };
	size_t n = sizeof(dirs) / sizeof(dirs[0]), k = 0;

	for (size_t i = 0; cfg->trusted_executables && cfg->trusted_executables[i]; i++)
		n++;
	p->own_executables = calloc(n + 1, sizeof(char *));
	if (!p->own_executables)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (!(p->own_executables[k++] = strdup(dirs[i])))
			return -ENOMEM;
	for (size_t i = 0; cfg->trusted_executables && cfg->trusted_executables[i]; i++)
		if (!(p->own_executables[k++] = strdup(cfg->trusted_executables[i])))
			return -ENOMEM;
	return 0;
}

static void policy_apply_overrides(policy *p, const santa_config *cfg,
				   const policy_overrides *ov)
{
	p->mode = ov && ov->has_mode ? ov->mode : cfg->client_mode;
	p->fail_closed = cfg->fail_closed;
	p->transitive = ov && ov->has_transitive ? ov->transitive : cfg->enable_transitive_rules;
	p->enable_all_event_upload = ov && ov->has_all_event_upload ?
		ov->enable_all_event_upload : cfg->enable_all_event_upload;
	p->disable_unknown_event_upload = ov && ov->has_disable_unknown ?
		ov->disable_unknown_event_upload : cfg->disable_unknown_event_upload;
	p->store_events = cfg->sync_base_url && *cfg->sync_base_url;
	p->silent_tty = cfg->enable_silent_tty_mode;
	p->timeout_ms = cfg->decision_timeout_ms ? cfg->decision_timeout_ms : 5000;
}

static int policy_build(policy *p, const santa_config *cfg, const policy_overrides *ov,
			char *errbuf, size_t errsize)
{
	const char *allowed = ov && ov->allowed_regex ? ov->allowed_regex :
			      cfg->allowed_path_regex;
	const char *blocked = ov && ov->blocked_regex ? ov->blocked_regex :
			      cfg->blocked_path_regex;
	int r;

	policy_apply_overrides(p, cfg, ov);
	r = policy_copy_strings(p, cfg);
	if (r >= 0)
		r = policy_copy_own(p, cfg);
	if (r < 0)
		return r;
	if ((r = compile_regex(cfg, "AllowedPathRegex", allowed, ov && ov->allowed_regex,
			       &p->allowed_regex, errbuf, errsize)) < 0 ||
	    (r = compile_regex(cfg, "BlockedPathRegex", blocked, ov && ov->blocked_regex,
			       &p->blocked_regex, errbuf, errsize)) < 0)
		return r;
	if (strdup_opt(&p->allowed_regex_src, allowed && *allowed ? allowed : NULL) < 0 ||
	    strdup_opt(&p->blocked_regex_src, blocked && *blocked ? blocked : NULL) < 0)
		return -ENOMEM;
	p->static_rules = calloc(cfg->n_static_rules + 1, sizeof(*p->static_rules));
	if (!p->static_rules)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_static_rules; i++) {
		p->n_static_rules++;
		r = copy_static_rule(&p->static_rules[i], cfg, i, errbuf, errsize);
		if (r < 0)
			return r;
	}
	return 0;
}

int policy_new(const santa_config *cfg, const policy_overrides *ov, policy **ret,
	       char *errbuf, size_t errsize)
{
	policy *p = calloc(1, sizeof(*p));
	int r;

	*ret = NULL;
	if (!p)
		return -ENOMEM;
	atomic_init(&p->refs, 1);
	p->generation = atomic_fetch_add(&policy_generation, 1) + 1;
	r = policy_build(p, cfg, ov, errbuf, errsize);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(errbuf, errsize, "out of memory building the policy");
		policy_unref(p);
		return r;
	}
	*ret = p;
	return 0;
}

policy *policy_ref(policy *p)
{
	if (p)
		atomic_fetch_add(&p->refs, 1);
	return p;
}

policy *policy_unref(policy *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return NULL;
	for (size_t i = 0; i < p->n_static_rules; i++)
		santa_config_rule_done(&p->static_rules[i].rule);
	free(p->static_rules);
	pcre2_code_free(p->allowed_regex);
	pcre2_code_free(p->blocked_regex);
	free(p->allowed_regex_src);
	free(p->blocked_regex_src);
	free(p->unknown_block_message);
	free(p->banned_block_message);
	free(p->event_detail_url);
	free(p->machine_id);
	for (size_t i = 0; p->own_executables && p->own_executables[i]; i++)
		free(p->own_executables[i]);
	free(p->own_executables);
	free(p);
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool own_executables_equal(const policy *a, const policy *b)
{
	size_t i;

	for (i = 0; a->own_executables[i] && b->own_executables[i]; i++)
		if (strcmp(a->own_executables[i], b->own_executables[i]) != 0)
			return false;
	return !a->own_executables[i] && !b->own_executables[i];
}

static bool static_rules_equal(const policy *a, const policy *b)
{
	if (a->n_static_rules != b->n_static_rules)
		return false;
	for (size_t i = 0; i < a->n_static_rules; i++) {
		const santa_config_rule *ra = &a->static_rules[i].rule;
		const santa_config_rule *rb = &b->static_rules[i].rule;

		if (ra->policy != rb->policy || ra->rule_type != rb->rule_type ||
		    !str_eq(ra->identifier, rb->identifier) ||
		    !str_eq(ra->custom_msg, rb->custom_msg) ||
		    !str_eq(ra->custom_url, rb->custom_url))
			return false;
	}
	return true;
}

bool policy_change_needs_flush(const policy *old, const policy *new)
{
	if (!old)
		return true;
	/* Cached allows could now be wrong: a new mode that blocks unknowns,
	 * other regexes, other static rules, transitive rules switched off. */
	return (new->mode == SANTA_MODE_LOCKDOWN && old->mode != SANTA_MODE_LOCKDOWN) ||
	       !str_eq(old->allowed_regex_src, new->allowed_regex_src) ||
	       !str_eq(old->blocked_regex_src, new->blocked_regex_src) ||
	       !static_rules_equal(old, new) ||
	       !own_executables_equal(old, new) ||
	       (old->transitive && !new->transitive);
}

/* --- deciding --- */

/* Apply a matching rule's policy. False when the rule does not decide
 * (a transitive rule while transitive rules are off, REMOVE, unknown). */
static bool apply_rule(const policy *p, int rule_policy, verdict *v)
{
	switch (rule_policy) {
	case SANTA__POLICY__ALLOWLIST:
		v->decision = SANTAD_DECISION_ALLOW;
		v->reason = SANTAD_REASON_BINARY;
		v->explanation = "allowed by a binary rule";
		return true;
	case SANTA__POLICY__ALLOWLIST_COMPILER:
		/* Without transitive rules a compiler rule is a plain allow. */
		v->decision = SANTAD_DECISION_ALLOW;
		v->reason = p->transitive ? SANTAD_REASON_COMPILER : SANTAD_REASON_BINARY;
		v->explanation = "allowed by a compiler rule";
		return true;
	case SANTA__POLICY__ALLOWLIST_TRANSITIVE:
		if (!p->transitive)
			return false;
		v->decision = SANTAD_DECISION_ALLOW;
		v->reason = SANTAD_REASON_TRANSITIVE;
		v->explanation = "allowed by a transitive rule";
		return true;
	case SANTA__POLICY__BLOCKLIST:
		v->decision = SANTAD_DECISION_DENY;
		v->reason = SANTAD_REASON_BINARY;
		v->explanation = "blocked by a binary rule";
		return true;
	case SANTA__POLICY__SILENT_BLOCKLIST:
		v->decision = SANTAD_DECISION_DENY;
		v->reason = SANTAD_REASON_BINARY;
		v->silent = true;
		v->explanation = "blocked by a silent binary rule";
		return true;
	default:
		return false;
	}
}

static bool decide_static(const policy *p, const uint8_t *sha, verdict *v)
{
	/* Static rules are few (a config file's worth): a scan is enough. */
	for (size_t i = 0; i < p->n_static_rules; i++) {
		const policy_static_rule *s = &p->static_rules[i];

		if (!s->has_sha256 || memcmp(s->sha256, sha, SANTA_SHA256_LEN))
			continue;
		if (!apply_rule(p, s->rule.policy, v))
			continue;
		v->has_rule = true;
		v->rule_is_static = true;
		v->static_index = i;
		v->rule_policy = s->rule.policy;
		v->rule_type = s->rule.rule_type;
		v->custom_msg = s->rule.custom_msg;
		v->custom_url = s->rule.custom_url;
		return true;
	}
	return false;
}

static bool decide_db(const policy *p, const ruleset *rs, const uint8_t *sha, verdict *v)
{
	const ruleset_entry *e = ruleset_find(rs, sha);
	const ruleset_msg *m;

	if (!e || !apply_rule(p, e->policy, v))
		return false;
	v->has_rule = true;
	v->rule_policy = e->policy;
	v->rule_type = SANTA__RULE_TYPE__BINARY;
	m = ruleset_find_msg(rs, sha);
	if (m) {
		v->custom_msg = m->msg;
		v->custom_url = m->url;
	}
	return true;
}

static bool regex_matches(const pcre2_code *re, const char *path)
{
	pcre2_match_data *md;
	int rc;

	if (!re || !path)
		return false;
	md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md)
		return false;
	rc = pcre2_match(re, (PCRE2_SPTR)path, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

void policy_decide(const policy *p, const ruleset *rs, const uint8_t sha256[SANTA_SHA256_LEN],
		   const char *path, verdict *out)
{
	memset(out, 0, sizeof(*out));
	if (decide_static(p, sha256, out) || decide_db(p, rs, sha256, out))
		return;
	if (regex_matches(p->blocked_regex, path)) {
		out->decision = SANTAD_DECISION_DENY;
		out->reason = SANTAD_REASON_SCOPE;
		out->explanation = "blocked by BlockedPathRegex";
		return;
	}
	if (regex_matches(p->allowed_regex, path)) {
		out->decision = SANTAD_DECISION_ALLOW;
		out->reason = SANTAD_REASON_SCOPE;
		out->explanation = "allowed by AllowedPathRegex";
		return;
	}
	out->reason = SANTAD_REASON_UNKNOWN;
	if (p->mode == SANTA_MODE_LOCKDOWN) {
		out->decision = SANTAD_DECISION_DENY;
		out->explanation = "blocked: unknown program in lockdown mode";
	} else {
		out->decision = SANTAD_DECISION_ALLOW;
		out->explanation = "allowed: unknown program in monitor mode";
	}
}

/* The path where entry E would hold an executable called BASE, or false
 * when E is a file of another name. */
static bool own_candidate(const char *e, const char *base, char *buf, size_t size)
{
	size_t len = strlen(e);
	const char *slash;

	if (len > 0 && e[len - 1] == '/')
		return snprintf(buf, size, "%s%s", e, base) < (int)size;
	slash = strrchr(e, '/');
	if (strcmp(slash ? slash + 1 : e, base) != 0)
		return false;
	return snprintf(buf, size, "%s", e) < (int)size;
}

bool policy_is_own_executable(const policy *p, int fd, const char *path)
{
	char cand[PATH_MAX], why[PATH_MAX + 64];
	struct stat st, est;
	const char *base;
	ipc_role role;

	if (!p || !p->own_executables || fd < 0 || !path)
		return false;
	/* Most files are not called like ours: decided without a system call. */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	role = ipc_role_from_name(base);
	if (role == IPC_ROLE_NONE || role == IPC_ROLE_TEST)
		return false;
	if (file_fstat_nosync(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	for (size_t i = 0; p->own_executables[i]; i++) {
		if (!own_candidate(p->own_executables[i], base, cand, sizeof(cand)))
			continue;
		if (stat(cand, &est) < 0 || est.st_dev != st.st_dev || est.st_ino != st.st_ino)
			continue;
		/* Whoever could replace it could run anything as it. */
		return ipc_path_is_root_held(cand, why, sizeof(why)) == 0;
	}
	return false;
}

/* The ELF interpreter santad was loaded with, which its other executables
 * (built alike) name too; found once. */
static pthread_once_t own_loader_once = PTHREAD_ONCE_INIT;
static char own_loader_path[PATH_MAX];
static struct stat own_loader_st;

static void find_own_loader(void)
{
	uint8_t head[sizeof(Elf64_Ehdr)];
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	elf_info e;

	if (fd < 0)
		return;
	if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
	    !elf_parse_header(head, sizeof(head), &e) ||
	    elf_read_interp(fd, &e, own_loader_path, sizeof(own_loader_path)) != 1 ||
	    stat(own_loader_path, &own_loader_st) < 0)
		own_loader_path[0] = '\0';
	close(fd);
}

bool policy_is_own_loader(int fd)
{
	char why[PATH_MAX + 64];
	struct stat st;

	pthread_once(&own_loader_once, find_own_loader);
	return own_loader_path[0] && fd >= 0 && file_fstat_nosync(fd, &st) == 0 &&
	       st.st_dev == own_loader_st.st_dev && st.st_ino == own_loader_st.st_ino &&
	       ipc_path_is_root_held(own_loader_path, why, sizeof(why)) == 0;
}

void policy_decide_file(const policy *p, const ruleset *rs,
			const uint8_t sha256[SANTA_SHA256_LEN], const char *path, int fd,
			verdict *out)
{
	if (policy_is_own_executable(p, fd, path)) {
		memset(out, 0, sizeof(*out));
		out->decision = SANTAD_DECISION_ALLOW;
		out->reason = SANTAD_REASON_SCOPE;
		out->explanation = "allowed: one of Santa's own executables";
		return;
	}
	if (policy_is_own_loader(fd)) {
		memset(out, 0, sizeof(*out));
		out->decision = SANTAD_DECISION_ALLOW;
		out->reason = SANTAD_REASON_SCOPE;
		out->explanation = "allowed: the dynamic loader of Santa's own executables";
		return;
	}
	policy_decide(p, rs, sha256, path, out);
}

bool policy_records_event(const policy *p, const verdict *v)
{
	if (!p->store_events)
		return false;
	if (v->decision == SANTAD_DECISION_DENY || p->enable_all_event_upload)
		return true;
	return v->reason == SANTAD_REASON_UNKNOWN && !p->disable_unknown_event_upload;
}

const char *policy_event_decision(const verdict *v)
{
	bool allow = v->decision == SANTAD_DECISION_ALLOW;

	switch (v->reason) {
	case SANTAD_REASON_BINARY:
	case SANTAD_REASON_COMPILER:
	case SANTAD_REASON_TRANSITIVE:
	case SANTAD_REASON_PENDING_TRANSITIVE:
		return allow ? "ALLOW_BINARY" : "BLOCK_BINARY";
	case SANTAD_REASON_CERT:
		return allow ? "ALLOW_CERTIFICATE" : "BLOCK_CERTIFICATE";
	case SANTAD_REASON_TEAMID:
		return allow ? "ALLOW_TEAMID" : "BLOCK_TEAMID";
	case SANTAD_REASON_SIGNINGID:
		return allow ? "ALLOW_SIGNINGID" : "BLOCK_SIGNINGID";
	case SANTAD_REASON_CDHASH:
		return allow ? "ALLOW_CDHASH" : "BLOCK_CDHASH";
	case SANTAD_REASON_SCOPE:
		return allow ? "ALLOW_SCOPE" : "BLOCK_SCOPE";
	default:
		return allow ? "ALLOW_UNKNOWN" : "BLOCK_UNKNOWN";
	}
}
