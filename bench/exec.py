# SPDX-License-Identifier: Apache-2.0
"""Exec benchmark: what santad costs an exec.

Time per exec (posix_spawn + waitpid, measured by a small C loop) of a tiny
static program on a private tmpfs:
  - none:        on a tmpfs nobody watches;
  - cached:      on a tmpfs santad watches, the program already allowed (the
                 kernel's ignore mark answers; santad still logs every exec
                 from FAN_OPEN_EXEC);
  - first sight: fresh copies, each a new SHA-256 santad must hash.
Configurations are interleaved round by round, in a rotating order; the
figures are medians over rounds, and ratios the medians of per-round
ratios. Then the first-sight hashing rate of large files against
`openssl dgst -sha256` of the same files.

Also santad's own CPU time per cached exec (all its threads, from
/proc/PID/task/*/schedstat, over the cached runs): unlike the wall-time
ratio, it hardly moves with the machine's load, and on a machine whose
CPUs are all busy it is what each exec pays for santad.

Prints `name: value` lines. Run as root: python3 bench/exec.py --build-dir build
Only private tmpfs mounts are watched; santad runs under `timeout` and is
killed by pid, and the mounts are removed, whatever happens.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = 15
EXECS = 500
FIRST_SIGHT = 150
HASH_FILE_MB = 64
HASH_FILES = 3


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def compile_helpers(work):
    cc = shutil.which("cc") or shutil.which("gcc")
    spawn = os.path.join(work, "exec-spawn")
    tiny = os.path.join(work, "tiny")
    run([cc, "-O2", "-o", spawn, os.path.join(HERE, "exec-spawn.c")])
    run([cc, "-O2", "-static", "-nostdlib", "-o", tiny, os.path.join(HERE, "tiny.c")])
    return spawn, tiny


class Santad:
    def __init__(self, build, root, watch):
        self.exe = os.path.join(build, "src", "santad", "santad")
        self.root = root
        self.cfg = os.path.join(root, "config.json")
        with open(self.cfg, "w") as f:
            json.dump({"WatchPaths": [watch], "ClientMode": 1, "FailClosed": False,
                       "StateDirectory": os.path.join(root, "state"),
                       "RunDirectory": os.path.join(root, "run"),
                       "EventLogPath": os.path.join(root, "log", "santa.log")}, f)
        self.proc = None
        self.pid = None

    def start(self):
        notify_path = os.path.join(self.root, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(15)
        # The services santad could launch are not part of this bench.
        env = dict(os.environ, NOTIFY_SOCKET=notify_path, SANTA_SERVICE_LAUNCHER="systemd")
        self.err = open(os.path.join(self.root, "santad.stderr"), "wb")
        self.proc = subprocess.Popen(["timeout", "-s", "KILL", "1800", self.exe, "--config",
                                      self.cfg], stdout=self.err, stderr=self.err, env=env)
        try:
            while "READY=1" not in notify.recv(4096).decode():
                pass
        finally:
            notify.close()
        kids = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
        self.pid = int(kids[0])

    def stop(self):
        if self.proc is None:
            return
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.err.close()

    def cpu_ns(self):
        """santad's CPU time so far, all threads, in nanoseconds."""
        total = 0
        task_dir = f"/proc/{self.pid}/task"
        for t in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return total

    def log_lines(self):
        try:
            with open(os.path.join(self.root, "log", "santa.log")) as f:
                return sum(1 for _ in f)
        except OSError:
            return 0


def spawn_us(spawn, *args, enoexec_ok=False):
    env = dict(os.environ)
    if enoexec_ok:
        env["ENOEXEC_OK"] = "1"
    return float(run([spawn, *args], env=env, timeout=600).stdout)


def fresh_copies(tiny, dest, n, tag):
    data = open(tiny, "rb").read()
    paths = []
    for i in range(n):
        p = os.path.join(dest, f"fresh-{tag}-{i}")
        with open(p, "wb") as f:
            f.write(data + f"{tag}-{i}".encode())
        os.chmod(p, 0o755)
        paths.append(p)
    return paths


def measure_execs(spawn, tiny, plain, watched, santad):
    none_prog = os.path.join(plain, "tiny")
    cached_prog = os.path.join(watched, "tiny")
    shutil.copy(tiny, none_prog)
    shutil.copy(tiny, cached_prog)
    spawn_us(spawn, "20", cached_prog)        # allowed and marked
    spawn_us(spawn, "20", none_prog)
    results = {"none": [], "cached": [], "first": [], "santad_cpu_ns": 0}
    configs = ["none", "cached", "first"]
    for r in range(ROUNDS):
        fresh = fresh_copies(tiny, watched, FIRST_SIGHT, f"r{r}")
        order = configs[r % 3:] + configs[:r % 3]
        for c in order:
            if c == "none":
                results[c].append(spawn_us(spawn, str(EXECS), none_prog))
            elif c == "cached":
                before = santad.cpu_ns()
                results[c].append(spawn_us(spawn, str(EXECS), cached_prog))
                # What santad still does for these (logging) after the loop.
                time.sleep(0.05)
                results["santad_cpu_ns"] += santad.cpu_ns() - before
            else:
                results[c].append(spawn_us(spawn, "-", *fresh))
        for p in fresh:
            os.unlink(p)
    return results


def measure_hashing(spawn, plain, watched):
    """First-sight exec of large non-programs (santad hashes all of each,
    then the kernel refuses them as ENOEXEC) against openssl."""
    files = []
    for i in range(HASH_FILES):
        p = os.path.join(watched, f"big-{i}")
        with open(p, "wb") as f:
            f.write(b"\x7fNOPE")
            f.write(os.urandom(HASH_FILE_MB << 20))
        os.chmod(p, 0o755)
        files.append(p)
    # Same sizes on the unwatched tmpfs give the exec's own cost.
    base = []
    for i, src in enumerate(files):
        p = os.path.join(plain, f"big-{i}")
        shutil.copy(src, p)
        base.append(p)
    total_mb = HASH_FILES * HASH_FILE_MB
    t_none = spawn_us(spawn, "-", *base, enoexec_ok=True) * HASH_FILES
    t_first = spawn_us(spawn, "-", *files, enoexec_ok=True) * HASH_FILES
    start = time.monotonic()
    run(["openssl", "dgst", "-sha256", *files])
    t_openssl = (time.monotonic() - start) * 1e6
    return {
        "first_sight_hash_mb_per_s": total_mb / ((t_first - t_none) / 1e6),
        "openssl_sha256_mb_per_s": total_mb / (t_openssl / 1e6),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("exec bench: needs root (fanotify)", file=sys.stderr)
        return 1
    build = os.path.abspath(args.build_dir)
    work = tempfile.mkdtemp(prefix="santa-bench-exec-")
    plain, watched, root = (os.path.join(work, d) for d in ("plain", "watched", "santad"))
    mounted, santad = [], None
    try:
        spawn, tiny = compile_helpers(work)
        for d in (plain, watched, root):
            os.mkdir(d)
        for d in (plain, watched):
            run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "tmpfs", d])
            mounted.append(d)
        santad = Santad(build, root, watched)
        santad.start()
        res = measure_execs(spawn, tiny, plain, watched, santad)
        hashing = measure_hashing(spawn, plain, watched)
        lines = santad.log_lines()
    finally:
        if santad:
            santad.stop()
        for d in mounted:
            subprocess.run(["umount", d], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    cpu_ns = res.pop("santad_cpu_ns")
    med = {k: statistics.median(v) for k, v in res.items()}
    cached_ratio = statistics.median(c / n for c, n in zip(res["cached"], res["none"]))
    first_ratio = statistics.median(f / n for f, n in zip(res["first"], res["none"]))
    print(f"exec_none_us: {med['none']:.1f}")
    print(f"exec_cached_us: {med['cached']:.1f}")
    print(f"exec_first_sight_us: {med['first']:.1f}")
    print(f"exec_cached_vs_none_ratio: {cached_ratio:.3f}")
    print(f"exec_first_vs_none_ratio: {first_ratio:.3f}")
    print(f"santad_cpu_us_per_cached_exec: {cpu_ns / 1e3 / (ROUNDS * EXECS):.1f}")
    print(f"exec_first_sight_hash_mb_per_s: {hashing['first_sight_hash_mb_per_s']:.0f}")
    print(f"openssl_sha256_mb_per_s: {hashing['openssl_sha256_mb_per_s']:.0f}")
    print(f"exec_first_sight_hash_vs_openssl_ratio: "
          f"{hashing['first_sight_hash_mb_per_s'] / hashing['openssl_sha256_mb_per_s']:.2f}")
    print(f"exec_bench_log_lines: {lines}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
