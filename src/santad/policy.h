/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decision: rules, path regexes and the client mode, as a pure function
 * of immutable snapshots, so that hash workers decide from memory without
 * taking any lock that slow work (a SQLite write, a reload) could hold.
 *
 * A ruleset is the decision path's index of the database's BINARY rules: a
 * sorted array of (SHA-256, policy), 33 bytes a rule, binary-searched. The
 * other rule types keep their place in the precedence order (CDHASH >
 * BINARY > SIGNINGID > CERTIFICATE > TEAMID) and in counts and sync, but
 * match nothing on Linux yet: there are no code signatures (CDHASH,
 * SIGNINGID, TEAMID) and no signing certificates (CERTIFICATE) on ELF files
 * that this daemon verifies. When they get a Linux meaning, they get an
 * index here and a place in policy_decide().
 *
 * A policy is everything else the decision reads: the effective mode, the
 * static rules, the compiled regexes, the messages. Both are reference
 * counted and never change once published; a change builds a new one.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config.h"
#include "santad.h"
#include "sha256.h"

typedef struct ruleset_entry {
	uint8_t sha256[SANTA_SHA256_LEN];
	uint8_t policy;                 /* Santa__Policy */
} __attribute__((packed)) ruleset_entry;

/* Custom message and URL of a BINARY rule that has them (few do). */
typedef struct ruleset_msg {
	uint8_t sha256[SANTA_SHA256_LEN];
	char *msg;
	char *url;
} ruleset_msg;

typedef struct ruleset {
	atomic_int refs;
	ruleset_entry *entries;         /* sorted by sha256, unique */
	size_t n;
	ruleset_msg *msgs;              /* sorted by sha256, unique */
	size_t n_msgs;
} ruleset;

/* A change to apply to a ruleset: policy REMOVE deletes. */
typedef struct ruleset_change {
	uint8_t sha256[SANTA_SHA256_LEN];
	uint8_t policy;
	const char *msg;                /* borrowed; copied by ruleset_apply */
	const char *url;
} ruleset_change;

ruleset *ruleset_new_empty(void);
ruleset *ruleset_ref(ruleset *rs);
ruleset *ruleset_unref(ruleset *rs);
/* A new ruleset: BASE (NULL = empty) with CHANGES applied in order (a later
 * change of the same SHA-256 wins). With KEEP_TRANSITIVE_ONLY the base's
 * non-transitive rules are dropped first. NULL when out of memory. */
ruleset *ruleset_apply(const ruleset *base, bool keep_transitive_only,
		       const ruleset_change *changes, size_t n);
const ruleset_entry *ruleset_find(const ruleset *rs,
				  const uint8_t sha256[SANTA_SHA256_LEN]);
const ruleset_msg *ruleset_find_msg(const ruleset *rs,
				    const uint8_t sha256[SANTA_SHA256_LEN]);
size_t ruleset_memory(const ruleset *rs);

/* A static rule (StaticRules), BINARY ones with their parsed hash. */
typedef struct policy_static_rule {
	santa_config_rule rule;         /* owned copy */
	bool has_sha256;
	uint8_t sha256[SANTA_SHA256_LEN];
} policy_static_rule;

typedef struct policy {
	atomic_int refs;
	uint64_t generation;            /* bumped by every publication */
	santa_client_mode mode;         /* effective: sync server over file */
	bool fail_closed;
	bool transitive;                /* EnableTransitiveRules, effective */
	policy_static_rule *static_rules;
	size_t n_static_rules;
	pcre2_code *allowed_regex;      /* NULL when unset */
	pcre2_code *blocked_regex;
	char *allowed_regex_src;        /* as configured, for comparisons */
	char *blocked_regex_src;
	uint32_t timeout_ms;
	/* Recording and messages. */
	bool store_events;              /* SyncBaseURL set */
	bool enable_all_event_upload;
	bool disable_unknown_event_upload;
	bool silent_tty;
	char *unknown_block_message;
	char *banned_block_message;
	char *event_detail_url;
	char *machine_id;
	/* Where Santa's own executables are (see policy_decide_file): the
	 * install directories, then TrustedExecutables; NULL-terminated. */
	char **own_executables;
} policy;

/* Inputs of policy_new that may differ from the file's config: the sync
 * server's settings (NULL strings and has_* false = not set). */
typedef struct policy_overrides {
	bool has_mode;
	santa_client_mode mode;
	const char *allowed_regex;      /* NULL: the file's */
	const char *blocked_regex;
	bool has_transitive;
	bool transitive;
	bool has_all_event_upload;
	bool enable_all_event_upload;
	bool has_disable_unknown;
	bool disable_unknown_event_upload;
} policy_overrides;

/* Build a policy from CFG and OV. -EINVAL with a reason in ERRBUF when a
 * regex does not compile or a static rule is malformed. */
int policy_new(const santa_config *cfg, const policy_overrides *ov,
	       policy **ret, char *errbuf, size_t errsize);
policy *policy_ref(policy *p);
policy *policy_unref(policy *p);
/* Would switching from OLD to NEW turn some allow into a deny? (mode to
 * LOCKDOWN, a regex or static rule change, FailClosed on). */
bool policy_change_needs_flush(const policy *old, const policy *new);

typedef struct verdict {
	santad_decision decision;
	santad_reason reason;
	bool silent;
	bool has_rule;
	bool rule_is_static;
	size_t static_index;            /* when rule_is_static */
	int rule_policy;
	int rule_type;
	const char *explanation;        /* static string */
	const char *custom_msg;         /* borrowed from the snapshots */
	const char *custom_url;
} verdict;

/* Decide for a file with content SHA256 at PATH (NULL when unknown: path
 * regexes then do not match). Never fails. */
void policy_decide(const policy *p, const ruleset *rs,
		   const uint8_t sha256[SANTA_SHA256_LEN], const char *path,
		   verdict *out);

/* policy_decide for the file open as FD, which first allows Santa's own
 * executables (and their loader, policy_is_own_loader), whatever the mode
 * and the rules: the ones the IPC layer
 * trusts (a file named as one of ours, santad, santactl, santagui and the
 * services, that is the very file, by device and inode, in an install
 * directory or a TrustedExecutables entry, held by root). santad starts
 * its services and administrators run santactl to repair the rules; in
 * LOCKDOWN with no rules for them, santad would otherwise lock itself
 * out. The original allows its own binaries the same way. */
void policy_decide_file(const policy *p, const ruleset *rs,
			const uint8_t sha256[SANTA_SHA256_LEN], const char *path, int fd,
			verdict *out);
/* True when the file open as FD, found at PATH, is one of Santa's own. */
bool policy_is_own_executable(const policy *p, int fd, const char *path);
/* True when the file open as FD is the ELF interpreter (dynamic loader)
 * santad itself names, at a path held by root: allowed with Santa's own
 * executables by policy_decide_file, since none of them could start
 * without it. It is the loader of every dynamic program on the machine,
 * which in LOCKDOWN needs it allowed anyway; each program still needs its
 * own rule. */
bool policy_is_own_loader(int fd);

/* Should this decision become an event for the sync server? */
bool policy_records_event(const policy *p, const verdict *v);
/* The sync protocol's decision name: "ALLOW_UNKNOWN", "BLOCK_BINARY"... */
const char *policy_event_decision(const verdict *v);
