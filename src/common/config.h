/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration file: JSON, with the original Santa's key names.
 *
 * Every process reads it from --config FILE, else $SANTA_CONFIG, else
 * SANTA_DEFAULT_CONFIG (/etc/santa/config.json). A missing default file
 * means "all defaults"; a missing named file, a syntax error, an unknown
 * key or a value of the wrong type is an error that names the file, the
 * line and the key, and the process refuses to start.
 *
 * Keys a sync server may override (ClientMode, the path regexes, ...) are
 * read here as the administrator set them; santad layers the server's
 * values on top (see santad's sync state), as the original does.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum santa_client_mode {
	SANTA_MODE_MONITOR = 1,
	SANTA_MODE_LOCKDOWN = 2,
} santa_client_mode;

typedef enum santa_log_type {
	SANTA_LOG_FILE = 0,
	SANTA_LOG_SYSLOG,
	SANTA_LOG_JSON,
	SANTA_LOG_NULL,
} santa_log_type;

/* A rule as written in StaticRules or a rule import file. */
typedef struct santa_config_rule {
	char *identifier;
	int policy;        /* santa.proto Policy values */
	int rule_type;     /* santa.proto RuleType values */
	char *custom_msg;
	char *custom_url;
	int line;          /* where it is in the config file, 0: unknown */
} santa_config_rule;

typedef struct santa_config {
	char *path;                 /* the file read, or NULL for defaults */
	int *key_lines;             /* for santa_config_error() */
	int **entry_lines;          /* per list key, each entry's line; ditto */

	santa_client_mode client_mode;
	bool fail_closed;
	char *sync_base_url;
	char *machine_id;           /* MachineID, else /etc/machine-id */
	char *allowed_path_regex;
	char *blocked_path_regex;
	santa_config_rule *static_rules;
	size_t n_static_rules;

	bool enable_transitive_rules;
	bool enable_all_event_upload;
	bool disable_unknown_event_upload;
	bool enable_bundles;
	bool enable_silent_mode;
	bool enable_silent_tty_mode;
	char *unknown_block_message;
	char *banned_block_message;
	char *event_detail_url;
	char *event_detail_text;
	char *mode_notification_monitor;
	char *mode_notification_lockdown;

	santa_log_type event_log_type;
	char *event_log_path;

	char *state_directory;      /* StateDirectory, /var/lib/santa */
	char *run_directory;        /* RunDirectory, /run/santa */
	char **watch_paths;         /* WatchPaths; NULL = every local fs */
	size_t n_watch_paths;
	char **trusted_executables; /* TrustedExecutables, NULL-terminated */
	size_t n_trusted_executables;

	char *metric_url;
	char *metric_format;
	uint32_t metric_export_interval;   /* seconds, 30 */
	uint32_t metric_export_timeout;    /* seconds, 30 */
	char **metric_extra_labels;        /* "key=value", NULL-terminated */
	size_t n_metric_extra_labels;

	char *sync_client_content_encoding;  /* deflate (default), gzip, none */
	char *sync_ca_file;                  /* ServerAuthRootsFile */
	char *sync_client_cert_file;         /* ClientAuthCertificateFile */
	char *sync_client_key_file;          /* ClientAuthKeyFile */
	char **sync_extra_headers;           /* "Name: value", NULL-terminated */
	size_t n_sync_extra_headers;
	uint32_t full_sync_interval;         /* seconds, 600 */
	/* Requests to the sync server: attempts each (5), the first backoff
	 * between them, doubling (1000 ms), and the time one may take
	 * (30000 ms). Tests shorten them. */
	uint32_t sync_retry_attempts;
	uint32_t sync_retry_backoff_ms;
	uint32_t sync_request_timeout_ms;

	/* Launch services from santad when no systemd socket activation is
	 * in use (see santad's launcher). */
	char *service_user;                  /* ServiceUser, "nobody" */
	uint32_t decision_timeout_ms;        /* DecisionTimeoutMs, 5000 */
	uint32_t hash_threads;               /* HashThreads, 2 */
} santa_config;

/* Defaults for every key. */
void santa_config_init(santa_config *cfg);
void santa_config_done(santa_config *cfg);

/*
 * Load FILE (NULL: $SANTA_CONFIG, else the default path) into *CFG.
 * On error returns -1 and writes one line into ERRBUF naming the file, the
 * line and the key: "/etc/santa/config.json:7: ClientMode: expected an
 * integer 1 or 2, got \"x\"". On error *CFG holds nothing to free.
 */
int santa_config_load(const char *file, santa_config *cfg, char *errbuf,
		      size_t errsize);

/*
 * An error about a value of a loaded CFG that is checked after loading (a
 * regex, a URL), in santa_config_load's form: "FILE:LINE: KEY: ...". KEY
 * may name a static rule, "StaticRules[2]", for that rule's line. Returns
 * -1.
 */
int santa_config_error(const santa_config *cfg, const char *key, char *errbuf,
		       size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Where KEY is in a loaded CFG, to put before a message that names KEY
 * itself: "FILE:LINE: ", "FILE: " when the line is unknown, "" when CFG
 * is the defaults. Returns BUF. */
const char *santa_config_where(const santa_config *cfg, const char *key, char *buf,
			       size_t size);

/* The file that santa_config_load(NULL, ...) would read. */
const char *santa_config_default_path(void);

/* Parse one rule object (StaticRules entry, import file entry). Returns 0,
 * or -1 with a reason in ERRBUF. OBJ is a json_object *. */
int santa_config_parse_rule(const void *obj, santa_config_rule *rule,
			    char *errbuf, size_t errsize);
void santa_config_rule_done(santa_config_rule *rule);

/* Names the original uses, both directions. Return -1 / NULL if unknown.
 * Policy names accept the legacy WHITELIST/BLACKLIST spellings. */
int santa_policy_from_name(const char *name);
const char *santa_policy_name(int policy);
int santa_rule_type_from_name(const char *name);
const char *santa_rule_type_name(int type);
const char *santa_client_mode_name(santa_client_mode mode); /* "Monitor" */
const char *santa_log_type_name(santa_log_type t);          /* "file" */
