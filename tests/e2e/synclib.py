# SPDX-License-Identifier: Apache-2.0
"""Helpers for the sync tests (test_sync_*.py).

SyncRig puts together, in a scratch directory that `nobody` can traverse
(conftest.make_public_dir): a fixture sync server (sync_server.py), a
configuration pointing at it, and santasyncservice started by hand with
--socket, the way the launcher would start it but as root. santad is
either the real one (started by the caller) or sync-fake-santad installed
as "santad" in a trusted directory, which keeps rules, events and sync
settings in a JSON state file the tests read.
Everything started here is stopped by pid.

The fixtures `server` and `synced` are for tests with the real santad, whose
launcher starts santasyncservice; import them from here.
"""
import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import make_public_dir, wait_until
from sync_server import SyncServer

MACHINE_ID = "5A9E3C1D-7B2F-4E8A-9C0D-1F2E3D4C5B6A"


def make_pki(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate,
    as PEM files in DIRECTORY: {"ca", "server_cert", "server_key",
    "client_cert", "client_key"} -> path."""
    d = str(directory)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    def key_and_csr(name, cn):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=santa-sync-test-ca")
    for name, cn, ext in (("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\n"
                           "extendedKeyUsage=serverAuth\n"),
                          ("client", "santa-client", "extendedKeyUsage=clientAuth\n")):
        key_and_csr(name, cn)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext)
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    j = lambda n: os.path.join(d, n)  # noqa: E731
    return {"ca": j("ca.pem"), "server_cert": j("server.pem"), "server_key": j("server.key"),
            "client_cert": j("client.pem"), "client_key": j("client.key")}


def hexhash(n):
    """A distinct, valid SHA-256 hex string for N."""
    return f"{n:064x}"


@pytest.fixture
def server():
    """A fixture sync server (sync_server.py) for MACHINE_ID, with an empty
    preflight answer."""
    srv = SyncServer(machine_id=MACHINE_ID).start()
    srv.preflight = {}
    yield srv
    srv.stop()


@pytest.fixture
def synced(santad_factory, server):
    """make(**config) -> a started santad (conftest's santad_factory)
    configured for SERVER; santactl sync from it with .sync(*args) and its
    status with .status()."""
    made = []

    def make(**overrides):
        cfg = {"SyncBaseURL": server.base_url, "MachineID": MACHINE_ID}
        cfg.update(overrides)
        d = santad_factory(cfg, name=f"santad{len(made)}")
        made.append(d)
        santactl = d.build_dir / "src" / "santactl" / "santactl"

        def santactl_run(*args, timeout=180):
            return subprocess.run([str(santactl), "--config", str(d.config_path), *args],
                                  capture_output=True, text=True, timeout=timeout)
        d.sync = lambda *a, **kw: santactl_run("sync", *a, **kw)
        d.status = lambda: json.loads(santactl_run("status", "--json").stdout)

        # santad connects to the service at start, which makes the launcher
        # start it, and the service syncs at once: let that sync end before
        # the test changes what the server serves. The server sees the
        # postflight before the service hands santad the settings, so wait
        # for santad to have them too.
        wait_until(lambda: "postflight" in server.stages() and
                   d.status()["sync"]["last_successful_full"] != "Never", 15, 0.1)
        server.reset_log()
        return d
    return make


class SyncRig:
    def __init__(self, build_dir, fake_santad=True, extra_config=None, server_tls=None):
        self.build = os.path.abspath(build_dir)
        # The IPC layer trusts an executable only if no directory above it is
        # writable by others, which rules out /tmp.
        self.dir = str(make_public_dir("santa-sync-"))
        self.run_dir = os.path.join(self.dir, "run")
        self.bin_dir = os.path.join(self.dir, "bin")
        os.mkdir(self.run_dir, 0o755)
        os.mkdir(self.bin_dir, 0o755)
        self.state_path = os.path.join(self.dir, "state.json")
        self.config_path = os.path.join(self.dir, "config.json")
        self.service_exe = self.exe("src/santasyncservice/santasyncservice")
        self.santactl_exe = self.exe("src/santactl/santactl")
        self.server = SyncServer(machine_id=MACHINE_ID, tls=server_tls).start()
        self.procs = []
        self.service = None
        self.santad = None
        self.logs = {}
        trusted = [self.service_exe, self.santactl_exe]
        if fake_santad:
            fake = os.path.join(self.bin_dir, "santad")
            shutil.copy(self.exe("src/santasyncservice/sync-fake-santad"), fake)
            os.chmod(fake, 0o755)
            trusted.append(fake)
            self.fake_exe = fake
        self.config = {
            "SyncBaseURL": self.server.base_url,
            "MachineID": MACHINE_ID,
            "RunDirectory": self.run_dir,
            "StateDirectory": os.path.join(self.dir, "state"),
            "TrustedExecutables": trusted,
        }
        self.config.update(extra_config or {})
        self.write_config()

    def exe(self, rel):
        path = os.path.join(self.build, rel)
        if not os.access(path, os.X_OK):
            raise FileNotFoundError(f"{path} is not built")
        return path

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)
        os.chmod(self.config_path, 0o644)

    def _spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + ".log"), "w")
        self.logs[name] = log.name
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def log(self, name):
        with open(self.logs[name]) as f:
            return f.read()

    # --- santad (fake) ------------------------------------------------

    def start_fake_santad(self, rules=(), events=(), settings=None):
        state = {"settings": settings or {}, "rules": list(rules),
                 "events": list(events)}
        with open(self.state_path, "w") as f:
            json.dump(state, f)
        sock = os.path.join(self.run_dir, "santad.sock")
        self.santad = self._spawn("santad", [self.fake_exe, "--config", self.config_path,
                                             "--state", self.state_path])
        if not wait_until(lambda: os.path.exists(sock), 5):
            raise RuntimeError("fake santad did not start:\n" + self.log("santad"))
        return self.santad

    def state(self):
        with open(self.state_path) as f:
            return json.load(f)

    def post_events(self, events):
        """Make the fake santad send EVENTS with PostEvents."""
        with open(self.state_path + ".post", "w") as f:
            json.dump(list(events), f)
        self.santad.send_signal(signal.SIGUSR1)

    # --- santasyncservice ---------------------------------------------

    # Retries as the original makes them (5 attempts, 4 to 32 s apart, 30 s
    # per attempt) would make each failure test last minutes: the tests
    # shorten them, and test the schedule itself in the unit tests.
    FAST_RETRIES = ["--retry-attempts", "3", "--retry-backoff-ms", "20",
                    "--request-timeout-ms", "3000", "--max-rule-pages", "50"]

    def start_service(self, wait_first_sync=True, args=None):
        sock = os.path.join(self.run_dir, "santasyncservice.sock")
        argv = [self.service_exe, "--config", self.config_path, "--socket", sock]
        argv += self.FAST_RETRIES if args is None else args
        self.service = self._spawn("santasyncservice", argv)
        if not wait_until(lambda: os.path.exists(sock), 5):
            raise RuntimeError("santasyncservice did not start:\n"
                               + self.log("santasyncservice"))
        if wait_first_sync:
            # The service syncs once at start; let that settle first.
            wait_until(lambda: "Sync completed" in self.log("santasyncservice")
                       or "failed" in self.log("santasyncservice"), 30)
            self.server.reset_log()
        return self.service

    def santactl(self, *args, timeout=120):
        return subprocess.run([self.santactl_exe, "--config", self.config_path, *args],
                              capture_output=True, text=True, timeout=timeout)

    def sync(self, *args, timeout=120):
        return self.santactl("sync", *args, timeout=timeout)

    # --- teardown -------------------------------------------------------

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
