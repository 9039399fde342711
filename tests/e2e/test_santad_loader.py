# SPDX-License-Identifier: Apache-2.0
"""A dynamic program's exec also opens its ELF interpreter (the dynamic
loader) for exec: santad logs the program, once, and never the loader in
its place, even when the program is gone before santad reads about it.
The loader run as a program of its own is logged as such.

The system's loader is not on the test's tmpfs, so the programs here are
linked against a copy of it there (--dynamic-linker), which makes the
kernel open that copy for exec as it opens /lib64/ld-linux-*.so.2 on a
watched root filesystem."""
import os
import pathlib
import re
import struct
import subprocess
import time

import pytest

from conftest import exec_status, wait_until

QUICK = "int main(void) { return 0; }\n"
CHAIN = ("#include <unistd.h>\n"
         "int main(int argc, char **argv)\n"
         "{\n"
         "\tif (argc > 1)\n"
         "\t\texecv(argv[1], argv + 1);\n"
         "\treturn argc > 1 ? 127 : 0;\n"
         "}\n")


def field(line, key):
    m = re.search(r"(?:^|\|)" + key + r"=([^|]*)", line)
    return m.group(1) if m else None


def system_loader():
    """The path /bin/true names in its PT_INTERP (ELF64 little-endian)."""
    data = pathlib.Path("/bin/true").read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        pytest.skip("not an ELF64 little-endian system")
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:   # PT_INTERP
            return os.path.realpath(data[p_offset:p_offset + p_filesz - 1].decode())
    pytest.skip("/bin/true names no interpreter")


@pytest.fixture
def progs(tmpfs, public_dir):
    """The loader's copy and two programs linked against it, on the tmpfs:
    `quick` exits at once, `chain PROG ARGS` execs PROG in its own process."""
    loader = tmpfs / "ld.so"
    loader.write_bytes(pathlib.Path(system_loader()).read_bytes())
    os.chmod(loader, 0o755)
    made = {"loader": loader}
    for name, src in (("quick", QUICK), ("chain", CHAIN)):
        c = public_dir / f"{name}.c"
        c.write_text(src)
        out = tmpfs / name
        r = subprocess.run(["cc", "-O2", f"-Wl,--dynamic-linker={loader}", "-o", str(out),
                            str(c)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            pytest.skip("no C compiler: " + r.stderr[-300:])
        made[name] = out
    assert exec_status(made["quick"]) == 0
    return made


def count(santad, path):
    return sum(1 for line in santad.log_lines() if field(line, "path") == str(path))


def storm(*argv, times):
    """Run ARGV TIMES times, one after another, as fast as a shell can."""
    script = 'i=0; while [ "$i" -lt ' + str(times) + ' ]; do "$@"; i=$((i+1)); done'
    subprocess.run(["/bin/sh", "-c", script, "sh", *map(str, argv)], check=True,
                   timeout=120)


def test_dynamic_program_is_logged_once_never_as_its_loader(santad_factory, progs):
    santad = santad_factory()
    storm(progs["quick"], times=300)
    assert wait_until(lambda: count(santad, progs["quick"]) >= 300, timeout=20), \
        count(santad, progs["quick"])
    time.sleep(0.3)
    assert count(santad, progs["quick"]) == 300
    assert count(santad, progs["loader"]) == 0, \
        [x for x in santad.log_lines() if field(x, "path") == str(progs["loader"])][:5]


def test_a_program_execd_by_a_dynamic_program_in_its_process_is_logged(santad_factory,
                                                                       progs):
    # chain's process runs chain, then quick: two programs, two lines each
    # time, though the second follows the first within microseconds.
    santad = santad_factory()
    storm(progs["chain"], progs["quick"], times=150)
    # chain's line waits up to RECORDER_ARGS_WAIT_USEC for an image that
    # never shows (its process runs quick at once): it may come last.
    assert wait_until(lambda: count(santad, progs["quick"]) >= 150 and
                      count(santad, progs["chain"]) >= 150, timeout=20)
    time.sleep(0.3)
    assert count(santad, progs["chain"]) == 150
    assert count(santad, progs["quick"]) == 150
    assert count(santad, progs["loader"]) == 0


def test_the_loader_run_as_a_program_is_logged(santad_factory, progs):
    # `ld.so PROG` is an exec of the loader, which maps PROG as a plain
    # file: the kernel reports no exec of PROG (docs/configuration.md, "What an
    # exec is decided on").
    santad = santad_factory()
    assert exec_status(progs["loader"], "/bin/sleep", "0.05") == 0
    hits = santad.wait_log(lambda x: field(x, "path") == str(progs["loader"]))
    assert len(hits) == 1, santad.log_lines()
    assert field(hits[0], "args") == f"{progs['loader']} /bin/sleep 0.05"
