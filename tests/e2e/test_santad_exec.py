# SPDX-License-Identifier: Apache-2.0
"""santad deciding execs on a private tmpfs: MONITOR allows and logs,
LOCKDOWN blocks (EPERM; 126 from a shell), static rules allow, a rewritten
file is hashed again, every denial is logged, and the log line is
Santa's, byte for byte."""
import errno
import os
import pathlib
import re
import sqlite3
import subprocess
import time

import pytest

from conftest import copy_program, exec_status, run_as, sha256_of

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
LOCKDOWN = {"ClientMode": 2}


def shell_status(path):
    return subprocess.run(["/bin/sh", "-c", f'"{path}"'], capture_output=True,
                          timeout=20).returncode


def field(line, key):
    m = re.search(r"(?:^|\|)" + key + r"=([^|]*)", line)
    return m.group(1) if m else None


def lines_for(santad, path, decision=None):
    def match(line):
        return field(line, "path") == str(path) and \
            (decision is None or field(line, "decision") == decision)
    return match


def test_monitor_allows_and_logs_unknown(santad):
    # A process that exits within a few hundred microseconds may be gone
    # before santad reads its ids (/proc): give it time to be seen.
    prog = copy_program(santad.watch_dir, "unknown", source="/bin/sleep", extra=b"monitor")
    assert exec_status(prog, "0.05") == 0
    hits = santad.wait_log(lines_for(santad, prog, "ALLOW"))
    assert hits, santad.log_lines()
    line = hits[0]
    assert field(line, "reason") == "UNKNOWN"
    assert field(line, "sha256") == sha256_of(prog)
    assert field(line, "mode") == "M"
    assert field(line, "user") == "root" and field(line, "uid") == "0", line


def test_monitor_logs_cached_execs_too(santad):
    prog = copy_program(santad.watch_dir, "again", source="/bin/sleep")
    for _ in range(3):
        assert exec_status(prog, "0.01") == 0
    hits = santad.wait_log(lambda line: len([x for x in santad.log_lines()
                                             if lines_for(santad, prog)(x)]) >= 3)
    assert hits
    allowed = [x for x in santad.log_lines() if lines_for(santad, prog, "ALLOW")(x)]
    assert len(allowed) == 3
    # A process that lives long enough to be seen has its arguments.
    assert all(field(x, "args") == f"{prog} 0.01" for x in allowed), allowed


@pytest.mark.parametrize("santad", [LOCKDOWN], indirect=True)
def test_lockdown_blocks_unknown(santad):
    prog = copy_program(santad.watch_dir, "blocked", extra=b"lockdown")
    assert exec_status(prog) == errno.EPERM
    assert shell_status(prog) == 126
    hits = santad.wait_log(lines_for(santad, prog, "DENY"))
    assert hits
    assert field(hits[0], "reason") == "UNKNOWN" and field(hits[0], "mode") == "L"
    assert field(hits[0], "sha256") == sha256_of(prog)


@pytest.fixture
def static_allowed(santad_factory, tmpfs):
    prog = copy_program(tmpfs, "static-allowed", extra=b"static")
    d = santad_factory({"ClientMode": 2, "StaticRules": [
        {"identifier": sha256_of(prog), "policy": "ALLOWLIST", "rule_type": "BINARY"}]})
    return d, prog


def test_static_allow_in_lockdown(static_allowed):
    santad, prog = static_allowed
    other = copy_program(santad.watch_dir, "not-allowed", extra=b"other")
    assert exec_status(prog) == 0
    assert exec_status(other) == errno.EPERM
    hits = santad.wait_log(lines_for(santad, prog, "ALLOW"))
    assert hits and field(hits[0], "reason") == "BINARY"


def test_rewritten_in_place_is_hashed_again(static_allowed):
    santad, prog = static_allowed
    assert exec_status(prog) == 0
    assert exec_status(prog) == 0
    ino = os.stat(prog).st_ino
    # Same inode, new content: the kernel drops its allow, santad's cache
    # entry no longer matches, and the new content is unknown.
    with open(prog, "ab") as f:
        f.write(b"changed")
    assert os.stat(prog).st_ino == ino
    assert exec_status(prog) == errno.EPERM
    hits = santad.wait_log(lines_for(santad, prog, "DENY"))
    assert hits and field(hits[0], "sha256") == sha256_of(prog)


def test_rewritten_through_a_mapping_is_hashed_again(static_allowed):
    import mmap
    santad, prog = static_allowed
    assert exec_status(prog) == 0
    # A write through a shared mapping tells the kernel nothing; santad
    # hears the close of the writable file.
    with open(prog, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        m[-1:] = b"X"
        m.close()
    import time
    time.sleep(0.2)
    assert exec_status(prog) == errno.EPERM


# A child that rewrites PROG through a shared mapping, unmaps and closes
# it, and execs it at once: the kernel is not told of such a write, and
# santad hears only the close.
MAP_WRITE_THEN_EXEC = """
import mmap, os, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    m[-1:] = b"Y" if m[-1:] != b"Y" else b"Z"
    m.close()
try:
    os.execv(path, [path])
except OSError as e:
    sys.exit(100 + e.errno)
"""


def test_a_file_others_may_write_is_decided_again_after_a_mapped_write(static_allowed):
    """A file a user may write gets no kernel allow (ignore mark): every
    exec is asked, after the close of any write in the same queue, so an
    exec right after a write through a mapping is decided on what it runs."""
    import sys
    santad, prog = static_allowed
    allowed = pathlib.Path(prog).read_bytes()
    os.chown(prog, 65534, 65534)
    for _ in range(30):
        with open(prog, "r+b") as f:
            f.write(allowed)
        assert exec_status(prog) == 0
        r = subprocess.run([sys.executable, "-c", MAP_WRITE_THEN_EXEC, str(prog)],
                           capture_output=True, timeout=20)
        assert r.returncode == 100 + errno.EPERM, (r.returncode, r.stderr)


@pytest.mark.parametrize("change", ["chown", "chmod"])
def test_a_file_made_writable_after_its_allow_is_asked_again(static_allowed, change):
    """A file only root may write is allowed by the kernel itself once
    allowed (an ignore mark); made writable to a user later (chown -R,
    chmod g+w), it must no longer be: the change is heard and every
    decision goes, so a write through a mapping is decided again."""
    import sys
    santad, prog = static_allowed
    allowed = pathlib.Path(prog).read_bytes()
    for _ in range(8):
        with open(prog, "r+b") as f:
            f.write(allowed)
        os.chown(prog, 0, 0)
        os.chmod(prog, 0o755)
        assert exec_status(prog) == 0
        assert exec_status(prog) == 0
        if change == "chown":
            os.chown(prog, 65534, 65534)
        else:
            os.chmod(prog, 0o777)
        time.sleep(0.1)      # a root action, not the user's: heard by now
        r = subprocess.run([sys.executable, "-c", MAP_WRITE_THEN_EXEC, str(prog)],
                           capture_output=True, timeout=20)
        assert r.returncode == 100 + errno.EPERM, (r.returncode, r.stderr)


def test_a_write_while_the_file_is_hashed_is_not_allowed_in_its_place(santad_factory, tmpfs):
    """A write through a mapping to a part santad has already hashed would
    leave the old hash standing for the new content. The kernel lets the
    write through while the exec waits for santad (or refuses it, ETXTBSY,
    once the file runs); the file's times change, santad reads it again,
    and the new content is unknown."""
    import mmap
    prog = copy_program(tmpfs, "slow-to-hash", extra=b"slow")
    with open(prog, "r+b") as f:
        f.truncate(1 << 30)          # a hole: most of a second of hashing
    d = santad_factory({"ClientMode": 2, "StaticRules": [
        {"identifier": sha256_of(prog), "policy": "ALLOWLIST", "rule_type": "BINARY"}]})
    os.chown(prog, 65534, 65534)
    # The exec from another process: this one must be free to write.
    child = subprocess.Popen(["/bin/sh", "-c", f'exec "{prog}"'], stderr=subprocess.PIPE)
    time.sleep(0.1)
    start = time.monotonic()
    try:
        with open(prog, "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
            m[1 << 20] = 1           # well behind the hashing by now
            m.close()
    except OSError as e:
        assert e.errno == errno.ETXTBSY
        assert child.wait(30) == 0   # what was hashed is what ran
        return
    assert time.monotonic() - start < 0.3, "the write waited for the exec"
    assert child.wait(30) != 0
    assert d.wait_log(lines_for(d, prog, "DENY"))


@pytest.mark.parametrize("santad", [LOCKDOWN], indirect=True)
def test_touching_a_file_while_it_is_hashed_never_allows_it(santad):
    """Changing a file's times while santad hashes it makes the hash
    unusable; that is no failure santad answers by FailClosed (false here):
    after a few readings it is denied in LOCKDOWN."""
    import sys
    prog = copy_program(santad.watch_dir, "touched", extra=b"touched")
    toucher = subprocess.Popen([sys.executable, "-c",
                                "import os, sys\nwhile True: os.utime(sys.argv[1])",
                                str(prog)])
    try:
        results = [exec_status(prog) for _ in range(40)]
    finally:
        toucher.kill()
        toucher.wait()
    assert results == [errno.EPERM] * 40
    hits = santad.wait_log(lines_for(santad, prog, "DENY"))
    assert hits


@pytest.mark.parametrize("santad", [
    {"ClientMode": 2, "FailClosed": True, "DecisionTimeoutMs": 1000},
    {"ClientMode": 2, "FailClosed": True, "DecisionTimeoutMs": 1000, "HashThreads": 1},
], indirect=True)
def test_a_users_slow_files_never_delay_the_systems_programs(santad):
    """Files only root may write are hashed in a lane of their own. A user
    whose programs take hours to hash (terabytes of holes) holds every
    worker the users' lane may have, and their execs are denied by
    FailClosed; a program of the system's seen for the first time is still
    decided by its rule, as is every one after a rule change flushed the
    kernel's allows. HashThreads 1 still leaves the system lane a worker.
    Another user's program, in the users' lane, waits one DecisionTimeoutMs
    at most, however often the slow files are run again: a file an exec
    already gave up waiting for gives its worker up."""
    from santactl_util import santactl
    known = copy_program(santad.watch_dir, "known", extra=b"known")
    fresh = copy_program(santad.watch_dir, "fresh", extra=b"fresh")
    alices = copy_program(santad.watch_dir, "alices", extra=b"alice")
    os.chown(alices, 1000, 1000)
    for p in (known, fresh, alices):
        assert santactl(santad, "rule", "--allow", "--sha256", sha256_of(p)).returncode == 0
    assert exec_status(known) == 0
    hogs = []
    for i in range(3):
        hog = hog_file(santad.watch_dir, f"hog{i}", 4 << 40, 65534)
        hogs.append((hog, subprocess.Popen(
            ["/bin/sh", "-c", 'for i in 1 2 3; do "$0"; done', str(hog)],
            stderr=subprocess.DEVNULL)))
    try:
        time.sleep(0.3)
        assert exec_status(fresh) == 0
        assert santactl(santad, "rule", "--block", "--sha256", "ab" * 32).returncode == 0
        assert exec_status(known) == 0
        time.sleep(0.2)
        assert run_as(1000, alices) == 0        # not denied on its deadline
    finally:
        for _, h in hogs:
            assert h.wait(30) == 126
    for hog, _ in hogs:
        denials = santad.wait_log(lines_for(santad, hog, "DENY"))
        assert denials and {field(line, "explain") for line in denials} <= {
            "decision timed out", "hashing gave way to other users' files"}, denials


def hog_file(directory, name, size, uid):
    """An ELF-looking file of SIZE bytes, nearly all a hole, owned by UID:
    hashing it takes about 0.7 ms per MB."""
    hog = directory / name
    hog.write_bytes(b"\x7fELF")
    os.truncate(hog, size)
    os.chmod(hog, 0o755)
    os.chown(hog, uid, uid)
    return hog


def exec_in_background(path):
    return subprocess.Popen(["/bin/sh", "-c", 'exec "$0"', str(path)],
                            stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("santad", [{"ClientMode": 2, "DecisionTimeoutMs": 1000}], indirect=True)
def test_a_slow_file_only_a_log_line_waits_for_gives_its_worker_up(santad):
    """A file touched while its exec waits is hashed again for the exec's
    log line alone; that job, hashed for longer than DecisionTimeoutMs,
    gives the users' lane up to another owner's program too."""
    from santactl_util import santactl
    progs = [copy_program(santad.watch_dir, f"alice{i}", extra=b"%d" % i) for i in (1, 2)]
    for p in progs:
        os.chown(p, 1000, 1000)
        assert santactl(santad, "rule", "--allow", "--sha256", sha256_of(p)).returncode == 0
    hog = hog_file(santad.watch_dir, "hog", 4 << 40, 65534)
    h = exec_in_background(hog)
    time.sleep(0.3)
    os.utime(hog)
    h.wait(30)                      # allowed on its deadline (FailClosed false)
    for p in progs:
        time.sleep(0.5)
        assert run_as(1000, p) == 0
    for p in progs:
        lines = santad.wait_log(lines_for(santad, p, "ALLOW"))
        assert [field(line, "reason") for line in lines] == ["BINARY"], lines


@pytest.mark.parametrize("santad", [{"ClientMode": 2, "FailClosed": True,
                                     "DecisionTimeoutMs": 1000, "HashThreads": 4}],
                         indirect=True)
def test_a_slow_file_keeps_its_worker_while_the_users_lane_has_one_free(santad):
    """Giving a worker up is for when the users' lane has none free: with
    workers idle, another user's program does not cost a big file its
    hash."""
    from santactl_util import santactl
    theirs = copy_program(santad.watch_dir, "theirs", extra=b"theirs")
    os.chown(theirs, 65534, 65534)
    assert santactl(santad, "rule", "--allow", "--sha256", sha256_of(theirs)).returncode == 0
    big = hog_file(santad.watch_dir, "big", 12 << 30, 1000)
    first = exec_in_background(big)
    time.sleep(0.8)
    second = exec_in_background(big)
    time.sleep(0.4)
    assert run_as(65534, theirs) == 0
    first.wait(30)
    second.wait(30)
    lines = santad.wait_log(lines_for(santad, big, "DENY"))
    assert lines and all(field(line, "explain") == "decision timed out" for line in lines), lines


@pytest.mark.parametrize("santad", [LOCKDOWN], indirect=True)
def test_every_denial_is_logged(santad):
    prog = copy_program(santad.watch_dir, "denied-often", extra=b"often")
    for _ in range(5):
        assert exec_status(prog) == errno.EPERM
    hits = santad.wait_log(lambda line: len([x for x in santad.log_lines()
                                             if lines_for(santad, prog, "DENY")(x)]) >= 5)
    assert hits
    assert len([x for x in santad.log_lines() if lines_for(santad, prog, "DENY")(x)]) == 5


def normalize(line, santad):
    line = re.sub(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\]", "[TIMESTAMP]", line)
    line = re.sub(r"\|pid=\d+\|ppid=\d+\|", "|pid=PID|ppid=PPID|", line)
    return line.replace(str(santad.watch_dir), "WATCH")


def test_log_lines_match_golden(santad_factory, tmpfs):
    # A script's content (and so its hash) is the same everywhere; its
    # interpreter is not on the watched tmpfs, so only the script's exec
    # is logged, with the interpreter's command line as its arguments.
    script = tmpfs / "golden.sh"
    script.write_text("#!/bin/sh\nsleep 0.2\n")
    os.chmod(script, 0o755)
    blocked = tmpfs / "blocked|name.sh"
    blocked.write_text("#!/bin/sh\nexit 3\n")
    os.chmod(blocked, 0o755)
    santad = santad_factory({"StaticRules": [
        {"identifier": sha256_of(blocked), "policy": "BLOCKLIST", "rule_type": "BINARY"}]})
    assert subprocess.run([str(script), "a|b", "c\nd"], timeout=20).returncode == 0
    assert exec_status(blocked) == errno.EPERM
    allow = santad.wait_log(lines_for(santad, script))
    deny = santad.wait_log(lambda line: "DENY" in line)
    assert allow and deny
    got = [normalize(allow[0], santad), normalize(deny[0], santad)]
    want = (GOLDEN / "santad-eventlog.txt").read_text().splitlines()
    assert got == want


def event_rows(santad):
    db = sqlite3.connect(str(santad.state_dir / "events.db"))
    try:
        return db.execute("SELECT id, length(event) FROM events ORDER BY id").fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("santad", [dict(LOCKDOWN, SyncBaseURL="http://127.0.0.1:9/")],
                         indirect=True)
def test_denials_are_stored_for_the_sync_server(santad):
    prog = copy_program(santad.watch_dir, "evblocked", extra=b"events")
    for _ in range(3):
        assert exec_status(prog) == errno.EPERM
    deadline = time.monotonic() + 5
    while len(event_rows(santad)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert santad.alive(), santad.stderr()
    rows = event_rows(santad)
    assert len(rows) == 3 and all(size > 64 for _, size in rows)


def test_no_events_without_a_sync_server(santad):
    prog = copy_program(santad.watch_dir, "noevents", extra=b"none")
    assert exec_status(prog) == 0
    assert santad.wait_log(lines_for(santad, prog))
    assert event_rows(santad) == []


def test_rewrite_right_after_the_exec_is_never_busy(santad):
    """A program rewritten in place as soon as its run was waited for: the
    kernel keeps a running program's image write-locked for as long as its
    address space lives, and a /proc read that holds that address space
    while the program exits (/proc/PID/status did, for the ids of every
    exec) made the rewrite fail with ETXTBSY about once in a few thousand.
    The ids now come from a pidfd; the command line, read once per exec,
    is the one remaining such read (procinfo.h). The race is rare, so this
    loop shows the rule more than it can catch every regression."""
    prog = copy_program(santad.watch_dir, "rewritten-often", extra=b"0")
    data = pathlib.Path("/bin/true").read_bytes()
    busy = 0
    for i in range(400):
        try:
            fd = os.open(prog, os.O_WRONLY | os.O_TRUNC)
        except OSError as e:
            assert e.errno == errno.ETXTBSY, e
            busy += 1
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(data + str(i).encode())
        assert exec_status(prog) == 0
    assert busy == 0


def test_no_descriptor_of_an_executed_file_is_kept(santad):
    """Once an exec is logged, santad holds no descriptor of its file: not
    the permission event's (closed at the answer), nor the notification's
    (closed once its path and #! line were read), nor a hash job's."""
    progs = [copy_program(santad.watch_dir, f"held-{i}", source="/bin/sleep",
                          extra=str(i).encode()) for i in range(3)]
    for p in progs:
        for _ in range(2):
            assert exec_status(p, "0.01") == 0
    assert santad.wait_log(lambda line: all(
        len([x for x in santad.log_lines() if lines_for(santad, p)(x)]) >= 2 for p in progs))
    fd_dir = pathlib.Path(f"/proc/{santad.pid}/fd")
    held = []
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(santad.watch_dir)):
            held.append(target)
    assert held == []


def test_a_cached_script_is_logged_with_its_arguments(santad):
    """The second exec of a script is decided by the kernel's ignore mark;
    its line still has the interpreter's command line as its arguments
    (the cache remembers that the file starts with #!)."""
    script = santad.watch_dir / "twice.sh"
    script.write_text("#!/bin/sh\nsleep 0.05\n")
    os.chmod(script, 0o755)
    for arg in ("one", "two"):
        assert subprocess.run([str(script), arg], timeout=20).returncode == 0
    hits = santad.wait_log(lambda line: len([x for x in santad.log_lines()
                                             if lines_for(santad, script)(x)]) >= 2)
    assert hits
    lines = [x for x in santad.log_lines() if lines_for(santad, script)(x)]
    assert [field(x, "args") for x in lines] == [f"/bin/sh {script} one",
                                                 f"/bin/sh {script} two"], lines
