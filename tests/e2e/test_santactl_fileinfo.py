# SPDX-License-Identifier: Apache-2.0
"""santactl fileinfo: hashes and type computed by santactl, the Rule field
from santad's dry-run decision."""
import hashlib
import json
import os

from santactl_util import make_program, make_script, santactl


def test_fileinfo_binary(santad):
    prog = make_program(santad, "info-bin")
    data = prog.read_bytes()
    r = santactl(santad, "fileinfo", str(prog))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"Path   : {prog}",
        f"SHA-256: {hashlib.sha256(data).hexdigest()}",
        f"SHA-1  : {hashlib.sha1(data).hexdigest()}",
        f"Type   : Executable (ELF {machine()})",
        "Rule   : Allowed (Unknown)",
        "",
    ]


def machine():
    return {"x86_64": "x86-64", "aarch64": "aarch64"}.get(os.uname().machine,
                                                          os.uname().machine)


def test_fileinfo_script_json_keys(santad):
    script = make_script(santad, "info.sh")
    r = santactl(santad, "fileinfo", "--json", "--key", "Type", "--key", "Path", str(script))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"Type": "Script", "Path": str(script)}]
    r = santactl(santad, "fileinfo", "--key", "SHA-256", str(script))
    assert r.stdout == hashlib.sha256(script.read_bytes()).hexdigest() + "\n"


def test_fileinfo_recursive_and_errors(santad, tmp_path):
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "b").write_bytes(b"bbb")
    (d / "sub" / "a").write_bytes(b"aaa")
    (d / "empty").write_bytes(b"")
    r = santactl(santad, "fileinfo", "-r", "--key", "Path", str(d))
    assert r.stdout.splitlines() == [str(d / "b"), str(d / "sub" / "a")]
    assert r.stderr == f"Invalid or empty file: {d / 'empty'}\n"
    assert r.returncode == 1

    r = santactl(santad, "fileinfo", str(d))
    assert r.returncode == 1
    assert r.stderr == f"{d} is a directory.  Use the -r flag to search recursively.\n"
    r = santactl(santad, "fileinfo", str(d / "missing"))
    assert r.returncode == 1 and r.stderr == f"File does not exist: {d / 'missing'}\n"
    r = santactl(santad, "fileinfo", "--key", "Bogus", str(d / "b"))
    assert r.returncode == 1 and r.stderr.startswith('"Bogus" is an invalid key')


def test_fileinfo_unreadable_by_the_caller(santad):
    prog = make_program(santad, "root-only", extra=b"secret")
    os.chmod(prog, 0o700)
    r = santactl(santad, "fileinfo", str(prog), user="nobody")
    assert r.returncode == 1
    assert r.stderr.startswith(f"Invalid or empty file: {prog}: Permission denied")
    assert r.stdout == ""


def test_fileinfo_rule_follows_rules(santad):
    prog = make_program(santad, "info-ruled", extra=b"ruled")
    assert santactl(santad, "rule", "--block", "--path", str(prog)).returncode == 0
    r = santactl(santad, "fileinfo", "--key", "Rule", str(prog), user="nobody")
    assert r.stdout == "Blocked (Binary)\n"
