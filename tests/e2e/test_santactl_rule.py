# SPDX-License-Identifier: Apache-2.0
"""santactl rule against the real santad: rules take effect on the next
exec (cached or not), imports are all or nothing and fast, exports
round-trip, and only root may change rules."""
import json
import time
import types

import pytest

from santactl_util import NO_DAEMON, make_program, run_program, santactl, sha256_of, status_json

SHA_X = "84de9c61777ca36b13228e2446d53e966096e78db7a72c632b5c185b2ffe68a6"


def rule(santad, *args, user=None):
    return santactl(santad, "rule", *args, user=user)


def test_block_rule_applies_to_a_cached_binary(santad):
    prog = make_program(santad, "cached-then-blocked")
    assert run_program(prog).returncode == 0
    assert run_program(prog).returncode == 0
    assert santactl(santad, "checkcache", str(prog)).returncode == 0

    r = rule(santad, "--block", "--path", str(prog))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == f"Added rule for SHA-256: {sha256_of(prog)}.\n"
    assert run_program(prog).returncode == 126
    fi = santactl(santad, "fileinfo", "--key", "Rule", str(prog))
    assert fi.stdout == "Blocked (Binary)\n"

    r = rule(santad, "--remove", "--identifier", sha256_of(prog))
    assert r.stdout == f"Removed rule for SHA-256: {sha256_of(prog)}.\n"
    assert run_program(prog).returncode == 0


def test_check(santad):
    prog = make_program(santad, "checked", extra=b"checked")
    sha = sha256_of(prog)
    assert rule(santad, "--check", "--identifier", sha).stdout == \
        "No rule exists with the given parameters\n"
    assert rule(santad, "--silent-block", "--identifier", sha.upper(),
                "--message", "not here").returncode == 0
    assert rule(santad, "--check", "--identifier", sha).stdout == "Blocked (Binary, Silent)\n"
    assert rule(santad, "--check", "--path", str(prog)).stdout == "Blocked (Binary, Silent)\n"
    assert rule(santad, "--compiler", "--identifier", sha).returncode == 0
    assert rule(santad, "--check", "--sha256", sha).stdout == "Allowed (Binary, Compiler)\n"


def test_usage_errors(santad):
    r = rule(santad, "--allow")
    assert r.returncode == 1
    assert r.stderr.startswith("A valid SHA-256, CDHash, Signing ID, team ID, or path to "
                               "file must be specified\n\nUsage: santactl rule")
    r = rule(santad, "--allow", "--identifier", "abc")
    assert r.returncode == 1
    assert r.stderr.startswith("BINARY or CERTIFICATE rules require a valid SHA-256")
    r = rule(santad, "--identifier", SHA_X)
    assert r.returncode == 1 and r.stderr.startswith("No state specified")
    r = rule(santad, "--import", "a", "--export", "b")
    assert r.returncode == 1 and "mutually exclusive" in r.stderr
    r = rule(santad, "--allow", "--path", "/nonexistent")
    assert r.returncode == 1 and r.stderr.startswith("Provided path was not a plain file")


def test_argument_errors_without_santad(build_dir, public_dir):
    """Every argument error, a bad --path and a bad import file are told
    (exit 1, the message, then the help) before santad is contacted: with
    no santad at all, and quickly. A good command line then finds no santad."""
    run_dir = public_dir / "run"
    run_dir.mkdir()
    config = public_dir / "config.json"
    config.write_text(json.dumps({"RunDirectory": str(run_dir)}))
    offline = types.SimpleNamespace(build_dir=build_dir, config_path=config)
    bad_json = public_dir / "bad.json"
    bad_json.write_text('{"rules": [{"policy": "ALLOW", "identifier": "%s"}]}' % SHA_X)
    cases = [
        (["--allow"], "A valid SHA-256, CDHash, Signing ID, team ID, or path to file must be "
                      "specified\n\nUsage: santactl rule"),
        (["--block", "--identifier", "abc"], "BINARY or CERTIFICATE rules require a valid"),
        (["--allow", "--sha256", "g" * 64], "BINARY or CERTIFICATE rules require a valid"),
        (["--cdhash", "--block", "--identifier", SHA_X], "CDHASH rules require"),
        (["--identifier", SHA_X], "No state specified\n\nUsage: santactl rule"),
        (["--check"], "--check requires --identifier or --path\n\nUsage"),
        (["--allow", "--path", str(public_dir / "missing")], "Provided path was not a plain"),
        (["--allow", "--path", str(public_dir)], "Provided path was not a plain file"),
        (["--teamid", "--allow", "--path", "/bin/true"], "--path makes only BINARY"),
        (["--import", "a", "--export", "b"], "--import and --export are mutually exclusive"),
        (["--import", str(bad_json), "--identifier", SHA_X], "--import can only be used by"),
        (["--export", "out.json", "--check"], "--export can only be used by itself"),
        (["--export", "out.json", "--clean"], "--clean and --clean-all only go with --import"),
        (["--allow", "--bogus"], "Unknown argument: --bogus"),
        (["--allow", "--identifier"], "--identifier requires an argument"),
        (["--import", str(public_dir / "missing.json")], "Failed to read "),
        (["--import", str(bad_json)], f"Failed to import {bad_json}: rule 0: "),
    ]
    for args, message in cases:
        start = time.monotonic()
        r = rule(offline, *args)
        assert time.monotonic() - start < 1.0, args
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stdout == "", (args, r.stdout)
        assert r.stderr.startswith(message) and r.stderr.strip(), (args, r.stderr)

    for args in (["--allow", "--identifier", SHA_X], ["--check", "--path", "/bin/true"],
                 ["--clean"], ["--export", str(public_dir / "out.json")]):
        r = rule(offline, *args)
        assert (r.returncode, r.stdout) == (1, NO_DAEMON + "\n"), (args, r.stderr)


def test_rule_needs_root(santad):
    r = rule(santad, "--allow", "--identifier", SHA_X, user="nobody")
    assert r.returncode == 2
    assert r.stdout == "The command 'rule' requires root privileges.\n"
    assert status_json(santad)["database"]["binary_rules"] == 0


def write_rules(path, rules):
    path.write_text(json.dumps({"rules": rules}))
    return str(path)


def test_import_export_round_trip(santad, tmp_path):
    rules = [
        {"policy": "BLOCKLIST", "identifier": SHA_X, "rule_type": "BINARY",
         "custom_msg": "no \"x\" here", "custom_url": "https://example.com/x"},
        {"policy": "ALLOWLIST", "identifier": "1" * 64, "rule_type": "BINARY",
         "custom_msg": "", "custom_url": ""},
        {"policy": "SILENT_BLOCKLIST", "identifier": "EQHXZ8M8AV", "rule_type": "TEAMID",
         "custom_msg": "", "custom_url": ""},
        {"policy": "ALLOWLIST_COMPILER", "identifier": "platform:com.example.cc",
         "rule_type": "SIGNINGID", "custom_msg": "", "custom_url": ""},
    ]
    r = rule(santad, "--import", write_rules(tmp_path / "in.json", rules))
    assert r.returncode == 0, r.stdout + r.stderr
    db = status_json(santad)["database"]
    assert (db["binary_rules"], db["teamid_rules"], db["signingid_rules"]) == (2, 1, 1)
    assert db["compiler_rules"] == 1

    out = tmp_path / "out.json"
    r = rule(santad, "--export", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    exported = json.loads(out.read_text())["rules"]
    key = lambda x: (x["rule_type"], x["identifier"])  # noqa: E731
    assert sorted(exported, key=key) == sorted(rules, key=key)

    # The export imports back, and --clean-all replaces what was there.
    r = rule(santad, "--import", str(out), "--clean-all")
    assert r.returncode == 0, r.stdout + r.stderr
    assert status_json(santad)["database"]["binary_rules"] == 2
    r = santactl(santad, "rule", "--import", "/dev/stdin", "--clean-all",
                 stdin_text=json.dumps({"rules": rules[:1]}))
    assert r.returncode == 0, r.stdout + r.stderr
    assert status_json(santad)["database"]["binary_rules"] == 1


def test_bad_import_imports_nothing(santad, tmp_path):
    rules = [{"policy": "ALLOWLIST", "identifier": f"{i:064x}", "rule_type": "BINARY"}
             for i in range(5)]
    rules[3]["policy"] = "ALLOW"
    r = rule(santad, "--import", write_rules(tmp_path / "bad.json", rules))
    assert r.returncode == 1
    assert 'rule 3: "policy": unknown policy "ALLOW"' in r.stderr
    assert "no rules were imported" in r.stderr
    assert status_json(santad)["database"]["binary_rules"] == 0
    r = rule(santad, "--export", str(tmp_path / "none.json"))
    assert r.returncode == 1 and r.stdout == "No rules to export.\n"

    (tmp_path / "syntax.json").write_text('{"rules": [\n{"policy": }')
    r = rule(santad, "--import", str(tmp_path / "syntax.json"))
    assert r.returncode == 1 and "line 2" in r.stderr


def test_large_import_is_fast(santad, tmp_path):
    n = 100_000
    rules = [{"policy": "BLOCKLIST" if i % 2 else "ALLOWLIST", "identifier": f"{i:064x}",
              "rule_type": "BINARY", "custom_msg": f"rule {i}"} for i in range(n)]
    path = write_rules(tmp_path / "big.json", rules)
    start = time.monotonic()
    r = rule(santad, "--import", path)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"santactl_import_100k_seconds: {elapsed:.2f}")
    assert elapsed < 30
    assert status_json(santad)["database"]["binary_rules"] == n

    out = tmp_path / "big-out.json"
    start = time.monotonic()
    assert rule(santad, "--export", str(out)).returncode == 0
    print(f"santactl_export_100k_seconds: {time.monotonic() - start:.2f}")
    assert len(json.loads(out.read_text())["rules"]) == n


LOCKDOWN = {"ClientMode": 2}


@pytest.mark.parametrize("santad", [LOCKDOWN], indirect=True)
def test_lockdown_blocks_until_allowed(santad):
    prog = make_program(santad, "unknown-in-lockdown", extra=b"lockdown")
    r = run_program(prog)
    assert r.returncode == 126, r.stderr
    assert status_json(santad)["daemon"]["mode"] == "Lockdown"
    assert santactl(santad, "fileinfo", "--key", "Rule", str(prog)).stdout == \
        "Blocked (Unknown)\n"

    r = rule(santad, "--allow", "--path", str(prog))
    assert r.returncode == 0, r.stdout + r.stderr
    assert run_program(prog).returncode == 0
    assert santactl(santad, "fileinfo", "--key", "Rule", str(prog)).stdout == \
        "Allowed (Binary)\n"


STATIC = {"StaticRules": [{"identifier": SHA_X, "policy": "BLOCKLIST",
                           "rule_type": "BINARY"}]}


@pytest.mark.parametrize("santad", [STATIC], indirect=True)
def test_static_rules_refuse_changes(santad, tmp_path):
    managed = "(SyncBaseURL/StaticRules is set, rules are managed centrally.)\n"
    for args in (["--allow", "--identifier", "2" * 64], ["--clean-all"],
                 ["--export", str(tmp_path / "x.json")]):
        r = rule(santad, *args)
        assert r.returncode == 1 and r.stdout == managed, args
    assert rule(santad, "--check", "--identifier", SHA_X).stdout == "Blocked (Binary)\n"
    st = status_json(santad)
    assert st["static_rules"]["rule_count"] == 1
    assert st["database"]["binary_rules"] == 0
    text = santactl(santad, "status").stdout
    assert ">>> Static Rules\n  Rules                     | 1\n" in text
