/* SPDX-License-Identifier: Apache-2.0 */
/* The event store: an event replaced by a fuller version of itself stays
 * one event; a table made before the key column still opens and works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "eventdb.h"

typedef struct fixture {
	char dir[64];
	char path[96];
	eventdb *db;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/test-eventdb-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/events.db", f->dir);
	assert_int_equal(eventdb_open(f->path, &f->db, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char side[128];

	eventdb_close(f->db);
	unlink(f->path);
	snprintf(side, sizeof(side), "%s-wal", f->path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", f->path);
	unlink(side);
	rmdir(f->dir);
	free(f);
	return 0;
}

static Santa__Event exec_event(int pid, double when, char *sha)
{
	Santa__Event e = SANTA__EVENT__INIT;

	e.file_sha256 = sha;
	e.file_path = "/opt/app/bin";
	e.file_name = "prog";
	e.decision = "BLOCK_UNKNOWN";
	e.pid = pid;
	e.execution_time = when;
	return e;
}

static Santa__Event binary_event(char *path, char *name, char *sha)
{
	Santa__Event e = SANTA__EVENT__INIT;

	e.file_sha256 = sha;
	e.file_path = path;
	e.file_name = name;
	e.decision = "BUNDLE_BINARY";
	e.file_bundle_hash = "bundlehash";
	return e;
}

static uint64_t count(eventdb *db)
{
	uint64_t n;

	assert_int_equal(eventdb_count(db, &n), 0);
	return n;
}

static void test_replace_keeps_one_event(void **state)
{
	fixture *f = *state;
	Santa__Event a = exec_event(10, 1700000000.123456, "aa");
	Santa__Event b = exec_event(11, 1700000000.123456, "aa");
	Santa__Event *batch[] = { &a, &b }, *found = NULL, *ptr;
	Santa__Event fuller = exec_event(10, 1700000000.123456, "aa");
	size_t dropped;
	int64_t old_id;

	assert_int_equal(eventdb_add(f->db, batch, 2, &dropped), 0);
	assert_int_equal(count(f->db), 2);
	old_id = a.id;

	assert_int_equal(eventdb_find(f->db, &fuller, &found), 0);
	assert_non_null(found);
	assert_int_equal(found->id, old_id);
	assert_int_equal(found->pid, 10);
	santa__event__free_unpacked(found, NULL);

	fuller.file_bundle_hash = "bundlehash";
	fuller.file_bundle_binary_count = 3;
	ptr = &fuller;
	assert_int_equal(eventdb_replace(f->db, &ptr, 1, &dropped), 0);
	assert_int_equal(dropped, 0);
	assert_int_equal(count(f->db), 2);
	assert_true(fuller.id > b.id);

	assert_int_equal(eventdb_find(f->db, &a, &found), 0);
	assert_non_null(found);
	assert_int_equal(found->id, fuller.id);
	assert_string_equal(found->file_bundle_hash, "bundlehash");
	assert_int_equal(found->file_bundle_binary_count, 3);
	santa__event__free_unpacked(found, NULL);

	/* The other execution is untouched. */
	assert_int_equal(eventdb_find(f->db, &b, &found), 0);
	assert_non_null(found);
	assert_int_equal(found->id, b.id);
	assert_string_equal(found->file_bundle_hash, "");
	santa__event__free_unpacked(found, NULL);
}

static void test_replace_of_an_unknown_event_stores_it(void **state)
{
	fixture *f = *state;
	Santa__Event gone = exec_event(12, 1700000001.5, "bb");
	Santa__Event *ptr = &gone, *found = NULL;
	size_t dropped;

	assert_int_equal(eventdb_find(f->db, &gone, &found), 0);
	assert_null(found);
	assert_int_equal(eventdb_replace(f->db, &ptr, 1, &dropped), 0);
	assert_true(gone.id > 0);
	assert_int_equal(count(f->db), 1);
}

static void test_bundle_binaries_are_stored_once(void **state)
{
	fixture *f = *state;
	Santa__Event one = binary_event("/opt/app/bin", "one", "11");
	Santa__Event two = binary_event("/opt/app/bin", "two", "22");
	Santa__Event *batch[] = { &one, &two };
	size_t dropped;

	assert_int_equal(eventdb_replace(f->db, batch, 2, &dropped), 0);
	assert_int_equal(count(f->db), 2);
	/* The same bundle hashed again, for another block. */
	assert_int_equal(eventdb_replace(f->db, batch, 2, &dropped), 0);
	assert_int_equal(count(f->db), 2);
	/* Another bundle holding the same file is another event. */
	one.file_bundle_hash = "otherbundle";
	assert_int_equal(eventdb_replace(f->db, batch, 1, &dropped), 0);
	assert_int_equal(count(f->db), 3);
}

static void test_table_without_key_column(void **state)
{
	fixture *f = *state;
	Santa__Event e = exec_event(13, 1700000002.25, "cc");
	Santa__Event *ptr = &e, *found = NULL, **listed = NULL;
	size_t dropped, n = 0;
	sqlite3 *raw;
	char err[256];

	/* A table as the first release made it, with one event in it. */
	f->db = eventdb_close(f->db);
	unlink(f->path);
	assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
	assert_int_equal(sqlite3_exec(raw, "CREATE TABLE events (id INTEGER PRIMARY KEY "
				      "AUTOINCREMENT, created INTEGER NOT NULL, event BLOB NOT "
				      "NULL); INSERT INTO events (created, event) "
				      "VALUES (1, x'');", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);

	assert_int_equal(eventdb_open(f->path, &f->db, err, sizeof(err)), 0);
	assert_int_equal(count(f->db), 1);
	assert_int_equal(eventdb_find(f->db, &e, &found), 0);
	assert_null(found);
	assert_int_equal(eventdb_replace(f->db, &ptr, 1, &dropped), 0);
	assert_int_equal(count(f->db), 2);
	assert_int_equal(eventdb_list(f->db, 0, 10, &listed, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		santa__event__free_unpacked(listed[i], NULL);
	free(listed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replace_keeps_one_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_of_an_unknown_event_stores_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bundle_binaries_are_stored_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_table_without_key_column, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
