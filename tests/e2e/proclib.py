# SPDX-License-Identifier: Apache-2.0
"""Helpers for the process-model tests (test_process_*.py).

They look at processes from the outside, the way an administrator would:
/proc for who runs as whom and who is whose child, the sockets for who may
connect, and ipc-probe (ipc_probe.c, built here against the build tree)
for a client of ours with any role.
"""
import os
import pathlib
import pwd
import shutil
import signal
import subprocess

import pytest

import conftest
import seqpacket_client
from conftest import wait_until  # noqa: F401 (proclib.wait_until in the tests)
from seqpacket_client import seqpacket_try  # noqa: F401 (proclib.seqpacket_try)

SERVICES = ("santasyncservice", "santametricservice", "santabundleservice")

# The roles a probe may play: each is a copy of ipc-probe under that name,
# which the IPC layer takes as the role (ipc_trust_add_dir).
PROBE_ROLES = ("santad", "santactl", "santasyncservice", "santametricservice",
               "santabundleservice", "santagui")

SERVICE_PROTO = {
    "santad": "santa.Santad",
    "santasyncservice": "santa.SyncService",
    "santametricservice": "santa.MetricService",
    "santabundleservice": "santa.BundleService",
}


def proc_status(pid):
    """/proc/PID/status as a dict of strings, or None if PID is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def alive(pid):
    """Running, not a zombie waiting to be reaped."""
    st = proc_status(pid)
    return st is not None and not st.get("State", "").startswith(("Z", "X"))


def proc_exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def proc_ids(pid):
    """(real, effective, saved uid), (same for gid), groups of PID."""
    st = proc_status(pid)
    uids = tuple(int(x) for x in st["Uid"].split()[:3])
    gids = tuple(int(x) for x in st["Gid"].split()[:3])
    groups = tuple(int(x) for x in st.get("Groups", "").split())
    return uids, gids, groups


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children(ppid):
    out = []
    for pid in all_pids():
        st = proc_status(pid)
        if st and st.get("PPid") == str(ppid) and alive(pid):
            out.append(pid)
    return out


def service_pid(santad_pid, name):
    """The pid of santad's child running the executable NAME, or None."""
    for pid in children(santad_pid):
        exe = proc_exe(pid)
        if exe and os.path.basename(exe) == name:
            return pid
    return None


def wait_service(santad_pid, name, timeout=5.0, other_than=None):
    """Wait until santad has a child NAME (other than pid OTHER_THAN)."""
    def found():
        pid = service_pid(santad_pid, name)
        return pid if pid and pid != other_than else None
    return wait_until(found, timeout)


def pids_running(exe_paths):
    """Live processes executing any of EXE_PATHS (compared by identity)."""
    wanted = set()
    for p in exe_paths:
        try:
            st = os.stat(p)
            wanted.add((st.st_dev, st.st_ino))
        except FileNotFoundError:
            pass
    out = []
    for pid in all_pids():
        try:
            st = os.stat(f"/proc/{pid}/exe")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in wanted and alive(pid):
            out.append(pid)
    return out


def nobody_ids():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def kill9(pid):
    os.kill(pid, signal.SIGKILL)


# --- ipc-probe ---

def build_probe(source_dir, build_dir, dest_dir):
    """Compile ipc_probe.c against BUILD_DIR into DEST_DIR (which must be
    root's and closed to others, as the IPC layer checks), with one copy per
    role. Returns DEST_DIR."""
    os.makedirs(dest_dir, mode=0o755, exist_ok=True)
    os.chmod(dest_dir, 0o755)
    out = os.path.join(dest_dir, "ipc-probe")
    cmd = [
        "cc", "-std=c17", "-D_GNU_SOURCE", "-O1",
        "-I", os.path.join(source_dir, "src", "ipc"),
        "-I", os.path.join(source_dir, "src", "common"),
        "-I", build_dir,
        "-I", os.path.join(build_dir, "proto"),
        "-o", out,
        os.path.join(source_dir, "tests", "e2e", "ipc_probe.c"),
        os.path.join(build_dir, "src", "ipc", "libsantaipc.a"),
        os.path.join(build_dir, "proto", "libsantaproto.a"),
        os.path.join(build_dir, "src", "common", "libsantacommon.a"),
        "-lsystemd", "-lprotobuf-c", "-ljson-c", "-lcrypto",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    for role in PROBE_ROLES:
        shutil.copy2(out, os.path.join(dest_dir, role))
        os.chmod(os.path.join(dest_dir, role), 0o755)
    os.unlink(out)
    return dest_dir


def run_probe(probe_dir, role, config, sock, service, method=None,
              user=None, timeout=10):
    """Run the probe as ROLE (as USER, a name, when given). Returns
    (exit status, stdout)."""
    cmd = [os.path.join(probe_dir, role), "--config", config, sock,
           SERVICE_PROTO[service]]
    if method:
        cmd.append(method)
    if user:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
               "--clear-groups", "--"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


# --- santad whose services can read its configuration ---

# Where trees others must reach go (see conftest.make_public_dir).
SAFE_BASE = conftest.PUBLIC_PARENT


def trusted_dirs(build_dir, probe_dir=None):
    """The build's executables, then the probes (after them, so that the
    launcher finds the real services first)."""
    src = pathlib.Path(build_dir) / "src"
    dirs = sorted(str(p) + "/" for p in src.iterdir() if p.is_dir())
    if probe_dir:
        dirs.append(str(probe_dir).rstrip("/") + "/")
    return dirs


@pytest.fixture(scope="session")
def probe_dir(build_dir):
    """ipc-probe copies, one per role, in BUILD/e2e-probes (root's and
    closed to others, as the IPC layer demands of our executables)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    return build_probe(str(root), str(build_dir), str(pathlib.Path(build_dir) / "e2e-probes"))


@pytest.fixture
def proc_santad(build_dir, santad_factory, probe_dir):
    """make(overrides=None, name="santad", start=True) -> conftest's
    santad_factory with the probes among TrustedExecutables."""
    def make(overrides=None, name="santad", start=True):
        cfg = {"TrustedExecutables": trusted_dirs(build_dir, probe_dir)}
        cfg.update(overrides or {})
        return santad_factory(cfg, start=start, name=name)
    return make


def socket_of(santad, service):
    return str(pathlib.Path(santad.run_dir) / f"{service}.sock")


def probe(santad, probe_dir, role, service, method=None, user=None):
    """Run the probe as ROLE against SERVICE's socket of SANTAD."""
    sock = str(santad.socket_path) if service == "santad" else socket_of(santad, service)
    return run_probe(probe_dir, role, str(santad.config_path), sock, service,
                     method=method, user=user)


def foreign_try(path, user=None, send=None, timeout=4.0):
    """seqpacket_try from a separate python3 process, as USER (a name) or
    root: a foreign executable of a chosen uid. Returns (frames, closed,
    denied): denied when the socket's mode kept it from connecting at all."""
    import json
    source = pathlib.Path(seqpacket_client.__file__).read_text()
    cmd = ["/usr/bin/python3", "-c", source, path, (send or b"").hex(), str(timeout)]
    if user:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
               "--clear-groups", "--"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    return [bytes.fromhex(f) for f in out["frames"]], out["closed"], out["denied"]
