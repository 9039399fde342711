# SPDX-License-Identifier: Apache-2.0
"""santabundleservice with santagui: the bundle of a blocked program, found,
hashed, reported as it goes, and recorded by santad.

The bundle hash is checked against one computed here in Python over the
same files (SHA-256 of the sorted, concatenated hex hashes of every ELF or
#! executable), so that the service's enumeration and hashing are both
checked, not only that some hash came back.
"""
import pathlib
import re

import pytest

from conftest import as_user, copy_program
from guilib import (BundleServiceProcess, GuiProcess, bundle_hash, dir_executables,
                    exec_blocked, install_package_copy, package_executables)

# debianutils is Essential on every Debian system, and ships both ELF
# programs (run-parts, tempfile, ischroot) and shell scripts (savelog,
# add-shell, ...).
PACKAGE = "debianutils"
LOCKDOWN_BUNDLES = {"ClientMode": 2, "EnableBundles": True}


def make_app(top):
    """A fake application directory: a .desktop marker, three ELF programs
    (two of them under lib/), two scripts, and files that do not count."""
    app = pathlib.Path(top) / "FakeApp"
    (app / "bin").mkdir(parents=True)
    (app / "lib" / "helpers").mkdir(parents=True)
    (app / "FakeApp.desktop").write_text("[Desktop Entry]\nName=Fake App\nExec=bin/fake\n")
    main = copy_program(app / "bin", "fake", extra=b"fake app main")
    copy_program(app / "lib", "worker", extra=b"fake app worker")
    copy_program(app / "lib" / "helpers", "helper", extra=b"fake app helper")
    for name, text in (("start.sh", "#!/bin/sh\nexec fake\n"), ("stop", "#!/bin/sh\n:\n")):
        p = app / "bin" / name
        p.write_text(text)
        p.chmod(0o755)
    (app / "README").write_text("not a program\n")
    (app / "lib" / "data.so").write_bytes(b"\x7fELF but not executable")
    return app, main


def check_progress(gui, want_count):
    progress = gui.wait_messages("bundle_progress", 2)
    assert len(progress) >= 2, gui.stderr()
    assert progress[-1]["done"] is True
    assert progress[-1]["binary_count"] == want_count
    assert progress[-1]["hashed_count"] == want_count
    for earlier, later in zip(progress, progress[1:]):
        assert later["hashed_count"] >= earlier["hashed_count"]
    return progress


def test_hash_bundle_of_installed_package(santad, build_dir, tmp_path):
    """santagui --hash-bundle on a file of a real installed package: the
    launcher starts santabundleservice on the GUI's connection, which finds
    the package through dpkg's database (the /usr-merged path included)."""
    want = package_executables(f"/var/lib/dpkg/info/{PACKAGE}.list")
    gui = GuiProcess(build_dir, santad.config_path, tmp_path)
    status = gui.run("--hash-bundle", "/usr/bin/run-parts")
    assert status == 0, gui.stderr()

    done = gui.messages("bundle_done")
    assert done and done[-1]["error"] is None, gui.stderr()
    assert done[-1]["bundle_hash"] == bundle_hash(want.values())
    assert done[-1]["binary_count"] == len(want)
    progress = check_progress(gui, len(want))
    assert progress[-1]["bundle_path"] == f"/var/lib/dpkg/info/{PACKAGE}.list"


def test_hash_bundle_of_file_outside_bundles(santad, build_dir, tmp_path, tmpfs):
    lone = copy_program(tmpfs, "lone", extra=b"no bundle")
    gui = GuiProcess(build_dir, santad.config_path, tmp_path)
    assert gui.run("--hash-bundle", str(lone)) == 0, gui.stderr()
    done = gui.messages("bundle_done")
    assert done and done[-1]["bundle_hash"] == "" and done[-1]["error"] is None


def test_hash_bundle_sees_only_what_its_caller_may(santad, build_dir, tmp_path, tmpfs):
    """santabundleservice runs as root, but walks a bundle as the user who
    asked: a user who drops an AppRun marker in a shared sticky directory
    (as /var/tmp) does not learn the executables in another user's private
    directory below it."""
    import os
    import subprocess
    from conftest import sha256_of
    shared = tmpfs / "vartmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    private = shared / "alice"
    private.mkdir()
    secret = copy_program(private, "secret-tool", extra=b"alice's")
    os.chown(secret, 1000, 1000)
    os.chown(private, 1000, 1000)
    os.chmod(private, 0o700)
    mine = shared / "mine"
    subprocess.run(as_user(65534) + ["/bin/sh", "-c",
                                     f"touch {shared}/AppRun && mkdir {mine} && "
                                     f"cp /bin/true {mine}/x"], check=True)
    gui = GuiProcess(build_dir, santad.config_path, tmp_path)
    gui.start("--hash-bundle", str(mine / "x"), user=(65534, 65534))
    try:
        assert gui.proc.wait(timeout=60) == 0, gui.stderr()
    finally:
        gui.stop()
    done = gui.messages("bundle_done")
    assert done and done[-1]["error"] is None, gui.stderr()
    assert done[-1]["binary_count"] == 1
    assert done[-1]["bundle_hash"] == bundle_hash([sha256_of(mine / "x")])


def test_hash_bundle_through_another_process_cwd_shows_nothing(santad, build_dir, tmp_path,
                                                                tmpfs):
    """A path through another user's /proc/PID/cwd skips the private
    directories above it for root; the thread that walks a bundle is the
    caller, with no capability left, so it leads nowhere. The caller is a
    santagui whose realpath() is replaced, as anyone may do to their own
    client, so that the path reaches the service as given."""
    import os
    import subprocess
    shim = tmpfs / "realpath-as-given.so"      # where nobody may read it
    src = tmp_path / "realpath-as-given.c"
    src.write_text("#define _GNU_SOURCE\n#include <stdlib.h>\n#include <string.h>\n"
                   "char *realpath(const char *p, char *r) { (void)r; return strdup(p); }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(src)], check=True)
    home = tmpfs / "alice"
    app = home / "work" / "app"
    app.mkdir(parents=True)
    (app / "AppRun").write_text("#!/bin/sh\n")
    secret = copy_program(app, "secret-tool", extra=b"alice's")
    for p in (home, home / "work", app, app / "AppRun", secret):
        os.chown(p, 1000, 1000)
    os.chmod(home, 0o700)
    victim = subprocess.Popen(as_user(1000) + ["sleep", "60"], cwd=home / "work")
    try:
        path = f"/proc/{victim.pid}/cwd/app/secret-tool"
        gui = GuiProcess(build_dir, santad.config_path, tmp_path)
        gui.start("--hash-bundle", path, user=(65534, 65534),
                  env=dict(os.environ, LD_PRELOAD=str(shim)))
        try:
            gui.proc.wait(timeout=60)
        finally:
            gui.stop()
    finally:
        victim.kill()
        victim.wait()
    done = gui.messages("bundle_done")
    assert not done or done[-1]["binary_count"] == 0, done
    assert "cannot be opened by its caller" in gui.stderr(), gui.stderr()


def _blocked_bundle(santad, gui, program):
    """Block PROGRAM and wait for its notice and the bundle's result."""
    gui.wait_registered()
    assert exec_blocked(program)
    blocks = gui.wait_messages("block", 1)
    assert blocks and blocks[0]["path"] == str(program), gui.stderr()
    done = gui.wait_messages("bundle_done", 1, timeout=60)
    assert done and done[0]["error"] is None, gui.stderr()
    return blocks[0], done[0]


def _bundle_line(santad, program, want_hash):
    lines = santad.wait_log(lambda l: "action=BUNDLE|" in l and f"|path={program}" in l, 10)
    assert lines, "no BUNDLE line:\n" + "\n".join(santad.log_lines()[-5:])
    m = re.search(r"action=BUNDLE\|sha256=([0-9a-f]{64})\|bundlehash=([0-9a-f]{64})\|"
                  r"bundlename=([^|]*)\|bundleid=([^|]*)\|bundlepath=([^|]*)\|path=(.*)$",
                  lines[0])
    assert m, lines[0]
    assert m.group(2) == want_hash
    return m


@pytest.mark.parametrize("santad", [LOCKDOWN_BUNDLES], indirect=True)
def test_blocked_program_in_application_directory(santad, build_dir, tmp_path, tmpfs):
    app, main = make_app(tmpfs)
    want = dir_executables(app)
    assert len(want) == 5
    gui = GuiProcess(build_dir, santad.config_path, tmp_path)
    gui.start()
    try:
        block, done = _blocked_bundle(santad, gui, main)
        assert done["bundle_hash"] == bundle_hash(want.values())
        assert done["binary_count"] == 5
        progress = check_progress(gui, 5)
        assert progress[-1]["bundle_path"] == str(app)
        assert progress[-1]["file_path"] == str(main)

        m = _bundle_line(santad, main, bundle_hash(want.values()))
        assert m.group(1) == block["sha256"]
        assert m.group(3) == "Fake App"
        assert m.group(4) == "FakeApp"
        assert m.group(5) == str(app)
    finally:
        gui.stop()


@pytest.mark.parametrize("santad", [LOCKDOWN_BUNDLES], indirect=True)
def test_blocked_program_of_debian_package(santad, build_dir, tmp_path, tmpfs):
    """A real Debian package's files and dpkg records, installed below a
    root on the watched tmpfs as `dpkg --root` would: the bundle is the
    package, and its hash is the one of the package installed on this
    system (same files)."""
    root = tmpfs / "root"
    list_path = install_package_copy(PACKAGE, root)
    want_system = package_executables(f"/var/lib/dpkg/info/{PACKAGE}.list")
    want_root = package_executables(list_path, root=str(root))
    assert sorted(want_root.values()) == sorted(want_system.values())

    svc = BundleServiceProcess(build_dir, santad.config_path, tmp_path).start(
        "--dpkg-root", str(root))
    gui = GuiProcess(build_dir, santad.config_path, tmp_path)
    gui.start("--bundle-socket", str(svc.socket_path))
    try:
        program = root / "bin" / "run-parts"
        block, done = _blocked_bundle(santad, gui, program)
        assert done["bundle_hash"] == bundle_hash(want_system.values())
        assert done["binary_count"] == len(want_system)
        check_progress(gui, len(want_system))
        m = _bundle_line(santad, program, bundle_hash(want_system.values()))
        assert m.group(3) == PACKAGE and m.group(4) == PACKAGE
        assert m.group(5) == str(list_path)
    finally:
        gui.stop()
        svc.stop()


@pytest.mark.parametrize("santad", [LOCKDOWN_BUNDLES], indirect=True)
def test_bundle_time_limit(santad, build_dir, tmp_path, tmpfs):
    """A bundle that cannot be hashed in time is given up, and santad gets
    nothing for it."""
    app, main = make_app(tmpfs)
    # Sparse files cost no memory on tmpfs but 4 GB of zeros to hash:
    # seconds, against a limit of one.
    for i in range(20):
        p = app / "lib" / f"big{i}"
        with open(p, "wb") as f:
            f.write(b"\x7fELF" + bytes([i]))
            f.truncate(200 << 20)
        p.chmod(0o755)
    svc = BundleServiceProcess(build_dir, santad.config_path, tmp_path).start(
        "--timeout", "1")
    gui = GuiProcess(build_dir, santad.config_path, tmp_path)
    gui.start("--bundle-socket", str(svc.socket_path))
    try:
        gui.wait_registered()
        assert exec_blocked(main)
        done = gui.wait_messages("bundle_done", 1, timeout=60)
        assert done and done[0]["error"] is not None, gui.stderr()
        assert "time limit reached" in svc.stderr()
        assert not santad.wait_log(lambda l: "action=BUNDLE|" in l, 1)
    finally:
        gui.stop()
        svc.stop()
