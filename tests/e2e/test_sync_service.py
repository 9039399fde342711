# SPDX-License-Identifier: Apache-2.0
"""santasyncservice and `santactl sync` against the fixture sync server,
with sync-fake-santad standing in for santad so that what a sync asks
santad to change (rules, events, settings) can be read back exactly.

The tests with the real santad and real executions are in
test_sync_santad.py.
"""
import os
import pathlib
import subprocess
import time

import pytest

from synclib import MACHINE_ID, SyncRig, hexhash, make_pki, wait_until
from sync_server import rule

@pytest.fixture
def build(request):
    d = request.config.getoption("--build-dir", default=None)
    return pathlib.Path(d or os.environ.get("SANTA_BUILD_DIR", "build")).resolve()


@pytest.fixture
def rig(build):
    if os.geteuid() != 0:
        pytest.skip("the sync tests start services as root")
    r = SyncRig(build)
    yield r
    r.stop()


def event(i, decision="BLOCK_BINARY", path="/tmp/santa-e2e", name=None):
    return {"id": i, "file_sha256": hexhash(1000 + i), "file_path": path,
            "file_name": name or f"prog{i}", "executing_user": "alice",
            "execution_time": 1700000000.5 + i, "logged_in_users": ["alice"],
            "current_sessions": ["alice@pts/0"], "decision": decision,
            "pid": 4000 + i, "ppid": 1, "parent_name": "bash"}


def policy_names(state):
    return {(r["identifier"], r["policy"]) for r in state["rules"]}


def test_sync_applies_rules_mode_and_regexes(rig):
    rig.server.preflight = {"client_mode": "LOCKDOWN", "batch_size": 10,
                            "full_sync_interval": 900,
                            "blocked_path_regex": "^/tmp/blocked/",
                            "allowed_path_regex": ""}
    rig.server.rules = [rule(hexhash(1), "BLOCKLIST"), rule(hexhash(2), "WHITELIST"),
                        rule("EQHXZ8M8AV", "ALLOWLIST", "TEAMID", custom_msg="ok")]
    rig.start_fake_santad()
    rig.start_service()

    res = rig.sync()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Sync completed successfully" in res.stdout
    assert "Received 3 rules" in res.stdout
    assert rig.server.errors == []
    assert rig.server.stages() == ["preflight", "ruledownload", "postflight"]

    st = rig.state()
    assert policy_names(st) == {(hexhash(1), 2), (hexhash(2), 1), ("EQHXZ8M8AV", 1)}
    s = st["settings"]
    assert s["has_client_mode"] and s["client_mode"] == 2
    assert s["blocked_path_regex"] == "^/tmp/blocked/"
    assert s["has_allowed_path_regex"] and s["allowed_path_regex"] == ""
    assert s["full_sync_interval"] == 900 and s["batch_size"] == 10
    assert s["last_full_sync"] > 0
    assert rig.server.postflights[-1]["rules_received"] == 3
    assert rig.server.postflights[-1]["rules_processed"] == 3


def test_preflight_reports_machine_and_counts(rig):
    rig.server.preflight = {}
    rig.start_fake_santad(rules=[{"identifier": hexhash(7), "policy": 2, "rule_type": 1000},
                                 {"identifier": "T", "policy": 1, "rule_type": 4000}],
                          settings={"has_last_full_sync": True, "last_full_sync": 5,
                                    "has_client_mode": True, "client_mode": 2})
    rig.start_service()
    assert rig.sync().returncode == 0
    pre = rig.server.bodies("preflight")[0]
    assert pre["machine_id"] == MACHINE_ID
    assert pre["client_mode"] == "LOCKDOWN"
    assert pre["binary_rule_count"] == 1 and pre["teamid_rule_count"] == 1
    assert pre["request_clean_sync"] is False
    assert pre["santa_version"].count(".") == 1
    assert rig.server.errors == []


def test_multi_page_with_empty_pages(rig):
    rig.server.rules = [rule(hexhash(i), "BLOCKLIST") for i in range(25)]
    rig.server.page_size = 10
    rig.server.empty_pages = True
    rig.start_fake_santad()
    rig.start_service()
    sets = rig.state()["applied_sets"]

    assert rig.sync().returncode == 0
    assert rig.server.stages().count("ruledownload") == 6
    assert len(rig.state()["rules"]) == 25
    # One staged set, applied once.
    assert rig.state()["applied_sets"] == sets + 1
    assert rig.server.errors == []


def test_bad_rules_dropped_and_counted(rig):
    rig.server.rules = [rule(hexhash(1), "BLOCKLIST"), rule("", "BLOCKLIST"),
                        rule(hexhash(2), "ALLOWLIST_TRANSITIVE"),
                        {"sha256": hexhash(3), "policy": "BLACKLIST", "rule_type": "BINARY"}]
    rig.start_fake_santad()
    rig.start_service()

    res = rig.sync()
    assert res.returncode == 0
    assert "Ignoring 2 bad rules" in res.stdout
    assert policy_names(rig.state()) == {(hexhash(1), 2), (hexhash(3), 2)}
    assert rig.server.postflights[-1] == {"rules_received": 4, "rules_processed": 2,
                                          "machine_id": MACHINE_ID, "syncType": "NORMAL"}


def test_events_uploaded_then_removed(rig):
    rig.server.preflight = {"batch_size": 2}
    evs = [event(1), event(2, "ALLOW_UNKNOWN"), event(3, "BLOCK_SCOPE")]
    rig.start_fake_santad(events=evs)
    rig.start_service(wait_first_sync=False)
    wait_until(lambda: "Sync completed" in rig.log("santasyncservice"), 30)

    assert rig.server.errors == []
    assert rig.server.stages().count("eventupload") == 2
    got = {e["file_sha256"]: e for e in rig.server.events}
    assert set(got) == {hexhash(1001), hexhash(1002), hexhash(1003)}
    e1 = got[hexhash(1001)]
    assert e1["file_path"] == "/tmp/santa-e2e" and e1["file_name"] == "prog1"
    assert e1["decision"] == "BLOCK_BINARY" and e1["pid"] == 4001 and e1["ppid"] == 1
    assert e1["execution_time"] == pytest.approx(1700000001.5)
    assert e1["current_sessions"] == ["alice@pts/0"]
    assert rig.state()["events"] == []


def test_event_upload_failure_keeps_events(rig):
    rig.server.faults = {"eventupload": ("status", 400)}
    rig.start_fake_santad(events=[event(1)])
    rig.start_service()
    res = rig.sync()
    assert res.returncode == 2, res.stdout
    assert "Event upload failed" in res.stdout
    assert len(rig.state()["events"]) == 1


@pytest.mark.parametrize("server_type,flag,cleanup", [
    ("clean", "--clean", 1),
    ("clean", "--clean-all", 2),
    ("clean_all", None, 2),
    (None, "--clean", 0),
])
def test_clean_syncs(rig, server_type, flag, cleanup):
    transitive = {"identifier": hexhash(50), "policy": 6, "rule_type": 1000}
    old = {"identifier": hexhash(51), "policy": 2, "rule_type": 1000}
    rig.start_fake_santad(rules=[transitive, old],
                          settings={"has_last_full_sync": True, "last_full_sync": 5})
    rig.start_service()
    if server_type:
        rig.server.preflight = {"sync_type": server_type}
    rig.server.rules = [rule(hexhash(52), "ALLOWLIST")]

    res = rig.sync(*([flag] if flag else []))
    assert res.returncode == 0, res.stdout
    pre = rig.server.bodies("preflight")[0]
    assert pre["request_clean_sync"] is bool(flag)
    st = rig.state()
    assert st["last_cleanup"] == cleanup
    ids = {r["identifier"] for r in st["rules"]}
    want = {hexhash(52)} | {
        0: {hexhash(50), hexhash(51)}, 1: {hexhash(50)}, 2: set()}[cleanup]
    assert ids == want
    # The clean request is cleared once a clean sync succeeded; a server
    # that answered with a normal sync is asked again next time.
    requested = {None: 0, "--clean": 1, "--clean-all": 2}[flag]
    assert st["settings"]["sync_type_required"] == (requested if cleanup == 0 else 0)
    assert rig.server.errors == []


def test_clean_request_persists_until_success(rig):
    rig.start_fake_santad(settings={"has_last_full_sync": True, "last_full_sync": 5})
    rig.start_service()
    rig.server.faults = {"preflight": ("status", 404)}
    assert rig.sync("--clean-all").returncode == 1
    assert rig.state()["settings"]["sync_type_required"] == 2

    # The server does not want a clean sync: the request stays.
    rig.server.faults = {}
    assert rig.sync().returncode == 0
    assert rig.server.bodies("preflight")[-1]["request_clean_sync"] is True
    assert rig.state()["settings"]["sync_type_required"] == 2

    rig.server.preflight = {"sync_type": "clean"}
    rig.server.rules = [rule(hexhash(53), "ALLOWLIST")]
    assert rig.sync().returncode == 0
    assert rig.server.bodies("preflight")[-1]["request_clean_sync"] is True
    assert rig.state()["last_cleanup"] == 2
    assert rig.state()["settings"]["sync_type_required"] == 0
    assert rig.sync().returncode == 0
    assert rig.server.bodies("preflight")[-1]["request_clean_sync"] is False


FAILURES = [
    # (faults, other server settings, santactl exit status, what the log says)
    ({"preflight": ("status", 500)}, {}, 1, "HTTP 500 (after 3 attempts)"),
    ({"preflight": ("status", 403)}, {}, 1, "HTTP 403"),
    ({"preflight": ("slow", 5)}, {}, 1, "Timeout"),
    ({"preflight": ("close",)}, {}, 1, "Preflight failed"),
    ({"preflight": ("garbage",)}, {}, 1, "not valid JSON"),
    ({"preflight": ("truncate",)}, {"preflight": {"client_mode": "LOCKDOWN",
                                                  "batch_size": 5}}, 1, "not valid JSON"),
    ({"ruledownload": ("truncate",)}, {}, 3, "not valid JSON"),
    ({"ruledownload": ("slow", 5)}, {}, 3, "Timeout"),
    ({}, {"lose_page": 2}, 3, "HTTP 500"),
    ({}, {"endless_cursor": True}, 3, "more after 50 pages"),
    ({"postflight": ("status", 500)}, {}, 4, "HTTP 500"),
]


@pytest.mark.parametrize("faults,settings,status,says", FAILURES)
def test_failing_server_changes_nothing(rig, faults, settings, status, says):
    before_rules = [{"identifier": hexhash(90), "policy": 2, "rule_type": 1000}]
    rig.start_fake_santad(rules=before_rules,
                          settings={"has_last_full_sync": True, "last_full_sync": 5,
                                    "has_client_mode": True, "client_mode": 1})
    rig.start_service()
    before = rig.state()
    rig.server.preflight = {"client_mode": "LOCKDOWN", "sync_type": "clean_all"}
    rig.server.rules = [rule(hexhash(i), "ALLOWLIST") for i in range(30)]
    rig.server.page_size = 10
    rig.server.faults = faults
    for k, v in settings.items():
        setattr(rig.server, k, v)

    res = rig.sync()
    assert res.returncode == status, res.stdout + res.stderr
    assert says in res.stdout
    after = rig.state()
    if status != 4:
        # Nothing staged was applied: a clean_all sync that lost a page
        # leaves the old rules in place.
        assert after["rules"] == before["rules"]
        assert after["applied_sets"] == 0
    # Settings (LOCKDOWN here) only change when the whole sync succeeded.
    assert after["settings"] == before["settings"]
    # The next sync, with a server that behaves, goes through.
    rig.server.faults, rig.server.lose_page, rig.server.endless_cursor = {}, None, False
    rig.server.preflight = {"client_mode": "LOCKDOWN"}
    assert rig.sync().returncode == 0
    assert rig.state()["settings"]["client_mode"] == 2


def test_periodic_sync_at_the_servers_interval(build):
    """The server's full_sync_interval (60 s, the shortest allowed) beats
    FullSyncInterval (an hour): a second sync comes a minute after the
    first, with nobody asking."""
    if os.geteuid() != 0:
        pytest.skip("root")
    with SyncRig(build, extra_config={"FullSyncInterval": 3600}) as rig:
        rig.server.preflight = {"full_sync_interval": 60}
        rig.start_fake_santad()
        rig.start_service(wait_first_sync=False)
        assert wait_until(lambda: rig.server.stages().count("postflight") == 1, 30)
        first = time.monotonic()
        assert wait_until(lambda: rig.server.stages().count("preflight") == 2, 90), \
            rig.server.stages()
        assert 55 < time.monotonic() - first < 85
        assert rig.server.errors == []


def test_original_retry_schedule(rig):
    """Without the test flags: 5 attempts, the second 4 s after the first."""
    rig.start_fake_santad()
    rig.server.faults = {"preflight": ("status", 503, 1)}
    start = time.monotonic()
    rig.start_service(wait_first_sync=False, args=[])
    assert wait_until(lambda: "Sync completed" in rig.log("santasyncservice"), 30)
    assert 3.5 < time.monotonic() - start < 15
    assert rig.server.stages()[:2] == ["preflight", "preflight"]


def test_server_quirks_xssi_gzip_xsrf(rig):
    rig.server.xssi = True
    rig.server.gzip_responses = True
    rig.server.require_xsrf = True
    rig.server.rules = [rule(hexhash(1), "BLOCKLIST")]
    rig.start_fake_santad()
    rig.start_service(wait_first_sync=False)
    wait_until(lambda: "Sync completed" in rig.log("santasyncservice"), 30)
    assert rig.server.stages()[:3] == ["preflight", "xsrf", "preflight"]
    assert len(rig.state()["rules"]) == 1
    assert rig.server.errors == []


def test_deflate_responses_and_short_xssi_guard(rig):
    rig.server.xssi = b"])}"
    rig.server.gzip_responses = "deflate"
    rig.server.preflight = {"client_mode": "LOCKDOWN"}
    rig.server.rules = [rule(hexhash(1), "BLOCKLIST")]
    rig.start_fake_santad()
    rig.start_service(wait_first_sync=False)
    assert wait_until(lambda: "Sync completed" in rig.log("santasyncservice"), 30), \
        rig.log("santasyncservice")
    assert len(rig.state()["rules"]) == 1
    assert rig.state()["settings"]["client_mode"] == 2
    assert rig.server.errors == []


def test_xsrf_token_fetched_again_by_a_later_sync(rig):
    """The server forgets its token (it restarted): the next sync gets a
    new one instead of failing with 403 until the service restarts."""
    rig.server.require_xsrf = True
    rig.start_fake_santad()
    rig.start_service()
    assert rig.sync().returncode == 0
    assert rig.server.stages()[-1] == "postflight"
    rig.server.xsrf_token = "tok-rotated"
    rig.server.reset_log()
    res = rig.sync()
    assert res.returncode == 0, res.stdout
    assert rig.server.stages()[:3] == ["preflight", "xsrf", "preflight"]
    assert rig.server.requests[2][1]["x-xsrf-token"] == "tok-rotated"
    assert rig.server.errors == []


@pytest.mark.parametrize("encoding", ["deflate", "gzip", "none"])
def test_request_encodings(build, encoding):
    if os.geteuid() != 0:
        pytest.skip("root")
    with SyncRig(build, extra_config={"SyncClientContentEncoding": encoding}) as rig:
        rig.start_fake_santad(events=[event(1)])
        rig.start_service(wait_first_sync=False)
        wait_until(lambda: "Sync completed" in rig.log("santasyncservice"), 30)
        want = None if encoding == "none" else encoding
        for stage, headers, body in rig.server.requests:
            assert headers.get("content-encoding") == want, stage
        assert rig.server.errors == []


def test_unknown_encoding_is_named_where_it_is_and_deflate_used(build):
    if os.geteuid() != 0:
        pytest.skip("root")
    with SyncRig(build, extra_config={"SyncClientContentEncoding": "br"}) as rig:
        rig.start_fake_santad(events=[event(1)])
        rig.start_service(wait_first_sync=False)
        wait_until(lambda: "Sync completed" in rig.log("santasyncservice"), 30)
        with open(rig.config_path) as f:
            line = next(i for i, text in enumerate(f, 1)
                        if '"SyncClientContentEncoding"' in text)
        assert (f'{rig.config_path}:{line}: SyncClientContentEncoding "br" is not deflate, '
                'gzip or none, using deflate') in rig.log("santasyncservice")
        for stage, headers, body in rig.server.requests:
            assert headers.get("content-encoding") == "deflate", stage


def test_a_base_url_that_is_not_http_is_named_where_it_is(build):
    if os.geteuid() != 0:
        pytest.skip("root")
    with SyncRig(build, extra_config={"SyncBaseURL": "ftp://sync.example/"}) as rig:
        rig.start_fake_santad(events=[])
        rig.start_service(wait_first_sync=False)
        with open(rig.config_path) as f:
            line = next(i for i, text in enumerate(f, 1) if '"SyncBaseURL"' in text)
        want = (f'{rig.config_path}:{line}: SyncBaseURL "ftp://sync.example/" is not an '
                'http(s) URL with a host: no sync can succeed')
        assert wait_until(lambda: want in rig.log("santasyncservice"), 30), \
            rig.log("santasyncservice")
        assert rig.server.requests == []


def test_extra_headers(build):
    if os.geteuid() != 0:
        pytest.skip("root")
    extra = {"SyncExtraHeaders": {"Zentral-Authorization": "Bearer s3cret",
                                  "Content-Type": "text/plain"}}
    with SyncRig(build, extra_config=extra) as rig:
        rig.start_fake_santad()
        rig.start_service(wait_first_sync=False)
        wait_until(lambda: rig.server.requests, 10)
        headers = rig.server.requests[0][1]
        assert headers["zentral-authorization"] == "Bearer s3cret"
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("santactl-sync/")


def test_too_many_syncs(rig):
    rig.start_fake_santad()
    rig.start_service()
    rig.server.faults = {"preflight": ("slow", 2)}
    procs = [subprocess.Popen([rig.santactl_exe, "--config", rig.config_path, "sync"],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [(p.wait(timeout=60), p.stdout.read()) for p in procs]
    codes = sorted(c for c, _ in outs)
    assert codes == [0, 0, 5], outs
    assert any("Too many syncs in progress" in o for c, o in outs if c == 5)


def test_immediate_upload_once_per_hash(rig):
    rig.start_fake_santad(events=[event(1)])
    rig.start_service()
    rig.server.reset_log()
    rig.post_events([event(1)])
    assert wait_until(lambda: rig.server.events, 10)
    assert wait_until(lambda: rig.state()["events"] == [], 5)
    rig.post_events([event(1)])
    time.sleep(1)
    assert rig.server.stages() == ["eventupload"]
    assert rig.server.events[0]["file_sha256"] == hexhash(1001)
    assert rig.server.errors == []


def test_santactl_sync_without_base_url(build):
    if os.geteuid() != 0:
        pytest.skip("root")
    with SyncRig(build) as rig:
        del rig.config["SyncBaseURL"]
        rig.write_config()
        res = rig.sync()
        assert res.returncode == 1
        assert "Missing SyncBaseURL" in res.stderr


def test_santactl_sync_without_service(rig):
    res = rig.sync()
    assert res.returncode == 1
    assert "Failed to connect to the sync service." in res.stderr


def test_santactl_sync_without_santad(rig):
    rig.start_service(wait_first_sync=False)
    res = rig.sync()
    assert res.returncode == 8, res.stdout + res.stderr
    assert "Connecting to santad failed" in res.stdout


def test_server_down(rig):
    rig.config["SyncBaseURL"] = "http://127.0.0.1:1/v1/santa/"
    rig.write_config()
    rig.start_fake_santad()
    rig.start_service()
    res = rig.sync()
    assert res.returncode == 1
    assert "Preflight failed" in res.stdout and "127.0.0.1:1" in res.stdout


def test_redirect_not_followed(rig):
    rig.start_fake_santad()
    rig.start_service()
    rig.server.faults = {"preflight": ("redirect", rig.server.base_url + "preflight/x")}
    res = rig.sync()
    assert res.returncode == 1
    assert "HTTP 302" in res.stdout
    assert rig.server.stages() == ["preflight"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_sync(build, pki, config, client_ca=False):
    if os.geteuid() != 0:
        pytest.skip("root")
    tls = {"cert": pki["server_cert"], "key": pki["server_key"]}
    if client_ca:
        tls["client_ca"] = pki["ca"]
    with SyncRig(build, extra_config=config, server_tls=tls) as rig:
        assert rig.server.base_url.startswith("https://")
        rig.start_fake_santad()
        rig.start_service()
        return rig.sync()


def test_tls_server_verified_with_roots_file(build, pki):
    res = tls_sync(build, pki, {"ServerAuthRootsFile": pki["ca"]})
    assert res.returncode == 0, res.stdout


def test_tls_untrusted_server_refused(build, pki):
    # The system store does not know the test CA.
    res = tls_sync(build, pki, {})
    assert res.returncode == 1
    assert "certificate" in res.stdout.lower() or "SSL" in res.stdout, res.stdout


def test_mutual_tls(build, pki):
    res = tls_sync(build, pki, {"ServerAuthRootsFile": pki["ca"],
                                "ClientAuthCertificateFile": pki["client_cert"],
                                "ClientAuthKeyFile": pki["client_key"]}, client_ca=True)
    assert res.returncode == 0, res.stdout
    res = tls_sync(build, pki, {"ServerAuthRootsFile": pki["ca"]}, client_ca=True)
    assert res.returncode == 1, res.stdout


def test_who_may_call_what(rig):
    """Sync: santad and santactl; PostEvents and Spindown: santad only;
    other roles may not connect at all."""
    from proclib import build_probe, run_probe
    probes = build_probe(str(pathlib.Path(__file__).resolve().parents[2]),
                         str(rig.build), os.path.join(rig.dir, "probes"))
    rig.config["TrustedExecutables"].append(probes + "/")
    rig.write_config()
    rig.start_fake_santad()
    rig.start_service()
    sock = os.path.join(rig.run_dir, "santasyncservice.sock")

    def probe(role, method):
        return run_probe(probes, role, rig.config_path, sock, "santasyncservice", method)

    assert probe("santactl", "Spindown")[0] == 3
    assert probe("santactl", "PostEvents")[0] == 3
    assert probe("santagui", None)[0] == 2
    assert probe("santametricservice", None)[0] == 2
    assert rig.service.poll() is None
    status, out = probe("santad", "Spindown")
    assert status == 0, out
    assert rig.service.wait(timeout=10) == 0
    assert "Spinning down" in rig.log("santasyncservice")
