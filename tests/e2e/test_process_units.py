# SPDX-License-Identifier: Apache-2.0
"""The systemd units in dist/: every one loads with `systemd-analyze verify`,
the nobody services are hardened, and the sockets are the launcher's.

systemd need not run here (PID 1 is not systemd): `systemd-analyze verify`
loads units offline. It insists that ExecStart exists, so the units are
verified in a temporary root holding systemd's own units, the units with
the install paths this build would use, and an executable at each path
(the built one when it exists, otherwise a stand-in: what is verified is
the unit, not the program).
"""
import os
import re
import shutil
import subprocess

import pytest

DIST = os.path.join(os.path.dirname(__file__), "..", "..", "dist")
SYSTEM_UNITS = [
    "santad.service",
    "santasyncservice.socket", "santasyncservice.service",
    "santametricservice.socket", "santametricservice.service",
    "santabundleservice.socket", "santabundleservice.service",
]
# What each executable is called in the build tree and where it installs.
EXECUTABLES = {
    "santad": ("src/santad/santad", "SANTA_SBINDIR"),
    "santagui": ("src/santagui/santagui", "SANTA_BINDIR"),
    "santasyncservice": ("src/santasyncservice/santasyncservice", "SANTA_LIBEXECDIR"),
    "santametricservice": ("src/santametricservice/santametricservice",
                           "SANTA_LIBEXECDIR"),
    "santabundleservice": ("src/santabundleservice/santabundleservice",
                           "SANTA_LIBEXECDIR"),
}
# The one warning we accept: see docs/process-model.md on why nobody.
ACCEPTED = re.compile(r"Special user nobody configured, this is not safe!")

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed "
                                       "(script/setup installs package systemd)")


def build_dir(request):
    d = request.config.getoption("--build-dir", default=None)
    return os.path.abspath(d or os.environ.get("SANTA_BUILD_DIR", "build"))


def install_paths(build):
    """SANTA_SBINDIR & co. as this build configured them."""
    out = {}
    with open(os.path.join(build, "santa-build.h")) as f:
        for m in re.finditer(r'#define (SANTA_\w+DIR) "([^"]*)"', f.read()):
            out[m.group(1)] = m.group(2)
    return out


def substitute(text, paths):
    return (text.replace("@sbindir@", paths["SANTA_SBINDIR"])
            .replace("@bindir@", paths["SANTA_BINDIR"])
            .replace("@libexecdir@", paths["SANTA_LIBEXECDIR"]))


def read_unit(name):
    path = os.path.join(DIST, name)
    if not os.path.exists(path):
        path += ".in"
    with open(path) as f:
        return f.read()


def unit_keys(text):
    """KEY -> [values] of a unit file, sections ignored."""
    keys = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        keys.setdefault(k.strip(), []).append(v.strip())
    return keys


@pytest.fixture(scope="module")
def unit_root(request, tmp_path_factory):
    build = build_dir(request)
    paths = install_paths(build)
    root = str(tmp_path_factory.mktemp("unit-root"))
    # verify resolves dependencies such as sysinit.target inside the root.
    shutil.copytree("/usr/lib/systemd/system",
                    os.path.join(root, "usr/lib/systemd/system"), symlinks=True)
    for name, (built, var) in EXECUTABLES.items():
        dest = os.path.join(root, paths[var].lstrip("/"), name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        src = os.path.join(build, built)
        shutil.copy(src if os.path.exists(src) else "/bin/true", dest)
        os.chmod(dest, 0o755)
    unitdir = os.path.join(root, "etc/systemd/system")
    os.makedirs(unitdir)
    for unit in SYSTEM_UNITS:
        with open(os.path.join(unitdir, unit), "w") as f:
            f.write(substitute(read_unit(unit), paths))
    return root, paths


def analyze(*args, env=None):
    p = subprocess.run(["systemd-analyze", "--no-pager", *args], capture_output=True,
                       text=True, timeout=60, env=env)
    return p.returncode, p.stdout + p.stderr


def unexpected(output):
    return [l for l in output.splitlines() if l.strip() and not ACCEPTED.search(l)]


@pytest.mark.parametrize("unit", SYSTEM_UNITS)
def test_system_unit_verifies(unit_root, unit):
    root, _ = unit_root
    rc, out = analyze(f"--root={root}", "verify", unit)
    assert rc == 0 and not unexpected(out), out


def test_user_unit_verifies(unit_root, tmp_path):
    # --user does not take --root: verify the unit file itself, with its
    # ExecStart pointed at the executable in the temporary root.
    root, paths = unit_root
    text = read_unit("santagui.service").replace(
        "@bindir@", os.path.join(root, paths["SANTA_BINDIR"].lstrip("/")))
    unit = tmp_path / "santagui.service"
    unit.write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
    rc, out = analyze("--user", "verify", str(unit), env=env)
    assert rc == 0 and not unexpected(out), out


@pytest.mark.parametrize("unit,limit", [
    ("santasyncservice.service", 2.5),
    ("santametricservice.service", 2.5),
    ("santabundleservice.service", 3.0),
])
def test_service_exposure(unit_root, unit, limit):
    root, _ = unit_root
    rc, out = analyze("security", "--offline=true", f"--root={root}", unit)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert m, out
    assert float(m.group(1)) <= limit, out


@pytest.mark.parametrize("service", ["santasyncservice", "santametricservice"])
def test_nobody_services_are_unprivileged(service):
    keys = unit_keys(read_unit(service + ".service"))
    assert keys["User"] == ["nobody"]
    assert keys["CapabilityBoundingSet"] == [""]
    assert keys["NoNewPrivileges"] == ["yes"]
    assert keys["ProtectSystem"] == ["strict"]
    assert keys["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    # The IPC layer reads peers' /proc entries and trusts SO_PEERCRED uids.
    assert "ProtectProc" not in keys and "PrivateUsers" not in keys


def test_santad_keeps_the_host_mounts():
    # fanotify marks made in a mount namespace of santad's own would watch
    # copies of the mounts, not the ones other processes exec from.
    keys = unit_keys(read_unit("santad.service"))
    for option in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
                   "PrivateMounts", "ReadWritePaths", "ReadOnlyPaths",
                   "TemporaryFileSystem", "BindPaths", "RootDirectory",
                   "CapabilityBoundingSet", "User", "DynamicUser"):
        assert option not in keys, option
    assert keys["Type"] == ["notify"]
    assert keys["Environment"] == ["SANTA_SERVICE_LAUNCHER=systemd"]


def launcher_sockets():
    """name -> mode of each socket in launcher.c's table."""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src", "santad",
                       "launcher.c")
    with open(src) as f:
        text = f.read()
    return {m.group(1): int(m.group(2), 8) for m in
            re.finditer(r'\[LAUNCHER_\w+\] = \{ "(\w+)", (0\d+),', text)}


@pytest.mark.parametrize("service", ["santasyncservice", "santametricservice",
                                     "santabundleservice"])
def test_sockets_match_the_launcher(service):
    # Under either launcher a service finds the same socket, path and mode.
    keys = unit_keys(read_unit(service + ".socket"))
    assert keys["ListenSequentialPacket"] == [f"/run/santa/{service}.sock"]
    assert keys["FileDescriptorName"] == [service]
    assert keys["SocketUser"] == ["root"] and keys["SocketGroup"] == ["root"]
    assert int(keys["SocketMode"][0], 8) == launcher_sockets()[service]
    service_keys = unit_keys(read_unit(service + ".service"))
    assert service_keys["PartOf"] == ["santad.service"]


@pytest.mark.parametrize("service", ["santasyncservice", "santametricservice",
                                     "santabundleservice"])
def test_config_error_is_not_restarted(service):
    # 78 (EX_CONFIG) means the configuration is unusable: starting the
    # service again would fail again, as santad's launcher also knows.
    keys = unit_keys(read_unit(service + ".service"))
    assert keys["Restart"] == ["on-failure"]
    assert keys["RestartPreventExitStatus"] == ["78"]


def test_santad_directories_are_closed():
    keys = unit_keys(read_unit("santad.service"))
    assert keys["StateDirectory"] == ["santa"]
    assert keys["StateDirectoryMode"] == ["0700"]
    assert keys["LogsDirectory"] == ["santa"]
    assert keys["LogsDirectoryMode"] == ["0750"]


def test_santad_starts_the_metric_service():
    keys = unit_keys(read_unit("santad.service"))
    wants = " ".join(keys["Wants"]).split()
    assert "santametricservice.service" in wants
    for s in ("santasyncservice", "santametricservice", "santabundleservice"):
        assert s + ".socket" in wants


def test_desktop_entry(tmp_path):
    text = read_unit("santagui.desktop")
    assert "X-systemd-skip=true" in text.splitlines()
    if shutil.which("desktop-file-validate"):
        entry = tmp_path / "santagui.desktop"
        entry.write_text(text.replace("@bindir@", "/usr/bin"))
        p = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stdout + p.stderr
