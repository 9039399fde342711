# SPDX-License-Identifier: Apache-2.0
"""The event log's reader is stuck: EventLogPath is a FIFO that a reader
holds open and never reads, so santad's writes fill the pipe and block.

What must hold: execs are still decided at full speed (the decision path
never waits on the log); every denial line waits in santad's bounded queue
and reaches the log once the reader reads again; only allow lines are
dropped, and every drop is counted (/santa/log_lines_dropped, when santad
has metrics); santad still stops promptly on SIGTERM with the log stuck.
"""
import errno
import os
import signal
import threading
import time

from rellib import (exec_status, metric_sum, programs, rel_santad,  # noqa: F401
                    rel_summary, storm_runner, tiny_program, wait_until)

LOCKDOWN = {"ClientMode": 2}
SHELLS = 3
ROUNDS = 1000
ALLOWED = 4          # per loop: ALLOWED allowed programs, 1 blocked


class Fifo:
    """A FIFO with a reader that holds it open; drain() starts reading
    everything into .data on a thread."""

    def __init__(self, path):
        self.path = path
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = bytearray()
        self.stop = threading.Event()
        self.thread = None

    def drain(self):
        import select

        def run():
            while not self.stop.is_set():
                r, _, _ = select.select([self.fd], [], [], 0.1)
                if not r:
                    continue
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if chunk:
                    self.data += chunk
                else:
                    time.sleep(0.01)   # no writer right now
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def lines(self):
        return bytes(self.data).decode(errors="replace").splitlines()

    def close(self):
        self.stop.set()
        if self.thread:
            self.thread.join(timeout=5)
        os.close(self.fd)


def start_stuck(rel_santad, tmp_path, tiny):
    fifo = Fifo(str(tmp_path / "santa.log"))
    d = rel_santad(dict(LOCKDOWN, EventLogPath=fifo.path))
    allowed = programs(d.watch_dir, "allowed", ALLOWED, tiny)
    (blocked,) = programs(d.watch_dir, "blocked", 1, tiny)
    path = tmp_path / "rules.json"
    import json
    path.write_text(json.dumps({"rules": [
        {"policy": "ALLOWLIST", "identifier": sha, "rule_type": "BINARY"}
        for _, sha in allowed]}))
    d.ctl_ok("rule", "--import", str(path))
    return d, fifo, allowed, blocked


def storm_loops(allowed, blocked):
    progs = [p for p, _ in allowed] + [blocked[0]]
    return [progs[i:] + progs[:i] for i in range(SHELLS)]


def test_stuck_log_reader(rel_santad, tiny_program, storm_runner, tmp_path, rel_summary):
    d, fifo, allowed, blocked = start_stuck(rel_santad, tmp_path, tiny_program)
    try:
        stuck = storm_runner(storm_loops(allowed, blocked), ROUNDS, timeout=120).join()
        assert stuck.hung == 0
        assert d.alive()
        denials = sum(stuck.statuses(blocked[0]).values())
        allows = sum(sum(stuck.statuses(p).values()) for p, _ in allowed)
        assert set(stuck.statuses(blocked[0])) == {126}
        for p, _ in allowed:
            assert set(stuck.statuses(p)) == {0}
        assert len(fifo.data) == 0

        # The reader wakes up: every denial arrives, allows only in part.
        fifo.drain()

        def deny_lines():
            return [l for l in fifo.lines() if "decision=DENY" in l]
        assert wait_until(lambda: len(deny_lines()) >= denials, 30), \
            f"{len(deny_lines())} of {denials} denial lines reached the log"
        time.sleep(0.5)
        assert len(deny_lines()) == denials
        allow_lines = len([l for l in fifo.lines() if "decision=ALLOW" in l])
        dropped = metric_sum(d.metrics(), "/santa/log_lines_dropped")
        assert dropped == allows - allow_lines, (dropped, allows, allow_lines)

        # The same storm with a reader that keeps up, for the speed.
        free = storm_runner(storm_loops(allowed, blocked), ROUNDS, timeout=120).join()
        assert free.hung == 0
        ratio = stuck.elapsed / free.elapsed
        assert ratio < 2.0, f"stuck {stuck.elapsed:.1f} s vs free {free.elapsed:.1f} s"
    finally:
        d.stop()
        fifo.close()
    rel_summary("stuck log reader", f"{stuck.total()} execs ({denials} denied) with the "
                f"event log a FIFO nobody read, in {stuck.elapsed:.1f} s vs "
                f"{free.elapsed:.1f} s with a reader (ratio {ratio:.2f}); after the reader "
                f"woke: denial lines {denials}/{denials}, allow lines {allow_lines}/{allows}, "
                f"drops counted {dropped if dropped is not None else 'n/a (no metrics)'}")


def test_sigterm_with_stuck_log(rel_santad, tiny_program, storm_runner, tmp_path,
                                rel_summary):
    d, fifo, allowed, blocked = start_stuck(rel_santad, tmp_path, tiny_program)
    try:
        storm = storm_runner(storm_loops(allowed, blocked), ROUNDS // 4, timeout=120).join()
        assert storm.hung == 0
        assert exec_status(blocked[0]) == errno.EPERM
        start = time.monotonic()
        d.signal(signal.SIGTERM)
        exited = wait_until(lambda: d.proc.poll() is not None, 10)
        took = time.monotonic() - start
        if not exited:
            ran = exec_status(blocked[0]) == 0
            raise AssertionError(f"santad still running {took:.0f} s after SIGTERM; a "
                                 f"blocked program {'ran' if ran else 'was denied'} meanwhile")
        assert d.proc.returncode == 0, f"santad exited with {d.proc.returncode}"
    finally:
        if d.alive():
            d.kill()
        d.stop()
        fifo.close()
    rel_summary("SIGTERM with stuck log", f"{storm.total()} execs into a FIFO nobody "
                f"read, then SIGTERM: santad exited 0 in {took:.2f} s")
