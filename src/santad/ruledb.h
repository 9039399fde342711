/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rules database: StateDirectory/rules.db, SQLite in WAL mode. Only the
 * main loop thread uses it; the decision path reads the ruleset built from
 * it (policy.h), never the database.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "santad.h"

typedef struct ruledb ruledb;

int ruledb_open(const char *path, ruledb **ret, char *errbuf, size_t errsize);
ruledb *ruledb_close(ruledb *db);

/* Every BINARY rule, as the decision path's index. */
int ruledb_load_ruleset(ruledb *db, ruleset **ret);

/* In one transaction: CLEANUP (Santa__RuleCleanup), then each rule (REMOVE
 * deletes, others insert or replace). Rules are already validated. */
int ruledb_apply(ruledb *db, const santad_rule *rules, size_t n, int cleanup,
		 uint64_t *ret_applied, char *errbuf, size_t errsize);

int ruledb_counts(ruledb *db, santad_rule_counts *ret);
/* The rule of IDENTIFIER and RULE_TYPE: 0, or -ENOENT. */
int ruledb_find(ruledb *db, const char *identifier, int rule_type, santad_rule *ret);
int ruledb_list(ruledb *db, int64_t after, size_t limit, santad_rule **ret_rules,
		size_t *ret_n, int64_t *ret_next);
