#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What exporting metrics costs santad's decision path: exec latency with
santad exporting every second (MetricExportInterval 1, Prometheus text to
a file, through the launcher-started santametricservice) against santad
not exporting at all.

Each round starts santad once per configuration, in a rotating order, on
a private tmpfs, and times execs of a tiny static program for SECONDS
(long enough to span several exports): "first" rewrites the program
before each exec, so every exec is decided by santad (hashed, not
cached); "cached" leaves it alone, so the kernel's ignore mark answers.
It prints the medians over rounds of each configuration's median and p99
latency, the median of the per-round ratios (export / none), and
santad's CPU time per second of run.

    bench/metrics.py --build-dir build [--rounds 5] [--seconds 4]
"""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from conftest import SantadProcess  # noqa: E402  (santad as the tests run it)

TINY_C = r"""
void _start(void)
{
	__asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
}
"""


def build_tools(work):
    timer = work / "exec_timer"
    subprocess.run(["cc", "-O2", "-std=gnu17", "-o", str(timer),
                    str(ROOT / "bench" / "exec_timer.c")], check=True)
    src = work / "tiny.c"
    src.write_text(TINY_C)
    tiny = work / "tiny"
    subprocess.run(["cc", "-O2", "-static", "-nostdlib", "-o", str(tiny), str(src)],
                   check=True)
    with open(tiny, "ab") as f:      # a byte to rewrite, past what runs
        f.write(b"\0" * 16)
    return timer, tiny


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_config(build, work, name, keys, timer, tiny, seconds):
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
        os.chmod(out, 0o777)
        cfg = {k: (v.replace("@OUT@", str(out)) if isinstance(v, str) else v)
               for k, v in keys.items()}
        santad = SantadProcess(build, mnt, root / "santad", cfg).start()
        prog = mnt / "tiny"
        shutil.copy2(tiny, prog)
        result = {}
        for mode in ("first", "cached"):
            cpu0 = cpu_seconds(santad.pid)
            r = subprocess.run(["timeout", str(int(seconds) + 60), str(timer), str(prog),
                                str(seconds), mode], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"{name}: timing {mode} execs failed: {r.stderr}\n"
                                   + santad.stderr())
            n, median, p99, _busy = r.stdout.split()
            result[mode] = (float(median), float(p99), int(n))
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
        timer, tiny = build_tools(work)
        rounds = []
        names = list(configs)
        for i in range(args.rounds):
            order = names[i % len(names):] + names[:i % len(names)]
            rounds.append({n: run_config(build, work, n, configs[n], timer, tiny,
                                         args.seconds) for n in order})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    for mode in ("first", "cached"):
        for n in names:
            med = statistics.median(r[n][mode][0] for r in rounds)
            p99 = statistics.median(r[n][mode][1] for r in rounds)
            print(f"metrics_exec_{mode}_{n}_median_us: {med:.1f}")
            print(f"metrics_exec_{mode}_{n}_p99_us: {p99:.1f}")
        ratio = statistics.median(r["export1s"][mode][0] / r["none"][mode][0] for r in rounds)
        print(f"metrics_exec_{mode}_ratio_export1s_vs_none: {ratio:.3f}")
    for n in names:
        cpu = statistics.median(r[n]["first_cpu"] for r in rounds)
        print(f"metrics_santad_cpu_ms_per_s_{n}: {cpu * 1000:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
