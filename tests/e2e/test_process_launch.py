# SPDX-License-Identifier: Apache-2.0
"""santad as the launcher of its services, without systemd (PID 1 here is
not systemd): who runs, as whom, with what, when, and what happens when a
service or santad dies. See docs/process-model.md."""
import json
import os
import re
import stat
import time

import pytest

import proclib
from proclib import probe, probe_dir, proc_santad  # noqa: F401 (fixtures)

# A port nothing listens on: the sync service starts but never syncs.
NO_SERVER = "http://127.0.0.1:9/"


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read().split(b"\0")
    return dict(e.decode().split("=", 1) for e in raw if e)


def fd_targets(pid):
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return out


def assert_runs_as(pid, uid, gid):
    uids, gids, groups = proclib.proc_ids(pid)
    assert uids == (uid, uid, uid)
    assert gids == (gid, gid, gid)
    assert groups == ()


def test_metric_service_runs_as_nobody(proc_santad):
    d = proc_santad()
    pid = proclib.wait_service(d.pid, "santametricservice")
    assert pid, d.stderr()
    uid, gid = proclib.nobody_ids()
    assert_runs_as(pid, uid, gid)
    assert proclib.proc_status(pid)["NoNewPrivs"] == "1"
    # Started from santad, in a session of its own.
    assert proclib.proc_status(pid)["PPid"] == str(d.pid)
    assert os.getsid(pid) == pid
    # It stays up: it could read its configuration as nobody.
    time.sleep(1.0)
    assert proclib.alive(pid), d.stderr()


def test_service_gets_a_clean_start(proc_santad):
    d = proc_santad()
    pid = proclib.wait_service(d.pid, "santametricservice")
    assert pid, d.stderr()
    # What the kernel recorded at exec: systemd's variables and PATH only,
    # none of santad's (NOTIFY_SOCKET, SANTA_SERVICE_LAUNCHER, ...).
    env = environ_of(pid)
    assert set(env) == {"PATH", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}
    assert env["LISTEN_FDS"] == "1"
    assert env["LISTEN_PID"] == str(pid)
    assert env["LISTEN_FDNAMES"] == "santametricservice"
    # Nothing of santad's leaks beyond stdout and stderr (santad's log):
    # not its fanotify group, databases, event log, control socket or lock.
    fds = fd_targets(pid)
    assert fds[0] == "/dev/null"
    assert fds[3].startswith("socket:")
    santad_files = {t for fd, t in fd_targets(d.pid).items() if fd > 2 and not t.startswith(
        ("socket:", "anon_inode:", "/dev/"))}
    assert santad_files, "santad should hold files of its own"
    assert not santad_files & {t for fd, t in fds.items() if fd > 2}
    assert not [t for t in fds.values() if "fanotify" in t]


def test_socket_owners_and_modes(proc_santad):
    d = proc_santad({"SyncBaseURL": NO_SERVER})
    want = {"santasyncservice": 0o666, "santametricservice": 0o600,
            "santabundleservice": 0o666}
    for service, mode in want.items():
        st = os.stat(proclib.socket_of(d, service))
        assert stat.S_ISSOCK(st.st_mode)
        assert (st.st_uid, st.st_gid) == (0, 0)
        assert stat.S_IMODE(st.st_mode) == mode, service
    st = os.stat(d.run_dir)
    assert st.st_uid == 0 and not st.st_mode & 0o022


def test_no_sync_service_without_sync_server(proc_santad):
    d = proc_santad()
    assert not os.path.exists(proclib.socket_of(d, "santasyncservice"))
    time.sleep(1.0)
    assert proclib.service_pid(d.pid, "santasyncservice") is None


def test_sync_service_starts_on_demand_as_nobody(proc_santad, probe_dir):
    d = proc_santad({"SyncBaseURL": NO_SERVER})
    # Whether santad connects at once or later, the first connection starts
    # it; santactl's is as good as santad's.
    rc, out = probe(d, probe_dir, "santactl", "santasyncservice")
    assert rc == 0, out + d.stderr()
    pid = proclib.wait_service(d.pid, "santasyncservice")
    assert pid, d.stderr()
    uid, gid = proclib.nobody_ids()
    assert_runs_as(pid, uid, gid)


def test_bundle_service_starts_on_first_connection_as_root(proc_santad, probe_dir):
    d = proc_santad()
    time.sleep(1.0)
    assert proclib.service_pid(d.pid, "santabundleservice") is None
    rc, out = probe(d, probe_dir, "santagui", "santabundleservice", user="nobody")
    assert rc == 0, out + d.stderr()
    pid = proclib.wait_service(d.pid, "santabundleservice")
    assert pid, d.stderr()
    assert_runs_as(pid, 0, 0)


def test_killed_metric_service_comes_back_and_santad_reconnects(proc_santad, tmp_path):
    out_dir = "/run/" + os.path.basename(str(tmp_path)) + "-metrics"
    os.mkdir(out_dir)
    os.chmod(out_dir, 0o777)   # the service writes here as nobody
    target = os.path.join(out_dir, "metrics.json")
    try:
        d = proc_santad({"MetricURL": f"file://{target}", "MetricFormat": "rawjson",
                         "MetricExportInterval": 1})
        first = proclib.wait_service(d.pid, "santametricservice")
        assert first, d.stderr()
        assert proclib.wait_until(lambda: os.path.exists(target), 10), \
            "santad exported no metrics before the kill:\n" + d.stderr()

        proclib.kill9(first)
        second = proclib.wait_service(d.pid, "santametricservice", timeout=5,
                                      other_than=first)
        assert second, d.stderr()
        uid, gid = proclib.nobody_ids()
        assert_runs_as(second, uid, gid)

        # santad reconnected: the new service writes santad's next exports.
        os.unlink(target)
        assert proclib.wait_until(lambda: os.path.exists(target), 15), d.stderr()
    finally:
        for f in os.listdir(out_dir):
            os.unlink(os.path.join(out_dir, f))
        os.rmdir(out_dir)


def test_killed_bundle_service_restarts_on_next_connection(proc_santad, probe_dir):
    d = proc_santad()
    rc, out = probe(d, probe_dir, "santagui", "santabundleservice", user="nobody")
    assert rc == 0, out
    first = proclib.wait_service(d.pid, "santabundleservice")
    proclib.kill9(first)
    rc, out = probe(d, probe_dir, "santagui", "santabundleservice", user="nobody")
    assert rc == 0, out + d.stderr()
    assert proclib.wait_service(d.pid, "santabundleservice", other_than=first)
    assert "santabundleservice (pid %d) was killed by signal KILL" % first in d.stderr()


def test_santad_keeps_its_sync_connection(proc_santad):
    """santad opens its connection to the sync service by itself and, when
    the service is killed, reconnects, which starts it again."""
    d = proc_santad({"SyncBaseURL": NO_SERVER})
    # Nobody else connects here: only santad's own connection starts it.
    first = proclib.wait_service(d.pid, "santasyncservice", timeout=10)
    assert first, d.stderr()
    proclib.kill9(first)
    assert proclib.wait_service(d.pid, "santasyncservice", timeout=10,
                                other_than=first), d.stderr()


def our_service_pids(d):
    exes = [os.path.join(d.build_dir, "src", s, s) for s in proclib.SERVICES]
    return proclib.pids_running(exes)


def test_killing_santad_leaves_no_service(proc_santad, probe_dir):
    d = proc_santad({"SyncBaseURL": NO_SERVER})
    probe(d, probe_dir, "santactl", "santasyncservice")
    probe(d, probe_dir, "santagui", "santabundleservice", user="nobody")
    assert proclib.wait_until(lambda: len(proclib.children(d.pid)) == 3, 10), d.stderr()
    services = proclib.children(d.pid)

    d.kill()
    assert proclib.wait_until(lambda: not any(proclib.alive(p) for p in services), 5)


def test_stopping_santad_stops_services_and_removes_sockets(proc_santad, probe_dir):
    d = proc_santad({"SyncBaseURL": NO_SERVER})
    probe(d, probe_dir, "santagui", "santabundleservice", user="nobody")
    assert proclib.wait_until(lambda: len(proclib.children(d.pid)) >= 2, 10)
    services = proclib.children(d.pid)
    d.stop()
    assert not any(proclib.alive(p) for p in services)
    for s in proclib.SERVICES:
        assert not os.path.exists(proclib.socket_of(d, s))
    # Its own socket too: nobody is left to answer on it.
    assert not d.socket_path.exists()


def test_restarted_santad_finds_its_state(proc_santad, probe_dir):
    """kill -9 of santad loses nothing it had stored: rules, events and the
    sync server's settings are there for the next santad."""
    import santactl_util as sc

    d = proc_santad()
    sha = "a" * 64
    r = sc.santactl(d, "rule", "--block", "--identifier", sha)
    assert r.returncode == 0, r.stdout + r.stderr
    prog = sc.make_program(d, "unknown-prog", extra=b"\0restart")
    sc.run_program(prog)
    before = sc.status_json(d)

    d.kill()
    assert not our_service_pids(d)
    d.start()
    after = sc.status_json(d)
    r = sc.santactl(d, "rule", "--check", "--identifier", sha)
    assert r.returncode == 0 and "Block" in r.stdout, r.stdout + r.stderr
    assert after["database"] == before["database"]
    assert after["sync"] == before["sync"]


# santactl's own deadline for santad's answer; status must come back well
# within it even when a service santad asks about is hung.
STATUS_DEADLINE = 5.0


@pytest.mark.parametrize("fmt", [[], ["--json"]], ids=["text", "json"])
def test_status_with_sync_service_stopped(proc_santad, probe_dir, fmt):
    import signal
    import santactl_util as sc

    d = proc_santad({"SyncBaseURL": NO_SERVER})
    probe(d, probe_dir, "santactl", "santasyncservice")
    pid = proclib.wait_service(d.pid, "santasyncservice")
    assert pid, d.stderr()
    os.kill(pid, signal.SIGSTOP)
    try:
        t = time.monotonic()
        r = sc.santactl(d, "status", *fmt, timeout=30)
        took = time.monotonic() - t
    finally:
        os.kill(pid, signal.SIGCONT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert took < STATUS_DEADLINE, f"status took {took:.1f} s"
    if fmt:
        assert json.loads(r.stdout)["sync"]["service"] == "not answering", r.stdout
    else:
        assert re.search(r"^\s*Sync Service\s*\|\s*not answering$", r.stdout, re.M), r.stdout

    # And once it runs again, status says so.
    def sync_state():
        r = sc.santactl(d, "status", "--json", timeout=30)
        return json.loads(r.stdout)["sync"].get("service")
    assert proclib.wait_until(lambda: sync_state() == "running", 10), sync_state()


def test_status_with_metric_service_stopped(proc_santad):
    """santad never waits on the metric service to answer status: what it
    says of it is what the last export found."""
    import signal
    import santactl_util as sc

    d = proc_santad()
    pid = proclib.wait_service(d.pid, "santametricservice")
    assert pid, d.stderr()
    os.kill(pid, signal.SIGSTOP)
    try:
        t = time.monotonic()
        r = sc.santactl(d, "status", "--json", timeout=30)
        took = time.monotonic() - t
    finally:
        os.kill(pid, signal.SIGCONT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert took < STATUS_DEADLINE, f"status took {took:.1f} s"


def test_service_that_cannot_read_its_configuration_stays_down(proc_santad):
    """A service exits 78 (EX_CONFIG) when it cannot read the configuration
    (here: only root may read it, and the metric service runs as nobody).
    Starting it again would fail again: santad says so once and leaves it."""
    d = proc_santad(start=False)
    os.chmod(d.config_path, 0o600)
    d.start()
    assert proclib.wait_until(lambda: "EX_CONFIG" in d.stderr(), 10), d.stderr()
    time.sleep(2.0)   # several restart delays (250 ms, doubling)
    log = d.stderr()
    assert log.count("Started santametricservice") == 1, log
    assert log.count("exited with status 78 (EX_CONFIG)") == 1, log
    assert proclib.service_pid(d.pid, "santametricservice") is None
    assert not os.path.exists(proclib.socket_of(d, "santametricservice"))
    # santad itself goes on: status answers.
    import santactl_util as sc
    assert sc.santactl(d, "status").returncode == 0
