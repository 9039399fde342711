/* SPDX-License-Identifier: Apache-2.0 */
#include "ruledb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "santa.pb-c.h"

#define RULEDB_SCHEMA_VERSION 1
#define RULEDB_LIST_MAX 1000u
#define RULEDB_CHECKPOINT_RULES 10000u

struct ruledb {
	sqlite3 *db;
	sqlite3_stmt *insert;
	sqlite3_stmt *remove;
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS rules ("
	" identifier TEXT NOT NULL,"
	" rule_type INTEGER NOT NULL,"
	" policy INTEGER NOT NULL,"
	" custom_msg TEXT,"
	" custom_url TEXT,"
	" creation_time INTEGER NOT NULL DEFAULT 0,"
	" file_bundle_hash TEXT,"
	" file_bundle_binary_count INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (identifier, rule_type));"
	"PRAGMA user_version = 1;";

static int sql_err(sqlite3 *db, const char *what, char *errbuf, size_t errsize)
{
	if (errbuf)
		snprintf(errbuf, errsize, "%s: %s", what, db ? sqlite3_errmsg(db) : "no database");
	return -EIO;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int prepare(ruledb *r, char *errbuf, size_t errsize)
{
	if (sqlite3_prepare_v3(r->db,
			       "INSERT OR REPLACE INTO rules (identifier, rule_type, policy,"
			       " custom_msg, custom_url, creation_time, file_bundle_hash,"
			       " file_bundle_binary_count) VALUES (?,?,?,?,?,?,?,?)",
			       -1, SQLITE_PREPARE_PERSISTENT, &r->insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(r->db, "DELETE FROM rules WHERE identifier = ? AND rule_type = ?",
			       -1, SQLITE_PREPARE_PERSISTENT, &r->remove, NULL) != SQLITE_OK)
		return sql_err(r->db, "preparing rule statements", errbuf, errsize);
	return 0;
}

int ruledb_open(const char *path, ruledb **ret, char *errbuf, size_t errsize)
{
	ruledb *r = calloc(1, sizeof(*r));
	int version = 0, err;
	sqlite3_stmt *st;

	*ret = NULL;
	if (!r)
		return -ENOMEM;
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		err = sql_err(r->db, path, errbuf, errsize);
		goto fail;
	}
	sqlite3_busy_timeout(r->db, 2000);
	if (exec_sql(r->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;") < 0 ||
	    exec_sql(r->db, schema_sql) < 0) {
		err = sql_err(r->db, path, errbuf, errsize);
		goto fail;
	}
	if (sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (version != RULEDB_SCHEMA_VERSION) {
		snprintf(errbuf, errsize, "%s: schema version %d, expected %d", path, version,
			 RULEDB_SCHEMA_VERSION);
		err = -EPROTO;
		goto fail;
	}
	err = prepare(r, errbuf, errsize);
	if (err < 0)
		goto fail;
	*ret = r;
	return 0;
fail:
	ruledb_close(r);
	return err;
}

ruledb *ruledb_close(ruledb *r)
{
	if (!r)
		return NULL;
	sqlite3_finalize(r->insert);
	sqlite3_finalize(r->remove);
	sqlite3_close(r->db);
	free(r);
	return NULL;
}

int ruledb_load_ruleset(ruledb *r, ruleset **ret)
{
	ruleset_change *ch = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, err = 0;

	*ret = NULL;
	if (sqlite3_prepare_v2(r->db, "SELECT identifier, policy, custom_msg, custom_url "
			       "FROM rules WHERE rule_type = 1000", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			ruleset_change *p = realloc(ch, ncap * sizeof(*ch));

			if (!p) {
				err = -ENOMEM;
				break;
			}
			ch = p;
			cap = ncap;
		}
		/* Rows were validated on the way in; one that was not (a file
		 * edited by hand) is skipped rather than trusted. */
		if (!id || santa_sha256_from_hex(id, ch[n].sha256) < 0)
			continue;
		ch[n].policy = (uint8_t)sqlite3_column_int(st, 1);
		/* The ruleset copies the strings before the statement moves on. */
		ch[n].msg = (const char *)sqlite3_column_text(st, 2);
		ch[n].url = (const char *)sqlite3_column_text(st, 3);
		if (ch[n].msg)
			ch[n].msg = strdup(ch[n].msg);
		if (ch[n].url)
			ch[n].url = strdup(ch[n].url);
		n++;
	}
	if (!err && rc != SQLITE_DONE)
		err = -EIO;
	sqlite3_finalize(st);
	if (!err) {
		*ret = ruleset_apply(NULL, false, ch, n);
		if (!*ret)
			err = -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		free((char *)ch[i].msg);
		free((char *)ch[i].url);
	}
	free(ch);
	return err;
}

static void bind_text_opt(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int apply_one(ruledb *r, const santad_rule *rule)
{
	sqlite3_stmt *st = rule->policy == SANTA__POLICY__REMOVE ? r->remove : r->insert;
	int rc;

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sqlite3_bind_text(st, 1, rule->identifier, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, rule->rule_type);
	if (st == r->insert) {
		sqlite3_bind_int(st, 3, rule->policy);
		bind_text_opt(st, 4, rule->custom_msg);
		bind_text_opt(st, 5, rule->custom_url);
		sqlite3_bind_int64(st, 6, rule->creation_time);
		bind_text_opt(st, 7, rule->file_bundle_hash);
		sqlite3_bind_int64(st, 8, rule->file_bundle_binary_count);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static const char *cleanup_sql(int cleanup)
{
	switch (cleanup) {
	case SANTA__RULE_CLEANUP__CLEANUP_ALL:
		return "DELETE FROM rules";
	case SANTA__RULE_CLEANUP__CLEANUP_NON_TRANSITIVE:
		return "DELETE FROM rules WHERE policy != 6";
	default:
		return NULL;
	}
}

int ruledb_apply(ruledb *r, const santad_rule *rules, size_t n, int cleanup,
		 uint64_t *ret_applied, char *errbuf, size_t errsize)
{
	const char *clean = cleanup_sql(cleanup);
	uint64_t applied = 0;

	*ret_applied = 0;
	if (exec_sql(r->db, "BEGIN IMMEDIATE") < 0)
		return sql_err(r->db, "starting the rules transaction", errbuf, errsize);
	if (clean && exec_sql(r->db, clean) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (apply_one(r, &rules[i]) < 0)
			goto fail;
		applied += (uint64_t)sqlite3_changes(r->db) > 0 ||
			   rules[i].policy != SANTA__POLICY__REMOVE;
	}
	if (exec_sql(r->db, "COMMIT") < 0)
		goto fail;
	*ret_applied = applied;
	/* A large set (a clean sync, an import) leaves a WAL as large as the
	 * database: fold it back now rather than at some later commit. */
	if (n >= RULEDB_CHECKPOINT_RULES)
		(void)exec_sql(r->db, "PRAGMA wal_checkpoint(TRUNCATE)");
	return 0;
fail:
	sql_err(r->db, "writing rules", errbuf, errsize);
	(void)exec_sql(r->db, "ROLLBACK");
	return -EIO;
}

static void count_row(santad_rule_counts *c, int type, int rule_policy, uint64_t n)
{
	switch (type) {
	case SANTA__RULE_TYPE__BINARY:
		c->binary += n;
		break;
	case SANTA__RULE_TYPE__CERTIFICATE:
		c->certificate += n;
		break;
	case SANTA__RULE_TYPE__TEAMID:
		c->teamid += n;
		break;
	case SANTA__RULE_TYPE__SIGNINGID:
		c->signingid += n;
		break;
	case SANTA__RULE_TYPE__CDHASH:
		c->cdhash += n;
		break;
	default:
		break;
	}
	if (rule_policy == SANTA__POLICY__ALLOWLIST_COMPILER)
		c->compiler += n;
	else if (rule_policy == SANTA__POLICY__ALLOWLIST_TRANSITIVE)
		c->transitive += n;
}

int ruledb_counts(ruledb *r, santad_rule_counts *ret)
{
	sqlite3_stmt *st;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (sqlite3_prepare_v2(r->db, "SELECT rule_type, policy, COUNT(*) FROM rules "
			       "GROUP BY rule_type, policy", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		count_row(ret, sqlite3_column_int(st, 0), sqlite3_column_int(st, 1),
			  (uint64_t)sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s ? strdup(s) : NULL;
}

/* Columns: identifier, rule_type, policy, custom_msg, custom_url,
 * creation_time, file_bundle_hash, file_bundle_binary_count. */
static int row_to_rule(sqlite3_stmt *st, int first, santad_rule *out)
{
	memset(out, 0, sizeof(*out));
	out->identifier = col_dup(st, first);
	out->rule_type = sqlite3_column_int(st, first + 1);
	out->policy = sqlite3_column_int(st, first + 2);
	out->custom_msg = col_dup(st, first + 3);
	out->custom_url = col_dup(st, first + 4);
	out->creation_time = sqlite3_column_int64(st, first + 5);
	out->file_bundle_hash = col_dup(st, first + 6);
	out->file_bundle_binary_count = (uint32_t)sqlite3_column_int64(st, first + 7);
	if (!out->identifier) {
		santad_rule_done(out);
		return -ENOMEM;
	}
	return 0;
}

#define RULE_COLUMNS "identifier, rule_type, policy, custom_msg, custom_url, creation_time," \
		     " file_bundle_hash, file_bundle_binary_count"

int ruledb_find(ruledb *r, const char *identifier, int rule_type, santad_rule *ret)
{
	sqlite3_stmt *st;
	int rc, err;

	if (sqlite3_prepare_v2(r->db, "SELECT " RULE_COLUMNS " FROM rules "
			       "WHERE identifier = ? AND rule_type = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, identifier, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, rule_type);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = row_to_rule(st, 0, ret);
	else
		err = rc == SQLITE_DONE ? -ENOENT : -EIO;
	sqlite3_finalize(st);
	return err;
}

int ruledb_list(ruledb *r, int64_t after, size_t limit, santad_rule **ret_rules,
		size_t *ret_n, int64_t *ret_next)
{
	santad_rule *rules;
	int64_t last = 0;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc, err = 0;

	*ret_rules = NULL;
	*ret_n = 0;
	*ret_next = 0;
	if (limit == 0 || limit > RULEDB_LIST_MAX)
		limit = RULEDB_LIST_MAX;
	rules = calloc(limit, sizeof(*rules));
	if (!rules)
		return -ENOMEM;
	if (sqlite3_prepare_v2(r->db, "SELECT rowid, " RULE_COLUMNS " FROM rules "
			       "WHERE rowid > ? ORDER BY rowid LIMIT ?", -1, &st, NULL) != SQLITE_OK) {
		free(rules);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
	while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			/* One more row exists: there is a next page. */
			*ret_next = last;
			break;
		}
		last = sqlite3_column_int64(st, 0);
		err = row_to_rule(st, 1, &rules[n]);
		if (err == 0)
			n++;
	}
	if (err == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = -EIO;
	sqlite3_finalize(st);
	if (err < 0) {
		santad_rules_free(rules, n);
		*ret_next = 0;
		return err;
	}
	*ret_rules = rules;
	*ret_n = n;
	return 0;
}
