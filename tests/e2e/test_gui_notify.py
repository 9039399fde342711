# SPDX-License-Identifier: Apache-2.0
"""santagui's notifications: a blocked exec on the watched tmpfs reaches the
user's notification server with the right text and URL; notifications
raised before any GUI registered arrive once one does; of two GUIs only the
active one (without logind: the user's newest registration) gets them; a
block goes only to the GUI of the user who ran the program.
"""
import hashlib
import subprocess

import pytest

from conftest import copy_program, run_as, wait_until
from guilib import GuiProcess, NotifyServer, SessionBus, exec_blocked

URL = "https://santa.example/blocked?sha=%file_sha%&m=%machine_id%&u=%username%&x=%nope%"
BLOCK_BY_RULE_MSG = "Ask the helpdesk|first"


@pytest.fixture
def desktop(tmp_path):
    bus = SessionBus(tmp_path).start()
    server = NotifyServer(bus, tmp_path)
    try:
        server.start()
        yield bus, server
    finally:
        server.stop()
        bus.stop()


def fake_xdg_open(bindir, record):
    """An xdg-open that records the URL it was asked to open."""
    bindir.mkdir(parents=True, exist_ok=True)
    script = bindir / "xdg-open"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{record}'\n")
    script.chmod(0o755)


@pytest.mark.parametrize("santad", [{"ClientMode": 2, "MachineID": "test-machine",
                                     "EventDetailURL": URL,
                                     "EventDetailText": "More"}], indirect=True)
def test_block_shows_desktop_notification(santad, desktop, build_dir, tmp_path, tmpfs):
    bus, server = desktop
    opened = tmp_path / "opened.txt"
    fake_xdg_open(tmp_path / "bin", opened)
    env = bus.env()
    env["PATH"] = f"{tmp_path / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    gui = GuiProcess(build_dir, santad.config_path, tmp_path)
    gui.start(terminal=False, env=env)
    try:
        gui.wait_registered()
        prog = copy_program(tmpfs, "forbidden", extra=b"desktop")
        assert exec_blocked(prog)
        got = server.wait(lambda n: n["summary"] == "Santa blocked forbidden")
        assert got, gui.stderr()
        n = got[0]
        sha = hashlib.sha256(prog.read_bytes()).hexdigest()
        assert n["app_name"] == "Santa"
        assert "because its trustworthiness cannot be determined" in n["body"]
        assert f"Path: {prog}" in n["body"]
        assert f"Identifier: {sha}" in n["body"]
        assert "Reason: unknown application in Lockdown mode" in n["body"]
        assert n["actions"] == ["details", "More"]
        assert n["urgency"] == 2

        server.invoke_action(n["id"], "details")
        want = (f"https://santa.example/blocked?sha={sha}&m=test-machine&u=root&x=")
        assert wait_until(lambda: opened.exists() and opened.read_text().strip(), 10), \
            gui.stderr()
        assert opened.read_text().strip() == want
    finally:
        gui.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2, "EventDetailURL": URL}],
                         indirect=True)
def test_block_by_rule_in_terminal(santad, build_dir, tmp_path, tmpfs):
    """A block rule's custom message and the rule itself are shown."""
    prog = copy_program(tmpfs, "ruled", extra=b"rule")
    sha = hashlib.sha256(prog.read_bytes()).hexdigest()
    santactl = build_dir / "src" / "santactl" / "santactl"
    r = subprocess.run(
        [str(santactl), "--config", str(santad.config_path), "rule", "--block",
         "--sha256", sha, "--message", BLOCK_BY_RULE_MSG], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    gui = GuiProcess(build_dir, santad.config_path, tmp_path).start()
    try:
        gui.wait_registered()
        assert exec_blocked(prog)
        blocks = gui.wait_messages("block", 1)
        assert blocks, gui.stderr()
        b = blocks[0]
        assert b["message"] == BLOCK_BY_RULE_MSG
        assert b["reason"] == "BINARY"
        assert f"Rule: BINARY BLOCKLIST rule, identifier {sha}" in b["body"]
        assert b["url"].startswith(f"https://santa.example/blocked?sha={sha}&m=")
    finally:
        gui.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2}], indirect=True)
def test_notifications_before_registration_arrive_after(santad, build_dir, tmp_path, tmpfs):
    progs = [copy_program(tmpfs, f"early{i}", extra=bytes([i])) for i in range(3)]
    for p in progs:
        assert exec_blocked(p)
    # Every denial is logged before any GUI exists.
    assert santad.wait_log(lambda l: "decision=DENY" in l and "early2" in l)
    # Oldest first, in the order santad recorded them: the decision threads
    # may hand over two quick denials in either order.
    denied = [str(p) for line in santad.log_lines() if "decision=DENY" in line
              for p in progs if line.endswith(f"|path={p}")]
    assert sorted(denied) == sorted(str(p) for p in progs)
    gui = GuiProcess(build_dir, santad.config_path, tmp_path).start()
    try:
        gui.wait_registered()
        blocks = gui.wait_messages("block", 3)
        assert [b["path"] for b in blocks] == denied, gui.stderr()
        assert all(b["raised_at"] > 0 for b in blocks)
    finally:
        gui.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2}], indirect=True)
def test_only_the_active_gui_gets_notifications(santad, build_dir, tmp_path, tmpfs):
    """Of one user's GUIs (without logind) the newest gets the user's
    blocks: the older one, standing for a session that is not active, gets
    nothing, until the newer one goes away."""
    older = GuiProcess(build_dir, santad.config_path, tmp_path, name="older").start()
    newer = None
    try:
        older.wait_registered()
        newer = GuiProcess(build_dir, santad.config_path, tmp_path, name="newer").start()
        newer.wait_registered()
        assert santad.wait_stderr(f"pid {newer.pid}, ", 5)

        first = copy_program(tmpfs, "first", extra=b"1")
        assert exec_blocked(first)
        got = newer.wait_messages("block", 1)
        assert got and got[0]["path"] == str(first), newer.stderr()
        assert not wait_until(lambda: older.messages("block"), 1.5)

        newer.stop()
        second = copy_program(tmpfs, "second", extra=b"2")
        assert wait_until(lambda: "went away" in santad.stderr(), 5)
        assert exec_blocked(second)
        got = older.wait_messages("block", 1)
        assert got and [b["path"] for b in got] == [str(second)], older.stderr()
    finally:
        older.stop()
        if newer:
            newer.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2}], indirect=True)
def test_a_users_gui_never_shows_another_users_programs(santad, build_dir, tmp_path, tmpfs):
    """A block goes to the GUI of the user who ran the program, even when
    another user registered a GUI since; without logind no GUI is at the
    console, so a block of a user with no GUI waits for one of theirs."""
    alice, nobody = (1000, 1000), (65534, 65534)
    mine = GuiProcess(build_dir, santad.config_path, tmp_path, name="alice")
    theirs = GuiProcess(build_dir, santad.config_path, tmp_path, name="nobody")
    try:
        mine.start(user=alice).wait_registered()
        theirs.start(user=nobody).wait_registered()
        assert santad.wait_stderr(f"pid {theirs.pid}, ", 5)

        secret = copy_program(tmpfs, "alices-tool", extra=b"a")
        assert run_as(1000, secret) != 0
        got = mine.wait_messages("block", 1)
        assert [b["path"] for b in got] == [str(secret)], mine.stderr()
        other = copy_program(tmpfs, "nobodys-tool", extra=b"n")
        assert run_as(65534, other) != 0
        got = theirs.wait_messages("block", 1)
        assert [b["path"] for b in got] == [str(other)], theirs.stderr()

        roots = copy_program(tmpfs, "roots-tool", extra=b"r")
        assert exec_blocked(roots)
        assert not wait_until(lambda: len(mine.messages("block")) > 1 or
                              len(theirs.messages("block")) > 1, 1.5)
    finally:
        mine.stop()
        theirs.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2}], indirect=True)
def test_one_users_blocks_cannot_push_out_anothers_waiting_notes(santad, build_dir, tmp_path,
                                                                  tmpfs):
    """Notes wait for a GUI that may show them; one user's take 16 of the
    64 places at most, so a user who makes many blocks with no GUI of theirs
    does not push out a note waiting for another user."""
    mine = copy_program(tmpfs, "roots-early", extra=b"r")
    assert exec_blocked(mine)
    for i in range(70):
        assert run_as(65534, copy_program(tmpfs, f"flood{i}", extra=b"%d" % i)) != 0
    assert santad.wait_log(lambda line: "flood69" in line)
    gui = GuiProcess(build_dir, santad.config_path, tmp_path).start()
    try:
        gui.wait_registered()
        got = gui.wait_messages("block", 1)
        assert [b["path"] for b in got] == [str(mine)], gui.stderr()
        assert got[0]["dropped_before"] > 0
    finally:
        gui.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2, "EnableSilentMode": True}],
                         indirect=True)
def test_silent_mode_shows_nothing(santad, build_dir, tmp_path, tmpfs):
    gui = GuiProcess(build_dir, santad.config_path, tmp_path).start()
    try:
        gui.wait_registered()
        prog = copy_program(tmpfs, "quiet", extra=b"q")
        assert exec_blocked(prog)
        assert santad.wait_log(lambda l: "decision=DENY" in l and "quiet" in l)
        assert not wait_until(lambda: gui.messages("block"), 1.5)
    finally:
        gui.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2}], indirect=True)
def test_gui_reconnects_when_santad_restarts(santad, build_dir, tmp_path, tmpfs):
    gui = GuiProcess(build_dir, santad.config_path, tmp_path).start()
    try:
        gui.wait_registered()
        santad.stop()
        santad.start()
        assert wait_until(lambda: gui.stderr().count("Registered with santad") >= 2, 15), \
            gui.stderr()
        prog = copy_program(tmpfs, "after", extra=b"a")
        assert exec_blocked(prog)
        assert gui.wait_messages("block", 1), gui.stderr()
    finally:
        gui.stop()
