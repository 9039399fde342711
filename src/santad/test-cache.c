/* SPDX-License-Identifier: Apache-2.0 */
/* The decision cache: identity and stamps, deny expiry, removal, growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

static cache_entry entry(uint64_t dev, uint64_t ino, santad_decision d, uint64_t now)
{
	cache_entry e = { .decision = d, .stamp_usec = now, .reason = SANTAD_REASON_BINARY };

	e.key.dev = dev;
	e.key.ino = ino;
	e.key.mtime_ns = 100;
	e.key.ctime_ns = 200;
	e.key.size = 300;
	return e;
}

static void test_hit_and_stamps(void **state)
{
	cache *c;
	cache_entry e = entry(1, 42, SANTAD_DECISION_ALLOW, 0), got;
	file_key k = e.key;

	assert_int_equal(cache_new(&c), 0);
	cache_insert(c, &e);
	assert_true(cache_lookup(c, &k, 10 * CACHE_DENY_TTL_USEC, &got));
	assert_int_equal(got.decision, SANTAD_DECISION_ALLOW);
	/* Same inode, new content: a miss, and the stale entry is gone. */
	k.mtime_ns++;
	assert_false(cache_lookup(c, &k, 0, &got));
	assert_int_equal(cache_count(c), 0);
	cache_free(c);
}

static void test_deny_expires(void **state)
{
	cache *c;
	cache_entry e = entry(1, 7, SANTAD_DECISION_DENY, 1000), got;

	assert_int_equal(cache_new(&c), 0);
	cache_insert(c, &e);
	assert_true(cache_lookup(c, &e.key, 1000 + CACHE_DENY_TTL_USEC - 1, &got));
	assert_false(cache_lookup(c, &e.key, 1000 + CACHE_DENY_TTL_USEC, &got));
	cache_free(c);
}

static void test_many_remove_and_clear(void **state)
{
	cache *c;
	cache_entry got;
	size_t n = 20000;

	assert_int_equal(cache_new(&c), 0);
	for (size_t i = 0; i < n; i++) {
		cache_entry e = entry(i % 3, i, i % 5 ? SANTAD_DECISION_ALLOW :
				      SANTAD_DECISION_DENY, 0);

		assert_false(cache_insert(c, &e));
	}
	assert_int_equal(cache_count(c), n);
	assert_int_equal(cache_count_dev(c, 0) + cache_count_dev(c, 1) + cache_count_dev(c, 2), n);
	/* Removing keeps every other entry reachable (backward shift). */
	for (size_t i = 0; i < n; i += 2)
		cache_remove_inode(c, i % 3, i);
	for (size_t i = 1; i < n; i += 2) {
		cache_entry e = entry(i % 3, i, SANTAD_DECISION_NONE, 0);

		assert_true(cache_lookup(c, &e.key, 1, &got));
	}
	cache_clear_denies(c);
	for (size_t i = 1; i < n; i += 2) {
		cache_entry e = entry(i % 3, i, SANTAD_DECISION_NONE, 0);

		assert_int_equal(cache_lookup(c, &e.key, 1, &got), i % 5 != 0);
	}
	cache_clear(c);
	assert_int_equal(cache_count(c), 0);
	cache_free(c);
}

static void test_full_cache_empties(void **state)
{
	bool emptied = false;
	cache *c;

	assert_int_equal(cache_new(&c), 0);
	for (uint64_t i = 0; i <= CACHE_MAX_ENTRIES && !emptied; i++) {
		cache_entry e = entry(9, i, SANTAD_DECISION_ALLOW, 0);

		emptied = cache_insert(c, &e);
	}
	assert_true(emptied);
	assert_int_equal(cache_count(c), 1);
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_stamps),
		cmocka_unit_test(test_deny_expires),
		cmocka_unit_test(test_many_remove_and_clear),
		cmocka_unit_test(test_full_cache_empties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
