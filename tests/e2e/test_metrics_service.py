# SPDX-License-Identifier: Apache-2.0
"""santametricservice end to end: it takes its socket as systemd passes it,
runs as nobody, accepts only santad, refuses malformed sets and keeps
serving, refuses a configuration it cannot serve, reports a failing writer
once per streak, and santad's export (metrics.c over a stubbed santad)
reconnects to a restarted service and its next export arrives.

Trusted executables must sit in a root-owned directory nobody else may
write, so the copies these tests run live in conftest.make_public_dir()."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import make_public_dir, wait_until
from metrics_helpers import RecordingServer, build_dir, check_prometheus, check_rawjson

WAIT = 10.0


class Sandbox:
    def __init__(self, build):
        self.dir = make_public_dir("santa-metrics-test-")
        self.bin = self.dir / "bin"
        self.out = self.dir / "out"
        self.bin.mkdir(mode=0o755)
        self.out.mkdir()
        os.chmod(self.out, 0o777)      # the service writes here as nobody
        self.socket = self.dir / "metrics.sock"
        self.procs = []
        src = build / "src" / "santametricservice"
        for name, as_name in [("santametricservice", "santametricservice"),
                              ("metric-send", "santad"),
                              ("metric-send", "santactl"),
                              ("santad-metrics-harness", "santad-harness")]:
            if not (src / name).exists():
                pytest.fail(f"{src / name} is not built")
            shutil.copy2(src / name, self.bin / as_name)
        # The harness plays santad: same role, its own copy.
        self.harness_dir = self.dir / "harness"
        self.harness_dir.mkdir(mode=0o755)
        shutil.copy2(src / "santad-metrics-harness", self.harness_dir / "santad")

    def config(self, **keys):
        keys.setdefault("TrustedExecutables", [f"{self.bin}/", f"{self.harness_dir}/"])
        path = self.dir / "config.json"
        path.write_text(json.dumps(keys))
        return path

    def start_service(self, config, log_name="service.log", args=None):
        log = open(self.dir / log_name, "ab")
        p = subprocess.Popen([str(self.bin / "santametricservice"), "--config", str(config),
                              *(args if args is not None else ["--socket", str(self.socket)])],
                             stdout=log, stderr=log)
        log.close()
        self.procs.append(p)
        wait_until(lambda: self.socket.exists() or p.poll() is not None, WAIT)
        return p

    def send(self, config, *args, as_name="santad"):
        return subprocess.run([str(self.bin / as_name), "--config", str(config), *args,
                               str(self.socket)], capture_output=True, text=True, timeout=30)

    def log(self, name="service.log"):
        path = self.dir / name
        return path.read_text() if path.exists() else ""

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sandbox(request):
    if os.geteuid() != 0:
        pytest.skip("needs root (the service drops to nobody)")
    sb = Sandbox(build_dir(request))
    yield sb
    sb.cleanup()


def uid_of(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def executions(rawjson_text):
    rows = json.loads(rawjson_text)["metrics"]["/santa/executions"]["fields"]
    return {r["value"]: r["data"] for r in rows["decision,reason"]}


def test_exports_arrive_and_service_runs_as_nobody(sandbox):
    out = sandbox.out / "santa.json"
    cfg = sandbox.config(MetricURL=f"file://{out}", MetricFormat="rawjson")
    svc = sandbox.start_service(cfg)
    r = sandbox.send(cfg, "--count", "3", "--interval", "100")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: out.exists() and
                      executions(out.read_text())["ALLOW,BINARY"] == 42, WAIT)
    check_rawjson(out.read_text())
    assert uid_of(svc.pid) == 65534
    assert out.stat().st_uid == 65534
    assert svc.poll() is None


def test_socket_passed_as_systemd_does(sandbox):
    out = sandbox.out / "santa.prom"
    cfg = sandbox.config(MetricURL=f"file://{out}", MetricFormat="prometheus")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lsock.bind(str(sandbox.socket))
    lsock.listen(16)
    log = open(sandbox.dir / "service.log", "ab")
    # The socket arrives as standard input; the shell moves it to fd 3 and
    # sets LISTEN_PID to its own pid, which exec keeps.
    p = subprocess.Popen(["/bin/sh", "-c",
                          'exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 '
                          'LISTEN_FDNAMES=santametricservice exec "$0" --config "$1"',
                          str(sandbox.bin / "santametricservice"), str(cfg)],
                         stdin=lsock.fileno(), stdout=log, stderr=log)
    log.close()
    lsock.close()
    sandbox.procs.append(p)
    r = sandbox.send(cfg)
    assert r.returncode == 0, r.stderr + sandbox.log()
    assert wait_until(out.exists, WAIT)
    fams = check_prometheus(out.read_text())
    assert "santa_executions" in fams


def test_refuses_malformed_set_and_keeps_serving(sandbox):
    out = sandbox.out / "santa.json"
    cfg = sandbox.config(MetricURL=f"file://{out}")
    svc = sandbox.start_service(cfg)
    r = sandbox.send(cfg, "--bad", "--count", "1")
    assert r.returncode == 0, r.stderr
    assert wait_until(out.exists, WAIT)
    assert "Refusing the metric set" in sandbox.log()
    assert "0 field values for 2 field names" in sandbox.log()
    assert executions(out.read_text())["ALLOW,BINARY"] == 40
    assert svc.poll() is None


def test_only_santad_may_connect(sandbox):
    out = sandbox.out / "santa.json"
    cfg = sandbox.config(MetricURL=f"file://{out}")
    svc = sandbox.start_service(cfg)
    r = sandbox.send(cfg, as_name="santactl")
    assert r.returncode == 1
    assert "not permitted" in r.stderr or "refused" in r.stderr, r.stderr
    assert not out.exists()
    r = sandbox.send(cfg)
    assert r.returncode == 0, r.stderr
    assert wait_until(out.exists, WAIT)
    assert svc.poll() is None


@pytest.mark.parametrize("keys,message", [
    ({"MetricFormat": "xml", "MetricURL": "file:///run/x.json"},
     'MetricFormat "xml" is not one of rawjson, monarchjson, prometheus'),
    ({"MetricFormat": "rawjson", "MetricURL": "ftp://127.0.0.1/x"},
     'no writer for scheme "ftp"'),
    ({"MetricFormat": "rawjson", "MetricURL": "file:///run/dir/"},
     "absolute path"),
])
def test_configuration_it_cannot_serve_is_an_error(sandbox, keys, message):
    cfg = sandbox.config(**keys)
    p = sandbox.start_service(cfg)
    assert p.wait(timeout=10) == 78
    assert message in sandbox.log()
    # The file and the line of the key (json.dumps wrote one line).
    assert f"Refusing to start: {cfg}:1: Metric" in sandbox.log()


def test_no_socket_is_an_error(sandbox):
    cfg = sandbox.config(MetricURL=f"file://{sandbox.out}/x.json")
    p = sandbox.start_service(cfg, args=[])
    assert p.wait(timeout=10) == 1
    assert "No listening socket was passed" in sandbox.log()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_failure_logged_once_per_streak(sandbox):
    port = free_port()
    cfg = sandbox.config(MetricURL=f"http://127.0.0.1:{port}/metrics",
                         MetricFormat="prometheus", MetricExportTimeout=2)
    sandbox.start_service(cfg)
    r = sandbox.send(cfg, "--count", "4", "--interval", "150")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: "failed" in sandbox.log(), WAIT)
    time.sleep(0.5)
    assert sandbox.log().count("failed, ignoring until it works again") == 1
    with RecordingServer(port=port) as srv:
        r = sandbox.send(cfg, "--count", "2", "--interval", "150")
        assert r.returncode == 0, r.stderr
        assert wait_until(lambda: len(srv.posts) >= 2, WAIT)
        _, headers, body = srv.posts[-1]
    assert headers["Content-Type"] == "text/plain; version=0.0.4"
    check_prometheus(body.decode())
    assert wait_until(lambda: "works again, after" in sandbox.log(), WAIT)


def test_slow_collector_gets_the_newest_export(sandbox):
    """Exports that arrive while the writer is still busy replace each other:
    the collector gets the newest, and the service says so once."""
    with RecordingServer(delay=1.0) as srv:
        cfg = sandbox.config(MetricURL=f"http://127.0.0.1:{srv.port}/",
                             MetricFormat="prometheus")
        sandbox.start_service(cfg)
        r = sandbox.send(cfg, "--count", "6", "--interval", "50")
        assert r.returncode == 0, r.stderr
        assert wait_until(lambda: len(srv.posts) >= 2, WAIT)
        time.sleep(1.5)
        posts = srv.posts
    assert len(posts) == 2
    last = check_prometheus(posts[-1][2].decode())["santa_executions"]
    assert max(s.value for s in last.samples) == 45
    assert sandbox.log().count("is slower than santad sends them") == 1


def test_killed_service_restarted_next_export_arrives(sandbox):
    """santad's export (metrics.c, here over a stubbed santad) reconnects
    through a new handshake to a restarted service, and its next export
    arrives. Until santad's launcher is in the tree the test restarts the
    service itself, as the launcher would."""
    out = sandbox.out / "santa.json"
    cfg = sandbox.config(MetricURL=f"file://{out}", MetricExportInterval=1)
    svc = sandbox.start_service(cfg)
    log = open(sandbox.dir / "santad.log", "ab")
    harness = subprocess.Popen([str(sandbox.harness_dir / "santad"), "--config", str(cfg),
                                "--socket", str(sandbox.socket), "--seconds", "30"],
                               stdout=log, stderr=log)
    log.close()
    sandbox.procs.append(harness)
    assert wait_until(out.exists, timeout=5), sandbox.log("santad.log")
    before = executions(out.read_text())["ALLOW,BINARY"]
    procs = json.loads(out.read_text())["metrics"]["/proc/birth_timestamp"]["fields"]
    assert {r["value"] for r in procs["process"]} == {"santad", "santametricservice"}

    svc.send_signal(signal.SIGKILL)
    svc.wait()
    time.sleep(1.5)         # at least one export falls into the gap
    gap_mtime = out.stat().st_mtime
    svc2 = sandbox.start_service(cfg, log_name="service2.log")
    assert wait_until(lambda: out.stat().st_mtime > gap_mtime, timeout=15), \
        sandbox.log("santad.log")
    after = executions(out.read_text())["ALLOW,BINARY"]
    assert after > before
    dlog = sandbox.log("santad.log")
    assert "Lost the connection to santametricservice" in dlog
    assert "Connected to santametricservice again" in dlog
    assert "Exported metrics" in sandbox.log("service2.log")
    assert svc2.poll() is None and harness.poll() is None
