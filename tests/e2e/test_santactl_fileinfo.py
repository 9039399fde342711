# SPDX-License-Identifier: Apache-2.0
"""santactl fileinfo: hashes and type computed by santactl, the Rule field
from santad's dry-run decision."""
import hashlib
import json
import os
import pathlib
import struct

from conftest import exec_status
from santactl_util import (copy_program, make_program, make_script, run_program, santactl,
                           santactl_path, sha256_of)


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


def elf_interpreter(path):
    """The PT_INTERP of the 64-bit little-endian ELF file at PATH."""
    data = pathlib.Path(path).read_bytes()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:
            return data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
    raise AssertionError(f"{path} has no interpreter")


def test_fileinfo_own_executables_in_lockdown(santad_factory, tmpfs):
    """santad allows its own executables before any rule, whatever the mode
    (one of ours by name, the very file of an install directory or a
    TrustedExecutables entry, and their loader): fileinfo's Rule says so, as
    the exec shows.
    A copy of one elsewhere, or under another name, is not one of ours."""
    own_dir = tmpfs / "own"
    own_dir.mkdir(mode=0o755)
    d = santad_factory(start=False)
    d.rewrite_config(ClientMode=2,
                     TrustedExecutables=d.config["TrustedExecutables"] + [f"{own_dir}/"])
    d.start()
    ours = copy_program(own_dir, "santactl", santactl_path(d))
    elsewhere = copy_program(tmpfs, "santactl", santactl_path(d))
    renamed = copy_program(own_dir, "not-santactl", santactl_path(d))

    def rule_of(path, user=None):
        r = santactl(d, "fileinfo", "--key", "Rule", str(path), user=user)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert rule_of(ours) == "Allowed (Scope)\n"
    assert rule_of(ours, user="nobody") == "Allowed (Scope)\n"
    assert rule_of(d.exe) == "Allowed (Scope)\n"
    # The loader santad's executables name is allowed with them.
    assert rule_of(os.path.realpath(elf_interpreter(d.exe))) == "Allowed (Scope)\n"
    assert rule_of(elsewhere) == "Blocked (Unknown)\n"
    assert rule_of(renamed) == "Blocked (Unknown)\n"
    assert exec_status(ours, "--config", str(d.config_path), "version") == 0
    assert run_program(elsewhere).returncode == 126
    assert run_program(renamed).returncode == 126

    # Not even a block rule of its hash stops one of ours.
    r = santactl(d, "rule", "--block", "--identifier", sha256_of(ours))
    assert r.returncode == 0, r.stdout + r.stderr
    assert rule_of(ours) == "Allowed (Scope)\n"
    assert rule_of(elsewhere) == "Blocked (Binary)\n"
    assert exec_status(ours, "--config", str(d.config_path), "version") == 0


def test_fileinfo_filters(santad):
    """--filter KEY=REGEX (case-insensitive, anywhere in the value) keeps the
    files that match all filters, or any with --filter-inclusive; the Rule is
    matched as santad decides it; --localtz is accepted."""
    prog = make_program(santad, "filter-bin")
    script = make_script(santad, "filter.sh")
    files = [str(prog), str(script)]

    r = santactl(santad, "fileinfo", "--key", "Path", "--filter", "Type=SCRIPT", *files)
    assert (r.returncode, r.stdout) == (0, f"{script}\n"), r.stderr
    r = santactl(santad, "fileinfo", "--key", "Path", "--filter", "Type=^Exec",
                 "--filter", "Path=filter\\.sh$", *files)
    assert (r.returncode, r.stdout) == (0, "")
    r = santactl(santad, "fileinfo", "--key", "Path", "--filter", "Type=^Exec",
                 "--filter", "Path=filter\\.sh$", "--filter-inclusive", "--localtz", *files)
    assert r.stdout.splitlines() == files
    r = santactl(santad, "fileinfo", "--json", "--key", "Path", "--filter",
                 "Rule=^allowed \\(unknown\\)$", *files)
    assert json.loads(r.stdout) == [{"Path": f} for f in files]

    r = santactl(santad, "fileinfo", "--filter", "Typo=x", str(prog))
    assert r.returncode == 1
    assert r.stderr.startswith("Invalid filter predicate: Typo=x (expected key=regex")
    r = santactl(santad, "fileinfo", "--filter", "Type=(", str(prog))
    assert r.returncode == 1
    assert r.stderr.startswith("Invalid regular expression in filter Type=( at offset 1: ")
