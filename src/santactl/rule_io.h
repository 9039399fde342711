/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rule files and rule identifiers, the pure part of `santactl rule`.
 *
 * The file format is the original's: {"rules": [{"policy": "BLOCKLIST",
 * "identifier": "<sha256>", "rule_type": "BINARY", "custom_msg": "...",
 * "custom_url": "..."}, ...]}. An import is all or nothing: the first
 * bad rule is reported by its index and field and no rule is sent.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "santa.pb-c.h"

/* Bounds on what santactl sends; santad checks the same ones. */
#define SANTACTL_RULE_MAX_IDENTIFIER 1024
#define SANTACTL_RULE_MAX_TEXT 4096          /* custom_msg, custom_url */
#define SANTACTL_IMPORT_MAX_BYTES (256u << 20)
#define SANTACTL_IMPORT_MAX_RULES 1000000u

/* Parsed rules; santa__rule__free_unpacked frees each. */
typedef struct santactl_rules {
	Santa__Rule **rules;
	size_t n;
} santactl_rules;

/* Parse the text of a rule file. Returns 0, or -1 with a reason in
 * ERRBUF such as: rule 3: "policy": unknown policy "ALLOW". */
int santactl_rules_parse(const char *text, size_t len, santactl_rules *ret,
			 char *errbuf, size_t errsize);
void santactl_rules_done(santactl_rules *rs);

/*
 * Check IDENTIFIER for a rule of TYPE (santa.proto RuleType), lower-casing
 * hex identifiers in place so that they match the hashes santad computes.
 * Returns 0, or -1 with the original's wording in ERRBUF.
 */
int santactl_rule_check_identifier(int type, char *identifier, char *errbuf,
				   size_t errsize);

/* A new rule with copies of the strings (NULL = empty); NULL on ENOMEM. */
Santa__Rule *santactl_rule_new(const char *identifier, int policy, int type,
			       const char *custom_msg, const char *custom_url);

/*
 * The rule file for RULES, in the import format, leaving out transitive
 * rules (they belong to this machine) and removals. *RET_COUNT gets the
 * number written. Returns a malloc'd string, or NULL on ENOMEM.
 */
char *santactl_rules_to_json(Santa__Rule *const *rules, size_t n,
			     size_t *ret_count);

/* What `rule --check` prints for RULE (NULL: no rule), as the original:
 * "Allowed (Binary)", "Blocked (Binary, Silent)", ... COLOR adds ANSI
 * colours. Returns a static or BUF string. */
const char *santactl_rule_describe(const Santa__Rule *rule, bool color,
				   char *buf, size_t size);

/* "SHA-256", "Certificate SHA-256", "Team ID", ... for "Added rule for
 * %s: %s." */
const char *santactl_rule_type_label(int type);

/* fileinfo's Rule field for a decision santad reports ("ALLOW"/"DENY"
 * and an event-log reason such as "BINARY"): "Allowed (Binary)",
 * "Blocked (Scope)", or "None" when DECISION is neither. */
const char *santactl_decision_describe(const char *decision, const char *reason,
				       bool color, char *buf, size_t size);
