# SPDX-License-Identifier: Apache-2.0
"""santactl checkcache and flushcache on the real santad's decision
cache."""
from santactl_util import make_program, run_program, santactl


def test_checkcache_and_flushcache(santad):
    prog = make_program(santad, "cache-me", extra=b"cache")
    r = santactl(santad, "checkcache", str(prog))
    assert r.returncode == 1 and r.stderr == "File does not exist in cache\n"

    assert run_program(prog).returncode == 0
    r = santactl(santad, "checkcache", str(prog))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "File exists in [allowlist] cache\n"
    # Anyone may look, as with the original's unprivileged interface.
    assert santactl(santad, "checkcache", str(prog), user="nobody").returncode == 0

    r = santactl(santad, "flushcache")
    assert r.returncode == 0 and r.stdout == "Cache flush requested\n"
    assert santactl(santad, "checkcache", str(prog)).returncode == 1
    assert run_program(prog).returncode == 0
    assert santactl(santad, "checkcache", str(prog)).returncode == 0


def test_flushcache_needs_root(santad):
    prog = make_program(santad, "cache-kept", extra=b"kept")
    assert run_program(prog).returncode == 0
    r = santactl(santad, "flushcache", user="nobody")
    assert r.returncode == 2
    assert r.stdout == "The command 'flushcache' requires root privileges.\n"
    assert santactl(santad, "checkcache", str(prog)).returncode == 0


def test_checkcache_usage(santad):
    r = santactl(santad, "checkcache")
    assert r.returncode == 1 and r.stderr.startswith("A path is required")
    r = santactl(santad, "checkcache", "/nonexistent/file")
    assert r.returncode == 1 and r.stderr.startswith("Cannot open '/nonexistent/file'")
