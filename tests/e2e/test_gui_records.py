# SPDX-License-Identifier: Apache-2.0
"""What santad records of santagui and santabundleservice:

- a blocked program's bundle gives one action=BUNDLE line per executable of
  the bundle (as the original writes them), after the block's DENY line,
  through the same event log writer, in the file and the json formats;
- the block's stored event gains the bundle fields in place: exactly one
  stored event per blocked exec, next to one BUNDLE_BINARY event per
  executable, for an application directory and for a real Debian
  package's files; a real sync server gets the block at once, then its
  bundle version and the bundle's executables at the next sync;
- the /santa/gui_clients gauge follows GUIs registering and going away;
- santabundleservice exits when idle (or spun down by santagui) and the
  next connection starts it again.

Stored events are read from StateDirectory/events.db and decoded here
(proto/santa.proto's Event; a few lines of protobuf wire format), so that
what the sync server would get is checked, not a log line about it.
"""
import json
import re
import sqlite3
import struct
import subprocess

import pytest

from conftest import copy_program, wait_until
from sync_server import SyncServer
from synclib import MACHINE_ID
from guilib import (BundleServiceProcess, GuiProcess, bundle_hash, dir_executables,
                    exec_blocked, install_package_copy, package_executables)

# Events are stored only when a sync server is configured; nothing answers
# on this one, so they stay in events.db for the test to read.
NO_SERVER = "http://127.0.0.1:9/"
BUNDLES_STORED = {"ClientMode": 2, "EnableBundles": True, "SyncBaseURL": NO_SERVER}
PACKAGE = "debianutils"


# --- santa.Event, decoded --------------------------------------------------

EVENT_FIELDS = {
    2: "file_sha256", 3: "file_path", 4: "file_name", 5: "executing_user",
    6: "execution_time", 9: "decision", 10: "pid", 11: "ppid", 12: "parent_name",
    13: "file_bundle_id", 14: "file_bundle_path", 15: "file_bundle_executable_rel_path",
    16: "file_bundle_name", 17: "file_bundle_version", 18: "file_bundle_version_string",
    19: "file_bundle_hash", 20: "file_bundle_hash_millis", 21: "file_bundle_binary_count",
}
REPEATED = {7: "logged_in_users", 8: "current_sessions", 22: "args"}


def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def decode_event(buf):
    """proto3 santa.Event -> dict (absent scalars are absent)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value = struct.unpack_from("<d", buf, i)[0]
            i += 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value = bytes(buf[i:i + n]).decode()
            i += n
        elif wire == 5:
            value = struct.unpack_from("<I", buf, i)[0]
            i += 4
        else:
            raise ValueError(f"wire type {wire} at byte {i}")
        if num in REPEATED:
            out.setdefault(REPEATED[num], []).append(value)
        elif num in EVENT_FIELDS:
            out[EVENT_FIELDS[num]] = value
    return out


def stored_events(santad):
    path = santad.state_dir / "events.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, event FROM events ORDER BY id").fetchall()
    finally:
        db.close()
    return [dict(decode_event(blob), id=rid) for rid, blob in rows]


def full_path(ev):
    d = ev.get("file_path", "")
    return (d.rstrip("/") + "/" if d else "") + ev.get("file_name", "")


# --- the BUNDLE lines ------------------------------------------------------

BUNDLE_RE = re.compile(r"action=BUNDLE\|sha256=([0-9a-f]{64})\|bundlehash=([0-9a-f]{64})\|"
                       r"bundlename=([^|]*)\|bundleid=([^|]*)\|bundlepath=([^|]*)\|"
                       r"path=(.*)$")


def bundle_lines(santad, count):
    """The BUNDLE lines, once COUNT are there, parsed; asserts each parses."""
    lines = wait_until(lambda: len([l for l in santad.log_lines() if "action=BUNDLE|" in l]) >= count
                       and [l for l in santad.log_lines() if "action=BUNDLE|" in l], 10)
    assert lines, "no BUNDLE lines:\n" + "\n".join(santad.log_lines()[-5:])
    out = []
    for line in lines:
        assert line.startswith("[") and "] I santad: action=BUNDLE|" in line, line
        m = BUNDLE_RE.search(line)
        assert m, line
        out.append(dict(sha256=m.group(1), bundlehash=m.group(2), bundlename=m.group(3),
                        bundleid=m.group(4), bundlepath=m.group(5), path=m.group(6)))
    return out


def block_and_hash(santad, gui, program):
    gui.wait_registered()
    assert exec_blocked(program)
    done = gui.wait_messages("bundle_done", 1, timeout=60)
    assert done and done[0]["error"] is None, gui.stderr()
    return done[0]


def check_records(santad, program, want, bundle, shown_path=None):
    """WANT: {path of each executable as the service reports it: sha256};
    BUNDLE: the fields every BUNDLE line and event carries."""
    want_hash = bundle_hash(want.values())
    lines = bundle_lines(santad, len(want))
    assert len(lines) == len(want)
    assert {l["path"]: l["sha256"] for l in lines} == want
    for l in lines:
        assert l["bundlehash"] == want_hash
        assert (l["bundlename"], l["bundleid"], l["bundlepath"]) == \
            (bundle["name"], bundle["id"], bundle["path"])

    # The DENY line came first: both went through the recorder's queue.
    log = santad.log_lines()
    deny = [i for i, l in enumerate(log) if "decision=DENY" in l and
            f"|path={program}" in l]
    first_bundle = min(i for i, l in enumerate(log) if "action=BUNDLE|" in l)
    assert deny and deny[0] < first_bundle, "\n".join(log)

    def settled():
        evs = stored_events(santad)
        blocks = [e for e in evs if e.get("decision", "").startswith("BLOCK_") and
                  full_path(e) == str(program)]
        binaries = [e for e in evs if e.get("decision") == "BUNDLE_BINARY"]
        if len(binaries) >= len(want) and blocks and blocks[-1].get("file_bundle_hash"):
            return evs, blocks, binaries
        return None

    got = wait_until(settled, 10)
    assert got, stored_events(santad)
    evs, blocks, binaries = got
    # Exactly one stored event for the one blocked exec, now with its
    # bundle: the one stored at the block was replaced, not repeated.
    assert len(blocks) == 1, blocks
    b = blocks[0]
    sha = want[shown_path or str(program)]
    assert b["file_sha256"] == sha
    assert b["file_bundle_hash"] == want_hash
    assert b["file_bundle_binary_count"] == len(want)
    assert b["file_bundle_name"] == bundle["name"]
    assert b["file_bundle_id"] == bundle["id"]
    assert b["file_bundle_path"] == bundle["path"]
    assert b.get("file_bundle_version", "") == bundle.get("version", "")
    assert b["pid"] > 0 and b["execution_time"] > 0
    assert b["executing_user"] == "root"

    assert len(binaries) == len(want), binaries
    assert sorted(e["file_sha256"] for e in binaries) == sorted(want.values())
    for e in binaries:
        assert e["file_bundle_hash"] == want_hash
        assert e["file_bundle_id"] == bundle["id"]
    assert len(evs) == 1 + len(want), evs


def make_app(top):
    """An application directory: a .desktop marker, two ELF programs and a
    script, and files that do not count."""
    app = top / "RecApp"
    (app / "bin").mkdir(parents=True)
    (app / "RecApp.desktop").write_text("[Desktop Entry]\nName=Recorded App\nExec=bin/rec\n")
    main = copy_program(app / "bin", "rec", extra=b"recorded app main")
    copy_program(app / "bin", "helper", extra=b"recorded app helper")
    script = app / "bin" / "run.sh"
    script.write_text("#!/bin/sh\nexec rec\n")
    script.chmod(0o755)
    (app / "README").write_text("not a program\n")
    return app, main


@pytest.mark.parametrize("santad", [BUNDLES_STORED], indirect=True)
def test_application_bundle_lines_and_one_stored_event(santad, build_dir, tmp_path, tmpfs):
    app, main = make_app(tmpfs)
    want = dir_executables(app)
    assert len(want) == 3
    gui = GuiProcess(build_dir, santad.config_path, tmp_path).start()
    try:
        done = block_and_hash(santad, gui, main)
        assert done["bundle_hash"] == bundle_hash(want.values())
        check_records(santad, main, want,
                      {"name": "Recorded App", "id": "RecApp", "path": str(app)})
    finally:
        gui.stop()
    assert "Recorded the bundle 'Recorded App'" in santad.stderr()


@pytest.mark.parametrize("santad", [BUNDLES_STORED], indirect=True)
def test_debian_package_bundle_lines_and_one_stored_event(santad, build_dir, tmp_path,
                                                          tmpfs):
    """A real package's files and dpkg records, as `dpkg --root` installs
    them on the watched tmpfs: the bundle is the package."""
    root = tmpfs / "root"
    list_path = install_package_copy(PACKAGE, root)
    by_listed = package_executables(list_path, root=str(root))
    # The service names each executable by its path below ROOT.
    want = {str(root) + p: h for p, h in by_listed.items()}
    version = re.search(r"^Version: (.*)$", (root / "var/lib/dpkg/status").read_text(),
                        re.M).group(1)
    program = root / "bin" / "run-parts"
    svc = BundleServiceProcess(build_dir, santad.config_path, tmp_path).start(
        "--dpkg-root", str(root))
    gui = GuiProcess(build_dir, santad.config_path, tmp_path)
    gui.start("--bundle-socket", str(svc.socket_path))
    try:
        done = block_and_hash(santad, gui, program)
        assert done["bundle_hash"] == bundle_hash(want.values())
        check_records(santad, program, want,
                      {"name": PACKAGE, "id": PACKAGE, "path": str(list_path),
                       "version": version})
    finally:
        gui.stop()
        svc.stop()


@pytest.mark.parametrize("santad", [{"ClientMode": 2, "EnableBundles": True,
                                     "EventLogType": "json"}], indirect=True)
def test_bundle_lines_in_a_json_log(santad, build_dir, tmp_path, tmpfs):
    """The json log gets the BUNDLE lines as objects, between whole lines."""
    app, main = make_app(tmpfs)
    want = dir_executables(app)
    gui = GuiProcess(build_dir, santad.config_path, tmp_path).start()
    try:
        block_and_hash(santad, gui, main)

        def bundles():
            objs = [json.loads(l) for l in santad.log_lines()]
            return [o for o in objs if o.get("action") == "BUNDLE"]

        got = wait_until(lambda: len(bundles()) >= len(want) and bundles(), 10)
        assert got and len(got) == len(want), santad.log_lines()
        assert {o["path"]: o["sha256"] for o in got} == want
        for o in got:
            assert o["bundlehash"] == bundle_hash(want.values())
            assert o["bundlename"] == "Recorded App" and o["bundleid"] == "RecApp"
            assert o["bundlepath"] == str(app)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"])
    finally:
        gui.stop()


def test_sync_server_gets_the_block_with_its_bundle(santad_factory, build_dir, tmp_path,
                                                    tmpfs):
    """With a real sync server: the block is uploaded at once (no bundle
    yet); its bundle version replaces it in the store and reaches the
    server at the next sync, with the bundle's executables; nothing is left
    to upload after."""
    srv = SyncServer(machine_id=MACHINE_ID).start()
    try:
        srv.preflight = {}
        d = santad_factory({"SyncBaseURL": srv.base_url, "MachineID": MACHINE_ID,
                            "ClientMode": 2, "EnableBundles": True})
        santactl = build_dir / "src" / "santactl" / "santactl"

        def run(*args):
            return subprocess.run([str(santactl), "--config", str(d.config_path), *args],
                                  capture_output=True, text=True, timeout=180)

        def pending():
            r = run("status", "--json")
            return json.loads(r.stdout)["database"]["events_pending_upload"]

        # The start-up sync first, so that the server's log is the block's.
        assert wait_until(lambda: "postflight" in srv.stages(), 15), d.stderr()
        srv.reset_log()

        app, main = make_app(tmpfs)
        want = dir_executables(app)
        gui = GuiProcess(build_dir, d.config_path, tmp_path).start()
        try:
            block_and_hash(d, gui, main)
        finally:
            gui.stop()
        first = wait_until(lambda: [e for e in srv.events if e["file_name"] == "rec"], 15)
        assert first, d.stderr()
        assert bundle_lines(d, len(want))

        # The upload at the block may end before or after the bundle came:
        # whatever is pending goes at the next sync.
        assert wait_until(lambda: pending() >= len(want), 10), d.stderr()
        assert run("sync").returncode == 0, d.stderr()
        assert wait_until(lambda: pending() == 0, 10), d.stderr()
        assert srv.errors == []

        blocks = [e for e in srv.events if e["decision"].startswith("BLOCK_")]
        with_bundle = [e for e in blocks if e.get("file_bundle_hash")]
        assert with_bundle, blocks
        b = with_bundle[-1]
        assert b["file_name"] == "rec" and b["file_path"] == str(main.parent)
        assert b["file_bundle_hash"] == bundle_hash(want.values())
        assert b["file_bundle_binary_count"] == len(want)
        assert b["file_bundle_name"] == "Recorded App"
        assert b["file_bundle_id"] == "RecApp"
        assert b["file_bundle_path"] == str(app)
        binaries = [e for e in srv.events if e["decision"] == "BUNDLE_BINARY"]
        assert sorted(e["file_sha256"] for e in binaries) == sorted(want.values())
    finally:
        srv.stop()


# --- the gui_clients gauge -------------------------------------------------

def gui_clients(santad, build_dir):
    santactl = build_dir / "src" / "santactl" / "santactl"
    r = subprocess.run([str(santactl), "--config", str(santad.config_path), "metrics",
                        "--json", "/santa/gui_clients"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    metric = json.loads(r.stdout)["metrics"].get("/santa/gui_clients")
    assert metric, r.stdout
    values = [v["data"] for vs in metric["fields"].values() for v in vs]
    assert len(values) == 1, r.stdout
    return values[0]


@pytest.mark.parametrize("santad", [{"ClientMode": 1}], indirect=True)
def test_gui_clients_gauge_follows_registrations(santad, build_dir, tmp_path):
    assert gui_clients(santad, build_dir) == 0
    first = GuiProcess(build_dir, santad.config_path, tmp_path, name="first").start()
    second = None
    try:
        first.wait_registered()
        assert wait_until(lambda: gui_clients(santad, build_dir) == 1, 5)
        second = GuiProcess(build_dir, santad.config_path, tmp_path, name="second").start()
        second.wait_registered()
        assert wait_until(lambda: gui_clients(santad, build_dir) == 2, 5)
        second.stop()
        assert wait_until(lambda: gui_clients(santad, build_dir) == 1, 5), santad.stderr()
        first.stop()
        assert wait_until(lambda: gui_clients(santad, build_dir) == 0, 5), santad.stderr()
    finally:
        first.stop()
        if second:
            second.stop()


# --- santabundleservice comes and goes -------------------------------------

STARTED_RE = re.compile(r"Started santabundleservice \(pid (\d+)\)")


def test_bundle_service_exits_when_idle_and_starts_again(santad, build_dir, tmp_path):
    """santad's launcher starts the service on santagui's connection; once
    santagui has its result and spins it down, the service exits (status 0)
    and the next connection starts a new one that answers as well."""
    pids = []
    for round_ in range(2):
        gui = GuiProcess(build_dir, santad.config_path, tmp_path, name=f"hash{round_}")
        assert gui.run("--hash-bundle", "/usr/bin/run-parts") == 0, gui.stderr()
        done = gui.messages("bundle_done")
        assert done and done[-1]["error"] is None and done[-1]["bundle_hash"], gui.stderr()
        started = wait_until(lambda: STARTED_RE.findall(santad.stderr())[round_:], 5)
        assert started, santad.stderr()
        pid = int(started[0])
        assert wait_until(lambda: f"santabundleservice (pid {pid}) exited with status 0"
                    in santad.stderr(), 10), santad.stderr()
        pids.append(pid)
    assert pids[0] != pids[1]
    assert santad.stderr().count("Exiting: spun down by the client") >= 2, santad.stderr()


def test_bundle_service_exits_when_nobody_connects(santad, build_dir, tmp_path):
    svc = BundleServiceProcess(build_dir, santad.config_path, tmp_path).start(
        "--idle-exit", "1")
    try:
        svc.proc.wait(timeout=15)
        assert svc.proc.returncode == 0, svc.stderr()
        assert "Exiting: idle" in svc.stderr()
    finally:
        svc.stop()
