# SPDX-License-Identifier: Apache-2.0
"""The allowed-peer table (docs/process-model.md), enforced.

Every server is tried by a client of ours in every role (ipc-probe copies,
see proclib), and by a foreign executable (this python3 process). A pair
outside the table is refused at the handshake, the server logs why, and it
goes on serving the peers it should. Calls outside a peer's interface are
refused and never run.
"""
import re
import time

import pytest

import proclib
from proclib import probe, probe_dir, proc_santad  # noqa: F401 (fixtures)

NO_SERVER = "http://127.0.0.1:9/"

# server -> the client roles it accepts. Everything else is refused.
ALLOWED = {
    "santad": {"santactl", "santasyncservice", "santametricservice",
               "santabundleservice", "santagui"},
    "santasyncservice": {"santad", "santactl"},
    "santametricservice": {"santad"},
    "santabundleservice": {"santagui", "santad"},
}
PAIRS = [(server, role) for server in ALLOWED for role in proclib.PROBE_ROLES]


@pytest.fixture(scope="module")
def module_santad(request, build_dir, probe_dir, tmp_path_factory):
    """One santad (with a sync server configured) for the whole table:
    starting one per pair would only make the test slow."""
    import conftest
    import os
    import shutil
    import subprocess
    import tempfile

    mnt = tmp_path_factory.mktemp("peers-tmpfs")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs",
                    str(mnt)], check=True)
    base = tempfile.mkdtemp(prefix="santa-peers-", dir=proclib.SAFE_BASE)
    os.chmod(base, 0o755)
    cfg = {"TrustedExecutables": proclib.trusted_dirs(build_dir, probe_dir),
           "SyncBaseURL": NO_SERVER}
    d = conftest.SantadProcess(build_dir, mnt, os.path.join(base, "santad"), cfg)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        shutil.rmtree(base, ignore_errors=True)
        conftest._umount(mnt)


def server_pid(d, server):
    return d.pid if server == "santad" else proclib.service_pid(d.pid, server)


def new_stderr(d, mark):
    return d.stderr()[mark:]


def wait_log(d, mark, pred, timeout=4.0):
    """A line of the servers' log written after MARK for which PRED holds."""
    return proclib.wait_until(
        lambda: [l for l in new_stderr(d, mark).splitlines() if pred(l)], timeout)


def assert_logged(d, mark, server, pred, what):
    # The line must come from SERVER itself ("<4>santametricservice: ..."),
    # and name the peer as every log line does: "conn N (uid U, pid P, EXE)".
    if wait_log(d, mark, lambda l: l.split(":")[0].endswith(">" + server) and
                pred(l) and re.search(r"conn \d+ \(uid \d+, pid \d+, ", l)):
        return
    raise AssertionError(f"no log line for {what}:\n{new_stderr(d, mark)}")


@pytest.mark.parametrize("server,role", PAIRS, ids=[f"{r}->{s}" for s, r in PAIRS])
def test_peer_table(module_santad, probe_dir, server, role):
    d = module_santad
    mark = len(d.stderr())
    rc, out = probe(d, probe_dir, role, server)
    if role in ALLOWED[server]:
        assert rc == 0, f"{role} refused by {server}: {out}\n{new_stderr(d, mark)}"
        return

    assert rc == 2 and "connect failed" in out, f"{role} accepted by {server}: {out}"
    # Logged by the server, naming the refused peer: by its executable, or,
    # for a root peer a nobody service may not inspect, by its claimed role.
    assert_logged(d, mark, server, lambda l: "refused" in l and role in l,
                  f"{role} refused by {server}")
    # And it goes on serving: an allowed peer still gets in, same process.
    pid = server_pid(d, server)
    good = sorted(ALLOWED[server])[0]
    rc, out = probe(d, probe_dir, good, server)
    assert rc == 0, out
    assert server_pid(d, server) == pid


# Services that run as nobody cannot read a root process's executable, and
# believe a root peer's word (root could run any of ours anyway): they tell
# a root intruder only by its silence, at the handshake deadline.
NOBODY_SERVERS = {"santasyncservice", "santametricservice"}


@pytest.mark.parametrize("server", list(ALLOWED))
@pytest.mark.parametrize("user", ["root", "nobody"])
@pytest.mark.parametrize("send", [None, b"\x00" * 24, b"GET / HTTP/1.0\r\n\r\n"],
                         ids=["silent", "zeros", "http"])
def test_foreign_executable_refused(module_santad, probe_dir, server, user, send):
    d = module_santad
    if server != "santad":
        # Make sure the service runs, so that its refusal is what we see.
        good = sorted(ALLOWED[server])[0]
        assert probe(d, probe_dir, good, server)[0] == 0
    pid = server_pid(d, server)
    mark = len(d.stderr())
    sock = str(d.socket_path) if server == "santad" else proclib.socket_of(d, server)

    frames, closed, denied = proclib.foreign_try(
        sock, user=None if user == "root" else user, send=send)

    assert closed, f"{server} kept a foreign peer's connection open"
    if denied:
        # The metric socket is root's alone (0600): the kernel said no.
        assert server == "santametricservice" and user != "root"
    elif user == "root" and server in NOBODY_SERVERS:
        # A challenge it cannot answer, then the door.
        assert_logged(d, mark, server, lambda l: "python" in l or "handshake" in l or
                      "timed out" in l or "invalid" in l, f"root python3 on {server}")
    else:
        # At most the refusal (an error frame), never a challenge to answer.
        assert len(frames) <= 1
        assert not any(b"santa." in f for f in frames), frames
        assert_logged(d, mark, server, lambda l: "refused" in l and "python" in l,
                      f"python3 as {user} on {server}")
    good = sorted(ALLOWED[server])[0]
    rc, out = probe(d, probe_dir, good, server)
    assert rc == 0, out
    assert server_pid(d, server) == pid


# --- santad's interfaces: who gets the privileged calls ---

@pytest.mark.parametrize("role,user,allowed", [
    ("santactl", None, True),                 # root santactl
    ("santactl", "nobody", False),            # santactl of another user
    ("santagui", None, False),                # root, but not an admin role
    ("santabundleservice", None, False),      # root service, not an admin role
    ("santametricservice", "nobody", False),  # another nobody program of ours
    ("santasyncservice", "nobody", True),     # the sync service, as nobody
])
def test_santad_privileged_calls(module_santad, probe_dir, role, user, allowed):
    d = module_santad
    rc, out = probe(d, probe_dir, role, "santad", "FlushCache", user=user)
    if allowed:
        assert rc == 0 and "call ok" in out, out
    else:
        assert rc == 3 and "not permitted" in out, out
    # The unprivileged interface is everyone's.
    rc, out = probe(d, probe_dir, role, "santad", "Status", user=user)
    assert rc == 0 and "call ok" in out, out


@pytest.mark.parametrize("method", ["PostEvents", "Spindown"])
def test_santactl_gets_only_sync_from_sync_service(module_santad, probe_dir, method):
    d = module_santad
    rc, out = probe(d, probe_dir, "santactl", "santasyncservice", method)
    assert rc == 3 and "not permitted" in out, out


def test_refusals_leave_services_running(module_santad):
    """After the whole table, every service is the one that started."""
    d = module_santad
    time.sleep(0.5)
    for s in ("santasyncservice", "santametricservice", "santabundleservice"):
        pid = proclib.service_pid(d.pid, s)
        assert pid, f"{s} is not running:\n{d.stderr()[-3000:]}"
        assert f"{s} (pid {pid}) was killed" not in d.stderr()
        assert f"{s} (pid {pid}) exited" not in d.stderr()
