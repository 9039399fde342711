/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sync protocol's JSON, as the original client writes and reads it.
 *
 * Requests are written the way the pre-protobuf client wrote them: every key
 * present, every integer a JSON number (Moroz decodes them into Go ints, so a
 * string would fail its whole request). Responses are read the way the
 * protobuf-era client reads them: unknown keys ignored, null means absent,
 * enum values by name (with the legacy aliases) or by syncv1's numbers, but
 * a known key with a value of the wrong type fails the response.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <zlib.h>

#include "sync_protocol.h"

#define SYNC_JSON_DEPTH 16

static void sync_err(char *errbuf, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void sync_err(char *errbuf, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || errsize == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errsize, fmt, ap);
	va_end(ap);
}

/* --- Compression --- */

int sync_encoding_from_name(const char *name, sync_encoding *ret)
{
	if (!name || strcasecmp(name, "deflate") == 0)
		*ret = SYNC_ENCODING_DEFLATE;
	else if (strcasecmp(name, "gzip") == 0)
		*ret = SYNC_ENCODING_GZIP;
	else if (strcasecmp(name, "none") == 0)
		*ret = SYNC_ENCODING_NONE;
	else
		return -EINVAL;
	return 0;
}

const char *sync_encoding_header(sync_encoding enc)
{
	switch (enc) {
	case SYNC_ENCODING_DEFLATE:
		return "deflate";
	case SYNC_ENCODING_GZIP:
		return "gzip";
	default:
		return NULL;
	}
}

static int sync_copy_plain(const void *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	uint8_t *out = malloc(len ? len : 1);

	if (!out)
		return -ENOMEM;
	if (len)
		memcpy(out, in, len);
	*ret = out;
	*ret_len = len;
	return 0;
}

int sync_compress(sync_encoding enc, const void *in, size_t len, uint8_t **ret,
		  size_t *ret_len, bool *ret_compressed)
{
	/* windowBits 15 makes a zlib stream (78 9c ...), 31 a gzip member. */
	int window = enc == SYNC_ENCODING_GZIP ? 31 : 15;
	z_stream zs = { 0 };
	uint8_t *out;
	uLong bound;
	int r;

	*ret_compressed = false;
	if (enc == SYNC_ENCODING_NONE || len == 0)
		return sync_copy_plain(in, len, ret, ret_len);
	if (len > UINT32_MAX)
		return -E2BIG;

	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	/* deflateBound does not count the gzip header and trailer. */
	bound = deflateBound(&zs, (uLong)len) + 32;
	out = malloc(bound);
	if (!out) {
		deflateEnd(&zs);
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)bound;
	r = deflate(&zs, Z_FINISH);
	if (r != Z_STREAM_END) {
		deflateEnd(&zs);
		free(out);
		return -EIO;
	}
	*ret_len = zs.total_out;
	deflateEnd(&zs);
	*ret = out;
	*ret_compressed = true;
	return 0;
}

/* --- URLs --- */

static bool sync_url_unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int sync_url_for_stage(const char *base, const char *stage,
		       const char *machine_id, char **ret)
{
	const char *rest, *path, *end, *slash;
	size_t prefix_len, cap, n;
	char *out;

	if (!base || !stage || !machine_id || !*machine_id)
		return -EINVAL;
	if (strncasecmp(base, "https://", 8) == 0)
		rest = base + 8;
	else if (strncasecmp(base, "http://", 7) == 0)
		rest = base + 7;
	else
		return -EINVAL;
	if (*rest == '\0' || *rest == '/')
		return -EINVAL;

	/* Authority ends at the path, query or fragment. */
	path = rest + strcspn(rest, "/?#");
	end = path + strcspn(path, "?#");
	if (*path != '/') {
		/* No path: the merged path is "/" + reference. */
		prefix_len = (size_t)(path - base);
		slash = NULL;
	} else {
		slash = path;
		for (const char *p = path; p < end; p++)
			if (*p == '/')
				slash = p;
		prefix_len = (size_t)(slash - base);
	}

	cap = prefix_len + 1 + strlen(stage) + 1 + 3 * strlen(machine_id) + 1;
	out = malloc(cap);
	if (!out)
		return -ENOMEM;
	memcpy(out, base, prefix_len);
	n = prefix_len;
	n += (size_t)snprintf(out + n, cap - n, "/%s/", stage);
	for (const unsigned char *p = (const unsigned char *)machine_id; *p; p++) {
		if (sync_url_unreserved(*p))
			out[n++] = (char)*p;
		else
			n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
	}
	out[n] = '\0';
	*ret = out;
	return 0;
}

size_t sync_xssi_prefix_len(const char *buf, size_t len)
{
	static const char guard_long[] = ")]}'\n";
	static const char guard_short[] = "])}";

	if (len >= sizeof(guard_long) - 1 &&
	    memcmp(buf, guard_long, sizeof(guard_long) - 1) == 0)
		return sizeof(guard_long) - 1;
	if (len >= sizeof(guard_short) - 1 &&
	    memcmp(buf, guard_short, sizeof(guard_short) - 1) == 0)
		return sizeof(guard_short) - 1;
	return 0;
}

/* --- Enum names --- */

typedef struct sync_name {
	const char *name;
	int value;
} sync_name;

/* Policies by name, legacy spellings included. syncv1 numbers them
 * ALLOWLIST 1, ALLOWLIST_COMPILER 2, BLOCKLIST 3, SILENT_BLOCKLIST 4,
 * REMOVE 5, which differs from santa.proto's (the original's rule states). */
static const sync_name sync_policy_names[] = {
	{ "ALLOWLIST", SANTA__POLICY__ALLOWLIST },
	{ "WHITELIST", SANTA__POLICY__ALLOWLIST },
	{ "ALLOWLIST_COMPILER", SANTA__POLICY__ALLOWLIST_COMPILER },
	{ "WHITELIST_COMPILER", SANTA__POLICY__ALLOWLIST_COMPILER },
	{ "BLOCKLIST", SANTA__POLICY__BLOCKLIST },
	{ "BLACKLIST", SANTA__POLICY__BLOCKLIST },
	{ "SILENT_BLOCKLIST", SANTA__POLICY__SILENT_BLOCKLIST },
	{ "SILENT_BLACKLIST", SANTA__POLICY__SILENT_BLOCKLIST },
	{ "REMOVE", SANTA__POLICY__REMOVE },
};

static const int sync_policy_numbers[] = {
	[1] = SANTA__POLICY__ALLOWLIST,
	[2] = SANTA__POLICY__ALLOWLIST_COMPILER,
	[3] = SANTA__POLICY__BLOCKLIST,
	[4] = SANTA__POLICY__SILENT_BLOCKLIST,
	[5] = SANTA__POLICY__REMOVE,
};

static const sync_name sync_rule_type_names[] = {
	{ "BINARY", SANTA__RULE_TYPE__BINARY },
	{ "CERTIFICATE", SANTA__RULE_TYPE__CERTIFICATE },
	{ "TEAMID", SANTA__RULE_TYPE__TEAMID },
	{ "SIGNINGID", SANTA__RULE_TYPE__SIGNINGID },
	{ "CDHASH", SANTA__RULE_TYPE__CDHASH },
};

static const int sync_rule_type_numbers[] = {
	[1] = SANTA__RULE_TYPE__BINARY,
	[2] = SANTA__RULE_TYPE__CERTIFICATE,
	[3] = SANTA__RULE_TYPE__TEAMID,
	[4] = SANTA__RULE_TYPE__SIGNINGID,
	[5] = SANTA__RULE_TYPE__CDHASH,
};

static const sync_name sync_mode_names[] = {
	{ "MONITOR", SANTA__CLIENT_MODE__MONITOR },
	{ "LOCKDOWN", SANTA__CLIENT_MODE__LOCKDOWN },
};

/* syncv1: MONITOR 0, LOCKDOWN 1. */
static const int sync_mode_numbers[] = {
	[0] = SANTA__CLIENT_MODE__MONITOR,
	[1] = SANTA__CLIENT_MODE__LOCKDOWN,
};

static int sync_enum_from_json(const void *jobj, const sync_name *names,
			       size_t n_names, const int *numbers, size_t n_numbers)
{
	json_object *o = (json_object *)jobj;
	const char *s;
	int64_t v;

	if (json_object_is_type(o, json_type_string)) {
		s = json_object_get_string(o);
		for (size_t i = 0; i < n_names; i++)
			if (strcasecmp(s, names[i].name) == 0)
				return names[i].value;
		return -EINVAL;
	}
	if (json_object_is_type(o, json_type_int)) {
		v = json_object_get_int64(o);
		if (v >= 0 && (uint64_t)v < n_numbers && numbers[v] != 0)
			return numbers[v];
	}
	return -EINVAL;
}

#define SYNC_N(a) (sizeof(a) / sizeof((a)[0]))

int sync_policy_from_json(const void *jobj)
{
	return sync_enum_from_json(jobj, sync_policy_names, SYNC_N(sync_policy_names),
				   sync_policy_numbers, SYNC_N(sync_policy_numbers));
}

int sync_rule_type_from_json(const void *jobj)
{
	return sync_enum_from_json(jobj, sync_rule_type_names,
				   SYNC_N(sync_rule_type_names), sync_rule_type_numbers,
				   SYNC_N(sync_rule_type_numbers));
}

int sync_client_mode_from_json(const void *jobj)
{
	/* MONITOR is 0 in syncv1, so the number table's zero entry is real. */
	json_object *o = (json_object *)jobj;

	if (json_object_is_type(o, json_type_int) && json_object_get_int64(o) == 0)
		return SANTA__CLIENT_MODE__MONITOR;
	return sync_enum_from_json(jobj, sync_mode_names, SYNC_N(sync_mode_names),
				   sync_mode_numbers, SYNC_N(sync_mode_numbers));
}

const char *sync_client_mode_name(int mode)
{
	return mode == SANTA__CLIENT_MODE__LOCKDOWN ? "LOCKDOWN" : "MONITOR";
}

const char *sync_type_name(int type)
{
	switch (type) {
	case SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN:
		return "CLEAN";
	case SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL:
		return "CLEAN_ALL";
	default:
		return "NORMAL";
	}
}

/* --- Building requests --- */

/* Builders collect allocation failures in one flag instead of checking
 * every json-c call, and give up once at the end. */
typedef struct sync_jb {
	json_object *obj;
	bool oom;
} sync_jb;

static void sync_jb_add(sync_jb *b, json_object *into, const char *key, json_object *val)
{
	if (!val || json_object_object_add_ex(into, key, val,
					      JSON_C_OBJECT_ADD_KEY_IS_NEW |
						      JSON_C_OBJECT_KEY_IS_CONSTANT) < 0) {
		json_object_put(val);
		b->oom = true;
	}
}

static void sync_jb_str(sync_jb *b, json_object *into, const char *key, const char *s)
{
	sync_jb_add(b, into, key, json_object_new_string(s ? s : ""));
}

static void sync_jb_int(sync_jb *b, json_object *into, const char *key, int64_t v)
{
	sync_jb_add(b, into, key, json_object_new_int64(v));
}

static void sync_jb_bool(sync_jb *b, json_object *into, const char *key, bool v)
{
	sync_jb_add(b, into, key, json_object_new_boolean(v));
}

static int sync_jb_finish(sync_jb *b, char **ret)
{
	const char *s;
	char *out = NULL;

	if (!b->obj)
		return -ENOMEM;
	if (!b->oom) {
		s = json_object_to_json_string_ext(b->obj, JSON_C_TO_STRING_PLAIN |
						   JSON_C_TO_STRING_NOSLASHESCAPE);
		out = s ? strdup(s) : NULL;
	}
	json_object_put(b->obj);
	b->obj = NULL;
	if (!out)
		return -ENOMEM;
	*ret = out;
	return 0;
}

static int64_t sync_clamp_count(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

int sync_preflight_request_json(const sync_preflight_request *req, char **ret)
{
	sync_jb b = { .obj = json_object_new_object() };
	json_object *o = b.obj;

	if (!o)
		return -ENOMEM;
	sync_jb_str(&b, o, "serial_num", req->serial_num);
	sync_jb_str(&b, o, "hostname", req->hostname);
	sync_jb_str(&b, o, "os_version", req->os_version);
	sync_jb_str(&b, o, "os_build", req->os_build);
	sync_jb_str(&b, o, "model_identifier", req->model_identifier);
	sync_jb_str(&b, o, "santa_version", req->santa_version);
	sync_jb_str(&b, o, "primary_user", req->primary_user);
	sync_jb_str(&b, o, "machine_id", req->machine_id);
	sync_jb_str(&b, o, "client_mode", sync_client_mode_name(req->client_mode));
	sync_jb_bool(&b, o, "request_clean_sync", req->request_clean_sync);
	sync_jb_int(&b, o, "binary_rule_count", sync_clamp_count(req->binary_rule_count));
	sync_jb_int(&b, o, "certificate_rule_count",
		    sync_clamp_count(req->certificate_rule_count));
	sync_jb_int(&b, o, "compiler_rule_count", sync_clamp_count(req->compiler_rule_count));
	sync_jb_int(&b, o, "transitive_rule_count",
		    sync_clamp_count(req->transitive_rule_count));
	sync_jb_int(&b, o, "teamid_rule_count", sync_clamp_count(req->teamid_rule_count));
	sync_jb_int(&b, o, "signingid_rule_count",
		    sync_clamp_count(req->signingid_rule_count));
	sync_jb_int(&b, o, "cdhash_rule_count", sync_clamp_count(req->cdhash_rule_count));
	return sync_jb_finish(&b, ret);
}

static json_object *sync_string_array(char **items, size_t n, bool *oom)
{
	json_object *arr = json_object_new_array_ext((int)n);

	if (!arr) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_new_string(items[i] ? items[i] : "");

		if (!s || json_object_array_add(arr, s) < 0) {
			json_object_put(s);
			*oom = true;
		}
	}
	return arr;
}

static void sync_jb_opt_str(sync_jb *b, json_object *into, const char *key, const char *s)
{
	if (s && *s)
		sync_jb_str(b, into, key, s);
}

static json_object *sync_event_json(const Santa__Event *ev, bool *oom)
{
	sync_jb b = { .obj = json_object_new_object() };
	json_object *o = b.obj;
	char when[64];

	if (!o) {
		*oom = true;
		return NULL;
	}
	sync_jb_str(&b, o, "file_sha256", ev->file_sha256);
	sync_jb_str(&b, o, "file_path", ev->file_path);
	sync_jb_str(&b, o, "file_name", ev->file_name);
	sync_jb_str(&b, o, "executing_user", ev->executing_user);
	/* BUNDLE_BINARY events describe files, not executions: no time. */
	if (!ev->decision || strcmp(ev->decision, "BUNDLE_BINARY") != 0) {
		snprintf(when, sizeof(when), "%.6f", ev->execution_time);
		sync_jb_add(&b, o, "execution_time",
			    json_object_new_double_s(ev->execution_time, when));
	}
	sync_jb_add(&b, o, "logged_in_users",
		    sync_string_array(ev->logged_in_users, ev->n_logged_in_users, &b.oom));
	sync_jb_add(&b, o, "current_sessions",
		    sync_string_array(ev->current_sessions, ev->n_current_sessions, &b.oom));
	sync_jb_str(&b, o, "decision", ev->decision);
	sync_jb_int(&b, o, "pid", ev->pid);
	sync_jb_int(&b, o, "ppid", ev->ppid);
	sync_jb_str(&b, o, "parent_name", ev->parent_name);
	sync_jb_opt_str(&b, o, "file_bundle_id", ev->file_bundle_id);
	sync_jb_opt_str(&b, o, "file_bundle_path", ev->file_bundle_path);
	sync_jb_opt_str(&b, o, "file_bundle_executable_rel_path",
			ev->file_bundle_executable_rel_path);
	sync_jb_opt_str(&b, o, "file_bundle_name", ev->file_bundle_name);
	sync_jb_opt_str(&b, o, "file_bundle_version", ev->file_bundle_version);
	sync_jb_opt_str(&b, o, "file_bundle_version_string", ev->file_bundle_version_string);
	if (ev->file_bundle_hash && *ev->file_bundle_hash) {
		sync_jb_str(&b, o, "file_bundle_hash", ev->file_bundle_hash);
		sync_jb_int(&b, o, "file_bundle_hash_millis", ev->file_bundle_hash_millis);
		sync_jb_int(&b, o, "file_bundle_binary_count", ev->file_bundle_binary_count);
	}
	if (b.oom)
		*oom = true;
	return o;
}

int sync_eventupload_request_json(Santa__Event *const *events, size_t n,
				  const char *machine_id, char **ret)
{
	sync_jb b = { .obj = json_object_new_object() };
	json_object *arr;

	if (!b.obj)
		return -ENOMEM;
	if (n > INT32_MAX) {
		json_object_put(b.obj);
		return -E2BIG;
	}
	arr = json_object_new_array_ext((int)n);
	sync_jb_add(&b, b.obj, "events", arr);
	for (size_t i = 0; arr && i < n; i++) {
		json_object *e = sync_event_json(events[i], &b.oom);

		if (e && json_object_array_add(arr, e) < 0) {
			json_object_put(e);
			b.oom = true;
		}
	}
	sync_jb_str(&b, b.obj, "machine_id", machine_id);
	return sync_jb_finish(&b, ret);
}

int sync_ruledownload_request_json(const char *cursor, const char *machine_id,
				   char **ret)
{
	sync_jb b = { .obj = json_object_new_object() };

	if (!b.obj)
		return -ENOMEM;
	if (cursor && *cursor)
		sync_jb_str(&b, b.obj, "cursor", cursor);
	sync_jb_str(&b, b.obj, "machine_id", machine_id);
	return sync_jb_finish(&b, ret);
}

int sync_postflight_request_json(uint64_t rules_received,
				 uint64_t rules_processed, int sync_type,
				 const char *machine_id, char **ret)
{
	sync_jb b = { .obj = json_object_new_object() };

	if (!b.obj)
		return -ENOMEM;
	sync_jb_int(&b, b.obj, "rules_received", sync_clamp_count(rules_received));
	sync_jb_int(&b, b.obj, "rules_processed", sync_clamp_count(rules_processed));
	sync_jb_str(&b, b.obj, "machine_id", machine_id);
	/* The protobuf-era client's spelling, which Zentral reads. */
	sync_jb_str(&b, b.obj, "syncType", sync_type_name(sync_type));
	return sync_jb_finish(&b, ret);
}

/* --- Parsing responses --- */

/*
 * Parse BUF as one JSON object, strictly: after an optional XSSI guard, one
 * value and nothing but whitespace after it. An empty (or all-space) body
 * gives *RET = NULL, which callers treat as "{}".
 */
static int sync_parse_object(const char *buf, size_t len, const char *what,
			     json_object **ret, char *errbuf, size_t errsize)
{
	json_tokener *tok;
	json_object *obj;
	size_t skip, end;
	enum json_tokener_error jerr;

	*ret = NULL;
	if (len > SYNC_MAX_RESPONSE_BYTES) {
		sync_err(errbuf, errsize, "%s response is too large (%zu bytes)", what, len);
		return -E2BIG;
	}
	skip = sync_xssi_prefix_len(buf, len);
	buf += skip;
	len -= skip;
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		len--;
	if (len == 0)
		return 0;

	tok = json_tokener_new_ex(SYNC_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		sync_err(errbuf, errsize, "%s response is not valid JSON: %s at byte %zu",
			 what, jerr == json_tokener_continue ? "unexpected end of data" :
			 json_tokener_error_desc(jerr), end + skip);
		return -EBADMSG;
	}
	for (size_t i = end; i < len; i++) {
		if (!isspace((unsigned char)buf[i])) {
			json_object_put(obj);
			sync_err(errbuf, errsize, "%s response has data after the JSON "
				 "value at byte %zu", what, i + skip);
			return -EBADMSG;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		sync_err(errbuf, errsize, "%s response is a JSON %s, not an object", what,
			 json_type_to_name(json_object_get_type(obj)));
		json_object_put(obj);
		return -EBADMSG;
	}
	*ret = obj;
	return 0;
}

/* The value of KEY, with JSON null counted as absent. */
static json_object *sync_get(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!obj || !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return json_object_is_type(v, json_type_null) ? NULL : v;
}

static int sync_get_bool(json_object *obj, const char *key, bool *has, bool *val,
			 char *errbuf, size_t errsize)
{
	json_object *v = sync_get(obj, key);

	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		sync_err(errbuf, errsize, "preflight response: \"%s\" is a %s, not a boolean",
			 key, json_type_to_name(json_object_get_type(v)));
		return -EBADMSG;
	}
	*has = true;
	*val = *val || json_object_get_boolean(v);
	return 0;
}

/* A non-negative integer: a JSON number without a fraction, or a string of
 * digits (which protobuf's JSON mapping allows). */
static int sync_get_uint(json_object *v, const char *key, uint64_t max,
			 uint64_t *val, char *errbuf, size_t errsize)
{
	const char *s;
	char *end;
	double d;

	switch (json_object_get_type(v)) {
	case json_type_int:
		if (json_object_get_int64(v) < 0)
			goto bad;
		*val = (uint64_t)json_object_get_int64(v);
		break;
	case json_type_double:
		d = json_object_get_double(v);
		if (!(d >= 0 && d <= (double)max) || d != (double)(uint64_t)d)
			goto bad;
		*val = (uint64_t)d;
		break;
	case json_type_string:
		s = json_object_get_string(v);
		if (!isdigit((unsigned char)*s))
			goto bad;
		errno = 0;
		*val = strtoull(s, &end, 10);
		if (*end || errno)
			goto bad;
		break;
	default:
		goto bad;
	}
	if (*val > max)
		goto bad;
	return 0;
bad:
	sync_err(errbuf, errsize, "\"%s\" is not an integer from 0 to %llu", key,
		 (unsigned long long)max);
	return -EBADMSG;
}

/* A string without NULs of at most MAX bytes. */
static int sync_get_string(json_object *v, const char *key, size_t max,
			   const char **val, char *errbuf, size_t errsize)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(v, json_type_string)) {
		sync_err(errbuf, errsize, "\"%s\" is a %s, not a string", key,
			 json_type_to_name(json_object_get_type(v)));
		return -EBADMSG;
	}
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len) {
		sync_err(errbuf, errsize, "\"%s\" contains a NUL character", key);
		return -EBADMSG;
	}
	if (len > max) {
		sync_err(errbuf, errsize, "\"%s\" is longer than %zu bytes", key, max);
		return -EBADMSG;
	}
	*val = s;
	return 0;
}

/* Take the first of KEYS present as a string into *RET (strdup'd). */
static int sync_get_regex(json_object *obj, const char *const keys[2], char **ret,
			  char *errbuf, size_t errsize)
{
	const char *s;
	int r;

	for (int i = 0; i < 2; i++) {
		json_object *v = sync_get(obj, keys[i]);

		if (!v)
			continue;
		r = sync_get_string(v, keys[i], SYNC_MAX_REGEX, &s, errbuf, errsize);
		if (r < 0)
			return r;
		*ret = strdup(s);
		return *ret ? 0 : -ENOMEM;
	}
	return 0;
}

static int sync_parse_sync_type(json_object *obj, sync_preflight_response *resp,
				char *errbuf, size_t errsize)
{
	json_object *v = sync_get(obj, "sync_type");
	const char *s;
	int r;

	if (!v)
		return 0;
	r = sync_get_string(v, "sync_type", 64, &s, errbuf, errsize);
	if (r < 0)
		return r;
	if (*s == '\0')
		resp->sync_type = SYNC_SERVER_TYPE_NONE;
	else if (strcasecmp(s, "clean") == 0)
		resp->sync_type = SYNC_SERVER_TYPE_CLEAN;
	else if (strcasecmp(s, "clean_all") == 0)
		resp->sync_type = SYNC_SERVER_TYPE_CLEAN_ALL;
	else
		/* "normal", and what this client does not know, is a normal
		 * sync, as the original treats it. */
		resp->sync_type = SYNC_SERVER_TYPE_NORMAL;
	return 0;
}

static int sync_parse_numbers(json_object *obj, sync_preflight_response *resp,
			      char *errbuf, size_t errsize)
{
	json_object *v;
	uint64_t n;
	int r;

	v = sync_get(obj, "batch_size");
	if (v) {
		r = sync_get_uint(v, "batch_size", UINT32_MAX, &n, errbuf, errsize);
		if (r < 0)
			return r;
		if (n > SYNC_MAX_BATCH_SIZE)
			n = SYNC_MAX_BATCH_SIZE;
		if (n > 0)
			resp->batch_size = (uint32_t)n;
	}
	v = sync_get(obj, "full_sync_interval");
	if (v) {
		r = sync_get_uint(v, "full_sync_interval", UINT64_MAX, &n, errbuf, errsize);
		if (r < 0)
			return r;
		if (n > UINT32_MAX)
			n = UINT32_MAX;
		/* 0 is how Moroz and protobuf's JSON say "not set", which leaves
		 * FullSyncInterval in force; as the original, any other value
		 * below the minimum means the default. */
		resp->has_full_sync_interval = n > 0;
		if (n >= SYNC_MIN_FULL_SYNC_INTERVAL)
			resp->full_sync_interval = (uint32_t)n;
	}
	return 0;
}

static int sync_parse_flags(json_object *obj, sync_preflight_response *r,
			    char *errbuf, size_t errsize)
{
	static const char *const bundles[] = { "enable_bundles", "bundles_enabled" };
	static const char *const transitive[] = {
		"enable_transitive_rules", "enabled_transitive_whitelisting",
		"transitive_whitelisting_enabled",
	};
	bool unused = false;
	int e = 0;

	for (size_t i = 0; e == 0 && i < SYNC_N(bundles); i++)
		e = sync_get_bool(obj, bundles[i], &r->has_enable_bundles,
				  &r->enable_bundles, errbuf, errsize);
	for (size_t i = 0; e == 0 && i < SYNC_N(transitive); i++)
		e = sync_get_bool(obj, transitive[i], &r->has_enable_transitive_rules,
				  &r->enable_transitive_rules, errbuf, errsize);
	if (e == 0)
		e = sync_get_bool(obj, "enable_all_event_upload",
				  &r->has_enable_all_event_upload,
				  &r->enable_all_event_upload, errbuf, errsize);
	if (e == 0)
		e = sync_get_bool(obj, "disable_unknown_event_upload",
				  &r->has_disable_unknown_event_upload,
				  &r->disable_unknown_event_upload, errbuf, errsize);
	if (e == 0)
		e = sync_get_bool(obj, "clean_sync", &unused, &r->clean_sync, errbuf,
				  errsize);
	return e;
}

static int sync_parse_preflight_object(json_object *obj, sync_preflight_response *resp,
				       char *errbuf, size_t errsize)
{
	static const char *const allowed[2] = { "allowed_path_regex", "whitelist_regex" };
	static const char *const blocked[2] = { "blocked_path_regex", "blacklist_regex" };
	json_object *v;
	int r, mode;

	v = sync_get(obj, "client_mode");
	if (v) {
		if (!json_object_is_type(v, json_type_string) &&
		    !json_object_is_type(v, json_type_int)) {
			sync_err(errbuf, errsize, "\"client_mode\" is a %s, not a mode name",
				 json_type_to_name(json_object_get_type(v)));
			return -EBADMSG;
		}
		/* An unknown mode (another fork's STANDALONE) is ignored, as the
		 * original's parser ignores unknown enum values. */
		mode = sync_client_mode_from_json(v);
		if (mode > 0) {
			resp->has_client_mode = true;
			resp->client_mode = mode;
		}
	}
	r = sync_parse_sync_type(obj, resp, errbuf, errsize);
	if (r == 0)
		r = sync_parse_numbers(obj, resp, errbuf, errsize);
	if (r == 0)
		r = sync_parse_flags(obj, resp, errbuf, errsize);
	if (r == 0)
		r = sync_get_regex(obj, allowed, &resp->allowed_path_regex, errbuf, errsize);
	if (r == 0)
		r = sync_get_regex(obj, blocked, &resp->blocked_path_regex, errbuf, errsize);
	return r;
}

int sync_preflight_response_parse(const char *buf, size_t len,
				  sync_preflight_response *ret, char *errbuf,
				  size_t errsize)
{
	json_object *obj;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->batch_size = SYNC_DEFAULT_BATCH_SIZE;
	ret->full_sync_interval = SYNC_DEFAULT_FULL_SYNC_INTERVAL;

	r = sync_parse_object(buf, len, "preflight", &obj, errbuf, errsize);
	if (r < 0 || !obj)
		return r;
	r = sync_parse_preflight_object(obj, ret, errbuf, errsize);
	json_object_put(obj);
	if (r < 0)
		sync_preflight_response_done(ret);
	return r;
}

void sync_preflight_response_done(sync_preflight_response *resp)
{
	if (!resp)
		return;
	free(resp->allowed_path_regex);
	free(resp->blocked_path_regex);
	resp->allowed_path_regex = NULL;
	resp->blocked_path_regex = NULL;
}

int sync_resolve_type(int requested, const sync_preflight_response *resp)
{
	bool clean_all_requested = requested == SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL;

	switch (resp->sync_type) {
	case SYNC_SERVER_TYPE_CLEAN:
		return clean_all_requested ? SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL :
					     SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN;
	case SYNC_SERVER_TYPE_CLEAN_ALL:
		return SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL;
	case SYNC_SERVER_TYPE_NORMAL:
		return SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL;
	case SYNC_SERVER_TYPE_NONE:
		break;
	}
	if (resp->clean_sync)
		return clean_all_requested ? SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL :
					     SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN;
	return SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL;
}

int sync_eventupload_response_parse(const char *buf, size_t len,
				    size_t *ret_bundle_requests, char *errbuf,
				    size_t errsize)
{
	json_object *obj, *v;
	int r;

	*ret_bundle_requests = 0;
	r = sync_parse_object(buf, len, "eventupload", &obj, errbuf, errsize);
	if (r < 0 || !obj)
		return r;
	v = sync_get(obj, "event_upload_bundle_binaries");
	if (v && !json_object_is_type(v, json_type_array)) {
		sync_err(errbuf, errsize, "eventupload response: "
			 "\"event_upload_bundle_binaries\" is not an array");
		r = -EBADMSG;
	} else if (v) {
		*ret_bundle_requests = json_object_array_length(v);
	}
	json_object_put(obj);
	return r;
}

/* --- Rules --- */

static bool sync_is_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Hash identifiers must be hex of the hash's length, and are stored in
 * lower case so that a server's upper-case hash still matches. */
static int sync_check_identifier(int type, char *id, char *why, size_t whysize)
{
	size_t len = strlen(id);
	size_t want = 0;

	if (len == 0) {
		snprintf(why, whysize, "empty identifier");
		return -EINVAL;
	}
	if (type == SANTA__RULE_TYPE__BINARY || type == SANTA__RULE_TYPE__CERTIFICATE)
		want = 64;
	else if (type == SANTA__RULE_TYPE__CDHASH)
		want = 40;
	if (want) {
		if (len != want || !sync_is_hex(id, len)) {
			snprintf(why, whysize, "identifier \"%.60s\" is not a %zu-digit "
				 "hex hash", id, want);
			return -EINVAL;
		}
		for (char *p = id; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		return 0;
	}
	for (const char *p = id; *p; p++) {
		if (iscntrl((unsigned char)*p)) {
			snprintf(why, whysize, "identifier contains a control character");
			return -EINVAL;
		}
	}
	return 0;
}

static int sync_rule_text(json_object *rj, const char *key, size_t max, char **ret,
			  char *why, size_t whysize)
{
	json_object *v = sync_get(rj, key);
	const char *s;

	if (!v)
		return 0;
	if (sync_get_string(v, key, max, &s, why, whysize) < 0)
		return -EINVAL;
	if (!*s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int sync_rule_numbers(json_object *rj, Santa__Rule *r, char *why, size_t whysize)
{
	json_object *v;
	uint64_t n;
	double d;

	v = sync_get(rj, "creation_time");
	if (v) {
		if (!json_object_is_type(v, json_type_int) &&
		    !json_object_is_type(v, json_type_double)) {
			snprintf(why, whysize, "\"creation_time\" is not a number");
			return -EINVAL;
		}
		d = json_object_get_double(v);
		if (d > 0 && d < 1e12)
			r->creation_time = (int64_t)d;
	}
	v = sync_get(rj, "file_bundle_binary_count");
	if (v) {
		if (sync_get_uint(v, "file_bundle_binary_count", UINT32_MAX, &n, why,
				  whysize) < 0)
			return -EINVAL;
		r->file_bundle_binary_count = (uint32_t)n;
	}
	return 0;
}

static int sync_rule_identifier(json_object *rj, Santa__Rule *r, char *why,
				size_t whysize)
{
	json_object *v = sync_get(rj, "identifier");
	const char *key = "identifier";
	const char *s;

	/* Zentral still sends the legacy "sha256" to clients it thinks old. */
	if (!v || (json_object_is_type(v, json_type_string) &&
		   json_object_get_string_len(v) == 0)) {
		if (sync_get(rj, "sha256")) {
			v = sync_get(rj, "sha256");
			key = "sha256";
		}
	}
	if (!v) {
		snprintf(why, whysize, "no identifier");
		return -EINVAL;
	}
	if (sync_get_string(v, key, SYNC_MAX_IDENTIFIER, &s, why, whysize) < 0)
		return -EINVAL;
	r->identifier = strdup(s);
	if (!r->identifier)
		return -ENOMEM;
	return sync_check_identifier(r->rule_type, r->identifier, why, whysize);
}

/* Convert one rule. -EINVAL (with WHY) drops it; -ENOMEM fails the page. */
static int sync_rule_from_json(json_object *rj, Santa__Rule **ret, char *why,
			       size_t whysize)
{
	Santa__Rule *r;
	json_object *v;
	int x, e;

	if (!json_object_is_type(rj, json_type_object)) {
		snprintf(why, whysize, "rule is a %s, not an object",
			 json_type_to_name(json_object_get_type(rj)));
		return -EINVAL;
	}
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	santa__rule__init(r);

	v = sync_get(rj, "policy");
	x = v ? sync_policy_from_json(v) : -EINVAL;
	if (x < 0) {
		snprintf(why, whysize, "unknown policy %.80s",
			 v ? json_object_to_json_string(v) : "(none)");
		e = -EINVAL;
		goto fail;
	}
	r->policy = (Santa__Policy)x;
	v = sync_get(rj, "rule_type");
	x = v ? sync_rule_type_from_json(v) : -EINVAL;
	if (x < 0) {
		snprintf(why, whysize, "unknown rule_type %.80s",
			 v ? json_object_to_json_string(v) : "(none)");
		e = -EINVAL;
		goto fail;
	}
	r->rule_type = (Santa__RuleType)x;

	e = sync_rule_identifier(rj, r, why, whysize);
	if (e == 0)
		e = sync_rule_text(rj, "custom_msg", SYNC_MAX_RULE_TEXT, &r->custom_msg,
				   why, whysize);
	if (e == 0)
		e = sync_rule_text(rj, "custom_url", SYNC_MAX_RULE_TEXT, &r->custom_url,
				   why, whysize);
	if (e == 0)
		e = sync_rule_text(rj, "file_bundle_hash", 128, &r->file_bundle_hash, why,
				   whysize);
	if (e == 0)
		e = sync_rule_numbers(rj, r, why, whysize);
	if (e < 0)
		goto fail;
	*ret = r;
	return 0;
fail:
	sync_rule_free(r);
	return e;
}

void sync_rule_free(Santa__Rule *rule)
{
	/* Every string is either malloc'd or protobuf-c's empty default, which
	 * free_unpacked knows not to free. */
	if (rule)
		protobuf_c_message_free_unpacked(&rule->base, NULL);
}

static int sync_page_cursor(json_object *obj, sync_rule_page *page, char *errbuf,
			    size_t errsize)
{
	json_object *v = sync_get(obj, "cursor");
	const char *s;

	if (!v)
		return 0;
	if (sync_get_string(v, "cursor", 4096, &s, errbuf, errsize) < 0)
		return -EBADMSG;
	if (!*s)
		return 0;
	page->cursor = strdup(s);
	return page->cursor ? 0 : -ENOMEM;
}

static int sync_page_rules(json_object *arr, sync_rule_page *page, char *errbuf,
			   size_t errsize)
{
	char why[120];
	size_t n = json_object_array_length(arr);
	int r;

	page->rules = calloc(n ? n : 1, sizeof(*page->rules));
	if (!page->rules)
		return -ENOMEM;
	page->n_received = n;
	for (size_t i = 0; i < n; i++) {
		Santa__Rule *rule = NULL;

		r = sync_rule_from_json(json_object_array_get_idx(arr, i), &rule, why,
					sizeof(why));
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			if (page->n_bad++ == 0)
				snprintf(page->first_bad, sizeof(page->first_bad),
					 "rule %zu: %s", i, why);
			continue;
		}
		page->rules[page->n_rules++] = rule;
	}
	(void)errbuf;
	(void)errsize;
	return 0;
}

int sync_rule_page_parse(const char *buf, size_t len, size_t max_rules,
			 sync_rule_page *ret, char *errbuf, size_t errsize)
{
	json_object *obj, *arr;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = sync_parse_object(buf, len, "ruledownload", &obj, errbuf, errsize);
	if (r < 0 || !obj)
		return r;
	arr = sync_get(obj, "rules");
	if (arr && !json_object_is_type(arr, json_type_array)) {
		sync_err(errbuf, errsize, "ruledownload response: \"rules\" is a %s, "
			 "not an array", json_type_to_name(json_object_get_type(arr)));
		r = -EBADMSG;
	} else if (arr && json_object_array_length(arr) > max_rules) {
		sync_err(errbuf, errsize, "ruledownload response: %zu rules is more than "
			 "the %zu still allowed in this sync",
			 json_object_array_length(arr), max_rules);
		r = -E2BIG;
	}
	if (r == 0)
		r = sync_page_cursor(obj, ret, errbuf, errsize);
	if (r == 0 && arr)
		r = sync_page_rules(arr, ret, errbuf, errsize);
	json_object_put(obj);
	if (r == -ENOMEM)
		sync_err(errbuf, errsize, "ruledownload response: out of memory");
	if (r < 0)
		sync_rule_page_done(ret);
	return r;
}

void sync_rule_page_done(sync_rule_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n_rules; i++)
		sync_rule_free(page->rules[i]);
	free(page->rules);
	free(page->cursor);
	memset(page, 0, sizeof(*page));
}
