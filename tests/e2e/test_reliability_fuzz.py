# SPDX-License-Identifier: Apache-2.0
"""Every fuzz harness, run with libFuzzer, ASan and UBSan for a few
seconds on each script/test run (script/fuzz; run it by hand for longer).

The corpus replays (meson test --suite fuzz) check the stored inputs still
pass; this checks that a short search from them finds no crash, leak or
hang. The harnesses build into build-fuzz beside the tested build.
"""
import os
import pathlib
import re
import subprocess

from rellib import ROOT, rel_summary  # noqa: F401

SECONDS_EACH = int(os.environ.get("SANTA_FUZZ_SECONDS", "4"))


def test_every_fuzz_harness_briefly(build_dir, rel_summary):
    fuzz_build = pathlib.Path(build_dir).parent / "build-fuzz"
    env = dict(os.environ, FUZZ_BUILD_DIR=str(fuzz_build))
    r = subprocess.run([str(ROOT / "script" / "fuzz"), str(SECONDS_EACH)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    lines = [l for l in r.stdout.splitlines() if l.startswith("fuzz: ")]
    assert r.returncode == 0, r.stdout + r.stderr
    ok = [l for l in lines if ": ok," in l]
    assert ok and len(ok) == len(lines), r.stdout
    harnesses = sorted(p.name for p in (ROOT / "src").glob("*/fuzz-*.c"))
    assert len(ok) >= len(harnesses), (harnesses, lines)
    runs = sum(int(m.group(1)) for l in ok if (m := re.search(r"ok, (\d+) runs", l)))
    rel_summary("fuzz", f"{len(ok)} harnesses under libFuzzer+ASan+UBSan for {SECONDS_EACH} s "
                f"each, {runs} inputs run, crashes/leaks/timeouts 0")
