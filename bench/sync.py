#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Time to download and apply 100,000 rules: `santactl sync` against the
fixture sync server (tests/e2e/sync_server.py) serving 100,000 BINARY rules
in pages of 10,000, with the real santad (watching only a private tmpfs
this script mounts) and santasyncservice started by santad's launcher.

Each round is a clean sync, so santad replaces its whole rule set every
time: preflight, ten pages, twenty staged AddRules calls applied in one
transaction, postflight. The first round (which also starts the service)
is a warm-up; the median of the others is printed:

    sync_100k_rules_s: 1.23
"""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from conftest import SantadProcess, mount_tmpfs, umount  # noqa: E402
from sync_server import SyncServer, rule  # noqa: E402

N_RULES = 100_000
PAGE = 10_000


def run_rounds(build, rounds):
    server = SyncServer(machine_id="bench-machine").start()
    server.preflight = {"sync_type": "clean"}
    server.rules = [rule(f"{i:064x}", "BLOCKLIST" if i % 2 else "ALLOWLIST")
                    for i in range(N_RULES)]
    server.page_size = PAGE
    root = pathlib.Path(tempfile.mkdtemp(prefix="santa-bench-sync-", dir="/run"))
    os.chmod(root, 0o755)
    mnt = root / "tmpfs"
    mnt.mkdir()
    mount_tmpfs(mnt, size="16m")
    d = SantadProcess(build, mnt, root / "santad",
                      {"SyncBaseURL": server.base_url, "MachineID": "bench-machine"})
    os.chmod(d.config_path, 0o644)
    santactl = [str(build / "src" / "santactl" / "santactl"), "--config",
                str(d.config_path), "sync"]
    times = []
    try:
        d.start()
        for _ in range(rounds + 1):
            start = time.monotonic()
            res = subprocess.run(santactl, capture_output=True, text=True, timeout=300)
            elapsed = time.monotonic() - start
            if res.returncode != 0 or f"Processed {N_RULES} rules" not in res.stdout:
                raise RuntimeError(f"sync failed ({res.returncode}):\n{res.stdout}"
                                   f"{res.stderr}\n{d.stderr()}")
            times.append(elapsed)
        if server.errors:
            raise RuntimeError(f"the server saw bad requests: {server.errors[:3]}")
    finally:
        d.stop()
        umount(mnt)
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return times[1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("sync: the benchmark runs santad, which needs root", file=sys.stderr)
        return 1
    times = run_rounds(pathlib.Path(args.build_dir).resolve(), args.rounds)
    print(f"sync_100k_rules_s: {statistics.median(times):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
