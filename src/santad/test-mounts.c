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

/* /dev/shm mounted twice (a second tmpfs over the first), / with
 * something stacked on it twice, and a bind mount of /dev/shm's tmpfs
 * elsewhere, which is not stacked on anything. */
static const char sample[] =
	"27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	"24 27 0:6 / /dev rw,relatime shared:2 - devtmpfs udev rw\n"
	"25 24 0:23 / /dev/shm rw,relatime shared:3 - tmpfs tmpfs rw\n"
	"26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw\n"
	"90 25 0:50 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=1024k\n"
	"91 27 0:23 / /mnt/shm rw,relatime - tmpfs tmpfs rw\n"
	"92 91 0:51 / /mnt/shm/sub rw,relatime - tmpfs tmpfs rw\n"
	"93 27 8:2 / / rw,relatime - ext4 /dev/sda2 rw\n"
	"94 93 8:3 / / rw,relatime - ext4 /dev/sda3 rw\n"
	"95 94 0:52 / /with\\040space rw - tmpfs tmpfs rw\n"
	"96 95 0:53 / /with\\040space rw - tmpfs tmpfs rw\n";

static void test_flag_covered(void **state)
{
	char text[sizeof(sample)], *line, *save = NULL;
	mounts_entry e[16];
	size_t n = 0;

	memcpy(text, sample, sizeof(sample));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		assert_true(mounts_parse_entry(line, &e[n++]));
	assert_int_equal(n, 11);
	assert_int_equal(e[4].parent_id, 25);
	mounts_flag_covered(e, n);

	/* Each path is left once: the mount on top. */
	for (size_t i = 0; i < n; i++) {
		size_t same = 0;

		for (size_t j = 0; j < n; j++)
			same += !e[j].covered && !strcmp(e[i].mount_point, e[j].mount_point);
		assert_int_equal(same, 1);
	}
	assert_true(e[0].covered);        /* / under 93, 93 under 94 */
	assert_true(e[7].covered);
	assert_false(e[8].covered);
	assert_false(e[1].covered);       /* /dev: others are mounted inside it */
	assert_true(e[2].covered);        /* the first /dev/shm */
	assert_false(e[4].covered);
	assert_int_equal(e[4].dev, makedev(0, 50));
	assert_false(e[3].covered);
	assert_false(e[5].covered);       /* /mnt/shm: same tmpfs, another path */
	assert_false(e[6].covered);
	assert_true(e[9].covered);
	assert_string_equal(e[10].mount_point, "/with space");
	assert_false(e[10].covered);

	/* Flags are recomputed: the one on top gone, the first is back. */
	mounts_flag_covered(e, 4);
	assert_false(e[2].covered);
	mounts_flag_covered(e, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_flag_covered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
