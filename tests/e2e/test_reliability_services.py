# SPDX-License-Identifier: Apache-2.0
"""Services killed in the middle of a call, and every socket hammered.

Killed mid-call: the caller gets an error in bounded time, not a hang; the
service comes back; the next call works; nothing is half done.
  - santad, while it applies a 300,000-rule import for santactl: the rules
    are all there or none are (one transaction);
  - santasyncservice, while `santactl sync` waits on a slow sync server:
    santad's launcher starts it again on the next connection.
(santametricservice's calls are one-way exports; its death and restart
are tested in test_metrics_santad.py and test_process_launch.py.)

Hammered: many clients that connect and never speak, a foreign executable
sending garbage over and over, and a non-root user calling privileged
methods again and again, all at once against santad's socket: each is
refused or timed out, root's santactl still gets answers meanwhile, the
silent connections are closed at the handshake deadline, santad keeps its
pid and gives back its descriptors.
"""
import json
import os
import pathlib
import pwd
import subprocess
import threading
import time

import pytest

import proclib
from proclib import probe, probe_dir  # noqa: F401 (fixture)
from rellib import (exec_status, integrity, programs, rel_santad, rel_summary,  # noqa: F401
                    rules_table, tiny_program, wait_until)
from sync_server import SyncServer
from synclib import MACHINE_ID


def test_santad_killed_mid_import(rel_santad, tmp_path, rel_summary):
    d = rel_santad()
    n = 300_000
    path = tmp_path / "big.json"
    with open(path, "w") as f:
        json.dump({"rules": [{"policy": "BLOCKLIST", "identifier": f"{i + 1:064x}",
                              "rule_type": "BINARY"} for i in range(n)]}, f)
    mark = len(d.stderr())
    call = subprocess.Popen([d.santactl_exe, "--config", str(d.config_path), "rule",
                             "--import", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # Kill once santad is busy with it: the batch arrives, then the apply.
    assert wait_until(lambda: "santactl" in d.stderr()[mark:] or call.poll() is not None
                      or _busy(d.pid), 20)
    time.sleep(0.2)
    killed_while_running = call.poll() is None
    d.kill()
    start = time.monotonic()
    out, err = call.communicate(timeout=15)
    waited = time.monotonic() - start
    assert waited < 5, f"santactl waited {waited:.1f} s for a dead santad"
    if killed_while_running:
        assert call.returncode != 0, out + err

    d.start()
    count = d.status()["database"]["binary_rules"]
    assert count in (0, n), f"{count} of {n} rules: a half-applied import"
    assert integrity(d.db_path("rules.db")) == "ok"
    d.ctl_ok("rule", "--block", "--identifier", "f" * 64)
    rel_summary("santad killed mid-call", f"santad SIGKILLed while applying a {n}-rule "
                f"import{'' if killed_while_running else ' (it had already answered)'}: "
                f"santactl failed in {waited:.2f} s (exit {call.returncode}), restarted "
                f"santad has {count} of them (all or none), integrity ok, next call ok")


def _busy(pid):
    """santad is using the CPU (applying)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "R"
    except OSError:
        return False


def test_sync_service_killed_mid_sync(rel_santad, rel_summary):
    server = SyncServer(machine_id=MACHINE_ID).start()
    try:
        d = rel_santad(dict(SyncBaseURL=server.base_url, MachineID=MACHINE_ID))
        server.faults = {"preflight": ("slow", 30)}
        call = subprocess.Popen([d.santactl_exe, "--config", str(d.config_path), "sync"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        svc = proclib.wait_service(d.pid, "santasyncservice", timeout=10)
        assert svc, d.stderr()[-2000:]
        assert wait_until(lambda: server.requests, 10), "the sync never reached the server"
        assert call.poll() is None
        proclib.kill9(svc)
        start = time.monotonic()
        out, err = call.communicate(timeout=20)
        waited = time.monotonic() - start
        assert call.returncode != 0, out + err
        assert waited < 5, f"santactl sync waited {waited:.1f} s for a dead service"

        server.faults = {}
        res = d.ctl("sync", timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr + d.stderr()[-2000:]
        again = proclib.service_pid(d.pid, "santasyncservice")
        assert again and again != svc
    finally:
        server.stop()
    rel_summary("sync service killed mid-call", f"santasyncservice SIGKILLed while "
                f"santactl sync waited on a slow server: santactl failed in {waited:.2f} s "
                f"(exit {call.returncode}); the service came back (pid {svc} -> {again}); "
                f"the next sync succeeded")


# --- hammering -------------------------------------------------------------

SILENT = 48
GARBAGE_ROUNDS = 100
PRIV_CALLS = 20


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


SILENT_C = r"""
/* Connects N times to SOCKET and never says a word; prints how many
 * connections were refused at once, how many the server closed, and when
 * the last one closed. Installed as "santactl" so that the IPC layer sees
 * one of ours: a silent client, not a foreign one. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = atoi(argv[2]), open_ = 0, refused = 0, closed = 0, fds[1024];
	double t0, last = 0;
	char buf[65536];

	strncpy(sa.sun_path, argv[1], sizeof(sa.sun_path) - 1);
	for (int i = 0; i < n && i < 1024; i++) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			refused++;
			if (fd >= 0)
				close(fd);
			continue;
		}
		fds[open_++] = fd;
	}
	t0 = now();
	for (int i = 0; i < open_; i++) {
		for (;;) {
			struct pollfd p = { .fd = fds[i], .events = POLLIN };
			int left = (int)((8.0 - (now() - t0)) * 1000);

			if (left <= 0 || poll(&p, 1, left) <= 0)
				break;
			if (recv(fds[i], buf, sizeof(buf), 0) <= 0) {
				closed++;
				if (now() - t0 > last)
					last = now() - t0;
				break;
			}
		}
	}
	printf("{\"open\": %d, \"refused\": %d, \"closed\": %d, \"seconds\": %.3f}\n",
	       open_, refused, closed, last);
	return 0;
}
"""


@pytest.fixture(scope="session")
def silent_dir(build_dir):
    """A root-owned directory with the silent client installed as
    "santactl" (closed to others, as the IPC layer demands)."""
    out = pathlib.Path(build_dir) / "e2e-reliability" / "silent"
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o755)
    src = out.parent / "silent.c"
    src.write_text(SILENT_C)
    subprocess.run(["cc", "-O1", "-o", str(out / "santactl"), str(src)], check=True,
                   capture_output=True)
    return out


def silent_clients(silent_dir, path, n, user):
    pw = pwd.getpwnam(user)
    return subprocess.Popen(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                             "--clear-groups", "--", str(silent_dir / "santactl"), path,
                             str(n)], stdout=subprocess.PIPE, text=True)


def test_sockets_hammered(rel_santad, build_dir, probe_dir, silent_dir, rel_summary):
    trusted = proclib.trusted_dirs(build_dir, probe_dir) + [str(silent_dir) + "/"]
    d = rel_santad(dict(TrustedExecutables=trusted))
    sock = str(d.socket_path)
    time.sleep(0.3)
    fds0 = fd_count(d.pid)
    pid0 = d.pid

    # Silent clients as "daemon", privileged calls as "nobody": each user
    # has its own connection quota, which the silent ones may fill.
    silent = silent_clients(silent_dir, sock, SILENT, "daemon")
    garbage = {"refused": 0}

    def spray():
        for i in range(GARBAGE_ROUNDS):
            frames, closed = proclib.seqpacket_try(sock, timeout=3.0,
                                                   send=os.urandom(24 + i % 200))
            garbage["refused"] += closed
    t = threading.Thread(target=spray)
    t.start()
    priv_refused = 0
    answers = []
    for _ in range(PRIV_CALLS):
        rc, out = probe(d, probe_dir, "santactl", "santad", "FlushCache", user="nobody")
        priv_refused += rc == 3 and "not permitted" in out
        t0 = time.monotonic()
        d.ctl_ok("status", "--json")
        answers.append(time.monotonic() - t0)
    t.join(timeout=600)
    out, _ = silent.communicate(timeout=60)
    silent_res = json.loads(out)

    assert priv_refused == PRIV_CALLS
    assert garbage["refused"] == GARBAGE_ROUNDS
    assert silent_res["open"] + silent_res["refused"] == SILENT
    assert silent_res["closed"] == silent_res["open"], silent_res
    # Closed at the handshake deadline (2 s), not at once and not never.
    assert 1 < silent_res["seconds"] < 6, silent_res
    assert max(answers) < 3, answers
    assert d.pid == pid0 and d.alive()
    assert wait_until(lambda: fd_count(d.pid) <= fds0 + 2, 5), (fds0, fd_count(d.pid))
    rel_summary("sockets hammered", f"{SILENT} silent connections from daemon "
                f"({silent_res['refused']} refused at once, {silent_res['closed']} closed "
                f"by santad within {silent_res['seconds']:.1f} s), {GARBAGE_ROUNDS} "
                f"garbage connections from a foreign executable (all closed), "
                f"{PRIV_CALLS} privileged calls by nobody (all refused); root's status "
                f"answered meanwhile in at most {max(answers) * 1000:.0f} ms; santad's pid "
                f"and descriptors unchanged")

