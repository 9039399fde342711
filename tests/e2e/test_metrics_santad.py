# SPDX-License-Identifier: Apache-2.0
"""santad's metrics end to end, with the real santad watching a private
tmpfs: its launcher starts santametricservice as nobody, execs show up in
the exports at a local HTTP collector, `santactl metrics` prints them, a
killed metric service is restarted and the next export arrives, and a
MetricURL without a writer is an error `santactl status` shows."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import SantadProcess
from metrics_helpers import RecordingServer, check_prometheus, check_rawjson
from santactl_util import make_program, santactl


def wait_for(cond, timeout=15.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return None


def require_metrics(santad):
    r = santactl(santad, "metrics", "--json")
    if r.returncode != 0 and "built without metrics" in r.stderr:
        pytest.skip("santad was built without metrics.c: the top-level meson.build "
                    "must declare src/santametricservice before src/santad")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def metric_service_pid(santad):
    """The santametricservice santad's launcher runs, or None."""
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == santad.pid and exe.endswith("/santametricservice"):
            return int(entry.name)
    return None


def uid_of(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def allowed_execs(body):
    fams = check_prometheus(body.decode())
    fam = fams.get("santa_executions")
    if not fam:
        return 0
    return sum(s.value for s in fam.samples if s.labels.get("decision") == "ALLOW")


@pytest.fixture
def collector():
    with RecordingServer() as srv:
        yield srv


@pytest.fixture
def santad_factory(build_dir, tmpfs):
    """Like conftest's, but with santad's tree (its config among it) under
    /run: the metric service reads the config as nobody, who cannot enter
    pytest's directories under /tmp."""
    made, roots = [], []

    def make(overrides=None):
        root = tempfile.mkdtemp(prefix="santa-metrics-", dir="/run")
        os.chmod(root, 0o755)
        roots.append(root)
        d = SantadProcess(build_dir, tmpfs, pathlib.Path(root) / "santad", overrides)
        made.append(d)
        return d.start()

    try:
        yield make
    finally:
        for d in made:
            d.stop()
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def start(santad_factory, collector, **keys):
    cfg = {"MetricURL": f"http://127.0.0.1:{collector.port}/metrics/job/santa",
           "MetricFormat": "prometheus", "MetricExportInterval": 1}
    cfg.update(keys)
    return santad_factory(cfg)


def test_execs_exported_and_shown_by_santactl(santad_factory, collector):
    santad = start(santad_factory, collector, MetricExtraLabels={"site": "ci"})
    require_metrics(santad)
    prog = make_program(santad, "metrics-probe", extra=b"metrics")
    subprocess.run([str(prog)], check=True, timeout=30)

    post = wait_for(lambda: next((p for p in reversed(collector.posts)
                                  if allowed_execs(p[2]) >= 1), None))
    assert post, santad.stderr()
    path, headers, body = post
    assert path == "/metrics/job/santa"
    assert headers["Content-Type"] == "text/plain; version=0.0.4"
    fams = check_prometheus(body.decode())
    procs = {s.labels["process"] for s in fams["proc_memory_resident_size"].samples}
    assert procs == {"santad", "santametricservice"}
    sample = fams["santa_cache_size"].samples[0]
    assert sample.labels["site"] == "ci" and "hostname" in sample.labels
    assert fams["santa_decision_time"].type == "histogram"

    pid = metric_service_pid(santad)
    assert pid and uid_of(pid) == 65534

    r = santactl(santad, "metrics")
    assert r.returncode == 0, r.stderr
    assert ">>> Metrics Info" in r.stdout
    assert "  Metrics Server            | http://127.0.0.1:" in r.stdout
    assert "  Metrics Format            | prometheus" in r.stdout
    assert ">>> Root Labels" in r.stdout and "  site                      | ci" in r.stdout
    assert "  Metric Name               | /santa/executions" in r.stdout
    assert "  Type                      | SNTMetricTypeCounter" in r.stdout
    assert "  Field                     | decision=ALLOW,reason=" in r.stdout

    r = santactl(santad, "metrics", "--json", "/santa/exec", "/build")
    assert r.returncode == 0, r.stderr
    obj = check_rawjson(r.stdout)
    assert set(obj["metrics"]) == {"/santa/executions", "/build/label"}

    r = santactl(santad, "metrics", user="nobody")
    assert r.returncode == 0, r.stderr


def test_killed_metric_service_restarted_next_export_arrives(santad_factory, collector):
    santad = start(santad_factory, collector)
    require_metrics(santad)
    assert wait_for(lambda: len(collector.posts) >= 1), santad.stderr()
    old = metric_service_pid(santad)
    assert old
    os.kill(old, signal.SIGKILL)
    killed_at = len(collector.posts)
    new = wait_for(lambda: (p := metric_service_pid(santad)) and p != old and p)
    assert new, santad.stderr()
    assert wait_for(lambda: len(collector.posts) >= killed_at + 2), santad.stderr()
    assert wait_for(lambda: "Connected to santametricservice again" in santad.stderr()), \
        santad.stderr()
    assert uid_of(new) == 65534


def test_url_without_writer_is_an_error_in_status(santad_factory, collector):
    santad = santad_factory({"MetricURL": "ftp://127.0.0.1/metrics",
                             "MetricFormat": "rawjson"})
    require_metrics(santad)
    r = santactl(santad, "status")
    assert r.returncode == 0, r.stderr
    assert "Export Error" in r.stdout
    assert 'no writer for scheme "ftp"' in r.stdout
    assert 'Metrics will not be exported: MetricURL "ftp://127.0.0.1/metrics"' in \
        santad.stderr()
