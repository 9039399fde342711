# SPDX-License-Identifier: Apache-2.0
"""The Debian package, the way an administrator meets it.

Builds santa_<version>_<arch>.deb from a copy of the tree
(dpkg-buildpackage; the tree itself is left alone), runs lintian on it
(errors fail, warnings are printed), installs it on this machine, checks
files, owners and modes, runs `santactl version` and `santactl doctor`,
then runs the installed santad by hand (watching only a private tmpfs),
removes the package (which must stop that santad and keep the rules
database) and purges it (which must leave nothing behind).

PID 1 is not systemd here, so installing starts nothing: the package's
systemd side is its units, checked offline by test_process_units.py.
"""
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = "santa"
BUILD_TIMEOUT = 900
DPKG_LOCK_WAIT = 120
SANTAD_TIMEOUT = 120

EXECUTABLES = {
    "/usr/sbin/santad": 0o755,
    "/usr/bin/santactl": 0o755,
    "/usr/bin/santagui": 0o755,
    "/usr/libexec/santa/santasyncservice": 0o755,
    "/usr/libexec/santa/santametricservice": 0o755,
    "/usr/libexec/santa/santabundleservice": 0o755,
}
UNITS = ["santad.service", "santasyncservice.service", "santasyncservice.socket",
         "santametricservice.service", "santametricservice.socket",
         "santabundleservice.service", "santabundleservice.socket"]
MAN_PAGES = ["man8/santad.8.gz", "man8/santactl.8.gz", "man8/santasyncservice.8.gz",
             "man8/santametricservice.8.gz", "man8/santabundleservice.8.gz",
             "man1/santagui.1.gz", "man5/santa.conf.5.gz"]
STATE_DIRS = {"/var/lib/santa": 0o700, "/var/log/santa": 0o750}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: needs root")


def meson_version():
    text = (REPO / "meson.build").read_text()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


def run(argv, timeout=60, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=timeout, text=True, **kw)


def dpkg(*args):
    """dpkg ARGS, waiting while another dpkg or apt holds the lock."""
    deadline = time.monotonic() + DPKG_LOCK_WAIT
    while True:
        p = run(["dpkg", "--force-confdef", "--force-confold", *args], timeout=300,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if p.returncode == 0 or "lock" not in p.stdout or time.monotonic() > deadline:
            return p
        time.sleep(2)


def installed(package=PACKAGE):
    p = run(["dpkg-query", "-W", "-f=${Status}", package])
    return p.returncode == 0 and "install ok installed" in p.stdout


def unit_dir():
    p = run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"])
    return p.stdout.strip() or "/usr/lib/systemd/system"


def processes_running(paths):
    """(pid, exe) of every process running one of PATHS, deleted or not."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if exe.removesuffix(" (deleted)") in paths:
            found.append((int(pid), exe))
    return found


def copy_tree(dest):
    """The tracked files of the work tree, as they are now."""
    p = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], stdout=subprocess.PIPE,
                       check=True)
    for rel in filter(None, p.stdout.decode().split("\0")):
        src = REPO / rel
        if not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """Build the package once: (path of the .deb, path of the .changes)."""
    if not shutil.which("dpkg-buildpackage") or not shutil.which("dh"):
        pytest.fail("dpkg-buildpackage or debhelper is missing: run script/setup")
    top = tmp_path_factory.mktemp("deb")
    src = top / "santa"
    copy_tree(src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=%d" % (os.cpu_count() or 1))
    env.pop("MAKEFLAGS", None)
    log = top / "build.log"
    with open(log, "w") as f:
        p = subprocess.run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, env=env,
                           stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=BUILD_TIMEOUT)
    if p.returncode != 0:
        pytest.fail("dpkg-buildpackage failed:\n" + log.read_text()[-6000:])
    debs = sorted(top.glob(f"{PACKAGE}_*.deb"))
    changes = sorted(top.glob(f"{PACKAGE}_*.changes"))
    assert len(debs) == 1 and len(changes) == 1, os.listdir(top)
    return debs[0], changes[0]


def test_changelog_version_is_meson_version():
    first = (REPO / "debian" / "changelog").read_text().splitlines()[0]
    m = re.match(r"santa \(([^)]+)\)", first)
    assert m, first
    assert m.group(1) == meson_version(), \
        "debian/changelog's top entry must carry meson.build's version"


def test_lintian_reports_no_errors(deb):
    if not shutil.which("lintian"):
        pytest.fail("lintian is missing: run script/setup")
    p = run(["lintian", "--fail-on", "error", "--no-tag-display-limit", str(deb[1])],
            timeout=300)
    print(p.stdout)
    assert p.returncode == 0, "lintian found errors:\n" + p.stdout
    assert not re.search(r"^E: ", p.stdout, re.M), p.stdout


# --- the installed package ----------------------------------------------

def check_files():
    for path, mode in EXECUTABLES.items():
        st = os.stat(path)
        assert stat.S_ISREG(st.st_mode), path
        assert (st.st_uid, st.st_gid) == (0, 0), path
        assert stat.S_IMODE(st.st_mode) == mode, f"{path}: {oct(st.st_mode)}"

    units = pathlib.Path(unit_dir())
    for unit in UNITS:
        assert (units / unit).is_file(), units / unit
    service = (units / "santad.service").read_text()
    assert "ExecStart=/usr/sbin/santad" in service
    for name in ["santasyncservice", "santametricservice", "santabundleservice"]:
        text = (units / f"{name}.service").read_text()
        assert f"ExecStart=/usr/libexec/santa/{name}" in text
    assert pathlib.Path("/usr/lib/systemd/user/santagui.service").is_file()
    assert "Exec=/usr/bin/santagui" in pathlib.Path(
        "/etc/xdg/autostart/santagui.desktop").read_text()

    config = pathlib.Path("/etc/santa/config.json")
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    assert json.loads(config.read_text())["ClientMode"] == 1, "installed in MONITOR mode"
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE]).stdout
    for f in ["/etc/santa/config.json", "/etc/logrotate.d/santa"]:
        assert f in conffiles, f"{f} is not a conffile:\n{conffiles}"

    logrotate = pathlib.Path("/etc/logrotate.d/santa").read_text()
    assert "/var/log/santa/santa.log" in logrotate
    assert "--signal HUP" in logrotate and "/usr/sbin/santad" in logrotate

    for path, mode in STATE_DIRS.items():
        st = os.stat(path)
        assert stat.S_ISDIR(st.st_mode) and (st.st_uid, st.st_gid) == (0, 0), path
        assert stat.S_IMODE(st.st_mode) == mode, f"{path}: {oct(st.st_mode)}"

    assert pathlib.Path("/usr/share/bash-completion/completions/santactl").is_file()
    for page in MAN_PAGES:
        path = pathlib.Path("/usr/share/man") / page
        assert path.is_file(), path
        p = subprocess.run(["man", "--warnings", "-l", str(path)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60,
                           env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
        assert p.returncode == 0 and not p.stderr.strip(), f"{page}: {p.stderr}"


def check_version():
    p = run(["/usr/bin/santactl", "version"])
    assert p.returncode == 0, p.stdout
    rows = dict(tuple(c.strip() for c in line.split("|", 1))
                for line in p.stdout.splitlines() if "|" in line)
    assert rows.get("santactl") == meson_version(), p.stdout
    assert rows.get("SantaGUI") == meson_version(), p.stdout
    assert "santad" in rows, p.stdout


def doctor(*args):
    p = run(["/usr/bin/santactl", *args, "doctor"], timeout=60)
    lines = p.stdout.splitlines()
    assert lines, "doctor printed nothing"
    for line in lines:
        assert line.startswith(("[+] ", "[-] ")), f"not a doctor line: {line!r}"
    return p.returncode, lines


def check_doctor_without_santad():
    code, lines = doctor()
    text = "\n".join(lines)
    assert code == 1, text
    assert any(line.startswith("[+] Configuration: \"/etc/santa/config.json\" parses")
               for line in lines), text
    assert "[+] Kernel: fanotify permission events" in text
    if not os.path.exists("/run/santa/santad.sock"):
        assert "[-] santad: not running (no socket \"/run/santa/santad.sock\")" in lines, text


class HandStartedSantad:
    """The installed santad, started by hand as an administrator without
    systemd would, watching only a private tmpfs; its rules database in the
    package's /var/lib/santa, its sockets in a directory of its own."""

    def __init__(self):
        # Under /run, not /tmp: the services run as nobody and read the
        # configuration, and every directory above an executable or socket
        # must be root's alone.
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="santa-pkgtest-", dir="/run"))
        os.chmod(self.root, 0o755)
        self.mnt = self.root / "watched"
        self.mnt.mkdir()
        self.mounted = False
        self.proc = None
        self.pid = None
        self.config = self.root / "config.json"
        self.config.write_text(json.dumps({
            "WatchPaths": [str(self.mnt)],
            "RunDirectory": str(self.root / "run"),
            "EventLogPath": str(self.root / "santa.log"),
            "EnableBundles": True,
        }))

    def start(self):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs",
                        str(self.mnt)], check=True)
        self.mounted = True
        notify_path = self.root / "notify.sock"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.settimeout(15)
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), SANTA_SERVICE_LAUNCHER="santad")
        self.proc = subprocess.Popen(
            ["timeout", "-s", "KILL", str(SANTAD_TIMEOUT), "/usr/sbin/santad",
             "--config", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=open(self.root / "stderr", "wb"),
            stderr=subprocess.STDOUT, env=env)
        try:
            while True:
                if b"READY=1" in notify.recv(4096):
                    break
        finally:
            notify.close()
        self.pid = next(pid for pid, _ in processes_running({"/usr/sbin/santad"}))

    def stderr(self):
        return (self.root / "stderr").read_text(errors="replace")

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            for pid, _ in processes_running({"/usr/sbin/santad"}):
                if pid == self.pid:
                    os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.mounted:
            if subprocess.run(["umount", str(self.mnt)]).returncode != 0:
                subprocess.run(["umount", "-l", str(self.mnt)])
        shutil.rmtree(self.root, ignore_errors=True)


def check_doctor_with_santad(santad):
    code, lines = doctor("--config", str(santad.config))
    text = "\n".join(lines)
    assert code == 0, text + "\n--- santad:\n" + santad.stderr()
    assert f"[+] santad: {meson_version()} answers, Monitor mode" in lines, text
    assert any(line.startswith("[+] santabundleservice: answers") for line in lines), text


def gone(paths):
    return [p for p in paths if os.path.lexists(p)]


@pytest.fixture
def clean_machine():
    """This machine without the package before and after the test."""
    if installed():
        maint = run(["dpkg-query", "-W", "-f=${Maintainer}", PACKAGE]).stdout
        if "santa-linux.example" not in maint:
            pytest.skip(f"another {PACKAGE} package is installed here ({maint})")
        assert dpkg("--purge", PACKAGE).returncode == 0
    if os.path.exists("/etc/santa"):
        pytest.skip("/etc/santa exists without the package: not overwriting it")
    yield
    if installed():
        dpkg("--purge", PACKAGE)


def test_install_check_remove_purge(deb, clean_machine):
    p = dpkg("-i", str(deb[0]))
    assert p.returncode == 0, p.stdout
    files = [f for f in run(["dpkg-query", "-L", PACKAGE]).stdout.splitlines()
             if f.startswith("/") and not os.path.isdir(f)]

    check_files()
    check_version()
    check_doctor_without_santad()

    santad = HandStartedSantad()
    try:
        santad.start()
        check_doctor_with_santad(santad)
        assert os.path.exists("/var/lib/santa/rules.db"), santad.stderr()

        # Remove: santad (and what it started) is stopped, the rules stay.
        p = dpkg("--remove", PACKAGE)
        assert p.returncode == 0, p.stdout
        santad.proc.wait(timeout=30)
        left = processes_running(set(EXECUTABLES))
        assert not left, f"still running after remove: {left}"
        assert not installed()
        assert os.path.exists("/var/lib/santa/rules.db"), "remove must keep the rules"
        assert os.path.exists("/etc/santa/config.json"), "remove keeps conffiles"
        assert gone(EXECUTABLES) == []
    finally:
        santad.cleanup()

    # Purge: nothing of the package is left.
    p = dpkg("--purge", PACKAGE)
    assert p.returncode == 0, p.stdout
    assert run(["dpkg-query", "-W", PACKAGE]).returncode != 0 or not installed()
    assert gone(files) == [], "left after purge"
    assert gone(["/etc/santa", "/var/lib/santa", "/var/log/santa", "/run/santa"]) == []
    links = [str(p) for p in pathlib.Path("/etc/systemd").rglob("*santa*")]
    assert links == [], f"systemd links left after purge: {links}"
    assert processes_running(set(EXECUTABLES)) == []
