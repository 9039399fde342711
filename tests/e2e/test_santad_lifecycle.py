# SPDX-License-Identifier: Apache-2.0
"""santad's life: config reloads take effect at once (and a bad one is
refused), one santad at a time, SIGTERM answers what is pending, a killed
santad releases the execs it held, FailClosed on a decision that takes too
long, and a blocked program's message on its terminal."""
import errno
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from conftest import copy_program, exec_status, sha256_of
from test_santad_exec import field


def sparse_program(dest, name, size):
    """A file of SIZE bytes, mostly a hole: hashing it takes a while (about
    0.7 ms per MB), and the exec, once allowed, fails with ENOEXEC."""
    path = dest / name
    with open(path, "wb") as f:
        f.write(b"\x7fXYZ")
        f.truncate(size)
    os.chmod(path, 0o755)
    return path


def test_regex_change_by_config_reload_applies_at_once(santad):
    prog = copy_program(santad.watch_dir, "regex-target", extra=b"regex")
    assert exec_status(prog) == 0
    assert exec_status(prog) == 0          # allowed and cached by the kernel
    santad.rewrite_config(BlockedPathRegex="regex-targ.t$")
    assert santad.wait_stderr("Configuration reloaded")
    assert exec_status(prog) == errno.EPERM
    hits = santad.wait_log(lambda line: "DENY" in line and field(line, "reason") == "SCOPE")
    assert hits and field(hits[0], "path") == str(prog)

    santad.rewrite_config(BlockedPathRegex=None)
    assert santad.wait_stderr("Configuration reloaded", timeout=5)
    deadline = time.monotonic() + 5
    while exec_status(prog) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exec_status(prog) == 0


def test_sighup_reloads_and_a_bad_config_is_refused(santad):
    prog = copy_program(santad.watch_dir, "mode-switch", extra=b"mode")
    assert exec_status(prog) == 0
    # Written without the watch noticing first: a config that does not
    # parse is refused on reload, and the old one stays.
    santad.config_path.write_text("{ not json")
    santad.signal(signal.SIGHUP)
    assert santad.wait_stderr("keeping the running one")
    assert exec_status(prog) == 0
    santad.rewrite_config(ClientMode=2)
    santad.signal(signal.SIGHUP)
    assert santad.wait_stderr("Client mode is now Lockdown")
    assert exec_status(prog) == errno.EPERM


def test_bad_regex_is_refused_on_reload(santad):
    santad.rewrite_config(AllowedPathRegex="(unclosed")
    assert santad.wait_stderr("keeping the running one")
    assert santad.alive()


def userns_open():
    """The machine's answer, read as santad reads it (src/common/userns.c)."""
    for name, closed in (("user/max_user_namespaces", 0),
                         ("kernel/unprivileged_userns_clone", 0),
                         ("kernel/apparmor_restrict_unprivileged_userns", 1)):
        try:
            with open(f"/proc/sys/{name}") as f:
                if int(f.read()) == closed:
                    return False
        except OSError:
            pass
    return True


@pytest.mark.parametrize("mode", [1, 2])
def test_lockdown_warns_when_users_can_mount_filesystems(santad_factory, mode):
    """Users who can make user namespaces can mount a filesystem santad never
    marks; in LOCKDOWN santad says so, with the sysctl that stops it."""
    d = santad_factory({"ClientMode": mode})
    want = mode == 2 and userns_open()
    said = d.wait_stderr("Lockdown: unprivileged users may create user namespaces",
                         2.0 if want else 0.5)
    assert said == want, d.stderr()
    if want:
        assert "kernel.unprivileged_userns_clone=0" in d.stderr()


def test_second_santad_refuses_to_start(santad):
    r = subprocess.run(["timeout", "-s", "KILL", "20", str(santad.exe), "--config",
                        str(santad.config_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "Another santad is running" in r.stderr
    assert santad.alive()


def test_bad_config_at_start_exits_78(build_dir, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{\n  "ClientMode": "LOCKDOWN"\n}\n')
    exe = build_dir / "src" / "santad" / "santad"
    r = subprocess.run(["timeout", "-s", "KILL", "20", str(exe), "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    # EX_CONFIG: santad.service's RestartPreventExitStatus=78 keeps it down.
    assert r.returncode == 78
    assert f"{bad}:2: ClientMode" in r.stderr


SHA_A = "84de9c61777ca36b13228e2446d53e966096e78db7a72c632b5c185b2ffe68a6"


@pytest.mark.parametrize("text, message", [
    ('{\n  "StaticRules": [\n    {"identifier": "abc", "policy": "BLOCKLIST",\n'
     '     "rule_type": "BINARY"}\n  ]\n}\n',
     ':3: StaticRules[0]: "identifier": BINARY identifier "abc" is not a SHA-256'),
    ('{\n  "StaticRules": [\n    {"identifier": "' + SHA_A + '",\n'
     '     "policy": "ALLOWLIST", "rule_type": "BINARY"},\n'
     '    {"identifier": "' + SHA_A + '",\n     "policy": "ALLOW",\n'
     '     "rule_type": "BINARY"}\n  ]\n}\n',
     ':6: StaticRules[1]: "policy": unknown policy "ALLOW"'),
    ('{\n  "ClientMode": 1,\n  "BlockedPathRegex": "(unclosed"\n}\n',
     ':3: BlockedPathRegex: "(unclosed": '),
    ('{\n  "TrustedExecutables": ["/usr/bin/",\n    "/usr/bin/python3"]\n}\n',
     ':3: TrustedExecutables[1]: "/usr/bin/python3" is neither a directory'),
], ids=["identifier", "policy", "regex", "trusted"])
def test_bad_static_rule_or_regex_at_start_exits_78(build_dir, tmp_path, text, message):
    bad = tmp_path / "config.json"
    # Should santad ever take the file, it watches nothing real.
    bad.write_text(text.replace('\n}\n', ',\n  "WatchPaths": ["/nonexistent-santa-e2e"]\n}\n'))
    exe = build_dir / "src" / "santad" / "santad"
    r = subprocess.run(["timeout", "-s", "KILL", "20", str(exe), "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78
    assert f"Reading the configuration failed: {bad}{message}" in r.stderr


def test_unknown_service_user_is_named_where_it_is(santad_factory):
    santad = santad_factory({"ServiceUser": "santa-e2e-no-such-user"})
    line = next(i for i, text in enumerate(santad.config_path.read_text().splitlines(), 1)
                if '"ServiceUser"' in text)
    assert santad.wait_stderr(f'{santad.config_path}:{line}: Looking up ServiceUser '
                              '"santa-e2e-no-such-user" failed'), santad.stderr()
    assert santad.alive()


def test_help_and_version(build_dir):
    exe = build_dir / "src" / "santad" / "santad"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--config FILE" in r.stdout
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("santad ")
    r = subprocess.run([str(exe), "--bogus"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2


def wait_stopped(pid, timeout=5.0):
    """Wait until every thread of PID is stopped (SIGSTOP is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        if all(s == "T" for s in states):
            return True
        time.sleep(0.01)
    return False


def test_kill_9_releases_held_execs(santad):
    prog = copy_program(santad.watch_dir, "held", extra=b"held")
    santad.signal(signal.SIGSTOP)
    try:
        assert wait_stopped(santad.pid)
        # Through a shell that is not on the watched tmpfs: Popen itself
        # waits until its child's exec is done, and this one is held.
        child = subprocess.Popen(["/bin/sh", "-c", f'exec "{prog}"'])
        time.sleep(0.5)
        assert child.poll() is None, "the exec should wait for the stopped santad"
        santad.kill()
        assert child.wait(timeout=5) == 0
    finally:
        if santad.alive():
            santad.signal(signal.SIGCONT)


def test_sigterm_answers_pending_execs(santad):
    big = sparse_program(santad.watch_dir, "big", 3 << 30)
    child = subprocess.Popen(["/bin/sh", "-c", f'"{big}"; echo $? >&2'],
                             stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert child.poll() is None, "hashing 3 GiB should take a while"
    start = time.monotonic()
    santad.signal(signal.SIGTERM)
    out = child.communicate(timeout=10)[1]
    assert time.monotonic() - start < 1.0
    # Answered by FailClosed (false): allowed, and the kernel then finds it
    # is no program (ENOEXEC: the shell says 126 too, with another message).
    assert "Operation not permitted" not in out
    assert santad.proc.wait(timeout=30) == 0


@pytest.mark.parametrize("santad", [{"DecisionTimeoutMs": 200}], indirect=True)
def test_sigterm_while_hashing_terabytes(santad):
    """A file of terabytes of holes takes hours to hash: santad's stop does
    not wait for that."""
    huge = sparse_program(santad.watch_dir, "huge", 4 << 40)
    child = subprocess.Popen(["/bin/sh", "-c", f'"{huge}"'], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        start = time.monotonic()
        santad.signal(signal.SIGTERM)
        assert santad.proc.wait(timeout=10) == 0
        assert time.monotonic() - start < 5.0
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("santad", [{"DecisionTimeoutMs": 200}], indirect=True)
def test_an_exec_allowed_on_timeout_is_logged_at_once(santad):
    """Allowed by FailClosed (false) while its file is still hashed, for
    hours: its line is written then, without a hash, not when the hash is
    done."""
    huge = sparse_program(santad.watch_dir, "huge-logged", 4 << 40)
    subprocess.run(["/bin/sh", "-c", f'"{huge}"'], capture_output=True, timeout=20)
    hits = santad.wait_log(lambda line: field(line, "path") == str(huge), timeout=5)
    assert hits, santad.log_lines()
    assert field(hits[0], "decision") == "ALLOW"
    assert field(hits[0], "explain") == "decision timed out"
    assert field(hits[0], "sha256") in (None, "")


@pytest.mark.parametrize("santad", [{"ClientMode": 2, "FailClosed": True,
                                     "DecisionTimeoutMs": 200}], indirect=True)
def test_fail_closed_on_timeout_in_lockdown(santad):
    big = sparse_program(santad.watch_dir, "slow", 3 << 30)
    start = time.monotonic()
    assert exec_status(big) == errno.EPERM
    assert time.monotonic() - start < 2.0
    hits = santad.wait_log(lambda line: field(line, "explain") == "decision timed out")
    assert hits and field(hits[0], "decision") == "DENY"


@pytest.mark.parametrize("santad", [{"ClientMode": 1, "FailClosed": True,
                                     "DecisionTimeoutMs": 200}], indirect=True)
def test_monitor_never_blocks_on_timeout(santad):
    big = sparse_program(santad.watch_dir, "slow", 3 << 30)
    start = time.monotonic()
    assert exec_status(big) == errno.ENOEXEC
    assert time.monotonic() - start < 2.0


def read_pty(fd, want, timeout=5.0):
    out = b""
    deadline = time.monotonic() + timeout
    while want not in out and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return out


@pytest.mark.parametrize("santad", [{"ClientMode": 2,
                                     "UnknownBlockMessage": "Ask IT about this one.",
                                     "EventDetailURL": "https://it.example/%file_sha%"}],
                         indirect=True)
def test_block_message_on_the_terminal(santad):
    prog = copy_program(santad.watch_dir, "from-a-terminal", extra=b"tty")
    pid, fd = pty.fork()
    if pid == 0:
        # The shell keeps the terminal open while santad writes to it (the
        # line comes from the recorder, which a loaded machine may delay);
        # the test kills it as soon as the message is read.
        os.execv("/bin/sh", ["sh", "-c", f'"{prog}"; sleep 15'])
    try:
        out = read_pty(fd, b"https://it.example/", timeout=15.0)
        text = out.decode(errors="replace")
        assert "Ask IT about this one." in text
        assert str(prog) in text
        assert f"https://it.example/{sha256_of(prog)}" in text
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


@pytest.mark.parametrize("exe", ["santad/santad", "santasyncservice/santasyncservice",
                                 "santametricservice/santametricservice",
                                 "santabundleservice/santabundleservice",
                                 "santagui/santagui"])
def test_usage_error_exits_2(build_dir, exe):
    r = subprocess.run([str(build_dir / "src" / exe), "--bogus"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2, r.stderr
