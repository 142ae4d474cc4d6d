"""Build the lstm_c extension: Cython, and OpenMP when the compiler has it.

Environment:
  LSTM_C_BOUNDSCHECK=1   compile with Cython bounds/wraparound checks (a debug test run)
  LSTM_C_NO_OPENMP=1     build without OpenMP (serial kernels)
"""

import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

_OMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
    """
)


def _openmp_flags():
    """Compiler/linker flags for OpenMP, or [] (and a loud warning) when unavailable."""
    if os.environ.get("LSTM_C_NO_OPENMP"):
        return [], []
    if sys.platform == "darwin":
        candidates = (["-Xpreprocessor", "-fopenmp"], ["-lomp"])
    elif sys.platform == "win32":
        return ["/openmp"], []
    else:
        candidates = (["-fopenmp"], ["-fopenmp"])
    cc = sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(_OMP_PROBE)
        cmd = cc.split() + candidates[0] + [src, "-o", os.path.join(tmp, "probe")] + candidates[1]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            return candidates
    print("*" * 72 + "\nWARNING: the C compiler has no OpenMP; lstm_c builds with serial kernels.\n"
          + "*" * 72, file=sys.stderr)
    return [], []


def _extensions():
    compile_omp, link_omp = _openmp_flags()
    # -fno-trapping-math lets GCC turn the clamps of the activation loops into vector
    # selects (nothing here relies on FP traps); NaN and inf still follow IEEE rules.
    optimize = ["/O2"] if sys.platform == "win32" else ["-O3", "-fno-math-errno", "-fno-trapping-math"]
    common = dict(
        include_dirs=["lstm_c", numpy.get_include()],
        extra_compile_args=optimize + compile_omp,
        extra_link_args=link_omp,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    return [
        Extension("lstm_c._core", ["lstm_c/_core.pyx"],
                  depends=["lstm_c/_cpu.h", "lstm_c/_activations.h", "lstm_c/_cell.h", "lstm_c/_finish.h", "lstm_c/_recurrence.h", "lstm_c/_team.h", "lstm_c/_tile.h"],
                  **common),
        Extension("lstm_c._backward", ["lstm_c/_backward.pyx"],
                  depends=["lstm_c/_cpu.h", "lstm_c/_activations.h", "lstm_c/_cell.h", "lstm_c/_finish.h", "lstm_c/_recurrence.h", "lstm_c/_team.h", "lstm_c/_tile.h",
                           "lstm_c/_backward.h",
                           "lstm_c/_gemm.h", "lstm_c/_blas.pxd"], **common),
    ]


checks = bool(os.environ.get("LSTM_C_BOUNDSCHECK"))
setup(
    ext_modules=cythonize(
        _extensions(),
        compiler_directives={
            "language_level": 3,
            "boundscheck": checks,
            "wraparound": checks,
            "initializedcheck": checks,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
