# SPDX-License-Identifier: Apache-2.0
"""santactl status and version: every documented key and nothing else, a
golden report of a fresh santad, the same answer for root and for a user,
and a fast, clear failure when santad is not running."""
import json
import os
import subprocess
import time
import types

from santactl_util import (GOLDEN, NO_DAEMON, copy_program, documented_status_keys,
                           flatten_keys, santactl, santactl_path, status_json)


def normalized(st, santad):
    """STATUS with what differs from run to run replaced by placeholders."""
    st = json.loads(json.dumps(st))
    assert st["daemon"]["watch_paths"] == [str(santad.watch_dir)]
    st["daemon"]["watch_paths"] = ["<watch_dir>"]
    for k in ("root_cache_count", "non_root_cache_count"):
        assert isinstance(st["cache"][k], int) and st["cache"][k] >= 0
        st["cache"][k] = "<count>"
    return st


def test_status_json_has_the_documented_keys(santad):
    st = status_json(santad)
    assert flatten_keys(st) == documented_status_keys()


def test_status_json_golden(santad):
    golden = json.loads((GOLDEN / "santactl-status.json").read_text())
    assert normalized(status_json(santad), santad) == golden


def test_status_text_sections(santad):
    r = santactl(santad, "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    sections = [line for line in lines if line.startswith(">>> ")]
    assert sections == [">>> Daemon Info", ">>> Cache Info", ">>> Database Info"]
    assert "  Mode                      | Monitor" in lines
    assert f"  Watched Paths             | {santad.watch_dir}" in lines
    assert "  Binary Rules              | 0" in lines
    assert "  Events Pending Upload     | 0" in lines
    for line in lines:
        assert line.startswith(">>> ") or line[2:27].strip() and line[27:30] == " | ", line


def test_status_same_for_a_user(santad):
    as_root = santactl(santad, "status", "--json")
    as_nobody = santactl(santad, "status", "--json", user="nobody")
    assert as_nobody.returncode == 0, as_nobody.stdout + as_nobody.stderr
    root, nobody = json.loads(as_root.stdout), json.loads(as_nobody.stdout)
    # Only the cache may move between the two calls.
    root.pop("cache"), nobody.pop("cache")
    assert root == nobody


def test_version(santad):
    r = santactl(santad, "version", "--json")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert set(v) == {"santad", "santactl", "SantaGUI"}
    assert v["santad"] == v["santactl"] != ""
    text = santactl(santad, "version").stdout.splitlines()
    assert text[0].startswith("santad          | ")
    assert text[1] == f"santactl        | {v['santactl']}"


def test_help(santad):
    r = santactl(santad, "--help")
    assert r.returncode == 0
    for cmd in ("status", "version", "fileinfo", "rule", "checkcache", "flushcache",
                "sync", "metrics"):
        assert f"{cmd} - " in r.stdout
    r = santactl(santad, "status", "--help")
    assert r.returncode == 0 and r.stdout.startswith("Help for 'status':")
    r = santactl(santad, "bogus")
    assert r.returncode == 128 and r.stdout == "Unknown command: bogus\n"
    r = santactl(santad, "status", "--bogus")
    assert r.returncode == 1 and r.stderr.startswith("Unknown argument: --bogus")


def test_daemon_not_running(build_dir, public_dir):
    """Without santad every command that needs it says so and exits 1
    within the handshake deadline; fileinfo still prints what it can."""
    run_dir = public_dir / "run"
    run_dir.mkdir()
    config = public_dir / "config.json"
    config.write_text(json.dumps({"RunDirectory": str(run_dir)}))
    offline = types.SimpleNamespace(build_dir=build_dir, config_path=config)
    for args in (["status"], ["status", "--json"], ["version"],
                 ["rule", "--check", "--identifier", "a" * 64], ["flushcache"]):
        start = time.monotonic()
        r = santactl(offline, *args)
        elapsed = time.monotonic() - start
        assert elapsed < 2.5, (args, elapsed)
        if args == ["version"]:
            assert r.returncode == 0 and r.stdout.startswith("santad          | \n")
            continue
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stdout == NO_DAEMON + "\n", args
    r = santactl(offline, "fileinfo", "--key", "Rule", "/bin/true")
    assert r.returncode == 0
    assert r.stdout == "Could not communicate with daemon\n"


def refusal_head(exe, why):
    return (f'santad refused this santactl ("{exe}"): its executable is not one santad '
            f"trusts; {why}.\n")


def test_santad_refuses_an_untrusted_santactl(santad_factory, build_dir, public_dir):
    """santad runs but will not talk to a santactl it does not trust (its
    build directory is not in TrustedExecutables): santactl says so, naming
    its executable and why, not that santad is not running; exit 1. Once
    santad is gone, the original message is back."""
    trusted = sorted(f"{p}/" for p in (build_dir / "src").iterdir()
                     if p.is_dir() and p.name != "santactl")
    d = santad_factory({"TrustedExecutables": trusted})
    exe = santactl_path(d)
    head = refusal_head(exe, "it is neither installed nor listed in TrustedExecutables of "
                        f'"{d.config_path}"')
    for args, user in ((["status"], None), (["status"], "nobody"), (["flushcache"], None),
                       (["rule", "--check", "--identifier", "a" * 64], None)):
        r = santactl(d, *args, user=user)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stdout == "", (args, r.stdout)
        assert r.stderr.startswith(head), (args, r.stderr)
        assert "santad's TrustedExecutables" in r.stderr.splitlines()[-1]

    r = santactl(d, "fileinfo", "--key", "Rule", "/bin/true")
    assert r.stdout == "Could not communicate with daemon (it refused this santactl)\n"
    assert r.stderr.startswith(head)
    r = santactl(d, "doctor")
    assert r.returncode == 1
    assert (f'[-] santad: answers on "{d.socket_path}" but ' + head[:-2]) in \
        r.stdout.splitlines(), r.stdout
    assert d.wait_stderr(f"executable '{exe}' is not one of ours"), d.stderr()

    d.stop()
    r = santactl(d, "status")
    assert (r.returncode, r.stdout) == (1, NO_DAEMON + "\n"), r.stderr


def test_santad_refuses_a_santactl_others_may_replace(santad_factory, public_dir):
    """A santactl listed in TrustedExecutables but in a directory others
    may write is refused too, and santactl names the unsafe directory."""
    loose = public_dir / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    d = santad_factory(start=False)
    d.rewrite_config(TrustedExecutables=d.config["TrustedExecutables"] + [f"{loose}/"])
    d.start()
    exe = copy_program(loose, "santactl", santactl_path(d))
    r = subprocess.run([str(exe), "--config", str(d.config_path), "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr.startswith(refusal_head(
        exe, f"it is not held by root: '{loose}' is not owned by root or is writable by "
        "others")), r.stderr
