# SPDX-License-Identifier: Apache-2.0
"""santagui's endpoints: only the peer each was handed to gets in.

santagui makes an anonymous endpoint and hands it to santad
(SetNotificationListener), which connects back over it. Here santad is a
stand-in (ipc-probe --serve, named santad, so that santagui trusts it),
which either connects itself, as santad does, or passes the endpoint on to
another program: santactl, the bundle service, or a foreign executable (a
copy of the probe that nothing trusts). Each of those is refused at the
handshake, santagui logs who it was, and santagui goes on (it registers
again with santad). The same holds for the endpoint santagui hands the
bundle service for its progress reports.
"""
import os
import shutil
import signal
import subprocess

import pytest

import guilib
import proclib
from conftest import timeout_child, wait_until, write_config_file
from proclib import probe_dir  # noqa: F401 (fixture)


class FakeServer:
    """A stand-in santad (or bundle service, ROLE), serving on its socket in
    RUN_DIR and doing HANDOFF with every endpoint santagui hands it."""
    def __init__(self, probe_dir, config, run_dir, handoff, out_path, role="santad"):
        self.out_path = out_path
        service = {"santad": "santa.Santad", "santabundleservice": "santa.BundleService"}
        cmd = ["timeout", "-s", "KILL", "120", os.path.join(probe_dir, role),
               "--config", str(config), "--serve", str(run_dir / f"{role}.sock"),
               service[role], *handoff]
        with open(out_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.pid = timeout_child(self.proc)
        assert wait_until(lambda: "serving" in self.output(), 10), self.output()

    def output(self):
        try:
            return self.out_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            if self.pid:
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def gui_setup(build_dir, probe_dir, public_dir):
    """(config, run_dir, intruder): a configuration for santagui and the
    stand-in santad, and a copy of the probe outside every trusted place."""
    run = public_dir / "run"
    run.mkdir(mode=0o755)
    config = public_dir / "config.json"
    write_config_file(config, {"RunDirectory": str(run),
                               "StateDirectory": str(public_dir / "state"),
                               "TrustedExecutables": proclib.trusted_dirs(build_dir,
                                                                          probe_dir)})
    os.chmod(config, 0o644)
    untrusted = public_dir / "untrusted"
    untrusted.mkdir(mode=0o755)
    intruder = untrusted / "intruder"
    shutil.copy(os.path.join(probe_dir, "santactl"), intruder)
    os.chmod(intruder, 0o755)
    return config, run, str(intruder)


def run_gui_against(build_dir, public_dir, probe_dir, config, run, handoff):
    fake = FakeServer(probe_dir, config, run, handoff, public_dir / "fake.out")
    gui = guilib.GuiProcess(build_dir, config, public_dir / "gui")
    gui.start()
    return fake, gui


def test_santad_gets_in(build_dir, probe_dir, public_dir, gui_setup):
    config, run, _ = gui_setup
    fake, gui = run_gui_against(build_dir, public_dir, probe_dir, config, run, ["self"])
    try:
        gui.wait_registered()
        assert "endpoint ok" in fake.output()
        assert "Refused" not in gui.stderr()
    finally:
        gui.stop()
        fake.stop()


@pytest.mark.parametrize("holder", ["santactl", "santabundleservice", "intruder"])
def test_others_are_refused_and_logged(build_dir, probe_dir, public_dir, gui_setup, holder):
    config, run, intruder = gui_setup
    exe = intruder if holder == "intruder" else os.path.join(probe_dir, holder)
    handoff = [exe, "--config", str(config), "--endpoint", "santa.Notifier"]
    fake, gui = run_gui_against(build_dir, public_dir, probe_dir, config, run, handoff)
    try:
        # The holder learns no more than that it was refused...
        assert wait_until(lambda: "handoff exited 2" in fake.output(), 15), \
            fake.output() + gui.stderr()
        # ...and santagui says who it was: uid, pid and executable.
        def refusal():
            return [line for line in gui.stderr().splitlines()
                    if "Refused a connection on the notifier endpoint" in line and
                    "hello from pid" in line and f"(uid 0, {exe})" in line]
        assert wait_until(refusal, 10), gui.stderr()
        # santagui goes on: it registers again and hands out a new endpoint.
        assert wait_until(lambda: fake.output().count("handoff exited") >= 2, 15), \
            fake.output() + gui.stderr()
        assert gui.proc.poll() is None
        assert "Registered with santad" not in gui.stderr()
    finally:
        gui.stop()
        fake.stop()


@pytest.mark.parametrize("holder", ["self", "santad", "intruder"])
def test_bundle_progress_endpoint(build_dir, probe_dir, public_dir, gui_setup, holder):
    """santagui --hash-bundle hands its progress endpoint to the bundle
    service (a stand-in): the service itself gets in, anyone it passes the
    endpoint to is refused and logged."""
    config, run, intruder = gui_setup
    if holder == "self":
        exe, handoff = None, ["self"]
    else:
        exe = intruder if holder == "intruder" else os.path.join(probe_dir, holder)
        handoff = [exe, "--config", str(config), "--endpoint", "santa.Notifier"]
    fake = FakeServer(probe_dir, config, run, handoff, public_dir / "fake.out",
                      role="santabundleservice")
    gui = guilib.GuiProcess(build_dir, config, public_dir / "gui")
    try:
        # The stand-in answers "no bundle": santagui is done either way.
        assert gui.run("--hash-bundle", "/bin/true", timeout=60) == 0, gui.stderr()
        if holder == "self":
            assert "endpoint ok" in fake.output(), fake.output()
            assert "bundle progress endpoint" not in gui.stderr()
            return
        assert "handoff exited 2" in fake.output(), fake.output() + gui.stderr()
        assert [line for line in gui.stderr().splitlines()
                if "Closed the bundle progress endpoint" in line and
                "hello from pid" in line and f"(uid 0, {exe})" in line], gui.stderr()
    finally:
        fake.stop()
