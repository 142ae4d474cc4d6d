"""The built extension modules run on any x86-64 CPU: instructions beyond baseline x86-64
(AVX, AVX2, FMA, AVX-512) appear only in code chosen at run time for a CPU that has them.

The test suite runs on one CPU, so a kernel path that strays into AVX-512 code passes on
an AVX-512 machine and is an illegal instruction elsewhere (a 64-byte streaming store in
the trace copy did so on Zen 3). The ISA-limited builds in .ci/run choose the narrower
paths but still execute on the CI machine's CPU, so they cannot see it either. The machine
code can: every function that uses such instructions must be a target clone (picked by its
ifunc resolver) or belong to a family that is called only after its CPU check."""

import platform
import re
import shutil
import subprocess
import sys

import pytest

import lstm_c._backward
import lstm_c._core

pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
    reason="x86-64 Linux builds only (the clones are GCC's on that platform)")

#: Families called only after their CPU check, by the highest x86-64 level they need:
#: 3 = AVX2 and FMA (x86-64-v3), 4 = AVX-512 (x86-64-v4). Clones (name.arch_x86_64_vN)
#: need no entry: their ifunc resolvers check the CPU.
GUARDED = [
    # the gate math and cell's AVX2 versions: LSTMC_CPU_SUPPORTS("avx2") in _activations.h
    (re.compile(r"lstmc_\w*_avx2_[fd]$"), 3),
    # the 256-bit tiles' AVX2 set: the ifunc resolver lstmc_avx2_tiles() (_tile.h)
    (re.compile(r"lstmc_tile_[fd][48]_avx2_\d$"), 3),
    # ... and its pair tiles (one sample, two blocks), behind the same resolver
    (re.compile(r"lstmc_pair_[fd][48]_avx2$"), 3),
    # float64 over float32 rows of 256-bit blocks: lstmc_single_rows (x86-64-v3)
    (re.compile(r"lstmc_(tile_ds4|spread_ds4_[24]g)_\d+$|lstmc_pair_ds4$"), 3),
    # the gate math and cell's AVX-512 versions: LSTMC_CPU_SUPPORTS("avx512f")
    (re.compile(r"lstmc_\w*_avx512_[fd]$"), 4),
    # float64 over float32 rows of 512-bit blocks: lstmc_single_rows (x86-64-v4)
    (re.compile(r"lstmc_(tile_ds8|spread_ds8_[24]g)_\d+$"), 4),
    # the backward's GEMM micro-kernels: lstmc_have_avx512_gemm() (_gemm.h)
    (re.compile(r"lstmc_(micro\w*|dw_piece)$"), 4),
]

#: Operands only AVX-512 has: 512-bit and upper-16 vector registers, opmask registers.
AVX512_OPERAND = re.compile(r"%zmm|%[xy]mm(1[6-9]|2\d|3[01])\b|%k[0-7]\b")
CLONE = re.compile(r"\.arch_x86_64_v([34])$")
LOCAL_SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|lto_priv)(\.\d+)?)+$")


def _levels_used(path):
    """{function: highest x86-64 level its instructions need (1, 3 or 4)}, for functions
    above baseline: VEX/EVEX-encoded instructions (mnemonics v*) are 3, AVX-512 operands 4."""
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True,
                             text=True, check=True).stdout
    levels, function = {}, None
    for line in listing.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if header:
            function = header.group(1)
            continue
        parts = line.split("\t")
        if function is None or len(parts) < 2 or not parts[1].startswith("v"):
            continue
        level = 4 if AVX512_OPERAND.search(line) else 3
        levels[function] = max(level, levels.get(function, 0))
    return levels


def _allowed_level(function):
    clone = CLONE.search(function)
    if clone:
        return int(clone.group(1))
    name = LOCAL_SUFFIX.sub("", function)
    for pattern, level in GUARDED:
        if pattern.match(name):
            return level
    return 1


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) not found")
@pytest.mark.parametrize("module", [lstm_c._core, lstm_c._backward], ids=["_core", "_backward"])
def test_instructions_beyond_baseline_only_behind_a_cpu_check(module):
    levels = _levels_used(module.__file__)
    assert levels, "no vector code found: is objdump reading the right file?"
    strays = {f: level for f, level in levels.items() if level > _allowed_level(f)}
    assert not strays, (f"{module.__name__}: functions reached without a CPU check use "
                        f"x86-64-v3/v4 instructions (function: level): {strays}")
