# SPDX-License-Identifier: Apache-2.0
"""Fixtures every end-to-end test may use.

- `build_dir`: the meson build directory (--build-dir, else $SANTA_BUILD_DIR,
  else build/), as an absolute pathlib.Path.
- `tmpfs`: a private tmpfs mounted on a fresh directory for this test only,
  unmounted at the end. santad only ever watches such a mount in tests:
  never / or any real filesystem.
- `write_config`: write_config(path, dict) writes a JSON config file.
- `santad`: a real santad from the build, watching only `tmpfs`, with its
  state, sockets and event log in a temporary tree, under `timeout`, ready
  (it said READY=1 on a NOTIFY_SOCKET the fixture made) before the test
  starts, and killed by pid at the end whatever happened. Override config
  keys with `@pytest.mark.parametrize("santad", [{"ClientMode": 2}],
  indirect=True)`. See the SantadProcess class for what a test can use.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
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


def _mount_tmpfs(path, size="256m"):
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                    str(path)], check=True)


def _umount(path):
    r = subprocess.run(["umount", str(path)], capture_output=True)
    if r.returncode != 0:
        # Something still holds a file there (a process the test started
        # and that is still dying): detach now, the kernel frees it later.
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A private tmpfs, mounted for this test only."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    _mount_tmpfs(mnt)
    try:
        yield mnt
    finally:
        _umount(mnt)


def write_config_file(path, cfg):
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    os.replace(tmp, path)
    return path


@pytest.fixture
def write_config():
    return write_config_file


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
        """santad's pid: the child of `timeout`."""
        deadline = time.monotonic() + READY_SECONDS
        path = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"
        while time.monotonic() < deadline:
            try:
                kids = open(path).read().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"santad exited at once ({self.proc.returncode}):\n"
                                   + self.stderr())
            time.sleep(0.005)
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
def santad_factory(build_dir, tmpfs, tmp_path):
    """make(overrides=None, start=True) -> SantadProcess; every santad made
    is stopped at the end of the test."""
    made = []

    def make(overrides=None, start=True, name="santad"):
        d = SantadProcess(build_dir, tmpfs, tmp_path / name, overrides)
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
