/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration file reader.
 *
 * The file is one JSON object whose keys are the original Santa's
 * configuration keys. Each key is described once in config_keys[] below:
 * its JSON type and where it lands in struct santa_config. Parsing walks
 * the object and looks every key up in that table, so that a wrong type
 * or an unknown key is reported with the line it is on.
 *
 * Unknown keys are errors (a typo in a security policy should not pass
 * silently), except the keys that only make sense on macOS, which are
 * accepted and ignored so that an administrator can share one file.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "santa-build.h"
#include "sha256.h"

#define CONFIG_MAX_SIZE (16u << 20)
#define RULE_TYPE_BINARY 1000    /* santa.proto RuleType */

enum key_type {
	KEY_BOOL,
	KEY_UINT,
	KEY_STRING,
	KEY_STRING_LIST,
	KEY_MODE,
	KEY_LOG_TYPE,
	KEY_RULES,
	KEY_LABELS,       /* object of string values -> "k=v" list */
	KEY_HEADERS,      /* object of string values -> "k: v" list */
};

struct config_key {
	const char *name;
	enum key_type type;
	size_t offset;         /* into santa_config */
	size_t count_offset;   /* for lists: the size_t count */
};

#define F(field) offsetof(santa_config, field)
#define L(field, count) offsetof(santa_config, field), offsetof(santa_config, count)

static const struct config_key config_keys[] = {
	{ "ClientMode", KEY_MODE, F(client_mode), 0 },
	{ "FailClosed", KEY_BOOL, F(fail_closed), 0 },
	{ "SyncBaseURL", KEY_STRING, F(sync_base_url), 0 },
	{ "MachineID", KEY_STRING, F(machine_id), 0 },
	{ "AllowedPathRegex", KEY_STRING, F(allowed_path_regex), 0 },
	{ "BlockedPathRegex", KEY_STRING, F(blocked_path_regex), 0 },
	{ "StaticRules", KEY_RULES, L(static_rules, n_static_rules) },
	{ "EnableTransitiveRules", KEY_BOOL, F(enable_transitive_rules), 0 },
	{ "EnableAllEventUpload", KEY_BOOL, F(enable_all_event_upload), 0 },
	{ "DisableUnknownEventUpload", KEY_BOOL, F(disable_unknown_event_upload), 0 },
	{ "EnableBundles", KEY_BOOL, F(enable_bundles), 0 },
	{ "EnableSilentMode", KEY_BOOL, F(enable_silent_mode), 0 },
	{ "EnableSilentTTYMode", KEY_BOOL, F(enable_silent_tty_mode), 0 },
	{ "UnknownBlockMessage", KEY_STRING, F(unknown_block_message), 0 },
	{ "BannedBlockMessage", KEY_STRING, F(banned_block_message), 0 },
	{ "EventDetailURL", KEY_STRING, F(event_detail_url), 0 },
	{ "EventDetailText", KEY_STRING, F(event_detail_text), 0 },
	{ "ModeNotificationMonitor", KEY_STRING, F(mode_notification_monitor), 0 },
	{ "ModeNotificationLockdown", KEY_STRING, F(mode_notification_lockdown), 0 },
	{ "EventLogType", KEY_LOG_TYPE, F(event_log_type), 0 },
	{ "EventLogPath", KEY_STRING, F(event_log_path), 0 },
	{ "StateDirectory", KEY_STRING, F(state_directory), 0 },
	{ "RunDirectory", KEY_STRING, F(run_directory), 0 },
	{ "WatchPaths", KEY_STRING_LIST, L(watch_paths, n_watch_paths) },
	{ "TrustedExecutables", KEY_STRING_LIST,
	  L(trusted_executables, n_trusted_executables) },
	{ "MetricURL", KEY_STRING, F(metric_url), 0 },
	{ "MetricFormat", KEY_STRING, F(metric_format), 0 },
	{ "MetricExportInterval", KEY_UINT, F(metric_export_interval), 0 },
	{ "MetricExportTimeout", KEY_UINT, F(metric_export_timeout), 0 },
	{ "MetricExtraLabels", KEY_LABELS,
	  L(metric_extra_labels, n_metric_extra_labels) },
	{ "SyncClientContentEncoding", KEY_STRING,
	  F(sync_client_content_encoding), 0 },
	{ "ServerAuthRootsFile", KEY_STRING, F(sync_ca_file), 0 },
	{ "ClientAuthCertificateFile", KEY_STRING, F(sync_client_cert_file), 0 },
	{ "ClientAuthKeyFile", KEY_STRING, F(sync_client_key_file), 0 },
	{ "SyncExtraHeaders", KEY_HEADERS,
	  L(sync_extra_headers, n_sync_extra_headers) },
	{ "FullSyncInterval", KEY_UINT, F(full_sync_interval), 0 },
	{ "SyncRetryAttempts", KEY_UINT, F(sync_retry_attempts), 0 },
	{ "SyncRetryBackoffMs", KEY_UINT, F(sync_retry_backoff_ms), 0 },
	{ "SyncRequestTimeoutMs", KEY_UINT, F(sync_request_timeout_ms), 0 },
	{ "ServiceUser", KEY_STRING, F(service_user), 0 },
	{ "DecisionTimeoutMs", KEY_UINT, F(decision_timeout_ms), 0 },
	{ "HashThreads", KEY_UINT, F(hash_threads), 0 },
};

/* Keys of the original that mean nothing on Linux (yet): accepted and
 * ignored, so that one file can serve both. */
static const char *const config_ignored_keys[] = {
	"BlockUSBMount", "RemountUSBMode", "OnStartUSBOptions",
	"EnableBadSignatureProtection", "EnablePageZeroProtection",
	"FileAccessPolicy", "FileAccessPolicyPlist",
	"FileAccessPolicyUpdateIntervalSec", "FileAccessBlockMessage",
	"OverrideFileAccessAction", "SpoolDirectory",
	"SpoolDirectoryFileSizeThresholdKB", "SpoolDirectorySizeThresholdMB",
	"SpoolDirectoryEventMaxFlushTimeSec", "EnableMachineIDDecoration",
	"FileChangesRegex", "FileChangesPrefixFilters",
	"EnableForkAndExitLogging", "DismissText", "AboutText", "MoreInfoURL",
	"ClientAuthCertificateCN", "ClientAuthCertificateIssuerCN",
	"ServerAuthRootsData", "SyncEnableProtoTransfer",
	"MachineOwner", "MachineOwnerPlist", "MachineOwnerKey",
	"MachineIDPlist", "MachineIDKey", "EnableStandalonePasswordFallback",
	NULL,
};

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		abort();
	return d;
}

static void free_list(char **list)
{
	if (!list)
		return;
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}

void santa_config_init(santa_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->client_mode = SANTA_MODE_MONITOR;
	cfg->event_log_type = SANTA_LOG_FILE;
	cfg->event_log_path = xstrdup("/var/log/santa/santa.log");
	cfg->state_directory = xstrdup("/var/lib/santa");
	cfg->run_directory = xstrdup("/run/santa");
	cfg->metric_export_interval = 30;
	cfg->metric_export_timeout = 30;
	cfg->sync_client_content_encoding = xstrdup("deflate");
	cfg->full_sync_interval = 600;
	cfg->sync_retry_attempts = 5;
	cfg->sync_retry_backoff_ms = 1000;
	cfg->sync_request_timeout_ms = 30000;
	cfg->service_user = xstrdup("nobody");
	cfg->decision_timeout_ms = 5000;
	cfg->hash_threads = 2;
}

void santa_config_rule_done(santa_config_rule *rule)
{
	if (!rule)
		return;
	free(rule->identifier);
	free(rule->custom_msg);
	free(rule->custom_url);
	memset(rule, 0, sizeof(*rule));
}

void santa_config_done(santa_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		const struct config_key *k = &config_keys[i];
		void *field = (char *)cfg + k->offset;

		switch (k->type) {
		case KEY_STRING:
			free(*(char **)field);
			break;
		case KEY_STRING_LIST:
		case KEY_LABELS:
		case KEY_HEADERS:
			free_list(*(char ***)field);
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i < cfg->n_static_rules; i++)
		santa_config_rule_done(&cfg->static_rules[i]);
	free(cfg->static_rules);
	for (size_t i = 0; cfg->entry_lines && i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		free(cfg->entry_lines[i]);
	free(cfg->entry_lines);
	free(cfg->key_lines);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

const char *santa_config_default_path(void)
{
	const char *env = getenv("SANTA_CONFIG");

	return env && *env ? env : SANTA_DEFAULT_CONFIG;
}

/* --- names shared with the sync protocol and santactl --- */

static const struct {
	const char *name;
	int value;
} policy_names[] = {
	{ "ALLOWLIST", 1 }, { "BLOCKLIST", 2 }, { "SILENT_BLOCKLIST", 3 },
	{ "REMOVE", 4 }, { "ALLOWLIST_COMPILER", 5 },
	{ "ALLOWLIST_TRANSITIVE", 6 },
	/* Spellings older servers still send. */
	{ "WHITELIST", 1 }, { "BLACKLIST", 2 }, { "SILENT_BLACKLIST", 3 },
	{ "WHITELIST_COMPILER", 5 }, { "WHITELIST_TRANSITIVE", 6 },
}, rule_type_names[] = {
	{ "CDHASH", 500 }, { "BINARY", 1000 }, { "SIGNINGID", 2000 },
	{ "CERTIFICATE", 3000 }, { "TEAMID", 4000 },
};

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

int santa_policy_from_name(const char *name)
{
	for (size_t i = 0; i < N_ELEM(policy_names); i++)
		if (strcasecmp(name, policy_names[i].name) == 0)
			return policy_names[i].value;
	return -1;
}

const char *santa_policy_name(int policy)
{
	for (size_t i = 0; i < N_ELEM(policy_names); i++)
		if (policy_names[i].value == policy)
			return policy_names[i].name;
	return NULL;
}

int santa_rule_type_from_name(const char *name)
{
	for (size_t i = 0; i < N_ELEM(rule_type_names); i++)
		if (strcasecmp(name, rule_type_names[i].name) == 0)
			return rule_type_names[i].value;
	return -1;
}

const char *santa_rule_type_name(int type)
{
	for (size_t i = 0; i < N_ELEM(rule_type_names); i++)
		if (rule_type_names[i].value == type)
			return rule_type_names[i].name;
	return NULL;
}

const char *santa_client_mode_name(santa_client_mode mode)
{
	return mode == SANTA_MODE_LOCKDOWN ? "Lockdown" : "Monitor";
}

const char *santa_log_type_name(santa_log_type t)
{
	switch (t) {
	case SANTA_LOG_SYSLOG:
		return "syslog";
	case SANTA_LOG_JSON:
		return "json";
	case SANTA_LOG_NULL:
		return "null";
	default:
		return "file";
	}
}

/* --- parsing --- */

struct parse_ctx {
	const char *file;
	const char *text;
	char *errbuf;
	size_t errsize;
};

/*
 * Where things are in the text, for error messages. json-c keeps no
 * positions, so the text (already parsed, hence valid JSON) is walked
 * again: enough to name the line of a key, of an array's Nth entry and of
 * a member of that entry.
 */
static const char *skip_blanks(const char *p)
{
	return p + strspn(p, " \t\r\n");
}

/* P is at a string's opening quote; returns what follows its closing one. */
static const char *skip_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

/* P is at a value; returns what follows it. */
static const char *skip_value(const char *p)
{
	int depth = 0;

	p = skip_blanks(p);
	do {
		if (*p == '"') {
			p = skip_string(p);
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		else if (depth == 0)
			return p + strcspn(p, ",]} \t\r\n");
		p++;
	} while (*p && depth > 0);
	return p;
}

/* The quote that opens the first member of the object at P, or NULL. */
static const char *member_first(const char *p)
{
	p = skip_blanks(p);
	if (*p != '{')
		return NULL;
	p = skip_blanks(p + 1);
	return *p == '"' ? p : NULL;
}

/* The quote that opens the member after the one at P, or NULL. */
static const char *member_next(const char *p)
{
	p = skip_blanks(skip_string(p));
	if (*p != ':')
		return NULL;
	p = skip_blanks(skip_value(p + 1));
	if (*p != ',')
		return NULL;
	p = skip_blanks(p + 1);
	return *p == '"' ? p : NULL;
}

/* The length of the name of the member at P (its quotes excluded). */
static size_t member_name_len(const char *p)
{
	size_t n = (size_t)(skip_string(p) - p);

	return n >= 2 ? n - 2 : 0;
}

/* The quote that opens member KEY of the object at P (the last one, as
 * json-c keeps the last of duplicate keys), or NULL. */
static const char *member_at(const char *p, const char *key)
{
	size_t klen = strlen(key);
	const char *found = NULL;

	for (p = member_first(p); p; p = member_next(p))
		if (member_name_len(p) == klen && !strncmp(p + 1, key, klen))
			found = p;
	return found;
}

/* The value that follows the member name at P. */
static const char *member_value(const char *p)
{
	p = skip_blanks(skip_string(p));
	return *p == ':' ? skip_blanks(p + 1) : p;
}

/* Entry INDEX of the array at P, or NULL. */
static const char *array_entry(const char *p, size_t index)
{
	p = skip_blanks(p);
	if (*p != '[')
		return NULL;
	p = skip_blanks(p + 1);
	for (size_t i = 0; *p && *p != ']'; i++) {
		if (i == index)
			return p;
		p = skip_blanks(skip_value(p));
		if (*p != ',')
			return NULL;
		p = skip_blanks(p + 1);
	}
	return NULL;
}

/* The entry after the one at P in an array, or NULL after the last. */
static const char *array_next(const char *p)
{
	if (!p)
		return NULL;
	p = skip_blanks(skip_value(p));
	return *p == ',' ? skip_blanks(p + 1) : NULL;
}

/* Lines counted so far, for positions met in order (a config file may hold
 * many thousands of rules). */
struct line_cursor {
	const char *text;
	const char *at;
	int line;
};

static int line_upto(struct line_cursor *c, const char *p)
{
	if (!p)
		return 0;
	if (p < c->at) {
		c->at = c->text;
		c->line = 1;
	}
	for (; c->at < p; c->at++)
		c->line += *c->at == '\n';
	return c->line;
}

static int line_at(const char *text, const char *p)
{
	int line = 1;

	if (!p)
		return 0;
	for (const char *s = text; s < p; s++)
		line += *s == '\n';
	return line;
}

/* The value of top-level KEY, or NULL. */
static const char *key_value(const struct parse_ctx *pc, const char *key)
{
	const char *k = member_at(pc->text, key);

	return k ? member_value(k) : NULL;
}

static int line_of_key(const struct parse_ctx *pc, const char *key)
{
	return line_at(pc->text, member_at(pc->text, key));
}

static int vfail_line(struct parse_ctx *pc, int line, const char *what,
		      const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int vfail_line(struct parse_ctx *pc, int line, const char *what,
		      const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		snprintf(pc->errbuf, pc->errsize, "%s:%d: %s: %s", pc->file, line,
			 what, msg);
	else if (what)
		snprintf(pc->errbuf, pc->errsize, "%s: %s: %s", pc->file, what, msg);
	else
		snprintf(pc->errbuf, pc->errsize, "%s: %s", pc->file, msg);
	return -1;
}

static int fail(struct parse_ctx *pc, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parse_ctx *pc, const char *key, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail_line(pc, key ? line_of_key(pc, key) : 0, key, fmt, ap);
	va_end(ap);
	return r;
}

/* An error about WHAT ("StaticRules[2]"), on the line of AT in the text. */
static int fail_at(struct parse_ctx *pc, const char *at, const char *what,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail_at(struct parse_ctx *pc, const char *at, const char *what,
		   const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail_line(pc, line_at(pc->text, at), what, fmt, ap);
	va_end(ap);
	return r;
}

static const char *json_type_word(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a number with a fraction";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	default:
		return "a string";
	}
}

/* "KEY[I]", for errors about an entry of a list. */
static const char *entry_name(char *buf, size_t size, const char *key, size_t i)
{
	snprintf(buf, size, "%s[%zu]", key, i);
	return buf;
}

/* The line of each of the N entries of list KEY, for errors found later
 * (santa_config_where "KEY[I]"). */
static int *entry_lines(const struct parse_ctx *pc, const char *key, size_t n)
{
	struct line_cursor c = { pc->text, pc->text, 1 };
	const char *p = array_entry(key_value(pc, key), 0);
	int *lines = calloc(n ? n : 1, sizeof(*lines));

	if (!lines)
		abort();
	for (size_t i = 0; i < n && p; i++, p = array_next(p))
		lines[i] = line_upto(&c, p);
	return lines;
}

static int parse_string_list(struct parse_ctx *pc, const char *key,
			     json_object *v, char ***out, size_t *count, int **lines)
{
	size_t n;
	char **list;

	if (!json_object_is_type(v, json_type_array))
		return fail(pc, key, "expected an array of strings, got %s",
			    json_type_word(v));
	n = json_object_array_length(v);
	list = calloc(n + 1, sizeof(*list));
	if (!list)
		abort();
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		char what[128];

		if (!json_object_is_type(e, json_type_string)) {
			free_list(list);
			return fail_at(pc, array_entry(key_value(pc, key), i),
				       entry_name(what, sizeof(what), key, i),
				       "expected a string, got %s", json_type_word(e));
		}
		list[i] = xstrdup(json_object_get_string(e));
	}
	free_list(*out);
	*out = list;
	*count = n;
	free(*lines);
	*lines = entry_lines(pc, key, n);
	return 0;
}

static int parse_map(struct parse_ctx *pc, const char *key, json_object *v,
		     const char *sep, char ***out, size_t *count)
{
	size_t n = 0;
	char **list;

	if (!json_object_is_type(v, json_type_object))
		return fail(pc, key, "expected an object of strings, got %s",
			    json_type_word(v));
	list = calloc(json_object_object_length(v) + 1, sizeof(*list));
	if (!list)
		abort();
	json_object_object_foreach(v, k, e) {
		if (!json_object_is_type(e, json_type_string)) {
			free_list(list);
			return fail_at(pc, member_at(key_value(pc, key), k), key,
				       "\"%s\": expected a string, got %s", k,
				       json_type_word(e));
		}
		if (asprintf(&list[n++], "%s%s%s", k, sep,
			     json_object_get_string(e)) < 0)
			abort();
	}
	free_list(*out);
	*out = list;
	*count = n;
	return 0;
}

/* FIELD of a rule into *OUT. On error, *RET_FIELD is the member the error
 * is about, or NULL when it is about the rule as a whole (one missing). */
static int get_rule_string(json_object *obj, const char *field, bool required,
			   char **out, const char **ret_field, char *errbuf,
			   size_t errsize)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, field, &v) ||
	    json_object_is_type(v, json_type_null)) {
		if (required) {
			*ret_field = v ? field : NULL;
			snprintf(errbuf, errsize, "missing \"%s\"", field);
			return -1;
		}
		return 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		*ret_field = field;
		snprintf(errbuf, errsize, "\"%s\": expected a string, got %s",
			 field, json_type_word(v));
		return -1;
	}
	*out = xstrdup(json_object_get_string(v));
	return 0;
}

/* santa_config_parse_rule, also naming the member an error is about. */
static int parse_rule(json_object *obj, santa_config_rule *rule,
		      const char **ret_field, char *errbuf, size_t errsize)
{
	/* "sha256" is the identifier's name in older rule files and servers. */
	const char *id_field = json_object_object_get_ex(obj, "identifier", NULL) ?
			       "identifier" : "sha256";
	char *policy = NULL, *type = NULL;
	int r = -1;

	memset(rule, 0, sizeof(*rule));
	*ret_field = NULL;
	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(errbuf, errsize, "expected an object, got %s",
			 json_type_word(obj));
		return -1;
	}
	if (get_rule_string(obj, id_field, false, &rule->identifier, ret_field,
			    errbuf, errsize) < 0)
		goto out;
	if (!rule->identifier || !*rule->identifier) {
		*ret_field = rule->identifier ? id_field : NULL;
		snprintf(errbuf, errsize, "missing \"identifier\"");
		goto out;
	}
	if (get_rule_string(obj, "policy", true, &policy, ret_field, errbuf,
			    errsize) < 0 ||
	    get_rule_string(obj, "rule_type", true, &type, ret_field, errbuf,
			    errsize) < 0 ||
	    get_rule_string(obj, "custom_msg", false, &rule->custom_msg, ret_field,
			    errbuf, errsize) < 0 ||
	    get_rule_string(obj, "custom_url", false, &rule->custom_url, ret_field,
			    errbuf, errsize) < 0)
		goto out;
	rule->policy = santa_policy_from_name(policy);
	if (rule->policy < 0) {
		*ret_field = "policy";
		snprintf(errbuf, errsize, "\"policy\": unknown policy \"%s\"", policy);
		goto out;
	}
	rule->rule_type = santa_rule_type_from_name(type);
	if (rule->rule_type < 0) {
		*ret_field = "rule_type";
		snprintf(errbuf, errsize, "\"rule_type\": unknown rule type \"%s\"",
			 type);
		goto out;
	}
	r = 0;
out:
	free(policy);
	free(type);
	if (r < 0)
		santa_config_rule_done(rule);
	return r;
}

int santa_config_parse_rule(const void *vobj, santa_config_rule *rule,
			    char *errbuf, size_t errsize)
{
	const char *field;

	return parse_rule((json_object *)vobj, rule, &field, errbuf, errsize);
}

/* What a static rule needs beyond a rule import's: santad matches BINARY
 * rules by their hash, so the identifier must be one. */
static int check_static_rule(json_object *obj, const santa_config_rule *rule,
			     const char **ret_field, char *errbuf, size_t errsize)
{
	uint8_t sha256[SANTA_SHA256_LEN];

	if (rule->rule_type != RULE_TYPE_BINARY ||
	    santa_sha256_from_hex(rule->identifier, sha256) == 0)
		return 0;
	*ret_field = json_object_object_get_ex(obj, "identifier", NULL) ?
		     "identifier" : "sha256";
	snprintf(errbuf, errsize, "\"%s\": BINARY identifier \"%.80s\" is not a "
		 "SHA-256 (64 hex digits)", *ret_field, rule->identifier);
	return -1;
}

static int parse_rules(struct parse_ctx *pc, const char *key, json_object *v,
		       santa_config *cfg)
{
	struct line_cursor lines = { pc->text, pc->text, 1 };
	const char *at = array_entry(key_value(pc, key), 0);
	santa_config_rule *rules;
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return fail(pc, key, "expected an array of rules, got %s",
			    json_type_word(v));
	n = json_object_array_length(v);
	rules = calloc(n ? n : 1, sizeof(*rules));
	if (!rules)
		abort();
	for (size_t i = 0; i < n; i++, at = array_next(at)) {
		json_object *obj = json_object_array_get_idx(v, i);
		const char *field = NULL;
		char why[256], what[128];

		if (parse_rule(obj, &rules[i], &field, why, sizeof(why)) == 0 &&
		    check_static_rule(obj, &rules[i], &field, why, sizeof(why)) == 0) {
			rules[i].line = line_upto(&lines, at);
			continue;
		}
		for (size_t j = 0; j <= i; j++)
			santa_config_rule_done(&rules[j]);
		free(rules);
		if (field && at && member_at(at, field))
			at = member_at(at, field);
		return fail_at(pc, at, entry_name(what, sizeof(what), key, i), "%s",
			       why);
	}
	for (size_t i = 0; i < cfg->n_static_rules; i++)
		santa_config_rule_done(&cfg->static_rules[i]);
	free(cfg->static_rules);
	cfg->static_rules = rules;
	cfg->n_static_rules = n;
	return 0;
}

static int parse_log_type(struct parse_ctx *pc, const char *key, json_object *v,
			  santa_log_type *out)
{
	static const char *const names[] = { "file", "syslog", "json", "null" };
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return fail(pc, key, "expected a string, got %s", json_type_word(v));
	s = json_object_get_string(v);
	for (size_t i = 0; i < N_ELEM(names); i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (santa_log_type)i;
			return 0;
		}
	}
	return fail(pc, key, "expected one of file, syslog, json, null, got \"%s\"", s);
}

static int parse_uint(struct parse_ctx *pc, const char *key, json_object *v,
		      uint32_t *out)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int))
		return fail(pc, key, "expected a non-negative integer, got %s",
			    json_type_word(v));
	n = json_object_get_int64(v);
	if (n < 0 || n > UINT32_MAX)
		return fail(pc, key, "%lld is out of range", (long long)n);
	*out = (uint32_t)n;
	return 0;
}

static int parse_key(struct parse_ctx *pc, const struct config_key *k,
		     json_object *v, santa_config *cfg)
{
	void *field = (char *)cfg + k->offset;
	size_t *count = (size_t *)((char *)cfg + k->count_offset);

	switch (k->type) {
	case KEY_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return fail(pc, k->name, "expected true or false, got %s",
				    json_type_word(v));
		*(bool *)field = json_object_get_boolean(v);
		return 0;
	case KEY_UINT:
		return parse_uint(pc, k->name, v, field);
	case KEY_STRING:
		if (!json_object_is_type(v, json_type_string))
			return fail(pc, k->name, "expected a string, got %s",
				    json_type_word(v));
		free(*(char **)field);
		*(char **)field = xstrdup(json_object_get_string(v));
		return 0;
	case KEY_STRING_LIST:
		return parse_string_list(pc, k->name, v, field, count,
					 &cfg->entry_lines[k - config_keys]);
	case KEY_LABELS:
		return parse_map(pc, k->name, v, "=", field, count);
	case KEY_HEADERS:
		return parse_map(pc, k->name, v, ": ", field, count);
	case KEY_MODE: {
		int64_t m;

		if (!json_object_is_type(v, json_type_int))
			return fail(pc, k->name, "expected 1 (MONITOR) or 2 "
				    "(LOCKDOWN), got %s", json_type_word(v));
		m = json_object_get_int64(v);
		if (m != SANTA_MODE_MONITOR && m != SANTA_MODE_LOCKDOWN)
			return fail(pc, k->name, "expected 1 (MONITOR) or 2 "
				    "(LOCKDOWN), got %lld", (long long)m);
		*(santa_client_mode *)field = (santa_client_mode)m;
		return 0;
	}
	case KEY_LOG_TYPE:
		return parse_log_type(pc, k->name, v, field);
	case KEY_RULES:
		return parse_rules(pc, k->name, v, cfg);
	}
	return fail(pc, k->name, "internal error: unhandled key type");
}

/* The index in config_keys[] of the key named by LEN bytes of NAME, or
 * N_ELEM(config_keys). */
static size_t key_index(const char *name, size_t len)
{
	for (size_t i = 0; i < N_ELEM(config_keys); i++)
		if (strlen(config_keys[i].name) == len &&
		    strncmp(config_keys[i].name, name, len) == 0)
			return i;
	return N_ELEM(config_keys);
}

const char *santa_config_where(const santa_config *cfg, const char *key, char *buf,
			       size_t size)
{
	size_t len = strcspn(key, "["), i = key_index(key, len);
	int line = 0;

	if (cfg->key_lines && i < N_ELEM(config_keys))
		line = cfg->key_lines[i];
	if (key[len] == '[' && i < N_ELEM(config_keys) &&
	    config_keys[i].type == KEY_RULES) {
		size_t n = strtoul(key + len + 1, NULL, 10);

		if (n < cfg->n_static_rules && cfg->static_rules[n].line > 0)
			line = cfg->static_rules[n].line;
	}
	if (key[len] == '[' && i < N_ELEM(config_keys) &&
	    config_keys[i].type == KEY_STRING_LIST && cfg->entry_lines && cfg->entry_lines[i]) {
		size_t n = strtoul(key + len + 1, NULL, 10);
		size_t count = *(const size_t *)((const char *)cfg + config_keys[i].count_offset);

		if (n < count && cfg->entry_lines[i][n] > 0)
			line = cfg->entry_lines[i][n];
	}
	if (!cfg->path)
		snprintf(buf, size, "%s", "");
	else if (line > 0)
		snprintf(buf, size, "%s:%d: ", cfg->path, line);
	else
		snprintf(buf, size, "%s: ", cfg->path);
	return buf;
}

int santa_config_error(const santa_config *cfg, const char *key, char *errbuf,
		       size_t errsize, const char *fmt, ...)
{
	char msg[512], where[PATH_MAX + 32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(errbuf, errsize, "%s%s: %s", santa_config_where(cfg, key, where, sizeof(where)),
		 key, msg);
	return -1;
}

/* The line of each key, in one walk over the top-level object. A key given
 * twice is an error: json-c would keep the last, and which one an
 * administrator meant is not ours to guess. */
static int record_key_lines(struct parse_ctx *pc, int *lines)
{
	struct line_cursor c = { pc->text, pc->text, 1 };

	for (const char *p = member_first(pc->text); p; p = member_next(p)) {
		size_t i = key_index(p + 1, member_name_len(p));
		int line;

		if (i >= N_ELEM(config_keys))
			continue;
		line = line_upto(&c, p);
		if (lines[i])
			return fail_at(pc, p, config_keys[i].name,
				       "given more than once (also on line %d)", lines[i]);
		lines[i] = line;
	}
	return 0;
}

static bool is_ignored_key(const char *name)
{
	for (const char *const *p = config_ignored_keys; *p; p++)
		if (strcmp(*p, name) == 0)
			return true;
	return false;
}

static int parse_object(struct parse_ctx *pc, json_object *root,
			santa_config *cfg)
{
	if (!json_object_is_type(root, json_type_object))
		return fail(pc, NULL, "expected a JSON object at the top level, "
			    "got %s", json_type_word(root));

	cfg->key_lines = calloc(N_ELEM(config_keys), sizeof(*cfg->key_lines));
	cfg->entry_lines = calloc(N_ELEM(config_keys), sizeof(*cfg->entry_lines));
	if (!cfg->key_lines || !cfg->entry_lines)
		abort();
	if (record_key_lines(pc, cfg->key_lines) < 0)
		return -1;
	json_object_object_foreach(root, key, v) {
		size_t i = key_index(key, strlen(key));

		if (i == N_ELEM(config_keys)) {
			if (is_ignored_key(key))
				continue;
			return fail(pc, key, "unknown configuration key");
		}
		if (parse_key(pc, &config_keys[i], v, cfg) < 0)
			return -1;
	}
	return 0;
}

static char *read_file(const char *path, int *err)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		*err = errno;
		return NULL;
	}
	for (;;) {
		size_t n;

		if (len + 4096 + 1 > cap) {
			char *nbuf;

			cap = cap ? cap * 2 : 8192;
			if (cap > CONFIG_MAX_SIZE + 1) {
				*err = EFBIG;
				goto fail;
			}
			nbuf = realloc(buf, cap);
			if (!nbuf)
				abort();
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		*err = EIO;
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static int syntax_error(struct parse_ctx *pc, struct json_tokener *tok)
{
	size_t off = json_tokener_get_parse_end(tok);
	int line = 1;

	for (size_t i = 0; i < off && pc->text[i]; i++)
		line += pc->text[i] == '\n';
	enum json_tokener_error e = json_tokener_get_error(tok);

	/* json_tokener_continue: the text ended inside the object. */
	snprintf(pc->errbuf, pc->errsize, "%s:%d: invalid JSON: %s", pc->file,
		 line, e == json_tokener_continue ? "unexpected end of file"
						  : json_tokener_error_desc(e));
	return -1;
}

int santa_config_load(const char *file, santa_config *cfg, char *errbuf,
		      size_t errsize)
{
	struct parse_ctx pc = { .errbuf = errbuf, .errsize = errsize };
	bool explicit_file = file || getenv("SANTA_CONFIG");
	struct json_tokener *tok;
	json_object *root;
	char *text;
	int err = 0, r;

	santa_config_init(cfg);
	if (!file)
		file = santa_config_default_path();
	pc.file = file;

	text = read_file(file, &err);
	if (!text) {
		/* No file at the default place means all defaults; a file the
		 * administrator named must exist. */
		if (err == ENOENT && !explicit_file)
			return 0;
		snprintf(errbuf, errsize, "%s: cannot read the configuration: %s",
			 file, strerror(err));
		santa_config_done(cfg);
		return -1;
	}
	pc.text = text;

	tok = json_tokener_new();
	if (!tok)
		abort();
	/* Strict: a trailing comma or a single-quoted string is a syntax
	 * error, as in the JSON other tools read the file with. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_ALLOW_TRAILING_CHARS);
	root = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    text[json_tokener_get_parse_end(tok) +
		 strspn(text + json_tokener_get_parse_end(tok), " \t\r\n")]) {
		if (root && json_tokener_get_error(tok) == json_tokener_success)
			r = fail(&pc, NULL, "unexpected text after the JSON object");
		else
			r = syntax_error(&pc, tok);
	} else {
		r = parse_object(&pc, root, cfg);
	}
	json_object_put(root);
	json_tokener_free(tok);
	free(text);
	if (r == 0)
		cfg->path = xstrdup(file);
	else
		santa_config_done(cfg);
	return r;
}
