# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the metric tests: where the build is, a Prometheus
text check, and a local HTTP server that records what is POSTed to it."""
import http.server
import json
import os
import pathlib
import re
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "e2e" / "golden"


def build_dir(request):
    d = request.config.getoption("--build-dir", default=None)
    return pathlib.Path(d or os.environ.get("SANTA_BUILD_DIR", "build")).resolve()


METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def check_prometheus(text):
    """Parse TEXT with the Prometheus client's parser, and hold it to the
    rules promtool's linter checks that the lenient parser does not: every
    family has HELP and TYPE before its samples, counters end in _total,
    names and label names are valid, no family appears twice. Returns
    {family name: family}."""
    assert text.endswith("\n") or text == ""
    seen_help, seen_type, families = set(), {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in seen_help, f"HELP twice for {name}"
            seen_help.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name in seen_help, f"TYPE before HELP for {name}"
            assert name not in seen_type, f"TYPE twice for {name}"
            assert kind in ("counter", "gauge", "histogram")
            if kind == "counter":
                assert name.endswith("_total"), name
            seen_type[name] = kind
        else:
            assert not line.startswith("#"), line
            name = re.match(r"^[^{ ]+", line).group(0)
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in seen_type or base in seen_type, f"sample before TYPE: {line}"
    for fam in text_string_to_metric_families(text):
        key = fam.name
        assert key not in families, f"family {key} twice"
        families[key] = fam
        for s in fam.samples:
            assert METRIC_NAME.match(s.name), s.name
            for label in s.labels:
                assert LABEL_NAME.match(label), label
    return families


def check_rawjson(text):
    """The original's rawjson shape; returns the parsed object."""
    obj = json.loads(text)
    assert set(obj) == {"metrics", "root_labels"}
    for name, metric in obj["metrics"].items():
        assert name.startswith("/"), name
        assert set(metric) == {"type", "description", "fields"}, name
        assert metric["type"] in range(1, 10), name
        for field, rows in metric["fields"].items():
            for row in rows:
                assert set(row) == {"value", "created", "last_updated", "data"}
                assert len(row["value"].split(",")) == len(field.split(","))
                assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", row["created"])
    for key, value in obj["root_labels"].items():
        assert isinstance(value, str), key
    return obj


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with self.server.lock:
            self.server.posts.append((self.path, dict(self.headers), body))
            status = self.server.status
            delay = self.server.delay
        time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class RecordingServer:
    """An HTTP server on 127.0.0.1 (port chosen by the kernel) that records
    every POST and answers STATUS, after DELAY seconds."""

    def __init__(self, status=200, ssl_context=None, port=0, delay=0.0):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder)
        self.httpd.daemon_threads = True
        self.httpd.posts = []
        self.httpd.status = status
        self.httpd.delay = delay
        self.httpd.lock = threading.Lock()
        if ssl_context:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def posts(self):
        with self.httpd.lock:
            return list(self.httpd.posts)

    def set_status(self, status):
        with self.httpd.lock:
            self.httpd.status = status
