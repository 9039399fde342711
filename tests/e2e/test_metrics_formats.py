# SPDX-License-Identifier: Apache-2.0
"""Each metric format, rendered from the sample set, is read back by a
consumer of that format and matches its golden file."""
import json
import subprocess

import pytest

from metrics_helpers import GOLDEN, build_dir, check_prometheus, check_rawjson


@pytest.fixture
def render(request):
    tool = build_dir(request) / "src" / "santametricservice" / "metric-render"
    if not tool.exists():
        pytest.fail(f"{tool} is not built")

    def run(fmt):
        return subprocess.run([str(tool), fmt], check=True, capture_output=True,
                              text=True, timeout=30).stdout
    return run


def test_rawjson_matches_golden(render):
    text = render("rawjson")
    assert text == (GOLDEN / "metrics-rawjson.json").read_text()
    obj = check_rawjson(text)
    # The original's test metric set, as the original exports it.
    assert obj["root_labels"] == {"hostname": "testHost", "username": "testUser"}
    rules = obj["metrics"]["/santa/rules"]
    assert rules["type"] == 7
    assert [(r["value"], r["data"]) for r in rules["fields"]["rule_type"]] == [
        ("binary", 1), ("certificate", 3)]
    assert obj["metrics"]["/santa/events"]["type"] == 9
    label = obj["metrics"]["/build/label"]
    assert label["type"] == 2 and label["fields"][""][0]["data"] == "20210809.0.1"
    assert label["fields"][""][0]["value"] == ""
    esf = obj["metrics"]["/santa/using_endpoint_security_framework"]["fields"][""][0]
    assert esf["data"] is True
    assert obj["metrics"]["/proc/birth_timestamp"]["fields"][""][0]["data"] == 1250999830800
    execs = obj["metrics"]["/santa/executions"]["fields"]["decision,reason"]
    assert [r["value"] for r in execs] == ["ALLOW,BINARY", "DENY,UNKNOWN"]
    # A histogram as counters: cumulative buckets with the field "le".
    buckets = obj["metrics"]["/santa/decision_time_bucket"]["fields"]["cache,le"]
    assert [(r["value"], r["data"]) for r in buckets[:4]] == [
        ("hit,0.0001", 30), ("hit,0.001", 35), ("hit,0.01", 36), ("hit,+Inf", 36)]
    assert obj["metrics"]["/santa/decision_time_count"]["type"] == 9
    assert obj["metrics"]["/santa/decision_time_sum"]["type"] == 8


def test_monarchjson_matches_golden(render):
    text = render("monarchjson")
    assert text == (GOLDEN / "metrics-monarchjson.json").read_text()
    obj = json.loads(text)
    assert list(obj) == ["metricsCollection"]
    (entry,) = obj["metricsCollection"]
    assert entry["rootLabels"] == [{"key": "hostname", "stringValue": "testHost"},
                                   {"key": "username", "stringValue": "testUser"}]
    by_name = {m["metricName"]: m for m in entry["metricsDataSet"]}
    rules = by_name["/santa/rules"]
    assert rules["streamKind"] == "GAUGE" and rules["valueType"] == "INT64"
    assert rules["fieldDescriptor"] == [{"name": "rule_type", "fieldType": "STRING"}]
    assert rules["data"][0]["field"] == [{"name": "rule_type", "stringValue": "binary"}]
    assert rules["data"][0]["int64Value"] == 1
    assert set(rules["data"][0]) == {"field", "startTimestamp", "endTimestamp", "int64Value"}
    assert by_name["/santa/events"]["streamKind"] == "CUMULATIVE"
    # Constants have no stream kind and, without fields, no field keys.
    label = by_name["/build/label"]
    assert "streamKind" not in label and "fieldDescriptor" not in label
    assert label["valueType"] == "STRING"
    assert label["data"][0]["stringValue"] == "20210809.0.1"
    assert "field" not in label["data"][0]
    assert by_name["/santa/using_endpoint_security_framework"]["valueType"] == "BOOL"
    execs = by_name["/santa/executions"]
    assert execs["data"][1]["field"] == [{"name": "decision", "stringValue": "DENY"},
                                         {"name": "reason", "stringValue": "UNKNOWN"}]
    assert by_name["/proc/cpu_usage"]["data"][0]["doubleValue"] == 1.25


def test_prometheus_parses(render):
    text = render("prometheus")
    assert text == (GOLDEN / "metrics-prometheus.txt").read_text()
    fams = check_prometheus(text)
    # The client's parser drops the _total suffix from counter families.
    assert fams["santa_executions"].type == "counter"
    samples = {tuple(sorted(s.labels.items())): s.value
               for s in fams["santa_executions"].samples}
    assert samples[(("decision", "ALLOW"), ("hostname", "testHost"),
                    ("reason", "BINARY"), ("username", "testUser"))] == 40
    hist = fams["santa_decision_time"]
    assert hist.type == "histogram"
    inf = [s for s in hist.samples if s.name.endswith("_bucket")
           and s.labels["le"] == "+Inf" and s.labels["cache"] == "miss"]
    count = [s for s in hist.samples if s.name.endswith("_count")
             and s.labels["cache"] == "miss"]
    assert inf[0].value == count[0].value == 6
    (build,) = fams["build_label"].samples
    assert build.labels["value"] == "20210809.0.1" and build.value == 1
