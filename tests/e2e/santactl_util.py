# SPDX-License-Identifier: Apache-2.0
"""Helpers of the santactl tests (test_santactl_*.py): run santactl
against the santad of the `santad` fixture (conftest.py), as root or as
nobody, and make programs on the watched tmpfs to execute."""
import json
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import SantadProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "e2e" / "golden"
DOCS = ROOT / "docs"

NO_DAEMON = "An error occurred communicating with the daemon, is it running?"


@pytest.fixture
def public_santad(request, build_dir):
    """The conftest's santad, with its tree where other users can reach it.

    pytest's tmp_path is root's alone, and a socket below /tmp (writable by
    all) is one a non-root santactl rightly refuses to believe is santad's.
    This santad lives in a fresh 0755 directory under /run instead, with
    its own private tmpfs, so that nobody can run santactl against it."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="santactl-e2e-", dir="/run"))
    os.chmod(base, 0o755)
    watch = base / "tmpfs"
    watch.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", str(watch)],
                   check=True)
    d = None
    try:
        d = SantadProcess(build_dir, watch, base / "santad", getattr(request, "param", None))
        os.chmod(d.config_path, 0o644)
        d.start()
        yield d
    finally:
        if d:
            d.stop()
        if subprocess.run(["umount", str(watch)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(watch)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def santactl_path(santad):
    return str(pathlib.Path(santad.build_dir) / "src" / "santactl" / "santactl")


def santactl(santad, *args, user=None, timeout=30, env=None, stdin_text=None):
    """Run `santactl --config <santad's config> ARGS` as root, or as USER
    (a name, with setpriv), with STDIN_TEXT on its stdin. Returns the
    CompletedProcess."""
    cmd = [santactl_path(santad), "--config", str(santad.config_path), *args]
    if user:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
               *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=env, input=stdin_text)


def status_json(santad, user=None):
    r = santactl(santad, "status", "--json", user=user)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def make_program(santad, name, source="/bin/true", extra=b""):
    """A copy of SOURCE on the watched tmpfs, made executable. EXTRA bytes
    appended give it a new SHA-256 while it still runs."""
    path = pathlib.Path(santad.watch_dir) / name
    shutil.copyfile(source, path)
    if extra:
        with open(path, "ab") as f:
            f.write(extra)
    os.chmod(path, 0o755)
    return path


def make_script(santad, name, body="exit 0\n"):
    path = pathlib.Path(santad.watch_dir) / name
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def run_program(path, timeout=20):
    """Execute PATH from a shell, as a user would: 126 when the exec is
    refused (EPERM), else the program's status."""
    return subprocess.run(["/bin/sh", "-c", f'"{path}"'], capture_output=True,
                          text=True, timeout=timeout)


def sha256_of(path):
    import hashlib
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def wait_for(pred, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def documented_status_keys():
    """The dotted keys of the --json table in docs/santactl-status.md."""
    keys = set()
    for line in (DOCS / "santactl-status.md").read_text().splitlines():
        if line.startswith("| `") and "." in line.split("`")[1]:
            keys.add(line.split("`")[1])
    return keys


def flatten_keys(obj, prefix=""):
    """{"a": {"b": 1}} -> {"a.b"}; lists and scalars are leaves."""
    out = set()
    for k, v in obj.items():
        if isinstance(v, dict):
            out |= flatten_keys(v, prefix + k + ".")
        else:
            out.add(prefix + k)
    return out
