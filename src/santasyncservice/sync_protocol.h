/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sync protocol's wire format: the JSON bodies the original Santa client
 * sends to a sync server (preflight, eventupload, ruledownload, postflight),
 * the parsing of what the server answers, and the small rules around them
 * (URL resolution, request compression, XSSI guards, clean-sync resolution).
 *
 * Nothing here does I/O or logs. Every response is untrusted input: parsers
 * bound what they allocate, reject what is not the protocol and say why in
 * ERRBUF. Functions return 0 or a negative errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "santa.pb-c.h"

/* Limits on what a server can make us hold. */
#define SYNC_MAX_RESPONSE_BYTES (64u << 20)   /* one response, decoded */
#define SYNC_MAX_IDENTIFIER 1024              /* bytes of a rule identifier */
#define SYNC_MAX_RULE_TEXT 4096               /* custom_msg, custom_url */
#define SYNC_MAX_REGEX 16384                  /* a path regex */
#define SYNC_DEFAULT_BATCH_SIZE 50
#define SYNC_MAX_BATCH_SIZE 5000
#define SYNC_DEFAULT_FULL_SYNC_INTERVAL 600
#define SYNC_MIN_FULL_SYNC_INTERVAL 60

/* --- Transport details --- */

typedef enum sync_encoding {
	SYNC_ENCODING_DEFLATE = 0,   /* zlib stream, RFC 1950: the default */
	SYNC_ENCODING_GZIP,
	SYNC_ENCODING_NONE,
} sync_encoding;

/* SyncClientContentEncoding's value ("deflate", "gzip", "none"; NULL means
 * the default). -EINVAL for anything else. */
int sync_encoding_from_name(const char *name, sync_encoding *ret);
/* The Content-Encoding header value, or NULL for none. */
const char *sync_encoding_header(sync_encoding enc);
/* Compress IN as ENC into a malloc'd *RET. An empty body stays empty and
 * uncompressed (*RET_COMPRESSED false), as the original never compresses
 * one; so does ENC none. */
int sync_compress(sync_encoding enc, const void *in, size_t len, uint8_t **ret,
		  size_t *ret_len, bool *ret_compressed);

/* "<stage>/<machine_id>" resolved against BASE like RFC 3986 resolves a
 * relative reference: the base's last path segment is replaced, so a base
 * normally ends in '/'. The machine id is percent-encoded. Only http and
 * https bases are accepted. */
int sync_url_for_stage(const char *base, const char *stage,
		       const char *machine_id, char **ret);

/* Skip an XSSI guard line (")]}'\n" or "])}") at the start of a response;
 * returns the number of bytes to skip. */
size_t sync_xssi_prefix_len(const char *buf, size_t len);

/* --- Names on the wire --- */

/* santa.proto Policy from a rule's "policy": current names, the legacy
 * WHITELIST/BLACKLIST spellings, or syncv1's integer values. Returns the
 * policy, or -EINVAL. Transitive rules are never accepted from a server. */
int sync_policy_from_json(const void *jobj);
/* santa.proto RuleType from "rule_type": names or syncv1 integers. */
int sync_rule_type_from_json(const void *jobj);
/* santa.proto ClientMode from "client_mode": names or syncv1 integers. */
int sync_client_mode_from_json(const void *jobj);
const char *sync_client_mode_name(int mode);     /* "MONITOR", "LOCKDOWN" */
const char *sync_type_name(int type);            /* "NORMAL", "CLEAN", ... */

/* --- Preflight --- */

typedef struct sync_preflight_request {
	const char *machine_id;
	const char *serial_num;
	const char *hostname;
	const char *os_version;
	const char *os_build;
	const char *model_identifier;
	const char *santa_version;
	const char *primary_user;
	int client_mode;                /* santa.proto ClientMode */
	bool request_clean_sync;
	uint64_t binary_rule_count;
	uint64_t certificate_rule_count;
	uint64_t compiler_rule_count;
	uint64_t transitive_rule_count;
	uint64_t teamid_rule_count;
	uint64_t signingid_rule_count;
	uint64_t cdhash_rule_count;
} sync_preflight_request;

int sync_preflight_request_json(const sync_preflight_request *req, char **ret);

/* What the server said its sync is. NONE: it said nothing usable. */
typedef enum sync_server_type {
	SYNC_SERVER_TYPE_NONE = 0,
	SYNC_SERVER_TYPE_NORMAL,
	SYNC_SERVER_TYPE_CLEAN,
	SYNC_SERVER_TYPE_CLEAN_ALL,
} sync_server_type;

typedef struct sync_preflight_response {
	bool has_client_mode;
	int client_mode;                /* santa.proto ClientMode */
	sync_server_type sync_type;     /* sync_type key */
	bool clean_sync;                /* deprecated clean_sync key */
	uint32_t batch_size;            /* defaulted: never 0 */
	bool has_full_sync_interval;    /* the server sent one */
	uint32_t full_sync_interval;    /* defaulted: never below 60 */
	bool has_enable_bundles;
	bool enable_bundles;
	bool has_enable_transitive_rules;
	bool enable_transitive_rules;
	bool has_enable_all_event_upload;
	bool enable_all_event_upload;
	bool has_disable_unknown_event_upload;
	bool disable_unknown_event_upload;
	char *allowed_path_regex;       /* NULL: not sent; "" clears it */
	char *blocked_path_regex;
} sync_preflight_response;

/* An empty body is a valid response that sets nothing. */
int sync_preflight_response_parse(const char *buf, size_t len,
				  sync_preflight_response *ret, char *errbuf,
				  size_t errsize);
void sync_preflight_response_done(sync_preflight_response *resp);

/* The sync type performed (santa.proto SyncType) given what the client
 * requested and what the server answered: a server "clean" becomes
 * CLEAN_ALL when the client asked for that; "clean_all" is CLEAN_ALL; the
 * deprecated clean_sync counts only when sync_type is absent. */
int sync_resolve_type(int requested, const sync_preflight_response *resp);

/* --- Event upload --- */

/* {"events":[...],"machine_id":...} with the original's event keys. */
int sync_eventupload_request_json(Santa__Event *const *events, size_t n,
				  const char *machine_id, char **ret);
/* Checks the response is an object; *RET_BUNDLE_REQUESTS gets the number of
 * bundle hashes the server asked binaries for (which we cannot send). */
int sync_eventupload_response_parse(const char *buf, size_t len,
				    size_t *ret_bundle_requests, char *errbuf,
				    size_t errsize);

/* --- Rule download --- */

int sync_ruledownload_request_json(const char *cursor, const char *machine_id,
				   char **ret);

typedef struct sync_rule_page {
	Santa__Rule **rules;            /* the valid ones */
	size_t n_rules;
	size_t n_received;              /* entries in "rules", valid or not */
	size_t n_bad;
	char *cursor;                   /* NULL when this was the last page */
	char first_bad[160];            /* why the first bad rule was dropped */
} sync_rule_page;

/* Parse one page. More than MAX_RULES entries is an error (the caller
 * passes what is left of its total budget). */
int sync_rule_page_parse(const char *buf, size_t len, size_t max_rules,
			 sync_rule_page *ret, char *errbuf, size_t errsize);
void sync_rule_page_done(sync_rule_page *page);
void sync_rule_free(Santa__Rule *rule);

/* --- Postflight --- */

int sync_postflight_request_json(uint64_t rules_received,
				 uint64_t rules_processed, int sync_type,
				 const char *machine_id, char **ret);
