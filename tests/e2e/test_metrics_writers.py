# SPDX-License-Identifier: Apache-2.0
"""The metric writers: file:// replaces its file atomically, http:// POSTs
to a server and reports a server that is down or failing, https://
verifies the server's certificate."""
import json
import os
import socket
import ssl
import subprocess
import threading

import pytest

from metrics_helpers import GOLDEN, RecordingServer, build_dir, check_prometheus


@pytest.fixture
def tool(request):
    path = build_dir(request) / "src" / "santametricservice" / "metric-render"
    if not path.exists():
        pytest.fail(f"{path} is not built")
    return str(path)


def write(tool, fmt, url, *extra, check=True):
    return subprocess.run([tool, fmt, "--write", url, *extra], capture_output=True,
                          text=True, timeout=60, check=check)


def test_file_writer_never_shows_half_a_file(tool, tmp_path):
    target = tmp_path / "santa.json"
    golden = json.loads((GOLDEN / "metrics-rawjson.json").read_text())
    write(tool, "rawjson", f"file://{target}")
    stop = threading.Event()
    reads, bad = [0], []

    def reader():
        while not stop.is_set():
            text = target.read_text()
            reads[0] += 1
            try:
                if json.loads(text) != golden:
                    bad.append(text)
            except ValueError:
                bad.append(text)

    t = threading.Thread(target=reader)
    t.start()
    try:
        write(tool, "rawjson", f"file://{target}", "--repeat", "400")
    finally:
        stop.set()
        t.join()
    assert not bad, f"{len(bad)} of {reads[0]} reads saw a partial file"
    assert reads[0] > 50
    assert os.listdir(tmp_path) == ["santa.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_file_writer_prometheus_textfile(tool, tmp_path):
    target = tmp_path / "santa.prom"
    write(tool, "prometheus", f"file://{target}")
    check_prometheus(target.read_text())


def test_file_writer_reports_missing_directory(tool, tmp_path):
    r = write(tool, "rawjson", f"file://{tmp_path}/nope/santa.json", check=False)
    assert r.returncode == 1
    assert f"{tmp_path}/nope/santa.json" in r.stderr and "No such file" in r.stderr


def test_http_writer_posts(tool):
    with RecordingServer() as srv:
        write(tool, "prometheus", f"http://127.0.0.1:{srv.port}/metrics/job/santa",
              "--repeat", "2")
        posts = srv.posts
    assert len(posts) == 2
    path, headers, body = posts[0]
    assert path == "/metrics/job/santa"
    assert headers["Content-Type"] == "text/plain; version=0.0.4"
    assert headers["User-Agent"].startswith("santametricservice/")
    assert body.decode() == (GOLDEN / "metrics-prometheus.txt").read_text()
    check_prometheus(body.decode())


def test_http_writer_json_content_type(tool):
    with RecordingServer() as srv:
        write(tool, "monarchjson", f"http://127.0.0.1:{srv.port}/")
        (_, headers, body), = srv.posts
    assert headers["Content-Type"] == "application/json"
    assert "metricsCollection" in json.loads(body)


def test_http_writer_server_error(tool):
    with RecordingServer(status=503) as srv:
        r = write(tool, "rawjson", f"http://127.0.0.1:{srv.port}/x", check=False)
    assert r.returncode == 1
    assert "answered HTTP 503" in r.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_writer_server_down(tool):
    port = free_port()
    r = write(tool, "rawjson", f"http://127.0.0.1:{port}/x", check=False)
    assert r.returncode == 1
    assert f"POST to \"http://127.0.0.1:{port}/x\" failed" in r.stderr


def test_http_writer_timeout(tool):
    """A server that accepts and never answers is given up on after
    MetricExportTimeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        port = s.getsockname()[1]
        r = write(tool, "rawjson", f"http://127.0.0.1:{port}/x", "--timeout", "1",
                  check=False)
    assert r.returncode == 1
    assert "timed out" in r.stderr.lower() or "timeout" in r.stderr.lower()


def test_https_writer_verifies_certificate(tool, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with RecordingServer(ssl_context=ctx) as srv:
        r = write(tool, "rawjson", f"https://127.0.0.1:{srv.port}/x", check=False)
        assert srv.posts == []
    assert r.returncode == 1
    assert "certificate" in r.stderr.lower()
