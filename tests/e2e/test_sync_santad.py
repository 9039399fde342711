# SPDX-License-Identifier: Apache-2.0
"""A sync with the real santad: santad's launcher starts santasyncservice
(as ServiceUser) when `santactl sync` connects, the service talks to the
fixture sync server and to santad, and what the server pushes decides real
execs on the private tmpfs.

The service runs with the original's retry schedule here (the launcher
passes no test flags), so the failures these tests provoke are ones that
are not retried: 4xx answers, truncated or wrong JSON, endless cursors.
"""
import errno
import json
import os
import signal
import subprocess
import time

import pytest

import proclib
from conftest import copy_program, exec_status, sha256_of
from sync_server import rule
from synclib import hexhash, server, synced, wait_until  # noqa: F401 (fixtures)


def require_alive(d):
    """Fail here, with santad's log, if santad died under the test."""
    wait_until(lambda: not d.alive(), 1.0)
    assert d.alive(), "santad died:\n" + d.stderr()


def rule_count(d):
    db = d.status()["database"]
    return sum(v for k, v in db.items() if k.endswith("_rules"))


def test_pushed_rules_block_and_allow_real_execs(synced, server):
    d = synced()
    bad = copy_program(d.watch_dir, "bad", extra=b"sync-bad")
    good = copy_program(d.watch_dir, "good", extra=b"sync-good")
    server.rules = [rule(sha256_of(bad), "BLOCKLIST", custom_msg="no"),
                    rule(sha256_of(good), "ALLOWLIST")]
    assert exec_status(bad) == 0   # MONITOR, no rules yet
    require_alive(d)

    res = d.sync()
    assert res.returncode == 0, res.stdout + res.stderr + d.stderr()
    assert "Sync completed successfully" in res.stdout
    assert server.errors == []
    assert exec_status(bad) == errno.EPERM
    assert exec_status(good) == 0
    assert d.status()["database"]["binary_rules"] == 2


def test_lockdown_pushed_takes_effect(synced, server):
    d = synced()
    known = copy_program(d.watch_dir, "known", extra=b"sync-known")
    unknown = copy_program(d.watch_dir, "unknown", extra=b"sync-unknown")
    server.preflight = {"client_mode": "LOCKDOWN"}
    server.rules = [rule(sha256_of(known), "ALLOWLIST")]

    res = d.sync()
    assert res.returncode == 0, res.stdout + d.stderr()
    assert "Client mode is now LOCKDOWN" in res.stdout
    assert d.status()["daemon"]["mode"] == "Lockdown"
    assert exec_status(unknown) == errno.EPERM
    require_alive(d)
    assert exec_status(known) == 0
    # And back, when the server says so.
    server.preflight = {"client_mode": "MONITOR"}
    assert d.sync().returncode == 0
    assert exec_status(unknown) == 0


def test_events_uploaded_with_fields_and_gone_locally(synced, server):
    d = synced()
    blocked = copy_program(d.watch_dir, "blocked", source="/bin/sleep", extra=b"ev-blk")
    unknown = copy_program(d.watch_dir, "stranger", source="/bin/sleep", extra=b"ev-unk")
    server.rules = [rule(sha256_of(blocked), "BLOCKLIST")]
    assert d.sync().returncode == 0
    assert exec_status(blocked, "0.05") == errno.EPERM
    require_alive(d)
    assert exec_status(unknown, "0.05") == 0
    # The blocked one goes up at once (santad hands it to the service); the
    # unknown one waits for the next sync.
    assert wait_until(lambda: server.events, 10), d.stderr()
    assert wait_until(lambda: d.status()["database"]["events_pending_upload"] >= 1, 10), \
        d.status()

    res = d.sync()
    assert res.returncode == 0, res.stdout
    assert server.errors == []
    got = {e["file_sha256"]: e for e in server.events}
    b = got[sha256_of(blocked)]
    assert b["decision"] == "BLOCK_BINARY"
    assert b["file_path"] == str(d.watch_dir) and b["file_name"] == "blocked"
    assert b["executing_user"] == "root"
    assert isinstance(b["execution_time"], float) and b["pid"] > 0 and b["ppid"] > 0
    assert abs(b["execution_time"] - time.time()) < 600
    # The parent is this test (subprocess.run forks and execs).
    with open("/proc/self/comm") as f:
        me = f.read().strip()
    assert b["ppid"] == os.getpid() and b["parent_name"] == me, b
    assert isinstance(b["logged_in_users"], list) and isinstance(b["current_sessions"], list)
    u = got[sha256_of(unknown)]
    assert u["decision"] == "ALLOW_UNKNOWN" and u["file_name"] == "stranger"
    assert u["file_path"] == str(d.watch_dir) and u["ppid"] == os.getpid()
    assert d.status()["database"]["events_pending_upload"] == 0


def test_multi_page_and_clean_syncs(synced, server):
    d = synced()
    server.rules = [rule(hexhash(i), "BLOCKLIST") for i in range(120)]
    server.page_size = 50
    server.empty_pages = True
    assert d.sync().returncode == 0
    assert d.status()["database"]["binary_rules"] == 120

    # CLEAN: the server's set replaces ours.
    server.rules = [rule(hexhash(i), "BLOCKLIST") for i in range(1000, 1010)]
    server.preflight = {"sync_type": "clean"}
    assert d.sync().returncode == 0
    assert d.status()["database"]["binary_rules"] == 10

    # A normal sync adds; --clean-all asks for a clean sync and the
    # server's "clean" becomes CLEAN_ALL.
    server.preflight = {}
    server.rules = [rule(hexhash(2000), "ALLOWLIST")]
    assert d.sync().returncode == 0
    assert rule_count(d) == 11
    server.preflight = {"sync_type": "clean"}
    res = d.sync("--clean-all")
    assert res.returncode == 0
    assert server.bodies("preflight")[-1]["request_clean_sync"] is True
    assert rule_count(d) == 1
    assert server.errors == []


# An endless cursor is tested with the fake santad (test_sync_service.py),
# where the page bound can be lowered: with the real bound of 10000 pages it
# takes minutes against the fixture server.
@pytest.mark.parametrize("how", ["lost page", "truncated page"])
def test_sync_failing_half_way_changes_nothing(synced, server, how):
    d = synced()
    keep = copy_program(d.watch_dir, "keep", extra=b"sync-keep")
    server.rules = [rule(sha256_of(keep), "BLOCKLIST")]
    assert d.sync().returncode == 0
    before = d.status()

    server.preflight = {"client_mode": "LOCKDOWN", "sync_type": "clean_all"}
    server.rules = [rule(hexhash(i), "ALLOWLIST") for i in range(40)]
    server.page_size = 10
    if how == "lost page":
        orig = server.answer

        def answer(stage, body):
            if stage == "ruledownload" and body.get("cursor") == "page-2":
                return 404, None
            return orig(stage, body)
        server.answer = answer
    else:
        server.faults = {"ruledownload": ("truncate",)}

    res = d.sync()
    assert res.returncode == 3, res.stdout + res.stderr
    assert "Rule download failed" in res.stdout
    after = d.status()
    assert after["database"] == before["database"]
    assert after["daemon"]["mode"] == "Monitor"
    assert exec_status(keep) == errno.EPERM


def test_santactl_sync_output_and_exit_codes(synced, server):
    d = synced()
    res = d.sync()
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].startswith("Sync starting with ")
    assert lines[-1] == "Sync completed successfully"

    server.faults = {"preflight": ("status", 403)}
    res = d.sync()
    assert res.returncode == 1
    assert "Preflight failed" in res.stdout and "HTTP 403" in res.stdout

    server.faults = {"postflight": ("status", 404)}
    assert d.sync().returncode == 4

    res = d.sync("--bogus")
    assert res.returncode == 1
    assert "Unknown option: --bogus" in res.stderr


def sync_counts(d):
    """santad's /santa/syncs counter from `santactl metrics --json`:
    {"success": n, "failure": n}."""
    santactl = d.build_dir / "src" / "santactl" / "santactl"
    res = subprocess.run([str(santactl), "--config", str(d.config_path), "metrics", "--json",
                          "/santa/syncs"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    metric = json.loads(res.stdout)["metrics"].get("/santa/syncs", {})
    rows = metric.get("fields", {}).get("result", [])
    counts = {"success": 0, "failure": 0}
    counts.update({row["value"]: row["data"] for row in rows})
    return counts


def test_sync_results_counted_in_metrics(synced, server):
    d = synced()
    # The start-up sync the fixture waited for is counted once it ended.
    assert wait_until(lambda: sync_counts(d)["success"] >= 1, 10), sync_counts(d)
    before = sync_counts(d)

    assert d.sync().returncode == 0
    server.faults = {"preflight": ("status", 403)}
    assert d.sync().returncode == 1
    server.faults = {"ruledownload": ("truncate",)}
    assert d.sync().returncode == 3
    after = sync_counts(d)
    assert after["success"] == before["success"] + 1, (before, after)
    assert after["failure"] == before["failure"] + 2, (before, after)

    res = subprocess.run([str(d.build_dir / "src" / "santactl" / "santactl"), "--config",
                          str(d.config_path), "metrics", "/santa/syncs"],
                         capture_output=True, text=True, timeout=30)
    assert "  Metric Name               | /santa/syncs" in res.stdout, res.stdout
    assert "  Field                     | result=failure" in res.stdout, res.stdout


def test_full_sync_at_start_up(santad_factory, server, synced):
    server.preflight = {"client_mode": "LOCKDOWN"}
    d = synced()
    # The fixture waited for the start-up sync: LOCKDOWN is in force
    # without anyone running santactl sync.
    assert d.status()["daemon"]["mode"] == "Lockdown"


def test_blocked_exec_uploaded_at_once(synced, server):
    d = synced()
    bad = copy_program(d.watch_dir, "bad-now", source="/bin/sleep", extra=b"sync-now")
    server.rules = [rule(sha256_of(bad), "BLOCKLIST")]
    assert d.sync().returncode == 0
    server.reset_log()

    assert exec_status(bad, "0.05") == errno.EPERM
    require_alive(d)
    assert wait_until(lambda: server.events, 15), d.stderr()
    assert server.stages() == ["eventupload"]
    ev = server.events[0]
    assert ev["file_sha256"] == sha256_of(bad) and ev["decision"] == "BLOCK_BINARY"
    assert wait_until(lambda: d.status()["database"]["events_pending_upload"] == 0, 10)

    # The same file again within ten minutes: stored, not uploaded again.
    assert exec_status(bad, "0.05") == errno.EPERM
    assert wait_until(lambda: d.status()["database"]["events_pending_upload"] == 1, 10)
    assert server.stages() == ["eventupload"]


def test_server_settings_persist_across_a_restart(synced, server):
    """What a successful sync set (mode, path regex, interval) is saved by
    santad and holds after a restart, even while the server refuses."""
    d = synced()
    unknown = copy_program(d.watch_dir, "unknown-later", extra=b"sync-persist")
    scoped = d.watch_dir / "scoped"
    scoped.mkdir()
    in_scope = copy_program(scoped, "allowed-by-regex", extra=b"sync-scope")
    server.preflight = {"client_mode": "LOCKDOWN", "full_sync_interval": 900,
                        "allowed_path_regex": "^" + str(scoped) + "/"}
    res = d.sync()
    assert res.returncode == 0, res.stdout
    assert d.status()["daemon"]["mode"] == "Lockdown"
    last = d.status()["sync"]["last_successful_full"]

    server.faults = {"preflight": ("status", 403)}
    server.reset_log()
    d.stop()
    d.start()
    # The new santad's service syncs at start, and fails.
    assert wait_until(lambda: "preflight" in server.stages(), 15)
    st = d.status()
    assert st["daemon"]["mode"] == "Lockdown"
    assert st["sync"]["last_successful_full"] == last
    assert exec_status(unknown) == errno.EPERM
    assert exec_status(in_scope) == 0
    require_alive(d)


def test_upload_backoff_survives_a_service_restart(synced, server):
    """The ten-minute backoff per file is santad's, as in the original: a
    restarted sync service does not upload the same blocked file at once."""
    d = synced()
    bad = copy_program(d.watch_dir, "bad-twice", source="/bin/sleep", extra=b"sync-twice")
    server.rules = [rule(sha256_of(bad), "BLOCKLIST")]
    assert d.sync().returncode == 0
    server.reset_log()
    assert exec_status(bad, "0.05") == errno.EPERM
    assert wait_until(lambda: server.stages() == ["eventupload"], 15), server.stages()

    pid = proclib.service_pid(d.pid, "santasyncservice")
    assert pid
    os.kill(pid, signal.SIGKILL)
    # santad connects again, which starts a new service, which syncs.
    assert proclib.wait_service(d.pid, "santasyncservice", timeout=15, other_than=pid)
    assert wait_until(lambda: "postflight" in server.stages(), 20), server.stages()
    server.reset_log()

    assert exec_status(bad, "0.05") == errno.EPERM
    assert wait_until(lambda: d.status()["database"]["events_pending_upload"] == 1, 10)
    time.sleep(1)
    assert server.stages() == []
    require_alive(d)
