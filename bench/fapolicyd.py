#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What an exec costs under santad against under fapolicyd, the fanotify
allowlisting daemon Linux administrators already have (Debian's package).

Three configurations, each on a private tmpfs of its own, interleaved
round by round in a rotating order:
  - none:      a tmpfs nobody watches;
  - santad:    a tmpfs santad watches, in LOCKDOWN, the programs allowed by
               rules and already seen (cached: the kernel's ignore mark);
  - fapolicyd: a tmpfs fapolicyd watches, deny by default, the same
               programs trusted through its trust file.
and two workloads in each: the tiny static program (bench/tiny.c) spawned
EXECS times (bench/exec-spawn.c, mean per exec), and a shell script on the
tmpfs that runs 2,000 small commands from that tmpfs (the tiny program and
a copy of /bin/true, alternately), wall time of one run.

fapolicyd runs as BENCH_NOTES.md says it must here: in a private mount
namespace (a holder process made with `unshare -m --propagation private`)
where its configuration, state, run and log directories are bind mounts
of a scratch tree, as root (`uid = root`: these VMs withhold the
capability its user switch needs), trusting only its file backend, with
`watch_fs = tmpfs`: it marks the namespace's copies of every tmpfs, never
the host's, and only processes in that namespace (the measurements, run
with nsenter) are seen. Everything is run under `timeout` and stopped by
pid; the namespace and its mounts vanish with its last process.

Prints `name: value` lines: medians over rounds, ratios as medians of the
per-round ratios.

    bench/fapolicyd.py --build-dir build [--rounds 7]
"""
import argparse
import hashlib
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from conftest import SantadProcess  # noqa: E402  (santad as the tests run it)

EXECS = 300
SCRIPT_COMMANDS = 2000
FAPOLICYD = "/usr/sbin/fapolicyd"

FAPOLICYD_CONF = """\
permissive = 0
nice_val = 0
q_size = 640
uid = root
gid = root
do_stat_report = 0
detailed_report = 0
db_max_size = 50
subj_cache_size = 1549
obj_cache_size = 8191
watch_fs = tmpfs
trust = file
integrity = none
syslog_format = rule,dec,perm,auid,pid,exe,:,path,ftype,trust
rpm_sha256_only = 0
allow_filesystem_mark = 0
"""

# Opens are not this comparison's business; executions are: trusted files
# run, nothing else does (the package's own deny-by-default policy).
FAPOLICYD_RULES = """\
allow perm=open all : all
allow perm=execute all : trust=1
deny_audit perm=execute all : all
"""


POPULATE = r"""
import os, shutil, sys
d, tiny, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.copy(tiny, d + "/tiny")
shutil.copy("/bin/true", d + "/true")
with open(d + "/script.sh", "w") as f:
    f.write("#!/bin/sh\n")
    for i in range(n):
        f.write(d + ("/tiny" if i % 2 == 0 else "/true") + "\n")
for name in ("tiny", "true", "script.sh"):
    os.chmod(d + "/" + name, 0o755)
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def compile_helpers(work):
    spawn = work / "exec-spawn"
    tiny = work / "tiny"
    run(["cc", "-O2", "-o", str(spawn), str(ROOT / "bench" / "exec-spawn.c")])
    run(["cc", "-O2", "-static", "-nostdlib", "-o", str(tiny), str(ROOT / "bench" / "tiny.c")])
    return spawn, tiny


def populate(directory, tiny, prefix=()):
    """The programs and the script on DIRECTORY (from inside the mount
    namespace PREFIX enters, if any); returns their paths."""
    run([*prefix, "/usr/bin/python3", "-c", POPULATE, str(directory), str(tiny),
         str(SCRIPT_COMMANDS)])
    return [pathlib.Path(directory) / n for n in ("tiny", "true", "script.sh")]


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def mount_tmpfs(path, prefix=()):
    run([*prefix, "mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", str(path)])


class Fapolicyd:
    """fapolicyd in a mount namespace of its own, watching WATCH there."""

    def __init__(self, work, tiny):
        self.work = work
        self.watch = work / "fapolicyd-tmpfs"
        self.holder = None
        self.ns_pid = None
        self.proc = None
        self.pid = None
        self.tiny = tiny

    def start(self):
        scratch = self.work / "fapolicyd"
        dirs = {"/etc/fapolicyd": scratch / "etc", "/var/lib/fapolicyd": scratch / "lib",
                "/run/fapolicyd": scratch / "run", "/var/log": scratch / "log"}
        for d in dirs.values():
            d.mkdir(parents=True)
        (scratch / "etc" / "rules.d").mkdir()
        (scratch / "etc" / "trust.d").mkdir()
        (scratch / "etc" / "fapolicyd.conf").write_text(FAPOLICYD_CONF)
        (scratch / "etc" / "compiled.rules").write_text(FAPOLICYD_RULES)
        self.watch.mkdir()

        self.holder = subprocess.Popen(["timeout", "-s", "KILL", "3600", "unshare", "-m",
                                        "--propagation", "private", "--", "sleep", "3600"])
        # unshare execs sleep in the new namespace: wait for that.
        own = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 10
        while True:
            kids = self._children(self.holder.pid)
            if kids:
                try:
                    if os.readlink(f"/proc/{kids[0]}/ns/mnt") != own and \
                            os.readlink(f"/proc/{kids[0]}/exe").endswith("sleep"):
                        self.ns_pid = kids[0]
                        break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("the mount namespace for fapolicyd did not come up")
            time.sleep(0.01)
        for target, source in dirs.items():
            run(self.ns_cmd("mount", "--bind", str(source), target))
        mount_tmpfs(self.watch, prefix=self.ns_cmd())
        # From inside: the watched tmpfs exists only there.
        paths = populate(self.watch, self.tiny, self.ns_cmd())
        trust = "".join(f"{p} {self._ns_size(p)} {self._ns_sha(p)}\n" for p in paths)
        (scratch / "etc" / "fapolicyd.trust").write_text(trust)

        self.err_path = scratch / "fapolicyd.stderr"
        err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.ns_cmd("timeout", "-s", "KILL", "1800", FAPOLICYD,
                                                 "--debug-deny"),
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        err.close()
        deadline = time.monotonic() + 30
        while b"Starting to listen for events" not in self.err_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fapolicyd did not start:\n" +
                                   self.err_path.read_text(errors="replace")[-3000:])
            time.sleep(0.05)
        kids = self._children(self.proc.pid)
        self.pid = kids[0] if kids else None
        # It judges: a program it does not trust is refused.
        run(self.ns_cmd("cp", str(self.tiny), str(self.watch / "untrusted")))
        r = subprocess.run(self.ns_cmd(str(self.watch / "untrusted")), capture_output=True)
        if r.returncode == 0:
            raise RuntimeError("fapolicyd let an untrusted program run: not watching?")
        return paths

    def ns_cmd(self, *cmd):
        return ["nsenter", "-t", str(self.ns_pid), "-m", "--", *cmd]

    def _ns_size(self, p):
        return int(run(self.ns_cmd("stat", "-c", "%s", str(p))).stdout)

    def _ns_sha(self, p):
        return run(self.ns_cmd("sha256sum", str(p))).stdout.split()[0]

    @staticmethod
    def _children(pid):
        try:
            return [int(x) for x in
                    open(f"/proc/{pid}/task/{pid}/children").read().split()]
        except OSError:
            return []

    def denials(self):
        return self.err_path.read_text(errors="replace").count("dec=deny")

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                if self.pid:
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        if self.holder:
            for pid in self._children(self.holder.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.holder.wait()




def exec_us(spawn, prog, prefix=()):
    return float(run([*prefix, str(spawn), str(EXECS), str(prog)], timeout=300).stdout)


def script_ms(script, prefix=()):
    # Wall time of one run, measured inside the namespace's process so that
    # nsenter's own start is not in it.
    code = ("import subprocess,sys,time;t=time.monotonic();"
            "r=subprocess.run([sys.argv[1]]);"
            "print((time.monotonic()-t)*1e3);sys.exit(r.returncode)")
    return float(run([*prefix, "/usr/bin/python3", "-c", code, str(script)],
                     timeout=300).stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("fapolicyd bench: needs root", file=sys.stderr)
        return 1
    if not os.access(FAPOLICYD, os.X_OK):
        print(f"fapolicyd bench: {FAPOLICYD} is not installed (script/setup)", file=sys.stderr)
        return 1
    build = pathlib.Path(args.build_dir).resolve()
    # On a real filesystem: fapolicyd marks every tmpfs in its namespace, and
    # the helpers must not be among what it judges.
    work = pathlib.Path(tempfile.mkdtemp(prefix="santa-bench-fapolicyd-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    mounted, santad, fapo = [], None, None
    res = {k: [] for k in ("none", "santad", "fapolicyd")}
    script = {k: [] for k in res}
    try:
        spawn, tiny = compile_helpers(work)
        plain, watched = work / "plain", work / "santad-tmpfs"
        for d in (plain, watched):
            d.mkdir()
            mount_tmpfs(d)
            mounted.append(d)
        none_paths = populate(plain, tiny)
        santad_paths = populate(watched, tiny)
        santad = SantadProcess(build, watched, work / "santad", {"ClientMode": 2}).start()
        ctl = [str(build / "src" / "santactl" / "santactl"), "--config", str(santad.config_path)]
        for p in santad_paths:
            run([*ctl, "rule", "--allow", "--identifier", sha256(p)])
        fapo = Fapolicyd(work, tiny)
        fapo_paths = fapo.start()
        ns = fapo.ns_cmd()

        setups = {
            "none": (none_paths, ()),
            "santad": (santad_paths, ()),
            "fapolicyd": (fapo_paths, ns),
        }
        for name, (paths, prefix) in setups.items():     # warm up: caches, marks
            exec_us(spawn, paths[0], prefix)
            script_ms(paths[2], prefix)
        order = list(setups)
        for r in range(args.rounds):
            for name in order[r % 3:] + order[:r % 3]:
                paths, prefix = setups[name]
                res[name].append(exec_us(spawn, paths[0], prefix))
                script[name].append(script_ms(paths[2], prefix))
        denied = fapo.denials()
    finally:
        if fapo:
            fapo.stop()
        if santad:
            santad.stop()
        for d in mounted:
            if subprocess.run(["umount", str(d)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(d)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    def ratio(a, b, data):
        return statistics.median(x / y for x, y in zip(data[a], data[b]))

    med = {k: statistics.median(v) for k, v in res.items()}
    smed = {k: statistics.median(v) for k, v in script.items()}
    print(f"fapolicyd_bench_exec_none_us: {med['none']:.1f}")
    print(f"fapolicyd_bench_exec_santad_cached_us: {med['santad']:.1f}")
    print(f"exec_fapolicyd_us: {med['fapolicyd']:.1f}")
    print(f"exec_fapolicyd_vs_none_ratio: {ratio('fapolicyd', 'none', res):.3f}")
    print(f"exec_santad_cached_vs_fapolicyd_ratio: {ratio('santad', 'fapolicyd', res):.3f}")
    print(f"script_2000_none_ms: {smed['none']:.1f}")
    print(f"script_2000_santad_cached_ms: {smed['santad']:.1f}")
    print(f"script_2000_fapolicyd_ms: {smed['fapolicyd']:.1f}")
    print(f"script_2000_santad_vs_none_ratio: {ratio('santad', 'none', script):.3f}")
    print(f"script_2000_fapolicyd_vs_none_ratio: {ratio('fapolicyd', 'none', script):.3f}")
    print(f"fapolicyd_bench_denials: {denied}")   # the one check that it judges
    return 0


if __name__ == "__main__":
    sys.exit(main())
