"""Fit the float32 gate functions' coefficients in lstm_c/_activations.h.

    python tools/fit_gate_functions.py          # fit, print the #defines and their errors
    python tools/fit_gate_functions.py --check  # the errors of the header's coefficients

Both fits minimise the largest *relative* error (what the tests bound), by linear
programming on a dense grid:

* e^r on |r| <= ln(2)/2 as 1 + r + c2 r^2 + ... + c6 r^6 (the first two fixed, so e^0 is
  exactly 1): a polynomial is linear in its coefficients, so one LP gives the minimax fit.
* tanh x / x on x in [0, 9] as P(x^2) / Q(x^2), P and Q of degree 4, Q(0) = 1. A rational
  is not linear in its coefficients; the differential-correction iteration is: bound
  |P - f Q| <= d f Q_prev with Q_prev the previous fit's denominator, which is linear, and
  repeat until the error stops falling.

The errors are in float32 eps (2^-23), of the approximation in float64 arithmetic; the
kernels' float32 arithmetic adds a few roundings (tests/test_engine_vs_reference.py bounds
the end result against libm).
"""
import argparse
import re
from pathlib import Path

import numpy as np
from scipy.optimize import linprog

EPS = 2.0 ** -23
HEADER = Path(__file__).resolve().parent.parent / "lstm_c" / "_activations.h"
EXP_HALF_WIDTH = np.log(2) / 2
TANH_LIMIT = 9.0   # tanh(9) rounds to 1 in float32
TANH_DEGREE = 4


def minimax_lp(basis, target, weight, fixed=0.0):
    """Coefficients c minimising max |fixed + basis @ c - target| / weight."""
    n = basis.shape[1]
    scale = 1 / np.abs(basis).max(axis=0)           # columns of like size, for the solver
    a = basis * scale
    a_ub = np.vstack([np.hstack([a, -weight[:, None]]), np.hstack([-a, -weight[:, None]])])
    b_ub = np.concatenate([target - fixed, fixed - target])
    cost = np.zeros(n + 1)
    cost[-1] = 1
    result = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * n + [(0, None)],
                     method="highs", options=dict(primal_feasibility_tolerance=1e-10,
                                                  dual_feasibility_tolerance=1e-10))
    if not result.success:
        raise RuntimeError(result.message)
    return result.x[:n] * scale


def exp_grid():
    return np.linspace(-EXP_HALF_WIDTH, EXP_HALF_WIDTH, 20001)


def exp_error(c):
    """Largest relative error of 1 + r + c[0] r^2 + ... on |r| <= ln(2)/2."""
    r = exp_grid()
    return np.max(np.abs(1 + r + np.polyval(c[::-1], r) * r * r - np.exp(r)) / np.exp(r))


def fit_exp(degree=6):
    r = exp_grid()
    basis = np.vander(r, degree + 1, increasing=True)[:, 2:]
    return minimax_lp(basis, np.exp(r), np.exp(r), fixed=1 + r)


def tanh_grid():
    x = np.unique(np.concatenate([np.linspace(0, TANH_LIMIT, 8000),
                                  TANH_LIMIT * np.sin(np.linspace(0, np.pi / 2, 8000)) ** 2]))
    f = np.ones_like(x)
    f[1:] = np.tanh(x[1:]) / x[1:]
    return x * x, f


def tanh_error(p, q, grid=None):
    """Largest relative error of x P(x^2) / Q(x^2) against tanh x on (0, 9]."""
    s, f = tanh_grid() if grid is None else grid
    return np.max(np.abs(np.polyval(p[::-1], s) / np.polyval(q[::-1], s) - f) / f)


def fit_tanh(degree=TANH_DEGREE, rounds=30):
    s, f = tanh_grid()
    powers = np.vander(s, degree + 1, increasing=True)
    q_prev, best = np.ones_like(s), None
    for _ in range(rounds):
        # P(s) - f (Q(s) - 1) - f = residual, bounded by d f Q_prev
        basis = np.hstack([powers, -f[:, None] * powers[:, 1:]])
        z = minimax_lp(basis, f, f * q_prev)
        p, q = z[:degree + 1], np.concatenate([[1.0], z[degree + 1:]])
        error = tanh_error(p, q, (s, f))
        if best is None or error < best[2]:
            best = (p, q, error)
        q_prev = np.polyval(q[::-1], s)
    return best[0], best[1]


def header_coefficients(text):
    values = dict(re.findall(r"#define (LSTMC_(?:EXP_C|TANH_[PQ])\d) ([-+.\deE]+)f", text))
    exp_c = np.array([float(values[f"LSTMC_EXP_C{k}"]) for k in range(2, 7)])
    p = np.array([float(values[f"LSTMC_TANH_P{k}"]) for k in range(TANH_DEGREE + 1)])
    q = np.array([1.0] + [float(values[f"LSTMC_TANH_Q{k}"]) for k in range(1, TANH_DEGREE + 1)])
    return exp_c, p, q


def as_float32_define(name, value):
    return f"#define {name} {float(np.float32(value))!r}f"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report the header's errors")
    args = parser.parse_args()
    if args.check:
        exp_c, p, q = header_coefficients(HEADER.read_text())
    else:
        exp_c = fit_exp()
        p, q = fit_tanh()
        for k, value in enumerate(exp_c, start=2):
            print(as_float32_define(f"LSTMC_EXP_C{k}", value))
        for k, value in enumerate(p):
            print(as_float32_define(f"LSTMC_TANH_P{k}", value))
        for k, value in enumerate(q[1:], start=1):
            print(as_float32_define(f"LSTMC_TANH_Q{k}", value))
        # what the header will hold: the float32-rounded values
        exp_c, p, q = (np.float32(v).astype(np.float64) for v in (exp_c, p, q))
    print(f"e^r: {exp_error(exp_c) / EPS:.2f} eps;  tanh: {tanh_error(p, q) / EPS:.2f} eps")


if __name__ == "__main__":
    main()
