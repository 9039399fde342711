# SPDX-License-Identifier: Apache-2.0
"""santad's watched paths: a mount stacked on a watched one (a second tmpfs
mounted over the test's private tmpfs, as /dev/shm mounted twice) is
watched, and its path is listed once, in `santactl status` and in the
count of the ready line. Only the test's own tmpfs is ever marked."""
import errno

from conftest import copy_program, exec_status, mount_tmpfs, umount, wait_until
from santactl_util import santactl, status_json


def test_ready_line_says_one_filesystem(santad):
    assert santad.wait_stderr("1 filesystem watched")
    assert "1 filesystems" not in santad.stderr()


def test_stacked_mount_is_listed_once(santad_factory):
    santad = santad_factory({"ClientMode": 2})
    mount_tmpfs(santad.watch_dir, size="16m")
    try:
        # santad marks the mount on top when mountinfo changes: the path
        # then carries two marks, the first one's and the new one's.
        assert wait_until(lambda: santad.stderr().count(
            f'Watching execs on the mount "{santad.watch_dir}"') == 2)
        assert status_json(santad)["daemon"]["watch_paths"] == [str(santad.watch_dir)]
        text = santactl(santad, "status").stdout
        assert text.count(str(santad.watch_dir)) == 1, text
        prog = copy_program(santad.watch_dir, "on-top", extra=b"stacked")
        assert exec_status(prog) == errno.EPERM
    finally:
        umount(santad.watch_dir)
