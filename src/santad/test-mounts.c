/* SPDX-License-Identifier: Apache-2.0 */
/* Reading mountinfo and choosing what to watch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <cmocka.h>

#include "mounts.h"

static void test_parse_line(void **state)
{
	char line[] = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 "
		      "/dev/root rw,errors=continue";
	char *mp = NULL, *fstype = NULL;
	uint64_t id, dev;

	assert_true(mounts_parse_line(line, &id, &dev, &mp, &fstype));
	assert_int_equal(id, 36);
	assert_int_equal(dev, makedev(98, 0));
	assert_string_equal(mp, "/mnt/with space");
	assert_string_equal(fstype, "ext3");
}

static void test_parse_garbage(void **state)
{
	char a[] = "not a mountinfo line", b[] = "x 1 2:3 / / rw - tmpfs tmpfs rw";
	char c[] = "";
	char *mp, *fstype;
	uint64_t id, dev;

	assert_false(mounts_parse_line(a, &id, &dev, &mp, &fstype));
	assert_false(mounts_parse_line(b, &id, &dev, &mp, &fstype));
	assert_false(mounts_parse_line(c, &id, &dev, &mp, &fstype));
}

static void test_skip(void **state)
{
	const char *why;

	assert_true(mounts_skip_fstype("proc", &why));
	assert_true(mounts_skip_fstype("cgroup2", &why));
	assert_true(mounts_skip_fstype("nfs4", &why));
	assert_true(mounts_skip_fstype("fuse.sshfs", &why));
	assert_false(mounts_skip_fstype("ext4", &why));
	assert_false(mounts_skip_fstype("tmpfs", &why));
	assert_false(mounts_skip_fstype("overlay", &why));
	assert_false(mounts_skip_fstype("devtmpfs", &why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_skip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
