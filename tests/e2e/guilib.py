# SPDX-License-Identifier: Apache-2.0
"""Helpers for the santagui and santabundleservice end-to-end tests.

- SessionBus: a private D-Bus session bus (dbus-daemon --session).
- NotifyServer: tests/e2e/notify_server.py on that bus, recording every
  notification it receives.
- GuiProcess: a santagui from the build, in --terminal --json mode (how
  the tests read what it shows) or in desktop mode on a SessionBus.
- BundleServiceProcess: a santabundleservice started by hand on its own
  socket (--socket), for trees installed with dpkg --root.
- bundle_hash / package_executables / dir_executables: the bundle hash
  computed independently, in Python, for the tests to compare with.

Every process is started under `timeout` and killed by pid at the end.
"""
import hashlib
import json
import os
import pathlib
import shutil
import signal
import stat
import subprocess

from conftest import as_user, timeout_child, wait_until

HERE = pathlib.Path(__file__).resolve().parent
LIMIT_SECONDS = 600


def _stop(proc, pid, sig=signal.SIGTERM, timeout=10):
    if proc is None:
        return
    if proc.poll() is None and pid:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        try:
            if pid:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.kill()
        proc.wait()


class SessionBus:
    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.proc = None
        self.address = None

    def start(self):
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.address = self.proc.stdout.readline().decode().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon gave no address")
        return self

    def env(self, base=None):
        env = dict(base if base is not None else os.environ)
        env["DBUS_SESSION_BUS_ADDRESS"] = self.address
        return env

    def stop(self):
        _stop(self.proc, self.proc.pid if self.proc else None)


class NotifyServer:
    def __init__(self, bus, root):
        self.bus = bus
        self.record = pathlib.Path(root) / "notifications.jsonl"
        self.proc = None

    def start(self):
        self.record.write_text("")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(HERE / "notify_server.py"), str(self.record)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=self.bus.env())
        if self.proc.stdout.readline().decode().strip() != "ready":
            raise RuntimeError("the notification server did not start")
        return self

    def notifications(self):
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def wait(self, pred, timeout=10.0):
        return wait_until(lambda: [n for n in self.notifications() if pred(n)], timeout)

    def invoke_action(self, nid, key):
        subprocess.run(["dbus-send", "--session", "--type=method_call",
                        "--dest=org.freedesktop.Notifications",
                        "/org/freedesktop/Notifications",
                        "org.santa.TestNotifications.InvokeAction",
                        f"uint32:{nid}", f"string:{key}"],
                       env=self.bus.env(), check=True, timeout=10)

    def stop(self):
        _stop(self.proc, self.proc.pid if self.proc else None)


class GuiProcess:
    """A santagui. Attributes: stdout_path, stderr_path, pid, proc."""

    def __init__(self, build_dir, config_path, root, name="gui"):
        self.exe = pathlib.Path(build_dir) / "src" / "santagui" / "santagui"
        self.config_path = config_path
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.root / f"{name}.stdout"
        self.stderr_path = self.root / f"{name}.stderr"
        self.proc = None
        self.pid = None

    def start(self, *args, terminal=True, env=None, user=None):
        """USER: (uid, gid) to run as, instead of root."""
        cmd = ["timeout", "-s", "KILL", str(LIMIT_SECONDS)]
        if user:
            cmd += as_user(*user)
            env = dict(env or os.environ, HOME="/", XDG_RUNTIME_DIR="")
        cmd += [str(self.exe), "--config", str(self.config_path)]
        if terminal:
            cmd += ["--terminal", "--json"]
        cmd += list(args)
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=env)
        self.pid = timeout_child(self.proc)
        return self

    def run(self, *args, timeout=120, env=None):
        """Run to its end (--hash-bundle); returns the exit status."""
        self.start(*args, env=env)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.stop()

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def messages(self, kind=None):
        try:
            text = self.stdout_path.read_text(errors="replace")
        except OSError:
            return []
        out = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        return [m for m in out if kind is None or m.get("type") == kind]

    def wait_messages(self, kind, count=1, timeout=10.0):
        return wait_until(lambda: len(self.messages(kind)) >= count and self.messages(kind),
                        timeout) or self.messages(kind)

    def wait_registered(self, timeout=15.0):
        """Wait until santad connected back."""
        ok = wait_until(lambda: "Registered with santad" in self.stderr(), timeout)
        assert ok, "santagui did not register with santad:\n" + self.stderr()

    def stop(self):
        _stop(self.proc, self.pid)


class BundleServiceProcess:
    def __init__(self, build_dir, config_path, root):
        self.exe = pathlib.Path(build_dir) / "src" / "santabundleservice" / "santabundleservice"
        self.config_path = config_path
        self.root = pathlib.Path(root)
        self.socket_path = self.root / "bundle.sock"
        self.stderr_path = self.root / "bundleservice.stderr"
        self.proc = None
        self.pid = None

    def start(self, *args):
        cmd = ["timeout", "-s", "KILL", str(LIMIT_SECONDS), str(self.exe), "--config",
               str(self.config_path), "--socket", str(self.socket_path), "--idle-exit", "0",
               *args]
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.pid = timeout_child(self.proc)
        assert wait_until(self.socket_path.exists, 10), self.stderr()
        return self

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        _stop(self.proc, self.pid)


def exec_blocked(path):
    """Run PATH; True when the kernel refused the exec (santad denied it)."""
    try:
        subprocess.run([str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    except PermissionError:
        return True
    return False


# --- The bundle hash, independently ---

def _is_executable(path, seen):
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
        return None
    with open(path, "rb") as f:
        data = f.read()
    if not (data[:4] == b"\x7fELF" or data[:2] == b"#!"):
        return None
    if (st.st_dev, st.st_ino) in seen:
        return None
    seen.add((st.st_dev, st.st_ino))
    return hashlib.sha256(data).hexdigest()


def bundle_hash(hashes):
    """SHA-256 over the hex hashes, sorted case-insensitively, concatenated."""
    joined = "".join(sorted(hashes, key=lambda h: (h.lower(), h)))
    return hashlib.sha256(joined.encode()).hexdigest()


def package_executables(list_path, root="/"):
    """{listed path: sha256} of the executables a dpkg file list names."""
    seen, out = set(), {}
    for line in pathlib.Path(list_path).read_text().splitlines():
        if not line.startswith("/"):
            continue
        h = _is_executable(os.path.join(root, line.lstrip("/")), seen)
        if h:
            out[line] = h
    return out


def dir_executables(top):
    seen, out = set(), {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames:
            p = os.path.join(dirpath, name)
            h = _is_executable(p, seen)
            if h:
                out[p] = h
    return out


def install_package_copy(package, root):
    """Copy an installed package's files and its dpkg records below ROOT, as
    `dpkg --root=ROOT` would have installed them; returns the list's path."""
    root = pathlib.Path(root)
    info = pathlib.Path("/var/lib/dpkg/info")
    lst = info / f"{package}.list"
    for line in lst.read_text().splitlines():
        if not line.startswith("/") or line == "/.":
            continue
        src, dst = pathlib.Path(line), root / line.lstrip("/")
        # Directories are made real (/bin is a symlink after the /usr
        # merge; below ROOT it need not be).
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif src.is_symlink():
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(dst):
                os.symlink(os.readlink(src), dst)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    admin = root / "var" / "lib" / "dpkg"
    (admin / "info").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lst, admin / "info" / lst.name)
    stanza = _status_stanza(package)
    (admin / "status").write_text(stanza + "\n")
    return admin / "info" / lst.name


def _status_stanza(package):
    text = pathlib.Path("/var/lib/dpkg/status").read_text()
    for stanza in text.split("\n\n"):
        if f"Package: {package}\n" in stanza + "\n":
            return stanza.strip("\n") + "\n"
    raise KeyError(package)
