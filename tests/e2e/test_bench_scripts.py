# SPDX-License-Identifier: Apache-2.0
"""The benchmarks are not run by the tests (they take minutes and want a
quiet machine), but they share the tests' helpers: a helper renamed here
must not break `script/bench`. Each script must at least load and parse
its flags."""
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_bench_script_loads(script):
    r = subprocess.run([sys.executable, str(BENCH / script), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{script} --help:\n{r.stderr}"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.sh")))
def test_bench_shell_script_parses(script):
    r = subprocess.run(["bash", "-n", str(BENCH / script)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"{script}:\n{r.stderr}"
