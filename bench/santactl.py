#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What an administrator waits for: wall time of `santactl status` and of
`santactl fileinfo` on a small program (process start, configuration,
connect and handshake with santad, the call, the output), against a
running santad with a few rules, on a private tmpfs.

The two commands alternate, RUNS times each; printed are the medians
(santactl_status_ms, santactl_fileinfo_ms) and, for scale, the median wall
time of /bin/true started the same way (santactl_bench_true_ms).

    bench/santactl.py --build-dir build [--runs 30]
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
from conftest import SantadProcess  # noqa: E402  (santad as the tests run it)


def wall_ms(cmd):
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=60)
    return (time.monotonic() - t0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("santactl bench: needs root (fanotify)", file=sys.stderr)
        return 1
    build = pathlib.Path(args.build_dir).resolve()
    work = pathlib.Path(tempfile.mkdtemp(prefix="santa-bench-santactl-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    watch = work / "tmpfs"
    watch.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", str(watch)],
                   check=True)
    santad = None
    times = {"status": [], "fileinfo": [], "true": []}
    try:
        santad = SantadProcess(build, watch, work / "santad", {}).start()
        ctl = [str(build / "src" / "santactl" / "santactl"), "--config",
               str(santad.config_path)]
        prog = watch / "prog"
        shutil.copy("/bin/true", prog)
        for i in range(10):
            subprocess.run([*ctl, "rule", "--block", "--identifier", f"{i + 1:064x}"],
                           check=True, capture_output=True)
        cmds = {"status": [*ctl, "status"], "fileinfo": [*ctl, "fileinfo", str(prog)],
                "true": ["/bin/true"]}
        for c in cmds.values():          # warm up
            wall_ms(c)
        order = list(cmds)
        for r in range(args.runs):
            for name in order[r % 3:] + order[:r % 3]:
                times[name].append(wall_ms(cmds[name]))
    finally:
        if santad:
            santad.stop()
        if subprocess.run(["umount", str(watch)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(watch)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"santactl_status_ms: {statistics.median(times['status']):.2f}")
    print(f"santactl_fileinfo_ms: {statistics.median(times['fileinfo']):.2f}")
    print(f"santactl_bench_true_ms: {statistics.median(times['true']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
