# SPDX-License-Identifier: Apache-2.0
"""Helpers of the santactl tests (test_santactl_*.py): run santactl
against the santad of the `santad` fixture (conftest.py), as root or as
nobody (its tree is in conftest's `public_dir`, which nobody may reach),
and make programs on the watched tmpfs to execute."""
import json
import os
import pathlib
import pwd
import subprocess

from conftest import copy_program, sha256_of  # noqa: F401 (for the tests)

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "e2e" / "golden"
DOCS = ROOT / "docs"

NO_DAEMON = "An error occurred communicating with the daemon, is it running?"


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
    """conftest.copy_program onto SANTAD's watched tmpfs."""
    return copy_program(santad.watch_dir, name, source, extra)


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
