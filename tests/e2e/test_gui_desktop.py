# SPDX-License-Identifier: Apache-2.0
"""santagui in desktop mode, each GUI with its own session bus
(dbus-daemon --session) and a notification server recording what it
receives, as each user's desktop would have:

- blocks raised before any GUI registered reach the desktop once one does,
  oldest first;
- of two sessions' GUIs, only the active one's desktop gets anything
  (without logind, as here: the user's newest registration), until it goes
  away;
- a client mode change is shown with ModeNotificationLockdown's text.
"""
import time

import pytest

from conftest import copy_program, wait_until
from guilib import GuiProcess, NotifyServer, SessionBus, exec_blocked


class Desktop:
    """A session bus, its notification server, and a santagui on it."""

    def __init__(self, build_dir, santad, root, name):
        self.root = root / name
        self.root.mkdir(parents=True, exist_ok=True)
        self.bus = SessionBus(self.root).start()
        self.server = NotifyServer(self.bus, self.root)
        self.gui = GuiProcess(build_dir, santad.config_path, self.root, name=name)
        try:
            self.server.start()
        except Exception:
            self.stop()
            raise

    def start_gui(self):
        self.gui.start(terminal=False, env=self.bus.env())
        self.gui.wait_registered()
        return self

    def summaries(self):
        return [n["summary"] for n in self.server.notifications()]

    def stop(self):
        self.gui.stop()
        self.server.stop()
        self.bus.stop()


@pytest.fixture
def desktops(build_dir, tmp_path):
    made = []

    def make(santad, name):
        d = Desktop(build_dir, santad, tmp_path, name)
        made.append(d)
        return d

    try:
        yield make
    finally:
        for d in made:
            d.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2}], indirect=True)
def test_blocks_before_registration_reach_the_desktop(santad, desktops, tmpfs):
    progs = [copy_program(tmpfs, f"queued{i}", extra=bytes([0x40 + i])) for i in range(3)]
    for p in progs:
        assert exec_blocked(p)
    assert santad.wait_log(lambda l: "decision=DENY" in l and "queued2" in l)

    # Oldest first: in the order santad recorded the denials (the decision
    # threads may hand over two quick ones in either order).
    denied = [p for line in santad.log_lines() if "decision=DENY" in line
              for p in progs if line.endswith(f"|path={p}")]
    assert sorted(denied) == sorted(progs)

    desk = desktops(santad, "late").start_gui()
    want = [f"Santa blocked {p.name}" for p in denied]
    assert wait_until(lambda: desk.summaries() == want, 10), (desk.summaries(), desk.gui.stderr())
    for n, p in zip(desk.server.notifications(), denied):
        assert f"Path: {p}" in n["body"]


@pytest.mark.parametrize("santad", [{"ClientMode": 2}], indirect=True)
def test_inactive_session_desktop_gets_nothing(santad, desktops, tmpfs):
    inactive = desktops(santad, "inactive").start_gui()
    active = desktops(santad, "active").start_gui()
    assert santad.wait_stderr(f"pid {active.gui.pid}, ", 5)

    first = copy_program(tmpfs, "first", extra=b"desk1")
    assert exec_blocked(first)
    assert wait_until(lambda: active.summaries() == ["Santa blocked first"], 10), \
        active.gui.stderr()
    time.sleep(1.5)
    assert inactive.summaries() == []

    # The active one leaves: the other session's GUI takes over, and gets
    # only what is raised from then on.
    active.gui.stop()
    assert wait_until(lambda: "went away" in santad.stderr(), 5)
    second = copy_program(tmpfs, "second", extra=b"desk2")
    assert exec_blocked(second)
    assert wait_until(lambda: inactive.summaries() == ["Santa blocked second"], 10), \
        inactive.gui.stderr()
    assert active.summaries() == ["Santa blocked first"]


@pytest.mark.parametrize("santad", [{"ClientMode": 1,
                                     "ModeNotificationLockdown": "Locked down by IT"}],
                         indirect=True)
def test_mode_change_is_shown(santad, desktops):
    desk = desktops(santad, "mode").start_gui()
    santad.rewrite_config(ClientMode=2)
    got = desk.server.wait(lambda n: n["summary"] == "Santa: Lockdown mode", 15)
    assert got, desk.gui.stderr() + santad.stderr()
    assert "Locked down by IT" in got[0]["body"]
