# SPDX-License-Identifier: Apache-2.0
"""Helpers of the reliability suite (test_reliability_*.py).

Each reliability case tries to break one thing on purpose and then checks
that nothing was lost and nothing hung. The helpers here:

- `rel_santad`: santad (the conftest's SantadProcess) with its tree in
  conftest's `public_dir`, so that the services it starts as nobody can
  read its configuration, watching the test's private tmpfs (conftest's
  `tmpfs`). Every exec a case makes happens on that tmpfs.
- `tiny_program`: a static program of a few hundred bytes that exits 0 at
  once, so that an exec storm measures the exec path, not the dynamic
  loader; `programs()` puts copies with distinct SHA-256s on the tmpfs.
- `storm()`: several bash loops executing programs in parallel, each under
  `timeout`, counting every exit status per program: a hung exec shows as
  a loop killed by its timeout.
- santactl, metrics, RSS and SQLite readers.
- `rel_summary`: each case's one-line summary (what was done, what was
  counted), printed in pytest's final summary and on stderr as it ends.

Everything a case starts is stopped by pid; nothing marks a filesystem
but the case's own tmpfs.
"""
import collections
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import time

import pytest

import conftest
from conftest import exec_status, mount_tmpfs, umount, wait_until  # noqa: F401 (cases)

ROOT = pathlib.Path(__file__).resolve().parents[2]

TINY_C = r"""
void _start(void)
{
	__asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
}
"""


# --- summaries ---------------------------------------------------------

class _SummaryPlugin:
    def __init__(self):
        self.lines = []

    def pytest_terminal_summary(self, terminalreporter):
        if not self.lines:
            return
        terminalreporter.section("reliability summary")
        for line in self.lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def rel_summary(request):
    """say(case, text): record CASE's one-line summary."""
    pm = request.config.pluginmanager
    plugin = pm.get_plugin("santa-reliability-summary")
    if plugin is None:
        plugin = _SummaryPlugin()
        pm.register(plugin, "santa-reliability-summary")

    def say(case, text):
        line = f"{case}: {text}"
        plugin.lines.append(line)
        print(line, file=sys.stderr)
    return say


# --- programs ----------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_program(build_dir):
    """The path of the tiny static program, built once per session."""
    out = pathlib.Path(build_dir) / "e2e-reliability"
    out.mkdir(exist_ok=True)
    src = out / "tiny.c"
    exe = out / "tiny"
    src.write_text(TINY_C)
    subprocess.run(["cc", "-O2", "-static", "-nostdlib", "-o", str(exe), str(src)],
                   check=True, capture_output=True)
    return exe


def programs(directory, prefix, n, source):
    """N copies of SOURCE in DIRECTORY, named PREFIX0..., each with bytes
    appended after what runs so that each has its own SHA-256. Returns
    [(path, sha256 hex)]."""
    import hashlib
    data = pathlib.Path(source).read_bytes()
    out = []
    for i in range(n):
        path = pathlib.Path(directory) / f"{prefix}{i}"
        body = data + f"\0{prefix}{i}\0".encode()
        path.write_bytes(body)
        os.chmod(path, 0o755)
        out.append((path, hashlib.sha256(body).hexdigest()))
    return out


# --- santad ------------------------------------------------------------

class RelSantad(conftest.SantadProcess):
    """A SantadProcess with santactl and readers for the reliability cases.
    state_dir and event_log follow the configuration's overrides."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state_dir = pathlib.Path(self.config["StateDirectory"])
        self.event_log = pathlib.Path(self.config["EventLogPath"])

    @property
    def santactl_exe(self):
        return str(self.build_dir / "src" / "santactl" / "santactl")

    def ctl(self, *args, timeout=60, user=None):
        cmd = [self.santactl_exe, "--config", str(self.config_path), *args]
        if user:
            import pwd
            pw = pwd.getpwnam(user)
            cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                   "--clear-groups", "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def ctl_ok(self, *args, timeout=60):
        r = self.ctl(*args, timeout=timeout)
        assert r.returncode == 0, f"santactl {' '.join(args)}: {r.stdout}{r.stderr}\n" \
                                  f"{self.stderr()[-3000:]}"
        return r

    def status(self):
        return json.loads(self.ctl_ok("status", "--json").stdout)

    def metrics(self):
        """santad's metric set (rawjson's "metrics")."""
        r = self.ctl("metrics", "--json")
        assert r.returncode == 0, f"santactl metrics: {r.stdout}{r.stderr}"
        return json.loads(r.stdout).get("metrics", {})

    def rss_kb(self):
        return rss_kb(self.pid)

    def db_path(self, name):
        return pathlib.Path(self.state_dir) / name


@pytest.fixture
def rel_santad(santad_factory):
    """make(overrides=None, name="santad", start=True) -> RelSantad, from
    conftest's santad_factory: its tree at public_dir/NAME, watching the
    test's tmpfs. The same NAME twice shares the tree (a restart)."""
    def make(overrides=None, name="santad", start=True):
        return santad_factory(overrides, start=start, name=name, cls=RelSantad)
    return make


# --- readers -------------------------------------------------------------

def rss_kb(pid):
    """VmRSS of PID in KiB, or None when it is gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def metric_values(metrics, name):
    """{value: data} of metric NAME (value is the field values joined by
    ',' as rawjson writes them; '' for a metric without fields)."""
    out = {}
    m = metrics.get(name)
    if not m:
        return out
    for entries in m.get("fields", {}).values():
        for e in entries:
            out[e.get("value", "")] = e.get("data")
    return out


def metric_sum(metrics, name):
    return sum(v for v in metric_values(metrics, name).values()
               if isinstance(v, (int, float)))


def sqlite_ro(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def integrity(path):
    """PRAGMA integrity_check of the database at PATH ("ok" when sound)."""
    db = sqlite_ro(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def event_ids(santad):
    """The ids of the events stored for the sync server."""
    path = santad.db_path("events.db")
    if not path.exists():
        return set()
    db = sqlite_ro(path)
    try:
        return {r[0] for r in db.execute("SELECT id FROM events")}
    finally:
        db.close()


def rules_table(santad):
    """{(identifier, rule_type): policy} from the rules database."""
    db = sqlite_ro(santad.db_path("rules.db"))
    try:
        return {(r[0], r[1]): r[2] for r in
                db.execute("SELECT identifier, rule_type, policy FROM rules")}
    finally:
        db.close()


# --- exec storms ---------------------------------------------------------

STORM_SH = r"""
# One storm loop: exec each program in turn, ROUNDS times, and count each
# exit status per program (126 is the shell's "permission denied").
declare -A count
progs=("$@")
for ((r = 0; r < ROUNDS; r++)); do
	for p in "${progs[@]}"; do
		"$p" 2>/dev/null
		s=$?
		count["$p $s"]=$(( ${count["$p $s"]:-0} + 1 ))
	done
done
for k in "${!count[@]}"; do
	echo "$k ${count[$k]}"
done
"""


class Storm:
    """Parallel bash loops over program lists, started at once; join()
    returns the counts. A loop still running after TIMEOUT seconds is
    killed and reported as hung."""

    def __init__(self, loops, rounds, timeout, workdir):
        script = pathlib.Path(workdir) / "storm.sh"
        script.write_text(STORM_SH.replace("ROUNDS", str(int(rounds))))
        self.started = time.monotonic()
        self.procs = []
        for progs in loops:
            cmd = ["timeout", "-s", "KILL", str(int(timeout)), "bash", str(script),
                   *[str(p) for p in progs]]
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                               stderr=subprocess.DEVNULL, text=True))
        self.elapsed = None
        self.hung = 0
        self.counts = collections.defaultdict(collections.Counter)

    def running(self):
        return any(p.poll() is None for p in self.procs)

    def join(self):
        for p in self.procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                self.hung += 1
            for line in out.splitlines():
                path, status, n = line.rsplit(" ", 2)
                self.counts[path][int(status)] += int(n)
        self.elapsed = time.monotonic() - self.started
        return self

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def total(self):
        return sum(sum(c.values()) for c in self.counts.values())

    def statuses(self, path):
        return self.counts.get(str(path), collections.Counter())


@pytest.fixture
def storm_runner(tmp_path):
    """start(loops, rounds, timeout) -> a started Storm; all killed at the
    end of the case."""
    storms = []

    def start(loops, rounds, timeout=120):
        s = Storm(loops, rounds, timeout, tmp_path)
        storms.append(s)
        return s

    try:
        yield start
    finally:
        for s in storms:
            s.kill()
