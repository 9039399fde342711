/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's internal API: what the control service (control.c), the metric
 * export (metrics.c) and the GUI notifier use to see and steer the daemon.
 *
 * Threads. santad decides execs on its own threads (a fanotify reader and
 * a pool of hash workers) that never wait on anything below. Every function
 * here is called from the main loop thread (the sd_event given to
 * control_start), unless its comment says otherwise; they may do SQLite I/O
 * and so may take a while, but never delay an answer to the kernel.
 * Pointers returned into santad's memory stay valid until the main loop
 * runs its next event (a config reload may replace them).
 *
 * Errors are 0 (or a count) on success and -errno otherwise. Functions that
 * reject input a peer sent also write one line into ERRBUF saying what was
 * wrong, fit to be sent back to that peer.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "santa.pb-c.h"
#include "santad.pb-c.h"

typedef struct santad santad;

/* --- Settings in effect: the config file with the sync server's values
 * layered over it (a server-set ClientMode or path regex wins). --- */

const santa_config *santad_config(const santad *d);
santa_client_mode santad_client_mode(const santad *d);
/* FailClosed as configured; it only ever denies in LOCKDOWN. */
bool santad_fail_closed(const santad *d);
santa_log_type santad_log_type(const santad *d);
bool santad_transitive_rules(const santad *d);
bool santad_bundles_enabled(const santad *d);
/* True when fanotify is set up and at least one mount is marked. */
bool santad_watching(const santad *d);
/* The mount points marked now. Returns their count. */
size_t santad_watch_paths(const santad *d, const char *const **ret_paths);

/* --- Decisions --- */

typedef enum santad_decision {
	SANTAD_DECISION_NONE = 0,   /* not decided / not cached */
	SANTAD_DECISION_ALLOW,
	SANTAD_DECISION_DENY,
} santad_decision;

/* The event log's reason= values, in the original's spelling. */
typedef enum santad_reason {
	SANTAD_REASON_UNKNOWN = 0,
	SANTAD_REASON_BINARY,
	SANTAD_REASON_CERT,
	SANTAD_REASON_TEAMID,
	SANTAD_REASON_SIGNINGID,
	SANTAD_REASON_CDHASH,
	SANTAD_REASON_SCOPE,
	SANTAD_REASON_COMPILER,
	SANTAD_REASON_TRANSITIVE,
	SANTAD_REASON_PENDING_TRANSITIVE,
	SANTAD_REASON_LONG_PATH,
	SANTAD_REASON_NOTRUNNING,
} santad_reason;

const char *santad_decision_name(santad_decision d);  /* "ALLOW", "DENY" */
const char *santad_reason_name(santad_reason r);      /* "BINARY", ... */

/* A rule, as stored and as exchanged (fields of santa.Rule). */
typedef struct santad_rule {
	char *identifier;       /* BINARY/CERTIFICATE: 64 lower-case hex */
	int policy;             /* Santa__Policy */
	int rule_type;          /* Santa__RuleType */
	char *custom_msg;       /* NULL when unset */
	char *custom_url;
	int64_t creation_time;  /* seconds since the epoch */
	char *file_bundle_hash;
	uint32_t file_bundle_binary_count;
} santad_rule;

void santad_rule_done(santad_rule *r);            /* frees the strings */
void santad_rules_free(santad_rule *rules, size_t n);

typedef struct santad_verdict {
	santad_decision decision;
	santad_reason reason;
	bool silent;              /* a SILENT_BLOCKLIST rule: no tty/GUI */
	const char *explanation;  /* static sentence for fileinfo's Rule */
	bool has_rule;
	santad_rule rule;         /* the matching rule when has_rule */
} santad_verdict;

void santad_verdict_done(santad_verdict *v);

/* The decision santad would make now for a file at PATH with content
 * SHA256_HEX, without executing or caching anything (fileinfo's Rule
 * field). Santa's own executables and their loader (the file FD, which the
 * caller opened, by device and inode; -1: none of them), then static
 * rules, the rules database, the path regexes and the mode, as for a real
 * exec. */
int santad_decide_dry_run(santad *d, const char *path, int fd, const char *sha256_hex,
			  santad_verdict *ret, char *errbuf, size_t errsize);

/* --- Decision cache --- */

uint64_t santad_cache_count(const santad *d);
/* The same split as the original reports it: files on the root
 * filesystem, and files on every other filesystem. */
void santad_cache_counts(const santad *d, uint64_t *ret_root, uint64_t *ret_non_root);
/* Empty the cache and drop every allow the kernel holds (the fanotify
 * ignore marks), so that the next exec of anything is decided anew. WHY
 * names the cause for the log line. */
int santad_cache_flush(santad *d, const char *why);
/* The cached decision for the file FD refers to (by device, inode and
 * change stamps): ALLOW/DENY, or NONE when not cached. */
int santad_cache_check_fd(santad *d, int fd, santad_decision *ret_decision);

/* --- Rules --- */

typedef struct santad_rule_counts {
	uint64_t binary;
	uint64_t certificate;
	uint64_t teamid;
	uint64_t signingid;
	uint64_t cdhash;
	uint64_t compiler;        /* ALLOWLIST_COMPILER rules, any type */
	uint64_t transitive;      /* ALLOWLIST_TRANSITIVE rules */
} santad_rule_counts;

/* Database rules (StaticRules are not counted here). */
int santad_rules_count(santad *d, santad_rule_counts *ret);
size_t santad_static_rule_count(const santad *d);

/*
 * Rule changes arrive as a batch, possibly over several calls (a sync
 * delivers its pages, an import its file), and are applied at once in one
 * SQLite transaction, together with CLEANUP:
 *   CLEANUP_NONE            add/replace/remove the batch's rules only;
 *   CLEANUP_NON_TRANSITIVE  first delete every rule but transitive ones;
 *   CLEANUP_ALL             first delete every rule.
 * A rule with policy REMOVE deletes the rule of the same identifier and
 * type. Caches are flushed as the change requires (everything unless the
 * batch is only new allows).
 */
typedef struct santad_rule_batch santad_rule_batch;

#define SANTAD_RULE_BATCH_MAX 2000000u

int santad_rule_batch_new(santad_rule_batch **ret);
santad_rule_batch *santad_rule_batch_free(santad_rule_batch *b);
/* Validate R (identifier syntax for its type, known policy and type, string
 * lengths) and copy it into B. -EINVAL with a reason in ERRBUF; -E2BIG
 * beyond SANTAD_RULE_BATCH_MAX rules. */
int santad_rule_batch_add(santad_rule_batch *b, const santad_rule *r,
			  char *errbuf, size_t errsize);
size_t santad_rule_batch_size(const santad_rule_batch *b);
/* Apply B (it is left empty, still to be freed). *RET_APPLIED counts the
 * rules written or removed. */
int santad_rules_apply(santad *d, santad_rule_batch *b,
		       Santa__RuleCleanup cleanup, uint64_t *ret_applied,
		       char *errbuf, size_t errsize);

/* The rule that decides for these identifiers (each KEYS[i] gives an
 * identifier and a rule_type; other fields are ignored): static rules
 * first, then the database, each in the precedence order CDHASH > BINARY >
 * SIGNINGID > CERTIFICATE > TEAMID. 0 and *RET filled, or -ENOENT. */
int santad_rules_find(santad *d, const santad_rule *keys, size_t n_keys,
		      santad_rule *ret);

/* Database rules in a stable order, LIMIT at most (capped at 1000) after
 * the position AFTER (0 = from the start). *RET_NEXT is the position to
 * pass next, or 0 when no rules follow. Free with santad_rules_free. */
int santad_rules_list(santad *d, int64_t after, size_t limit,
		      santad_rule **ret_rules, size_t *ret_n, int64_t *ret_next);

/* --- Events for the sync server (stored only when SyncBaseURL is set) --- */

int santad_events_count(santad *d, uint64_t *ret);
/* Up to LIMIT (capped at 1000) events with id > AFTER_ID, oldest first.
 * Free with santad_events_free. */
int santad_events_list(santad *d, int64_t after_id, size_t limit,
		       Santa__Event ***ret_events, size_t *ret_n);
void santad_events_free(Santa__Event **events, size_t n);
int santad_events_remove(santad *d, const int64_t *ids, size_t n);

/* --- Sync settings: what the sync server set, persisted in
 * StateDirectory/sync-state.json and layered over the config file. --- */

/* Fill *RET (a Santa__SyncSettings the caller initialized) with every
 * setting, has_* flags set for those the server has set. Strings point
 * into santad. */
int santad_sync_settings_get(santad *d, Santa__SyncSettings *ret);
/* Apply and persist the fields whose has_* flag is set. An empty regex
 * string removes the server's regex (the config's applies again). A bad
 * regex or mode is refused (-EINVAL, ERRBUF) and nothing changes. Flushes
 * the caches when a change could turn an allow into a deny. */
int santad_sync_settings_update(santad *d, const Santa__SyncSettings *s,
				char *errbuf, size_t errsize);

/* --- The user's GUI (santagui) --- */

/* Queue MESSAGE for the active user's GUI (rule sync notifications; NULL
 * for the default sentence). Returns 0 even when no GUI is connected (it
 * waits in gui.c's bounded queue). */
int santad_gui_post(santad *d, const char *message);
/* santagui's side (gui.h), for SetNotificationListener and SyncBundleEvent;
 * NULL when it could not be set up. */
struct gui *santad_gui(santad *d);

/* --- santasyncservice, as santad sees it (synclink.h) --- */

/* "not configured" (no SyncBaseURL), "connecting", "running" or "not
 * answering" (its last call timed out). */
const char *santad_sync_service_state(const santad *d);
/* Ask it now, within TIMEOUT_USEC; CB runs later on the main loop with one
 * of the states above. 0 when CB will run, else -errno. */
typedef void (*santad_probe_fn)(const char *state, void *userdata);
int santad_sync_service_probe(santad *d, uint64_t timeout_usec, santad_probe_fn cb,
			      void *userdata);

/* --- Counters, updated by any thread; read with atomic loads. --- */

typedef struct santad_counters {
	_Atomic uint64_t exec_events;       /* permission events received */
	_Atomic uint64_t exec_allowed;
	_Atomic uint64_t exec_denied;
	_Atomic uint64_t exec_cache_hits;   /* answered from santad's cache */
	_Atomic uint64_t exec_hashed;       /* files hashed */
	_Atomic uint64_t exec_timeouts;     /* answered by FailClosed */
	_Atomic uint64_t exec_unreadable;   /* hash failed: FailClosed */
	_Atomic uint64_t exec_notifications;/* FAN_OPEN_EXEC seen */
	_Atomic uint64_t queue_overflows;   /* fanotify dropped events */
	_Atomic uint64_t log_lines;         /* event log lines written */
	_Atomic uint64_t log_dropped;       /* lines dropped: queue full */
	_Atomic uint64_t events_stored;     /* sync events written */
	_Atomic uint64_t events_dropped;
	_Atomic uint64_t cache_flushes;
	_Atomic uint64_t decision_usec_total; /* time from event to answer */
	_Atomic uint64_t decision_usec_max;
	int64_t start_time;                  /* seconds since the epoch */
} santad_counters;

const santad_counters *santad_get_counters(const santad *d);
