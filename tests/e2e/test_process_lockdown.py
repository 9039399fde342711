# SPDX-License-Identifier: Apache-2.0
"""santad never locks itself out: in LOCKDOWN with no rules at all, its own
executables (the services it starts, santactl) still run from the watched
tmpfs, and nothing else does, not even a copy of ours kept elsewhere.

The executables are copied onto the tmpfs santad watches, into a directory
that TrustedExecutables names first, so that the launcher starts the
services from there and every exec of them is decided by santad
(policy_decide_file, src/santad/policy.c).
"""
import json
import os
import shutil
import subprocess
import time

import proclib
from proclib import probe, probe_dir, proc_santad  # noqa: F401 (fixtures)
import santactl_util as sc

NO_SERVER = "http://127.0.0.1:9/"
OURS = ("santactl", "santasyncservice", "santametricservice", "santabundleservice")


def copy_ours(build_dir, dest):
    os.makedirs(dest, mode=0o755)
    os.chmod(dest, 0o755)
    for name in OURS:
        shutil.copy(os.path.join(build_dir, "src", name, name), os.path.join(dest, name))
        os.chmod(os.path.join(dest, name), 0o755)


def test_lockdown_runs_only_our_own_executables(proc_santad, probe_dir, tmpfs, build_dir):
    ours = os.path.join(str(tmpfs), "santa-bin")
    copy_ours(str(build_dir), ours)
    # Decoys: a program of ours where nothing trusts it, and another
    # program where ours are.
    elsewhere = os.path.join(str(tmpfs), "elsewhere")
    os.makedirs(elsewhere, mode=0o755)
    shutil.copy(os.path.join(ours, "santactl"), os.path.join(elsewhere, "santactl"))
    shutil.copy("/bin/true", os.path.join(ours, "true"))

    d = proc_santad({"ClientMode": 2, "SyncBaseURL": NO_SERVER,
                     "TrustedExecutables": [ours + "/"] +
                     proclib.trusted_dirs(build_dir, probe_dir)})

    # The services santad starts by itself: the metric service at once,
    # the sync service through santad's own connection.
    for name in ("santametricservice", "santasyncservice"):
        pid = proclib.wait_service(d.pid, name, timeout=10)
        assert pid, f"{name} did not start:\n{d.stderr()}"
        assert proclib.proc_exe(pid) == os.path.join(ours, name)
    # The bundle service, on its first connection.
    rc, out = probe(d, probe_dir, "santagui", "santabundleservice", user="nobody")
    assert rc == 0, out + d.stderr()
    pid = proclib.wait_service(d.pid, "santabundleservice")
    assert pid and proclib.proc_exe(pid) == os.path.join(ours, "santabundleservice")
    time.sleep(0.5)
    assert "failed while executing" not in d.stderr(), d.stderr()

    # santactl, as an administrator locked in LOCKDOWN would run it.
    r = subprocess.run([os.path.join(ours, "santactl"), "--config", str(d.config_path),
                        "status", "--json"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["daemon"]["mode"] == "Lockdown"

    # Nothing else: same bytes elsewhere, another program beside ours.
    assert sc.run_program(os.path.join(elsewhere, "santactl")).returncode == 126
    assert sc.run_program(os.path.join(ours, "true")).returncode == 126
