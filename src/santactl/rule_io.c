/* SPDX-License-Identifier: Apache-2.0 */
#include "rule_io.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"

static char *rule_io_strdup(const char *s)
{
	return strdup(s && *s ? s : "");
}

Santa__Rule *santactl_rule_new(const char *identifier, int policy, int type,
			       const char *custom_msg, const char *custom_url)
{
	Santa__Rule *r = malloc(sizeof(*r));

	if (!r)
		return NULL;
	santa__rule__init(r);
	r->policy = policy;
	r->rule_type = type;
	r->identifier = rule_io_strdup(identifier);
	r->custom_msg = rule_io_strdup(custom_msg);
	r->custom_url = rule_io_strdup(custom_url);
	if (!r->identifier || !r->custom_msg || !r->custom_url) {
		santa__rule__free_unpacked(r, NULL);
		return NULL;
	}
	return r;
}

static bool rule_io_is_hex(const char *s, size_t want)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!isxdigit((unsigned char)s[n]))
			return false;
	return n == want;
}

int santactl_rule_check_identifier(int type, char *identifier, char *errbuf,
				   size_t errsize)
{
	size_t hexlen = 0;

	if (!identifier || !*identifier) {
		snprintf(errbuf, errsize, "missing identifier");
		return -1;
	}
	if (strlen(identifier) > SANTACTL_RULE_MAX_IDENTIFIER) {
		snprintf(errbuf, errsize, "identifier longer than %d bytes",
			 SANTACTL_RULE_MAX_IDENTIFIER);
		return -1;
	}
	switch (type) {
	case SANTA__RULE_TYPE__BINARY:
	case SANTA__RULE_TYPE__CERTIFICATE:
		hexlen = 64;
		if (!rule_io_is_hex(identifier, hexlen)) {
			snprintf(errbuf, errsize,
				 "BINARY or CERTIFICATE rules require a valid SHA-256");
			return -1;
		}
		break;
	case SANTA__RULE_TYPE__CDHASH:
		hexlen = 40;
		if (!rule_io_is_hex(identifier, hexlen)) {
			snprintf(errbuf, errsize,
				 "CDHASH rules require a valid hex string of length 40");
			return -1;
		}
		break;
	case SANTA__RULE_TYPE__TEAMID:
	case SANTA__RULE_TYPE__SIGNINGID:
		break;
	default:
		snprintf(errbuf, errsize, "unknown rule type %d", type);
		return -1;
	}
	for (size_t i = 0; i < hexlen; i++)
		identifier[i] = (char)tolower((unsigned char)identifier[i]);
	return 0;
}

static int rule_io_line_of(const char *text, size_t offset)
{
	int line = 1;

	for (size_t i = 0; i < offset && text[i]; i++)
		line += text[i] == '\n';
	return line;
}

static json_object *rule_io_parse_json(const char *text, size_t len,
				       char *errbuf, size_t errsize)
{
	json_tokener *tok = json_tokener_new();
	json_object *root;

	if (!tok) {
		snprintf(errbuf, errsize, "out of memory");
		return NULL;
	}
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (!root || json_tokener_get_parse_end(tok) < len) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		size_t at = json_tokener_get_parse_end(tok);

		if (root && e == json_tokener_success)
			snprintf(errbuf, errsize, "line %d: trailing data after the JSON object",
				 rule_io_line_of(text, at));
		else
			snprintf(errbuf, errsize, "line %d: %s", rule_io_line_of(text, at),
				 e == json_tokener_continue ? "unexpected end of file" :
				 json_tokener_error_desc(e));
		json_object_put(root);
		root = NULL;
	}
	json_tokener_free(tok);
	return root;
}

/* One entry of the "rules" array into a Santa__Rule, or -1 with why. */
static Santa__Rule *rule_io_from_json(json_object *obj, char *errbuf,
				      size_t errsize)
{
	santa_config_rule cr;
	Santa__Rule *r = NULL;
	char why[256];

	if (santa_config_parse_rule(obj, &cr, errbuf, errsize) < 0)
		return NULL;
	if ((cr.custom_msg && strlen(cr.custom_msg) > SANTACTL_RULE_MAX_TEXT) ||
	    (cr.custom_url && strlen(cr.custom_url) > SANTACTL_RULE_MAX_TEXT)) {
		snprintf(errbuf, errsize, "\"%s\": longer than %d bytes",
			 cr.custom_msg && strlen(cr.custom_msg) > SANTACTL_RULE_MAX_TEXT ?
			 "custom_msg" : "custom_url", SANTACTL_RULE_MAX_TEXT);
		goto out;
	}
	if (santactl_rule_check_identifier(cr.rule_type, cr.identifier, why,
					   sizeof(why)) < 0) {
		snprintf(errbuf, errsize, "\"identifier\": %s", why);
		goto out;
	}
	r = santactl_rule_new(cr.identifier, cr.policy, cr.rule_type, cr.custom_msg,
			      cr.custom_url);
	if (!r)
		snprintf(errbuf, errsize, "out of memory");
out:
	santa_config_rule_done(&cr);
	return r;
}

static int rule_io_parse_array(json_object *arr, santactl_rules *rs,
			       char *errbuf, size_t errsize)
{
	size_t n = json_object_array_length(arr);

	if (n > SANTACTL_IMPORT_MAX_RULES) {
		snprintf(errbuf, errsize, "%zu rules, more than the %u one import may hold",
			 n, SANTACTL_IMPORT_MAX_RULES);
		return -1;
	}
	rs->rules = calloc(n ? n : 1, sizeof(*rs->rules));
	if (!rs->rules) {
		snprintf(errbuf, errsize, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char why[384];

		rs->rules[i] = rule_io_from_json(json_object_array_get_idx(arr, i), why,
						 sizeof(why));
		if (!rs->rules[i]) {
			snprintf(errbuf, errsize, "rule %zu: %s", i, why);
			return -1;
		}
		rs->n = i + 1;
	}
	return 0;
}

int santactl_rules_parse(const char *text, size_t len, santactl_rules *ret,
			 char *errbuf, size_t errsize)
{
	json_object *root, *arr;
	int r = -1;

	ret->rules = NULL;
	ret->n = 0;
	if (len > SANTACTL_IMPORT_MAX_BYTES) {
		snprintf(errbuf, errsize, "larger than %u MiB",
			 SANTACTL_IMPORT_MAX_BYTES >> 20);
		return -1;
	}
	root = rule_io_parse_json(text, len, errbuf, errsize);
	if (!root)
		return -1;
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "rules", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		snprintf(errbuf, errsize, "expected an object with a \"rules\" array");
		goto out;
	}
	r = rule_io_parse_array(arr, ret, errbuf, errsize);
out:
	json_object_put(root);
	if (r < 0)
		santactl_rules_done(ret);
	return r;
}

void santactl_rules_done(santactl_rules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		santa__rule__free_unpacked(rs->rules[i], NULL);
	free(rs->rules);
	rs->rules = NULL;
	rs->n = 0;
}

static bool rule_io_exported(const Santa__Rule *r)
{
	return r->policy != SANTA__POLICY__ALLOWLIST_TRANSITIVE &&
	       r->policy != SANTA__POLICY__REMOVE &&
	       santa_policy_name(r->policy) && santa_rule_type_name(r->rule_type);
}

static int rule_io_add_string(json_object *obj, const char *key, const char *val)
{
	json_object *s = json_object_new_string(val ? val : "");

	if (!s || json_object_object_add(obj, key, s) < 0) {
		json_object_put(s);
		return -1;
	}
	return 0;
}

static json_object *rule_io_to_json(const Santa__Rule *r)
{
	json_object *obj = json_object_new_object();

	if (!obj)
		return NULL;
	if (rule_io_add_string(obj, "policy", santa_policy_name(r->policy)) < 0 ||
	    rule_io_add_string(obj, "identifier", r->identifier) < 0 ||
	    rule_io_add_string(obj, "rule_type", santa_rule_type_name(r->rule_type)) < 0 ||
	    rule_io_add_string(obj, "custom_msg", r->custom_msg) < 0 ||
	    rule_io_add_string(obj, "custom_url", r->custom_url) < 0) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

char *santactl_rules_to_json(Santa__Rule *const *rules, size_t n,
			     size_t *ret_count)
{
	json_object *root = json_object_new_object(), *arr = json_object_new_array();
	char *text = NULL;
	size_t count = 0;

	if (!root || !arr || json_object_object_add(root, "rules", arr) < 0) {
		json_object_put(arr);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *o;

		if (!rule_io_exported(rules[i]))
			continue;
		o = rule_io_to_json(rules[i]);
		if (!o || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			goto out;
		}
		count++;
	}
	text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
		JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(root);
	if (ret_count)
		*ret_count = text ? count : 0;
	return text;
}

const char *santactl_rule_type_label(int type)
{
	switch (type) {
	case SANTA__RULE_TYPE__BINARY:
		return "SHA-256";
	case SANTA__RULE_TYPE__CERTIFICATE:
		return "Certificate SHA-256";
	case SANTA__RULE_TYPE__TEAMID:
		return "Team ID";
	case SANTA__RULE_TYPE__SIGNINGID:
		return "Signing ID";
	case SANTA__RULE_TYPE__CDHASH:
		return "CDHash";
	default:
		return "(Unknown type)";
	}
}

static const char *rule_io_type_word(int type)
{
	switch (type) {
	case SANTA__RULE_TYPE__BINARY:
		return "Binary";
	case SANTA__RULE_TYPE__CERTIFICATE:
		return "Certificate";
	case SANTA__RULE_TYPE__TEAMID:
		return "TeamID";
	case SANTA__RULE_TYPE__SIGNINGID:
		return "SigningID";
	case SANTA__RULE_TYPE__CDHASH:
		return "CDHash";
	default:
		return "Unknown";
	}
}

static const char *rule_io_attribute(int policy)
{
	switch (policy) {
	case SANTA__POLICY__ALLOWLIST_COMPILER:
		return ", Compiler";
	case SANTA__POLICY__ALLOWLIST_TRANSITIVE:
		return ", Transitive";
	case SANTA__POLICY__SILENT_BLOCKLIST:
		return ", Silent";
	default:
		return "";
	}
}

const char *santactl_rule_describe(const Santa__Rule *rule, bool color,
				   char *buf, size_t size)
{
	const char *verdict, *on = "", *off = color ? "\033[0m" : "";

	if (!rule || rule->policy == SANTA__POLICY__POLICY_UNKNOWN)
		return "No rule exists with the given parameters";
	switch (rule->policy) {
	case SANTA__POLICY__ALLOWLIST:
	case SANTA__POLICY__ALLOWLIST_COMPILER:
	case SANTA__POLICY__ALLOWLIST_TRANSITIVE:
		verdict = "Allowed";
		on = color ? "\033[32m" : "";
		break;
	case SANTA__POLICY__BLOCKLIST:
	case SANTA__POLICY__SILENT_BLOCKLIST:
		verdict = "Blocked";
		on = color ? "\033[31m" : "";
		break;
	default:
		snprintf(buf, size, "Unexpected rule state: %d", rule->policy);
		return buf;
	}
	snprintf(buf, size, "%s%s (%s%s)%s", on, verdict,
		 rule_io_type_word(rule->rule_type), rule_io_attribute(rule->policy), off);
	return buf;
}

static const struct {
	const char *reason;
	const char *word;
} rule_io_reasons[] = {
	{ "UNKNOWN", "Unknown" }, { "BINARY", "Binary" },
	{ "CERT", "Certificate" }, { "CERTIFICATE", "Certificate" },
	{ "TEAMID", "TeamID" }, { "SIGNINGID", "SigningID" },
	{ "CDHASH", "CDHash" }, { "SCOPE", "Scope" },
	{ "COMPILER", "Compiler" }, { "TRANSITIVE", "Transitive" },
	{ "PENDING_TRANSITIVE", "Transitive" }, { "LONG_PATH", "Long Path" },
};

const char *santactl_decision_describe(const char *decision, const char *reason,
				       bool color, char *buf, size_t size)
{
	bool allow = decision && strcmp(decision, "ALLOW") == 0;
	bool deny = decision && strcmp(decision, "DENY") == 0;
	const char *word = NULL;

	for (size_t i = 0; reason && i < sizeof(rule_io_reasons) / sizeof(rule_io_reasons[0]);
	     i++)
		if (strcmp(reason, rule_io_reasons[i].reason) == 0)
			word = rule_io_reasons[i].word;
	if ((!allow && !deny) || !word) {
		snprintf(buf, size, "%sNone%s", color ? "\033[33m" : "", color ? "\033[0m" : "");
		return buf;
	}
	snprintf(buf, size, "%s%s (%s)%s", !color ? "" : allow ? "\033[32m" : "\033[31m",
		 allow ? "Allowed" : "Blocked", word, color ? "\033[0m" : "");
	return buf;
}
