# SPDX-License-Identifier: Apache-2.0
"""A sync server that misbehaves, against the real santad and its real
databases: it answers slowly, with 500s, with truncated or wrong JSON, or
forever with another page.

The machine first syncs once with a server that behaves (rules arrive),
then records events (blocked and unknown execs). santad hands the events
of blocked execs to the sync service at once, which uploads them and has
santad drop them, so the case waits until every event is either stored or
uploaded, and stays so, before it takes stock. Then one sync against the
misbehaving server. What must hold: santactl sync fails in bounded time;
the rules table is exactly what it was; every event stored before the sync
is either still stored or was received by the server (an upload that
succeeded before a later stage failed may remove what it delivered, never
anything else); the mode did not change; the databases are sound; and the
next sync with a server that behaves goes through.

santasyncservice is started by hand (synclib's SyncRig) with short retries,
so that a 500 is retried in milliseconds rather than the original's
minutes; santad is told systemd launches its services
(SANTA_SERVICE_LAUNCHER=systemd) and so only connects to that socket.
"""
import errno
import os
import pathlib
import time

import pytest

from rellib import (exec_status, integrity, programs, rel_santad,  # noqa: F401
                    rel_summary, rules_table, sqlite_ro, tiny_program)
from sync_server import rule
from synclib import SyncRig

FAULTS = [
    # (name, server faults, other server settings)
    ("slow preflight", {"preflight": ("slow", 5)}, {}),
    ("500 preflight", {"preflight": ("status", 500)}, {}),
    ("500 eventupload", {"eventupload": ("status", 500)}, {}),
    ("truncated eventupload", {"eventupload": ("truncate",)}, {}),
    ("slow ruledownload", {"ruledownload": ("slow", 5)}, {}),
    ("truncated ruledownload", {"ruledownload": ("truncate",)}, {}),
    ("wrong JSON ruledownload", {"ruledownload": ("garbage",)}, {}),
    ("500 on page 2", {}, {"lose_page": 1}),
    ("endless pages", {}, {"endless_cursor": True}),
]


def launcher_off(build_dir, directory):
    """A santad executable that leaves its services to 'systemd': a wrapper
    that sets the environment and execs the real one (same pid)."""
    path = pathlib.Path(directory) / "santad-no-launcher"
    path.write_text("#!/bin/sh\nSANTA_SERVICE_LAUNCHER=systemd exec "
                    f"{pathlib.Path(build_dir) / 'src' / 'santad' / 'santad'} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def rig(build_dir):
    r = SyncRig(build_dir, fake_santad=False)
    # The service must believe the real santad.
    r.config["TrustedExecutables"].append(
        str(pathlib.Path(build_dir) / "src" / "santad" / "santad"))
    r.write_config()
    try:
        yield r
    finally:
        r.stop()


def stored_events(d):
    """{id: packed event} from santad's events database."""
    path = d.db_path("events.db")
    if not path.exists():
        return {}
    db = sqlite_ro(path)
    try:
        return {i: bytes(b) for i, b in db.execute("SELECT id, event FROM events")}
    finally:
        db.close()


def held(events, sha):
    return any(sha.encode() in blob for blob in events.values())


def settled_events(d, server, waiting, posted, quiet=1.0, timeout=30):
    """santad's stored events once the execs' events are where they stay:
    WAITING's (unknown programs, kept for the next sync) stored, each of
    POSTED's (blocked programs, which santad hands the sync service at
    once, or keeps when it is not connected yet) either stored or received
    by the server but not both (the service removes what the server
    acknowledged), and nothing changed for QUIET seconds. None on timeout."""
    def where():
        stored = stored_events(d)
        with server.lock:
            received = {e.get("file_sha256") for e in server.events}
        if not all(held(stored, sha) for sha in waiting):
            return None
        if any(held(stored, sha) == (sha in received) for sha in posted):
            return None
        return stored, received

    deadline = time.monotonic() + timeout
    last, since = None, None
    while time.monotonic() < deadline:
        now = where()
        if now is None or now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now[0]
        time.sleep(0.1)
    return None


@pytest.mark.parametrize("name,faults,settings", FAULTS, ids=[f[0] for f in FAULTS])
def test_misbehaving_sync_server(rel_santad, rig, tiny_program, build_dir, tmp_path,
                                 rel_summary, name, faults, settings):
    server = rig.server
    d = rel_santad(dict(ClientMode=1, SyncBaseURL=server.base_url, MachineID=rig.config[
        "MachineID"], RunDirectory=rig.run_dir), start=False)
    d.exe = launcher_off(build_dir, tmp_path)
    d.start()
    blocked = programs(d.watch_dir, "blocked", 3, tiny_program)
    unknown = programs(d.watch_dir, "unknown", 3, tiny_program)
    server.rules = [rule(sha, "BLOCKLIST") for _, sha in blocked] + \
        [rule(f"{i + 1:064x}", "ALLOWLIST") for i in range(40)]
    server.page_size = 15
    rig.start_service()
    res = rig.sync()
    assert res.returncode == 0, res.stdout + res.stderr
    for p, _ in blocked:
        assert exec_status(p) == errno.EPERM
    for p, _ in unknown:
        assert exec_status(p) == 0
    events_before = settled_events(d, server, [sha for _, sha in unknown],
                                   [sha for _, sha in blocked])
    assert events_before is not None, \
        f"the execs' events did not settle:\n{server.events}\n{d.stderr()[-2000:]}"
    rules_before = rules_table(d)
    mode_before = d.status()["daemon"]["mode"]
    server.reset_log()

    server.preflight = {"client_mode": "LOCKDOWN", "sync_type": "clean_all",
                        "batch_size": 50}
    server.rules = [rule(f"{i + 1000:064x}", "ALLOWLIST") for i in range(60)]
    server.faults = faults
    for k, v in settings.items():
        setattr(server, k, v)
    res = rig.sync(timeout=180)

    assert res.returncode != 0, f"{name}: the sync succeeded?\n{res.stdout}"
    assert rules_table(d) == rules_before
    after = stored_events(d)
    assert set(after) <= set(events_before), f"{name}: events appeared during the sync"
    for i in after:
        assert after[i] == events_before[i], f"{name}: event {i} changed"
    gone = set(events_before) - set(after)
    if gone:
        # Only what the server acknowledged may leave: an upload that went
        # through before a later stage failed.
        assert "eventupload" not in faults, f"{name}: {len(gone)} events lost"
        uploaded = {e.get("file_sha256") for e in server.events}
        for i in gone:
            assert any(sha and sha.encode() in events_before[i] for sha in uploaded), \
                f"{name}: event {i} left santad but never reached the server"
    assert d.status()["daemon"]["mode"] == mode_before
    for db in ("rules.db", "events.db"):
        assert integrity(d.db_path(db)) == "ok"
    for p, _ in blocked:
        assert exec_status(p) == errno.EPERM

    server.faults, server.lose_page, server.endless_cursor = {}, None, False
    res = rig.sync(timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert d.status()["daemon"]["mode"] == "Lockdown"
    rel_summary(f"sync: {name}", f"santactl sync failed as it should; rules unchanged "
                f"({len(rules_before)}), events kept {len(after)}/{len(events_before)} "
                f"(the rest acknowledged by the server: {len(gone)}), mode unchanged, "
                f"integrity ok, next sync ok")
