/* SPDX-License-Identifier: Apache-2.0 */
#include "eventdb.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

struct eventdb {
	sqlite3 *db;
	uint64_t count;                 /* rows, kept in step with the table */
};

static int exec_sql(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* The key column came after the first release of the table: add it to a
 * table made without it. Rows from then have none, and are never
 * replaced. */
static int ensure_key_column(sqlite3 *db)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, "SELECT key FROM events LIMIT 0", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_finalize(st);
		return 0;
	}
	return exec_sql(db, "ALTER TABLE events ADD COLUMN key TEXT");
}

static int count_rows(eventdb *e)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(e->db, "SELECT COUNT(*) FROM events", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		e->count = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

int eventdb_open(const char *path, eventdb **ret, char *errbuf, size_t errsize)
{
	eventdb *e = calloc(1, sizeof(*e));

	*ret = NULL;
	if (!e)
		return -ENOMEM;
	if (sqlite3_open_v2(path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    exec_sql(e->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
			    "CREATE TABLE IF NOT EXISTS events ("
			    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
			    " created INTEGER NOT NULL,"
			    " event BLOB NOT NULL,"
			    " key TEXT);") < 0 ||
	    ensure_key_column(e->db) < 0 ||
	    exec_sql(e->db, "CREATE INDEX IF NOT EXISTS events_key ON events (key);") < 0 ||
	    count_rows(e) < 0) {
		snprintf(errbuf, errsize, "%s: %s", path,
			 e->db ? sqlite3_errmsg(e->db) : "out of memory");
		eventdb_close(e);
		return -EIO;
	}
	sqlite3_busy_timeout(e->db, 2000);
	*ret = e;
	return 0;
}

eventdb *eventdb_close(eventdb *e)
{
	if (!e)
		return NULL;
	sqlite3_close(e->db);
	free(e);
	return NULL;
}

static bool is_bundle_binary(const Santa__Event *ev)
{
	return ev->decision && strcmp(ev->decision, "BUNDLE_BINARY") == 0;
}

/* What makes two events the same event, malloc'd: an execution is its
 * pid, time and file; a bundle's binary is its bundle and its path. */
static char *event_key(const Santa__Event *ev)
{
	char *key;
	int r;

	if (is_bundle_binary(ev))
		r = asprintf(&key, "bundle|%s|%s|%s/%s", ev->file_bundle_hash, ev->file_sha256,
			     ev->file_path, ev->file_name);
	else
		r = asprintf(&key, "exec|%d|%.6f|%s", (int)ev->pid, ev->execution_time,
			     ev->file_sha256);
	return r < 0 ? NULL : key;
}

static int insert_one(sqlite3_stmt *st, Santa__Event *ev)
{
	size_t len = santa__event__get_packed_size(ev);
	uint8_t *buf = malloc(len ? len : 1);
	char *key = event_key(ev);
	int rc;

	if (!buf || !key) {
		free(buf);
		free(key);
		return -ENOMEM;
	}
	santa__event__pack(ev, buf);
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	free(buf);
	free(key);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

#define INSERT_SQL "INSERT INTO events (created, event, key) VALUES (?, ?, ?)"

int eventdb_add(eventdb *e, Santa__Event *const *events, size_t n, size_t *ret_dropped)
{
	sqlite3_stmt *st;
	size_t stored = 0;
	int err = 0;

	*ret_dropped = 0;
	if (!n)
		return 0;
	if (sqlite3_prepare_v2(e->db, INSERT_SQL, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (exec_sql(e->db, "BEGIN IMMEDIATE") < 0) {
		sqlite3_finalize(st);
		return -EIO;
	}
	for (size_t i = 0; i < n && !err; i++) {
		if (e->count + stored >= EVENTDB_MAX) {
			(*ret_dropped)++;
			continue;
		}
		/* The row id is the event's id: it is not stored in the blob. */
		events[i]->id = 0;
		err = insert_one(st, events[i]);
		if (!err) {
			events[i]->id = sqlite3_last_insert_rowid(e->db);
			stored++;
		}
	}
	sqlite3_finalize(st);
	if (err || exec_sql(e->db, "COMMIT") < 0) {
		(void)exec_sql(e->db, "ROLLBACK");
		return err ? err : -EIO;
	}
	e->count += stored;
	return 0;
}

int eventdb_find(eventdb *e, const Santa__Event *ev, Santa__Event **ret)
{
	char *key = event_key(ev);
	sqlite3_stmt *st;
	int rc, err = 0;

	*ret = NULL;
	if (!key)
		return -ENOMEM;
	if (sqlite3_prepare_v2(e->db, "SELECT id, event FROM events WHERE key = ? "
			       "ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		free(key);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 1);
		int len = sqlite3_column_bytes(st, 1);

		*ret = santa__event__unpack(NULL, (size_t)len, blob);
		if (*ret)
			(*ret)->id = sqlite3_column_int64(st, 0);
	} else if (rc != SQLITE_DONE) {
		err = -EIO;
	}
	sqlite3_finalize(st);
	free(key);
	return err;
}

/* Delete the rows of KEY, then insert EV; in the caller's transaction. */
static int replace_one(eventdb *e, Santa__Event *ev, size_t *ret_removed, bool *ret_stored)
{
	char *key = event_key(ev);
	sqlite3_stmt *st = NULL;
	int err = -EIO;

	*ret_removed = 0;
	*ret_stored = false;
	if (!key)
		return -ENOMEM;
	if (sqlite3_prepare_v2(e->db, "DELETE FROM events WHERE key = ?", -1, &st,
			       NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	*ret_removed = (size_t)sqlite3_changes(e->db);
	sqlite3_finalize(st);
	st = NULL;
	if (e->count - *ret_removed >= EVENTDB_MAX) {
		err = 0;
		goto out;
	}
	if (sqlite3_prepare_v2(e->db, INSERT_SQL, -1, &st, NULL) != SQLITE_OK)
		goto out;
	ev->id = 0;
	err = insert_one(st, ev);
	if (!err) {
		ev->id = sqlite3_last_insert_rowid(e->db);
		*ret_stored = true;
	}
out:
	sqlite3_finalize(st);
	free(key);
	return err;
}

int eventdb_replace(eventdb *e, Santa__Event *const *events, size_t n, size_t *ret_dropped)
{
	uint64_t count = e->count;
	int err = 0;

	*ret_dropped = 0;
	if (!n)
		return 0;
	if (exec_sql(e->db, "BEGIN IMMEDIATE") < 0)
		return -EIO;
	for (size_t i = 0; i < n && !err; i++) {
		size_t removed;
		bool stored;

		err = replace_one(e, events[i], &removed, &stored);
		e->count -= removed;
		e->count += stored;
		if (!err && !stored)
			(*ret_dropped)++;
	}
	if (err || exec_sql(e->db, "COMMIT") < 0) {
		(void)exec_sql(e->db, "ROLLBACK");
		e->count = count;
		return err ? err : -EIO;
	}
	return 0;
}

int eventdb_count(eventdb *e, uint64_t *ret)
{
	*ret = e->count;
	return 0;
}

int eventdb_list(eventdb *e, int64_t after_id, size_t limit, Santa__Event ***ret, size_t *ret_n)
{
	Santa__Event **v;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc;

	*ret = NULL;
	*ret_n = 0;
	if (!limit || limit > EVENTDB_LIST_MAX)
		limit = EVENTDB_LIST_MAX;
	v = calloc(limit, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (sqlite3_prepare_v2(e->db, "SELECT id, event FROM events WHERE id > ? "
			       "ORDER BY id LIMIT ?", -1, &st, NULL) != SQLITE_OK) {
		free(v);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
		const void *blob = sqlite3_column_blob(st, 1);
		int len = sqlite3_column_bytes(st, 1);
		Santa__Event *ev = santa__event__unpack(NULL, (size_t)len, blob);

		/* A row that does not unpack (a damaged file) is left out; its
		 * id still advances the caller's position. */
		if (!ev)
			continue;
		ev->id = sqlite3_column_int64(st, 0);
		v[n++] = ev;
	}
	sqlite3_finalize(st);
	*ret = v;
	*ret_n = n;
	return 0;
}

int eventdb_remove(eventdb *e, const int64_t *ids, size_t n)
{
	sqlite3_stmt *st;
	int err = 0;

	if (!n)
		return 0;
	if (sqlite3_prepare_v2(e->db, "DELETE FROM events WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	if (exec_sql(e->db, "BEGIN IMMEDIATE") < 0) {
		sqlite3_finalize(st);
		return -EIO;
	}
	for (size_t i = 0; i < n && !err; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, ids[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			err = -EIO;
	}
	sqlite3_finalize(st);
	if (err || exec_sql(e->db, "COMMIT") < 0) {
		(void)exec_sql(e->db, "ROLLBACK");
		return -EIO;
	}
	return count_rows(e);
}
