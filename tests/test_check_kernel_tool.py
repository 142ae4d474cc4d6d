"""tools/check_kernel.c (the kernel alone against a scalar LSTM, for CPUs the tests cannot
run on) builds against the kernel's headers and passes here: built and run with this
machine's C compiler, as it would be for AArch64 under QEMU."""

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tools" / "check_kernel.c"


def _compiler():
    configured = (sysconfig.get_config_var("CC") or "").split()
    for name in (configured[:1] or []) + ["cc", "gcc"]:
        if shutil.which(name):
            return name
    return None


@pytest.mark.skipif(_compiler() is None, reason="no C compiler")
def test_standalone_kernel_check_passes(tmp_path):
    binary = tmp_path / "check_kernel"
    build = subprocess.run([_compiler(), "-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp",
                            f"-I{ROOT / 'lstm_c'}", str(SOURCE), "-o", str(binary), "-lm"],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout
    lines = run.stdout.splitlines()
    assert lines[-1] == "all within tolerance"
    # float32 and float64, 7 batch sizes, fused and projected ahead, 1 and 2 threads; one
    # sample spread in batches of 2 and 4
    assert sum("largest |h - reference|" in line for line in lines) == 2 * 7 * 2 * 2 + 2 * 2 * 2
    assert sum("projected spread," in line for line in lines) == 2 * 2 * 2
