# SPDX-License-Identifier: Apache-2.0
"""santad's metrics end to end, with the real santad watching a private
tmpfs: its launcher starts santametricservice as nobody, execs show up in
the exports at a local HTTP collector, `santactl metrics` prints them, a
killed metric service is restarted and the next export arrives, and a
MetricURL without a writer is an error `santactl status` shows."""
import json
import os
import signal
import subprocess

import pytest

import proclib
from conftest import wait_until
from metrics_helpers import RecordingServer, check_prometheus, check_rawjson
from santactl_util import make_program, santactl

# Exports come every second, but a restarted service and two cores shared
# with other work can make one late.
WAIT = 15.0


def require_metrics(santad):
    r = santactl(santad, "metrics", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def metric_service_pid(santad):
    """The santametricservice santad's launcher runs, or None."""
    return proclib.service_pid(santad.pid, "santametricservice")


def uid_of(pid):
    return proclib.proc_ids(pid)[0][0]


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

    post = wait_until(lambda: next((p for p in reversed(collector.posts)
                                    if allowed_execs(p[2]) >= 1), None), WAIT)
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
    assert wait_until(lambda: len(collector.posts) >= 1, WAIT), santad.stderr()
    old = metric_service_pid(santad)
    assert old
    os.kill(old, signal.SIGKILL)
    killed_at = len(collector.posts)
    new = wait_until(lambda: (p := metric_service_pid(santad)) and p != old and p, WAIT)
    assert new, santad.stderr()
    assert wait_until(lambda: len(collector.posts) >= killed_at + 2, WAIT), santad.stderr()
    assert wait_until(lambda: "Connected to santametricservice again" in santad.stderr(),
                      WAIT), santad.stderr()
    assert uid_of(new) == 65534


def test_url_without_writer_is_an_error_in_status(santad_factory, collector):
    santad = santad_factory({"MetricURL": "ftp://127.0.0.1/metrics",
                             "MetricFormat": "rawjson"})
    require_metrics(santad)
    r = santactl(santad, "status")
    assert r.returncode == 0, r.stderr
    assert "Export Error" in r.stdout
    assert 'no writer for scheme "ftp"' in r.stdout
    # Where the key is: the file and its line.
    line = next(i for i, text in enumerate(santad.config_path.read_text().splitlines(), 1)
                if '"MetricURL"' in text)
    assert (f'Metrics will not be exported: {santad.config_path}:{line}: '
            'MetricURL "ftp://127.0.0.1/metrics"') in santad.stderr()
