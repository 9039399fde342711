/* SPDX-License-Identifier: Apache-2.0 */
/* Sync settings: persisted, layered, an empty regex clears the server's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "syncstate.h"

static char dir[] = "/tmp/test-syncstate-XXXXXX";
static char path[256];

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/sync-state.json", dir);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	rmdir(dir);
	return 0;
}

static void test_round_trip(void **state)
{
	Santa__SyncSettings upd = SANTA__SYNC_SETTINGS__INIT;
	char err[256] = "";
	syncstate st, again;

	assert_int_equal(syncstate_load(&st, path, err, sizeof(err)), 0);  /* missing: ok */
	assert_false(st.s.has_client_mode);
	upd.has_client_mode = 1;
	upd.client_mode = SANTA__CLIENT_MODE__LOCKDOWN;
	upd.has_blocked_path_regex = 1;
	upd.blocked_path_regex = (char *)"^/tmp/";
	upd.has_last_full_sync = 1;
	upd.last_full_sync = 1700000000;
	assert_int_equal(syncstate_update(&st, &upd, err, sizeof(err)), 0);
	syncstate_done(&st);

	assert_int_equal(syncstate_load(&again, path, err, sizeof(err)), 0);
	assert_true(again.s.has_client_mode);
	assert_int_equal(again.s.client_mode, SANTA__CLIENT_MODE__LOCKDOWN);
	assert_string_equal(again.s.blocked_path_regex, "^/tmp/");
	assert_int_equal(again.s.last_full_sync, 1700000000);
	assert_false(again.s.has_allowed_path_regex);

	/* An empty regex removes the server's. */
	memset(&upd, 0, sizeof(upd));
	santa__sync_settings__init(&upd);
	upd.has_blocked_path_regex = 1;
	upd.blocked_path_regex = (char *)"";
	assert_int_equal(syncstate_update(&again, &upd, err, sizeof(err)), 0);
	assert_false(again.s.has_blocked_path_regex);
	assert_true(again.s.has_client_mode);
	syncstate_done(&again);
}

static void test_damaged_file(void **state)
{
	char err[256] = "";
	syncstate st;
	FILE *f = fopen(path, "w");

	fputs("{\"client_mode\": \"two\"}", f);
	fclose(f);
	assert_int_not_equal(syncstate_load(&st, path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "client_mode"));
	assert_false(st.s.has_client_mode);
	syncstate_done(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
