"""benchmarks/pair_tile.c builds against the package's own tile header and finds the pair
tile's results bit-identical to the one-sample tiles' (the program's own check, here on a
few blocks so that it runs in a moment)."""
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64") or shutil.which("cc") is None,
    reason="x86-64 Linux with a C compiler (the tiles' clones are GCC's on that platform)")


def test_pair_tile_benchmark_builds_and_finds_the_same_bits(tmp_path):
    program = tmp_path / "pair_tile"
    subprocess.run(["cc", "-O3", "-fno-math-errno", "-fno-trapping-math", "-Wno-unused-function",
                    f"-I{ROOT / 'lstm_c'}", str(ROOT / "benchmarks" / "pair_tile.c"), "-o", str(program)],
                   check=True)
    out = subprocess.run([str(program), "37", "6", "3"], check=True, capture_output=True, text=True).stdout
    measured = [line for line in out.splitlines() if "GFLOP/s" in line]
    assert len(measured) >= 2, out
    assert all(line.endswith("same bits") for line in measured), out
    bad = subprocess.run([str(program), "37", "5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
