#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What exporting metrics costs santad's decision path: exec latency with
santad exporting every second (MetricExportInterval 1, Prometheus text to
a file, through the launcher-started santametricservice) against santad
not exporting at all (the service runs, santad sends it nothing).

Each round starts santad once per configuration, in a rotating order, on
a private tmpfs, and for SECONDS (long enough to span several exports)
times batches of execs of bench/tiny.c with bench/exec.py's exec-spawn:
"first" batches of fresh copies (each a new SHA-256 santad must hash),
"cached" batches of one allowed program (the kernel's ignore mark
answers). It prints, per configuration, the median over rounds of the
median batch mean and of the 95th-percentile batch mean (an export
landing in a batch shows there), the median of the per-round ratios
(export / none), and santad's CPU time per second.

    bench/metrics.py --build-dir build [--rounds 5] [--seconds 4]

Only private tmpfs mounts are watched; santad runs under `timeout` and is
stopped by pid, and the mounts are removed, whatever happens.
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
sys.path.insert(0, str(ROOT / "bench"))
from conftest import SantadProcess  # noqa: E402  (santad as the tests run it)
from exec import compile_helpers, fresh_copies, spawn_us  # noqa: E402

BATCH = 100


class NoExport(Exception):
    """santad does not export (built without metrics.c)."""


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batches(spawn, tiny, mnt, mode, seconds):
    """Mean µs per exec of each batch run within SECONDS."""
    prog = mnt / "tiny"
    shutil.copy(tiny, prog)
    spawn_us(spawn, "20", str(prog))          # allowed and marked
    means, n = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if mode == "first":
            paths = fresh_copies(tiny, str(mnt), BATCH, f"b{n}")
            means.append(spawn_us(spawn, "-", *paths))
            for p in paths:
                os.unlink(p)
        else:
            means.append(spawn_us(spawn, str(BATCH), str(prog)))
        n += 1
    return means


def run_config(build, name, keys, spawn, tiny, seconds):
    root = pathlib.Path(tempfile.mkdtemp(prefix="santa-bench-metrics-", dir="/run"))
    os.chmod(root, 0o755)
    mnt = root / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", str(mnt)],
                   check=True)
    santad = None
    try:
        out = root / "out"
        out.mkdir()
        os.chmod(out, 0o777)        # santametricservice writes as nobody
        cfg = {k: (v.replace("@OUT@", str(out)) if isinstance(v, str) else v)
               for k, v in keys.items()}
        santad = SantadProcess(build, mnt, root / "santad", cfg).start()
        if "MetricURL" in keys and not santad.wait_stderr("Exporting metrics every", 3):
            raise NoExport(santad.stderr())
        result = {}
        for mode in ("first", "cached"):
            cpu0 = cpu_seconds(santad.pid)
            means = sorted(batches(spawn, tiny, mnt, mode, seconds))
            result[mode] = (statistics.median(means), means[int(len(means) * 0.95)])
            result[mode + "_cpu"] = (cpu_seconds(santad.pid) - cpu0) / seconds
        if "MetricURL" in keys and not any(out.iterdir()):
            raise RuntimeError(f"{name}: no export was written:\n" + santad.stderr())
        return result
    finally:
        if santad:
            santad.stop()
        subprocess.run(["umount", str(mnt)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    build = pathlib.Path(args.build_dir).resolve()
    if os.geteuid() != 0:
        print("metrics bench: needs root (fanotify)", file=sys.stderr)
        return 1
    configs = {
        "none": {},
        "export1s": {"MetricURL": "file://@OUT@/santa.prom", "MetricFormat": "prometheus",
                     "MetricExportInterval": 1},
    }
    work = pathlib.Path(tempfile.mkdtemp(prefix="santa-bench-tools-"))
    try:
        spawn, tiny = compile_helpers(str(work))
        rounds = []
        names = list(configs)
        for i in range(args.rounds):
            order = names[i % len(names):] + names[:i % len(names)]
            rounds.append({n: run_config(build, n, configs[n], spawn, tiny, args.seconds)
                           for n in order})
    except NoExport:
        print("metrics bench: skipped, this santad does not export metrics (built "
              "without src/santad/metrics.c)", file=sys.stderr)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)

    for mode in ("first", "cached"):
        for n in names:
            med = statistics.median(r[n][mode][0] for r in rounds)
            p99 = statistics.median(r[n][mode][1] for r in rounds)
            print(f"metrics_exec_{mode}_{n}_median_us: {med:.1f}")
            print(f"metrics_exec_{mode}_{n}_p95_batch_us: {p99:.1f}")
        ratio = statistics.median(r["export1s"][mode][0] / r["none"][mode][0] for r in rounds)
        print(f"metrics_exec_{mode}_ratio_export1s_vs_none: {ratio:.3f}")
    for n in names:
        cpu = statistics.median(r[n]["first_cpu"] for r in rounds)
        print(f"metrics_santad_cpu_ms_per_s_{n}: {cpu * 1000:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
