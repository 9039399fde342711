# SPDX-License-Identifier: Apache-2.0
"""Fixtures every end-to-end test may use.

- `build_dir`: the meson build directory (--build-dir, else $SANTA_BUILD_DIR,
  else build/), as an absolute pathlib.Path.
- `public_dir`: a fresh directory under /run that root owns, mode 0755,
  with no directory above it writable by others; removed at the end.
  `make_public_dir()` makes one outside a fixture. Services that santad
  starts as nobody read their configuration there, santactl run as nobody
  reaches the sockets there, and the IPC layer trusts executables there.
- `tmpfs`: a private tmpfs mounted on a fresh directory in `public_dir`
  for this test only, unmounted at the end. santad only ever watches such
  a mount in tests: never / or any real filesystem.
- `write_config`: write_config(path, dict) writes a JSON config file.
- `santad`: a real santad from the build, watching only `tmpfs`, with its
  state, sockets and event log in a tree in `public_dir`, under `timeout`, ready
  (it said READY=1 on a NOTIFY_SOCKET the fixture made) before the test
  starts, and killed by pid at the end whatever happened. Override config
  keys with `@pytest.mark.parametrize("santad", [{"ClientMode": 2}],
  indirect=True)`. See the SantadProcess class for what a test can use.
- `wait_until(pred, timeout)`: poll PRED until it returns a true value.
"""
import hashlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

# A test must never outlive this, even when pytest itself hangs: santad is
# run under `timeout`, which kills it after this many seconds.
SANTAD_TIMEOUT_SECONDS = 900
READY_SECONDS = 15


def pytest_addoption(parser):
    parser.addoption("--build-dir", default=None,
                     help="meson build directory (default: $SANTA_BUILD_DIR or build)")


def _build_dir(config):
    d = config.getoption("--build-dir", default=None)
    return pathlib.Path(d or os.environ.get("SANTA_BUILD_DIR", "build")).resolve()


@pytest.fixture(scope="session")
def build_dir(request):
    return _build_dir(request.config)


def wait_until(pred, timeout=5.0, interval=0.05):
    """PRED's first true value within TIMEOUT seconds, else its last
    (false) value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# pytest's tmp_path (/tmp/pytest-of-root/..., 0700) is root's alone, and
# /tmp is writable by all: the services santad starts as nobody could not
# read a configuration there, santactl as nobody could not reach a socket,
# and the IPC layer rightly distrusts an executable or socket below a
# directory others may write. /run is root's and 0755.
PUBLIC_PARENT = "/run"


def _check_public(path):
    """Fail when PATH or a directory above it is not root's or is writable
    by others: nothing made below it would be believed."""
    p = pathlib.Path(path)
    for d in (p, *p.parents):
        st = os.stat(d)
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise RuntimeError(f"\"{d}\" (above the test tree \"{path}\") is not root's "
                               f"alone (uid {st.st_uid}, mode {st.st_mode & 0o7777:o})")


def make_public_dir(prefix="santa-e2e-"):
    """A fresh directory under PUBLIC_PARENT, root's, mode 0755, that
    others may read and traverse but nobody else may write, nor any
    directory above it. The caller removes it (shutil.rmtree)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir=PUBLIC_PARENT))
    os.chmod(path, 0o755)
    try:
        _check_public(path)
    except Exception:
        os.rmdir(path)
        raise
    return path


@pytest.fixture
def public_dir():
    """make_public_dir() for this test, removed at the end (after every
    fixture that depends on it, such as `tmpfs`, has cleaned up)."""
    path = make_public_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def mount_tmpfs(path, size="256m"):
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                    str(path)], check=True)


def umount(path):
    r = subprocess.run(["umount", str(path)], capture_output=True)
    if r.returncode != 0:
        # Something still holds a file there (a process the test started
        # and that is still dying): detach now, the kernel frees it later.
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


_umount = umount    # the name test_process_peers.py knows it by


@pytest.fixture
def tmpfs(public_dir):
    """A private tmpfs, mounted for this test only."""
    mnt = public_dir / "tmpfs"
    mnt.mkdir()
    mount_tmpfs(mnt)
    try:
        yield mnt
    finally:
        umount(mnt)


def write_config_file(path, cfg):
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    os.replace(tmp, path)
    return path


@pytest.fixture
def write_config():
    return write_config_file


def timeout_child(proc, wait=10.0):
    """The pid of the program PROC (a `timeout` process) runs, or None when
    PROC ended first or had no child within WAIT seconds."""
    deadline = time.monotonic() + wait
    path = f"/proc/{proc.pid}/task/{proc.pid}/children"
    while time.monotonic() < deadline:
        try:
            kids = open(path).read().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        if proc.poll() is not None:
            return None
        time.sleep(0.005)
    return None


class SantadProcess:
    """A santad started for one test.

    Attributes: build_dir, exe, watch_dir (the tmpfs), root (its temp
    tree), config_path, config (the dict written), state_dir, run_dir,
    event_log (EventLogPath), stderr_path, socket_path (santad.sock),
    pid (santad's own pid), proc (the `timeout` process running it).
    """

    def __init__(self, build_dir, watch_dir, root, overrides):
        self.build_dir = pathlib.Path(build_dir)
        self.exe = self.build_dir / "src" / "santad" / "santad"
        self.watch_dir = pathlib.Path(watch_dir)
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.state_dir = self.root / "state"
        self.run_dir = self.root / "run"
        self.log_dir = self.root / "log"
        self.event_log = self.log_dir / "santa.log"
        self.stderr_path = self.root / "santad.stderr"
        self.config_path = self.root / "config.json"
        self.socket_path = self.run_dir / "santad.sock"
        self.proc = None
        self.pid = None
        self.config = self.base_config()
        self.config.update(overrides or {})
        write_config_file(self.config_path, self.config)
        os.chmod(self.config_path, 0o644)   # services read it as nobody

    def base_config(self):
        src = self.build_dir / "src"
        trusted = sorted(str(p) + "/" for p in src.iterdir() if p.is_dir())
        return {
            "WatchPaths": [str(self.watch_dir)],
            "StateDirectory": str(self.state_dir),
            "RunDirectory": str(self.run_dir),
            "EventLogPath": str(self.event_log),
            "TrustedExecutables": trusted,
        }

    # --- life cycle -----------------------------------------------------

    def start(self, extra_args=(), wait=True):
        notify_path = self.root / "notify.sock"
        if notify_path.exists():
            notify_path.unlink()
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path),
                   SANTA_SERVICE_LAUNCHER="santad")
        env.pop("SANTA_CONFIG", None)
        err = open(self.stderr_path, "ab")
        cmd = ["timeout", "-s", "KILL", str(SANTAD_TIMEOUT_SECONDS), str(self.exe),
               "--config", str(self.config_path), *extra_args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                     env=env)
        err.close()
        try:
            self.pid = self._child_pid()
            if wait:
                self._wait_ready(notify)
        except Exception:
            self.stop()
            raise
        finally:
            notify.close()
        return self

    def _child_pid(self):
        pid = timeout_child(self.proc, READY_SECONDS)
        if pid is not None:
            return pid
        if self.proc.poll() is not None:
            raise RuntimeError(f"santad exited at once ({self.proc.returncode}):\n"
                               + self.stderr())
        raise RuntimeError("santad did not start")

    def _wait_ready(self, notify):
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            notify.settimeout(0.1)
            try:
                msg = notify.recv(4096).decode(errors="replace")
            except socket.timeout:
                msg = ""
            if "READY=1" in msg.split("\n"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"santad exited ({self.proc.returncode}) before it was "
                                   "ready:\n" + self.stderr())
        raise RuntimeError("santad was not ready in time:\n" + self.stderr())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after TIMEOUT seconds; returns santad's
        exit status as `timeout` reports it (None if it was not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and self.pid:
            try:
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def kill(self):
        """SIGKILL santad, and wait for it to be gone."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait(timeout=10)

    # --- configuration --------------------------------------------------

    def rewrite_config(self, **changes):
        """Change config keys (a value None removes the key) and write the
        file: santad sees the change through inotify."""
        for k, v in changes.items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = v
        write_config_file(self.config_path, self.config)
        os.chmod(self.config_path, 0o644)

    # --- output ---------------------------------------------------------

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self):
        """The event log's lines, without newlines."""
        try:
            return self.event_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def wait_log(self, pred, timeout=5.0):
        """Wait until PRED(line) holds for some event log line; return the
        lines that match (empty list on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [line for line in self.log_lines() if pred(line)]
            if hits or time.monotonic() >= deadline:
                return hits
            time.sleep(0.02)

    def wait_stderr(self, text, timeout=5.0):
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True


@pytest.fixture
def santad_factory(build_dir, tmpfs, public_dir):
    """make(overrides=None, start=True, name="santad", cls=SantadProcess)
    -> a CLS (SantadProcess or a subclass), its tree at public_dir/NAME
    (the same NAME twice shares the tree, as a restart would); every
    santad made is stopped at the end of the test."""
    made = []

    def make(overrides=None, start=True, name="santad", cls=SantadProcess):
        d = cls(build_dir, tmpfs, public_dir / name, overrides)
        made.append(d)
        if start:
            d.start()
        return d

    try:
        yield make
    finally:
        for d in made:
            d.stop()


@pytest.fixture
def santad(request, santad_factory):
    return santad_factory(getattr(request, "param", None))


def sha256_of(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def as_user(uid, gid=None):
    """The command prefix that runs what follows as UID (and GID, else the
    same number), with no supplementary groups."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid if gid is None else gid}",
            "--clear-groups"]


def run_as(uid, path, gid=None):
    """Exec PATH as UID: its exit status, or setpriv's (126 or 127) when the
    exec itself failed."""
    return subprocess.run(as_user(uid, gid) + [str(path)], capture_output=True,
                          timeout=20).returncode


def exec_status(path, *args, timeout=20):
    """Exec PATH with ARGS directly (no shell): its exit status when it
    ran, the errno when the exec itself failed (EPERM when santad denied
    it)."""
    try:
        return subprocess.run([str(path), *args], capture_output=True,
                              timeout=timeout).returncode
    except OSError as e:
        return e.errno


def copy_program(dest_dir, name, source="/bin/true", extra=b""):
    """A copy of SOURCE in DEST_DIR, made executable. EXTRA bytes appended
    give it a new SHA-256 while it still runs."""
    path = pathlib.Path(dest_dir) / name
    shutil.copyfile(source, path)
    if extra:
        with open(path, "ab") as f:
            f.write(extra)
    os.chmod(path, 0o755)
    return path
