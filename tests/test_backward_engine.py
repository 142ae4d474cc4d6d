"""The engine's backward pass (lstm_c._backward) against the NumPy reference and finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradient_support import numerical_gradient
from lstm_c import _backward, reference_backward
from lstm_c.activations import ACTIVATIONS, activation_code, canonical_name
from support import draw_mask_and_state, engine_forward, random_problem, tol

DTYPES = [np.float32, np.float64]
CANONICAL = sorted({canonical_name(a) for a in ACTIVATIONS})
WELL_CONDITIONED = [name for name in CANONICAL if name != "exponential"]  # as in the forward tests
# Gates in [-1, 1]. With an unbounded gate (elu, selu, relu, ...) f can exceed 1 and c grow
# geometrically, which amplifies float32 rounding past a fixed tolerance (hypothesis found
# 5e-4 relative between two correct float32 summation orders); float64 checks every pair.
# The same holds for the cell activation: with selu (and hard_tanh gates) hypothesis found
# h0/c0 gradients up to 130 whose small entries carried 6e-5 of float32 rounding (1.4e-4
# relative, 1.7e-6 of the largest entry; the same values before and after the micro-kernel
# changes), so float32 draws both from the bounded list.
BOUNDED_GATES = ["hard_sigmoid", "hard_tanh", "keras2_hard_sigmoid", "sigmoid", "softsign", "tanh"]
GRADIENTS = ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")


def assert_gradients_close(engine, expected, dtype):
    """Elementwise within the forward tolerance, relative to each gradient's largest entry:
    a gradient sums many products, so its small entries carry the rounding of its large ones."""
    for name in GRADIENTS:
        if expected[name] is None:
            assert engine[name] is None, name
            continue
        t = tol(dtype)
        scale = max(1.0, float(np.max(np.abs(expected[name]), initial=0)))
        np.testing.assert_allclose(engine[name], expected[name], rtol=t["rtol"], atol=t["atol"] * scale,
                                   err_msg=name)


def run_both(x, K, R, b, h0, c0, mask=None, rec_mask=None, upstream=None, n_threads=1, **options):
    """(engine gradients, reference gradients) for one configuration."""
    upstream = upstream or {}
    forward = engine_forward(x, K, R, b, h0, c0, mask, recurrent_dropout_mask=rec_mask, **options)
    trace = np.stack([forward[name] for name in ("i", "f", "g", "o", "c_seq", "h_seq")])
    zeros = np.zeros_like(forward["h"])
    engine = _backward.lstm_backward(
        x, K, R, b, trace, zeros + (0 if h0 is None else h0), zeros + (0 if c0 is None else c0),
        mask=None if mask is None else mask.astype(np.uint8), recurrent_dropout_mask=rec_mask,
        activation=activation_code(options.get("activation", "tanh")),
        recurrent_activation=activation_code(options.get("recurrent_activation", "sigmoid")),
        go_backwards=options.get("go_backwards", False),
        zero_output_for_mask=options.get("zero_output_for_mask", False), n_threads=n_threads, **upstream)
    reference = reference_backward.lstm_backward(
        x, K, R, b, None if h0 is None else [h0, c0], mask, recurrent_dropout_mask=rec_mask, **upstream, **options)
    return engine, reference


@st.composite
def problems(draw):
    B, T, D, U = (draw(st.integers(1, hi)) for hi in (6, 6, 5, 13))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, K, R, b = random_problem(rng, B, T, D, U, dtype)
    mask, state = draw_mask_and_state(draw, rng, B, T, U, dtype)
    h0, c0 = state or (None, None)
    rec_mask = ((rng.random((B, U)) > 0.4) / 0.6).astype(dtype) if draw(st.booleans()) else None
    upstream = {}
    for name, shape in (("d_outputs", (B, T, U)), ("d_last_output", (B, U)), ("d_h", (B, U)), ("d_c", (B, U))):
        if draw(st.booleans()):
            upstream[name] = rng.normal(size=shape).astype(dtype)
    options = dict(activation=draw(st.sampled_from(WELL_CONDITIONED if dtype == np.float64 else BOUNDED_GATES)),
                   recurrent_activation=draw(st.sampled_from(
                       WELL_CONDITIONED if dtype == np.float64 else BOUNDED_GATES)),
                   go_backwards=draw(st.booleans()), zero_output_for_mask=draw(st.booleans()))
    b = b if draw(st.booleans()) else None
    return dict(x=x, K=K, R=R, b=b, h0=h0, c0=c0, mask=mask, rec_mask=rec_mask, upstream=upstream,
                n_threads=draw(st.sampled_from([1, 2])), **options)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_engine_backward_equals_reference(problem):
    dtype = problem["x"].dtype
    engine, reference = run_both(**problem)
    assert_gradients_close(engine, reference, dtype)
    for name in GRADIENTS:
        assert engine[name] is None or engine[name].dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activations", [("exponential", "sigmoid"), ("tanh", "exponential")])
def test_exponential_on_a_well_conditioned_problem(dtype, activations):
    rng = np.random.default_rng(5)
    x, K, R, b = random_problem(rng, 3, 4, 2, 5, dtype, scale=0.2)
    engine, reference = run_both(x, K, R, b, None, None, activation=activations[0],
                                 recurrent_activation=activations[1],
                                 upstream=dict(d_outputs=rng.normal(size=(3, 4, 5)).astype(dtype)))
    assert_gradients_close(engine, reference, dtype)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_engine_backward_matches_finite_differences(go_backwards):
    rng = np.random.default_rng(11)
    B, T, D, U = 3, 5, 2, 4
    x, K, R, b = random_problem(rng, B, T, D, U, np.float64)
    h0, c0 = rng.uniform(-1, 1, (2, B, U))
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    d_out = rng.normal(size=(B, T, U))
    arrays = dict(x=x, kernel=K, recurrent_kernel=R, bias=b, h0=h0, c0=c0)
    options = dict(activation="softsign", recurrent_activation="sigmoid", go_backwards=go_backwards)

    def loss():
        run = engine_forward(x, K, R, b, h0, c0, mask, **options)
        return np.sum(run["outputs"] * d_out) + np.sum(run["c"])

    engine, _ = run_both(x, K, R, b, h0, c0, mask, upstream=dict(d_outputs=d_out, d_c=np.ones((B, U))), **options)
    for name, array in arrays.items():
        np.testing.assert_allclose(engine[name], numerical_gradient(loss, array), rtol=1e-6, atol=1e-8,
                                   err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_gradients_at_one_and_two_threads(dtype):
    rng = np.random.default_rng(2)
    x, K, R, b = random_problem(rng, 9, 12, 5, 67, dtype)   # big enough to share; a ragged last block
    mask = rng.random((9, 12)) < 0.8
    upstream = dict(d_outputs=rng.normal(size=(9, 12, 67)).astype(dtype))
    one, _ = run_both(x, K, R, b, None, None, mask, upstream=upstream, n_threads=1)
    two, _ = run_both(x, K, R, b, None, None, mask, upstream=upstream, n_threads=2)
    for name in GRADIENTS:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_input_gradient_can_be_skipped_and_inputs_are_checked():
    rng = np.random.default_rng(0)
    x, K, R, b = random_problem(rng, 2, 3, 4, 5)
    trace = np.zeros((6, 2, 3, 5), np.float32)
    zeros = np.zeros((2, 5), np.float32)
    common = dict(activation=2, recurrent_activation=1)
    result = _backward.lstm_backward(x, K, R, b, trace, zeros, zeros, input_gradient=False, **common)
    assert result["x"] is None and result["kernel"].shape == (4, 20)
    with pytest.raises(ValueError, match=r"trace must have shape \(6, 2, 3, 5\)"):
        _backward.lstm_backward(x, K, R, b, trace[:, :, :2].copy(), zeros, zeros, **common)
    with pytest.raises(TypeError, match="recurrent_kernel must be float32"):
        _backward.lstm_backward(x, K, R.astype(np.float64), b, trace, zeros, zeros, **common)
    with pytest.raises(ValueError, match="n_threads"):
        _backward.lstm_backward(x, K, R, b, trace, zeros, zeros, n_threads=0, **common)


def _with_gemm_path(fast, function, *args, **kwargs):
    """Run with float32 on the AVX-512 micro-kernels (where the CPU has them) or on the
    portable recurrence and BLAS, the path of other CPUs and of float64."""
    saved = _backward.use_avx512_gemm
    _backward.use_avx512_gemm = fast and saved
    try:
        return function(*args, **kwargs)
    finally:
        _backward.use_avx512_gemm = saved


@settings(max_examples=60, deadline=None)
@given(problems())
def test_portable_path_equals_reference(problem):
    engine, reference = _with_gemm_path(False, run_both, **problem)
    assert_gradients_close(engine, reference, problem["x"].dtype)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("B, T, D, U, bias", [(29, 7, 45, 70, True), (13, 5, 33, 37, False), (24, 3, 64, 64, True)])
def test_tiled_shapes_equal_reference(fast, B, T, D, U, bias):
    """Shapes past the micro-kernels' tiles (12 samples or rows, 32 columns), ragged or not."""
    rng = np.random.default_rng(B * T + U)
    x, K, R, b = random_problem(rng, B, T, D, U, np.float32)
    mask = rng.random((B, T)) < 0.8
    rec_mask = ((rng.random((B, U)) > 0.4) / 0.6).astype(np.float32)
    upstream = dict(d_outputs=rng.normal(size=(B, T, U)).astype(np.float32))
    engine, reference = _with_gemm_path(fast, run_both, x, K, R, b if bias else None, None, None, mask, rec_mask,
                                        upstream)
    assert_gradients_close(engine, reference, np.float32)
    one = _with_gemm_path(fast, run_both, x, K, R, b if bias else None, None, None, mask, rec_mask, upstream)[0]
    two = _with_gemm_path(fast, run_both, x, K, R, b if bias else None, None, None, mask, rec_mask, upstream,
                          n_threads=2)[0]
    for name in GRADIENTS:
        if one[name] is not None:
            np.testing.assert_array_equal(one[name], two[name], err_msg=name)
