#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""santad at scale: the time to apply 100,000 rules, and santad's memory
with 1,000,000 rules and after 100,000 distinct programs were decided.

One santad (MONITOR, its own tree, watching a private tmpfs):
  - rules_apply_100k_s: `santactl rule --import` of 100,000 BINARY rules
    with --clean-all (parse, send, one SQLite transaction, the in-memory
    rule set rebuilt, caches flushed), wall time, median of REPEAT runs;
  - santad_rss_start_mb: santad's resident memory before any rule;
  - santad_rss_1m_rules_mb: after 1,000,000 rules were imported (in ten
    imports of 100,000, as a sync would send pages);
  - santad_rss_1m_rules_100k_execs_mb, santad_cache_entries: after 100,000
    distinct programs (tiny static ones, each with its own SHA-256) were
    executed once each on the tmpfs: the decision cache holds what its
    bound lets it (src/santad/cache.h) and the memory shows it;
  - exec_first_sight_1m_rules_us: the mean first-sight exec over them.

    bench/rules.py --build-dir build [--repeat 3]
"""
import argparse
import json
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
from conftest import SantadProcess  # noqa: E402  (santad as the tests run it)

N_APPLY = 100_000
N_RULES = 1_000_000
N_EXECS = 100_000
BATCH = 5_000


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("santad is gone")


def rules_file(path, start, n, clean_policy="BLOCKLIST"):
    with open(path, "w") as f:
        f.write('{"rules": [')
        for i in range(start, start + n):
            if i != start:
                f.write(",")
            f.write(json.dumps({"policy": clean_policy, "identifier": f"{i:064x}",
                                "rule_type": "BINARY"}))
        f.write("]}")
    return str(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("rules bench: needs root (fanotify)", file=sys.stderr)
        return 1
    build = pathlib.Path(args.build_dir).resolve()
    work = pathlib.Path(tempfile.mkdtemp(prefix="santa-bench-rules-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    watch = work / "tmpfs"
    watch.mkdir()
    run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=0755", "tmpfs", str(watch)])
    santad = None
    out = {}
    try:
        spawn = work / "exec-spawn"
        tiny = work / "tiny"
        run(["cc", "-O2", "-o", str(spawn), str(ROOT / "bench" / "exec-spawn.c")])
        run(["cc", "-O2", "-static", "-nostdlib", "-o", str(tiny),
             str(ROOT / "bench" / "tiny.c")])
        santad = SantadProcess(build, watch, work / "santad", {"ClientMode": 1}).start()
        ctl = [str(build / "src" / "santactl" / "santactl"), "--config",
               str(santad.config_path)]
        time.sleep(0.5)
        out["santad_rss_start_mb"] = rss_mb(santad.pid)

        apply = []
        path = rules_file(work / "apply.json", 0, N_APPLY)
        for _ in range(args.repeat):
            t0 = time.monotonic()
            run([*ctl, "rule", "--import", path, "--clean-all"], timeout=600)
            apply.append(time.monotonic() - t0)
        out["rules_apply_100k_s"] = statistics.median(apply)

        # Up to a million: the 100,000 in place, nine more pages.
        for start in range(N_APPLY, N_RULES, N_APPLY):
            page = rules_file(work / "page.json", start, N_APPLY)
            run([*ctl, "rule", "--import", page], timeout=600)
        status = json.loads(run([*ctl, "status", "--json"]).stdout)
        assert status["database"]["binary_rules"] == N_RULES, status["database"]
        out["santad_rss_1m_rules_mb"] = rss_mb(santad.pid)

        data = tiny.read_bytes()
        spent = 0.0
        for b in range(0, N_EXECS, BATCH):
            paths = []
            for i in range(b, b + BATCH):
                p = watch / f"p{i}"
                p.write_bytes(data + f"\0{i}".encode())
                p.chmod(0o755)
                paths.append(str(p))
            spent += float(run([str(spawn), "-", *paths], timeout=600).stdout) * BATCH
            for p in paths:
                os.unlink(p)
        out["exec_first_sight_1m_rules_us"] = spent / N_EXECS
        time.sleep(0.5)
        out["santad_rss_1m_rules_100k_execs_mb"] = rss_mb(santad.pid)
        cache = json.loads(run([*ctl, "status", "--json"]).stdout)["cache"]
        out["santad_cache_entries"] = cache["root_cache_count"] + cache["non_root_cache_count"]
    finally:
        if santad:
            santad.stop()
        if subprocess.run(["umount", str(watch)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(watch)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    for k, v in out.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
