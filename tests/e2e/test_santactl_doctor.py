# SPDX-License-Identifier: Apache-2.0
"""santactl doctor: one line per check, [+] fine, [-] a problem, [ ] a check
this user may not run (the line says why); the exit status counts the
problems only, so that a user's doctor passes where root's does."""
import json
import os
import socket

from santactl_util import santactl

KERNEL_OK = "[+] Kernel: fanotify permission events (FAN_OPEN_EXEC_PERM)"
KERNEL_SKIPPED = ("[ ] Kernel: fanotify permission events: skipped, only root may create a "
                  "fanotify group (run `santactl doctor` as root)")


def doctor(target, user=None):
    r = santactl(target, "doctor", user=user, timeout=60)
    lines = r.stdout.splitlines()
    assert lines, r.stderr
    for line in lines:
        assert line[:4] in ("[+] ", "[-] ", "[ ] "), line
    return r.returncode, lines


def test_doctor_as_root_and_as_a_user(santad):
    code, lines = doctor(santad)
    assert code == 0, lines
    assert KERNEL_OK in lines
    assert any(line.startswith("[+] santad: ") and "answers, Monitor mode" in line
               for line in lines), lines

    code, lines = doctor(santad, user="nobody")
    assert code == 0, lines
    assert KERNEL_SKIPPED in lines
    assert not [line for line in lines if line.startswith("[-] ")], lines
    assert any(line.startswith("[+] santad: ") for line in lines), lines


def test_doctor_skips_what_a_user_may_not_reach(build_dir, public_dir):
    """A service socket only root may reach is skipped for a user and
    checked for root (here nobody listens on it: a problem); santad not
    running is a problem for both."""
    run_dir = public_dir / "run"
    run_dir.mkdir(mode=0o755)
    config = public_dir / "config.json"
    config.write_text(json.dumps({"RunDirectory": str(run_dir),
                                  "MetricURL": "http://127.0.0.1:9/metrics"}))
    os.chmod(config, 0o644)
    target = type("Offline", (), {"build_dir": build_dir, "config_path": config})
    sock_path = run_dir / "santametricservice.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.bind(str(sock_path))
        os.chmod(sock_path, 0o600)
        no_santad = f'[-] santad: not running (no socket "{run_dir}/santad.sock")'

        code, lines = doctor(target, user="nobody")
        assert code == 1, lines
        assert KERNEL_SKIPPED in lines and no_santad in lines
        assert (f'[ ] santametricservice: skipped, uid 65534 may not reach "{sock_path}" '
                "(run `santactl doctor` as root)") in lines
        assert [line for line in lines if line.startswith("[-] ")] == [no_santad], lines

        code, lines = doctor(target)
        assert code == 1, lines
        assert KERNEL_OK in lines and no_santad in lines
        assert (f'[-] santametricservice: not answering on "{sock_path}": disconnected'
                in lines), lines


def test_doctor_names_user_namespaces_in_lockdown(santad_factory):
    """Users who can mount filesystems of their own run what santad never
    sees: a problem for doctor in Lockdown, said but no problem in Monitor."""
    from test_santad_lifecycle import userns_open
    for mode, name in ((1, "Monitor"), (2, "Lockdown")):
        d = santad_factory({"ClientMode": mode})
        code, lines = doctor(d)
        kernel = [line for line in lines if "user namespaces" in line or
                  "cannot mount filesystems of their own" in line]
        assert len(kernel) == 1, lines
        problem = userns_open() and mode == 2
        assert kernel[0].startswith("[-] " if problem else "[+] "), kernel
        assert code == (1 if problem else 0), lines
        if userns_open() and mode == 1:
            assert kernel[0].endswith("(Monitor mode: nothing is blocked anyway)")
        d.stop()
