# SPDX-License-Identifier: Apache-2.0
"""The disk under the event log and the databases fills up: StateDirectory
and EventLogPath live on a tiny tmpfs of their own, which the case fills
with a file until writes fail with ENOSPC.

What must hold: execs are still decided (allowed programs run, blocked ones
do not) while nothing can be written; the failure is logged (santad's
stderr) and counted; a rule change that cannot be stored is refused with an
error, not a hang, and changes nothing; when space returns, log lines and
rule changes are written again; both databases pass PRAGMA integrity_check.
"""
import errno
import json
import os

import pytest

from rellib import (exec_status, integrity, metric_sum, mount_tmpfs,  # noqa: F401
                    programs, rel_santad, rel_summary, rules_table, tiny_program, umount,
                    wait_until)

LOCKDOWN = {"ClientMode": 2}


def fill(directory):
    """Write a file in DIRECTORY until the filesystem is full."""
    path = os.path.join(directory, "filler")
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    # The last partial pages too.
    with open(path, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return path


def rule_file(tmp_path, name, shas, policy):
    path = tmp_path / name
    path.write_text(json.dumps({"rules": [
        {"policy": policy, "identifier": s, "rule_type": "BINARY"} for s in shas]}))
    return str(path)


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    mount_tmpfs(mnt, "1m")
    try:
        yield mnt
    finally:
        umount(mnt)


def test_disk_full_under_log_and_databases(rel_santad, small_disk, tiny_program, tmp_path,
                                           rel_summary):
    d = rel_santad(dict(LOCKDOWN, StateDirectory=str(small_disk / "state"),
                        EventLogPath=str(small_disk / "log" / "santa.log")))
    os.makedirs(small_disk / "log", exist_ok=True)
    allowed = programs(d.watch_dir, "allowed", 4, tiny_program)
    blocked = programs(d.watch_dir, "blocked", 4, tiny_program)
    d.ctl_ok("rule", "--import", rule_file(tmp_path, "a.json", [s for _, s in allowed],
                                          "ALLOWLIST"))
    d.ctl_ok("rule", "--import", rule_file(tmp_path, "b.json", [s for _, s in blocked],
                                          "BLOCKLIST"))
    rules_before = rules_table(d)
    assert exec_status(allowed[0][0]) == 0
    assert d.wait_log(lambda l: "decision=ALLOW" in l)

    filler = fill(str(small_disk))
    log_size = os.path.getsize(d.event_log)
    err_mark = len(d.stderr())

    # Execs are decided while nothing can be written.
    decided = 0
    for _ in range(200):
        for p, _ in allowed:
            assert exec_status(p) == 0
        for p, _ in blocked:
            assert exec_status(p) == errno.EPERM
        decided += len(allowed) + len(blocked)
    assert d.alive()
    assert wait_until(lambda: "Writing the event log" in d.stderr()[err_mark:], 5), \
        d.stderr()[err_mark:]
    assert os.path.getsize(d.event_log) <= log_size + 4096
    dropped = metric_sum(d.metrics(), "/santa/log_lines_dropped")
    assert dropped > 0

    # A big rule change that cannot be stored: an error, in time, nothing
    # applied.
    new = [f"{i:064x}" for i in range(1, 20001)]
    r = d.ctl("rule", "--import", rule_file(tmp_path, "big.json", new, "BLOCKLIST"),
              timeout=60)
    assert r.returncode != 0, "a rule import was stored on a full disk?"
    assert r.stderr.strip(), "the refused import said nothing"
    assert rules_table(d) == rules_before
    for p, _ in blocked:
        assert exec_status(p) == errno.EPERM

    # Space returns: lines and rules are written again.
    os.unlink(filler)
    mark = len(d.log_lines())
    for p, _ in blocked:
        assert exec_status(p) == errno.EPERM
    assert d.wait_log(lambda l: "decision=DENY" in l and "blocked" in l, 5)
    assert wait_until(lambda: len(d.log_lines()) > mark, 5), "the log did not resume"
    d.ctl_ok("rule", "--import", rule_file(tmp_path, "after.json", new[:100], "BLOCKLIST"))
    assert len(rules_table(d)) >= len(rules_before) + 100
    d.stop()
    for db in ("rules.db", "events.db"):
        if d.db_path(db).exists():
            assert integrity(d.db_path(db)) == "ok", db
    rel_summary("disk full", f"{decided} execs decided with StateDirectory and the log on "
                f"a full 1 MiB tmpfs (all as their rules say); write failure logged, drops "
                f"counted {dropped}; "
                f"20,000-rule import while full "
                f"refused with an error, rules unchanged; after freeing: "
                f"log resumed, 100-rule import stored, integrity_check ok")
