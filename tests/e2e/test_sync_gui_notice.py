# SPDX-License-Identifier: Apache-2.0
"""A sync that allows a program this machine was blocked from running tells
the user so: santad (LOCKDOWN) denies an exec on the private tmpfs and hands
the event to santasyncservice, which uploads it; the server then pushes an
allow rule for that hash, and once the sync succeeded santagui (terminal
mode) shows "<name> can now be run", once, as the original's notice. A
program allowed without having been blocked here gets no notice.
"""
import pytest

from conftest import copy_program, exec_status, sha256_of, wait_until
from guilib import GuiProcess, exec_blocked
from sync_server import rule
from synclib import server, synced  # noqa: F401 (fixtures)


@pytest.fixture
def lockdown(synced):
    """A santad in LOCKDOWN configured for SERVER, its first sync over."""
    return synced(ClientMode=2)


def test_allowed_after_block_is_announced(lockdown, server, build_dir, tmp_path):
    d = lockdown
    gui = GuiProcess(build_dir, d.config_path, tmp_path).start()
    try:
        gui.wait_registered()
        wanted = copy_program(d.watch_dir, "wanted-tool", extra=b"unblock-me")
        never = copy_program(d.watch_dir, "never-blocked", extra=b"just-allowed")
        sha = sha256_of(wanted)
        assert exec_blocked(wanted)
        assert gui.wait_messages("block", 1), gui.stderr()
        # santad hands the block to the service, which uploads it at once.
        assert wait_until(lambda: any(e["file_sha256"] == sha for e in server.events), 15), \
            d.stderr()
        assert not gui.messages("rule_sync")

        server.rules = [rule(sha, "ALLOWLIST"), rule(sha256_of(never), "ALLOWLIST")]
        res = d.sync()
        assert res.returncode == 0, res.stdout + res.stderr + d.stderr()
        assert server.errors == []
        assert exec_status(wanted) == 0

        got = gui.wait_messages("rule_sync", 1)
        assert got, gui.stderr() + d.stderr()
        assert [m["message"] for m in got] == ["wanted-tool can now be run"]
        assert got[0]["summary"] == "Santa: rules updated"
        assert 'Told the user that "wanted-tool" can now be run' in res.stdout

        # Said once: the next sync has nothing more to announce.
        assert d.sync().returncode == 0
        assert not wait_until(lambda: len(gui.messages("rule_sync")) > 1, 1.5)
        assert exec_status(never) == 0
    finally:
        gui.stop()


def test_no_notice_when_the_sync_fails(lockdown, server, build_dir, tmp_path):
    """Rules applied but postflight failed: the notice waits for a sync that
    succeeds."""
    d = lockdown
    gui = GuiProcess(build_dir, d.config_path, tmp_path).start()
    try:
        gui.wait_registered()
        prog = copy_program(d.watch_dir, "later", extra=b"later")
        sha = sha256_of(prog)
        assert exec_blocked(prog)
        assert wait_until(lambda: any(e["file_sha256"] == sha for e in server.events), 15), \
            d.stderr()

        server.rules = [rule(sha, "ALLOWLIST")]
        orig = server.answer

        def answer(stage, body):
            if stage == "postflight":
                return 404, None
            return orig(stage, body)
        server.answer = answer
        res = d.sync()
        assert res.returncode == 4, res.stdout
        assert exec_status(prog) == 0     # the rules are in place
        assert not wait_until(lambda: gui.messages("rule_sync"), 1.5)

        server.answer = orig
        server.rules = []
        assert d.sync().returncode == 0
        got = gui.wait_messages("rule_sync", 1)
        assert [m["message"] for m in got] == ["later can now be run"], gui.stderr()
    finally:
        gui.stop()
