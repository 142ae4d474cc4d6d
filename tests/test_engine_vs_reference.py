"""The engine (through the LSTM layer and directly) against the NumPy reference."""

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lstm_c
from support import draw_mask_and_state, engine_forward, random_problem, tol
from lstm_c import reference
from lstm_c.activations import ACTIVATIONS, activation_code, canonical_name

DTYPES = [np.float32, np.float64]
CANONICAL = sorted({canonical_name(a) for a in ACTIVATIONS})
# exp(exp(...)) amplifies float32 rounding past any fixed tolerance (the values reach
# 1e18); "exponential" is checked on its own, on a well-conditioned problem, below.
WELL_CONDITIONED = [name for name in CANONICAL if name != "exponential"]


@st.composite
def problems(draw):
    B, T, D, U = (draw(st.integers(1, hi)) for hi in (4, 6, 5, 6))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, K, R, b = random_problem(rng, B, T, D, U, dtype)
    mask, state = draw_mask_and_state(draw, rng, B, T, U, dtype)
    config = dict(
        activation=draw(st.sampled_from(WELL_CONDITIONED)),
        recurrent_activation=draw(st.sampled_from(WELL_CONDITIONED)),
        use_bias=draw(st.booleans()),
        go_backwards=draw(st.booleans()),
        return_sequences=draw(st.booleans()),
        return_state=draw(st.booleans()),
        zero_output_for_mask=draw(st.booleans()),
    )
    return x, [K, R, b], mask, state, config


@settings(max_examples=300, deadline=None)
@given(problems())
def test_layer_matches_reference(problem):
    x, (K, R, b), mask, state, config = problem
    layer = lstm_c.LSTM(R.shape[0], dtype=x.dtype, **config)
    layer.set_weights([K, R, b] if config["use_bias"] else [K, R])
    result = layer(x, initial_state=state, mask=mask)
    expected = reference.lstm_forward(
        x, K, R, b if config["use_bias"] else None, state, mask,
        activation=config["activation"], recurrent_activation=config["recurrent_activation"],
        go_backwards=config["go_backwards"], zero_output_for_mask=config["zero_output_for_mask"])
    want = expected["outputs"] if config["return_sequences"] else expected["last_output"]
    if config["return_state"]:
        output, h, c = result
        np.testing.assert_allclose(h, expected["h"], **tol(x.dtype))
        np.testing.assert_allclose(c, expected["c"], **tol(x.dtype))
    else:
        output = result
    assert output.dtype == x.dtype
    np.testing.assert_allclose(output, want, **tol(x.dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CANONICAL)
@pytest.mark.parametrize("role", ["activation", "recurrent_activation"])
def test_every_activation(rng, dtype, name, role):
    x, K, R, b = random_problem(rng, 2, 4, 3, 3, dtype, scale=0.3)
    layer = lstm_c.LSTM(3, return_sequences=True, dtype=dtype, **{role: name})
    layer.set_weights([K, R, b])
    want = reference.lstm_forward(x, K, R, b, **{role: name})["outputs"]
    np.testing.assert_allclose(layer(x), want, **tol(dtype))


ACTIVATION_GRID = np.concatenate([
    np.linspace(-50, 50, 20001), np.geomspace(1e-12, 1, 200), -np.geomspace(1e-12, 1, 200),
    [-750, -709, -708.5, 708.5, 709, 750, 1e-300, -1e-300, 0.0, -0.0, 1 / 2048, -1 / 2048,
     np.nan, np.inf, -np.inf],
    # where the AVX-512 float64 tanh's e^-2|x| - 1 first takes a table value (|x| = ln(2)/64)
    np.linspace(0.0105, 0.0115, 2001), -np.linspace(0.0105, 0.0115, 2001)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CANONICAL)
def test_kernel_activations_agree_with_the_portable_loops(dtype, name):
    """Where the CPU has AVX-512 or AVX2, sigmoid and tanh run hand-vectorised gates (float64
    with a table-driven exp); elsewhere, and for every other activation, the portable loops
    run.
    Both give the same values within a few ulp, NaN and the clamped extremes included;
    float64 tanh within the AVX-512 version's 3e-15 (its table values' rounding, just
    above |x| = ln(2)/64)."""
    code = activation_code(name)
    fast, portable = ACTIVATION_GRID.astype(dtype), ACTIVATION_GRID.astype(dtype)
    lstm_c._core.apply_activation(code, fast)
    lstm_c._core.apply_activation(code, portable, portable=True)
    rtol = 4e-15 if (name, dtype) == ("tanh", np.float64) else 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(fast, portable, rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("portable", [False, True])
def test_sigmoid_and_tanh_are_accurate(dtype, name, portable):
    """The libm-free gate functions against NumPy's libm, on either path: float32 to a few
    1e-6 relative (tiny sigmoids of large negative inputs are the worst), float64 to a few
    1e-16, but for the AVX-512 tanh's 3e-15 just above |x| = ln(2)/64 (its table values'
    rounding)."""
    got = ACTIVATION_GRID[np.isfinite(ACTIVATION_GRID) & (np.abs(ACTIVATION_GRID) < 700)].astype(dtype)
    x = got.astype(np.float64)
    lstm_c._core.apply_activation(activation_code(name), got, portable=portable)
    want = 1 / (1 + np.exp(-x)) if name == "sigmoid" else np.tanh(x)
    rtol = 3e-6 if dtype == np.float32 else 1e-15 if name == "sigmoid" or portable else 4e-15
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_the_avx2_gates_give_the_bits_of_the_avx512_ones(rng, dtype, name):
    """Sigmoid and tanh have an AVX2 version (256-bit blocks on CPUs without AVX-512
    finish a step with it) that must give the AVX-512 version's bits, so that the two
    block widths agree bit for bit: over the grid, 2^20 random bit patterns (every
    exponent, NaNs, infinities and subnormals among them) and, in float64, 2^20 values in
    [-40, 40]. Where the CPU lacks AVX-512 the "fast" gates are the AVX2 ones, and where it
    lacks AVX2 both calls run the same loops."""
    uint = np.uint32 if dtype == np.float32 else np.uint64
    patterns = rng.integers(0, np.iinfo(uint).max, 2**20, dtype=uint, endpoint=True).view(dtype)
    values = np.concatenate([ACTIVATION_GRID.astype(dtype), patterns, rng.uniform(-40, 40, 2**20).astype(dtype)])
    fast, avx2 = values.copy(), values.copy()
    lstm_c._core.apply_activation(activation_code(name), fast)
    lstm_c._core.apply_activation(activation_code(name), avx2, avx2=True)
    np.testing.assert_array_equal(avx2.view(uint), fast.view(uint))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 3, 13])
def test_256_bit_blocks_finish_to_the_bits_of_the_masked_path_and_of_512_bit_blocks(rng, dtype, batch):
    """On CPUs with AVX2 and FMA, 256-bit blocks finish a step in registers too
    (lstmc_lstm_cell_avx2_*): the same bits with an all-ones mask (the cell on copies) and
    as 512-bit blocks, with the trace. 40 units: whole blocks and a ragged one."""
    x, K, R, b = random_problem(rng, batch, 7, 5, 40, dtype)
    narrow = engine_forward(x, K, R, b, wide=False)
    looped = engine_forward(x, K, R, b, mask=np.ones(x.shape[:2], bool), wide=False)
    wide = engine_forward(x, K, R, b, wide=True)
    for name in narrow:
        np.testing.assert_array_equal(narrow[name], looped[name], err_msg=name)
        np.testing.assert_array_equal(narrow[name], wide[name], err_msg=name)
    np.testing.assert_allclose(narrow["outputs"], reference.lstm_forward(x, K, R, b)["outputs"], **tol(dtype))


def test_gate_function_coefficients_are_the_fitted_ones():
    """The float32 e^r polynomial and tanh rational in _activations.h approximate their
    functions as closely as their comments say (tools/fit_gate_functions.py fits them):
    a coefficient mistyped or rounded badly would show here first."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "tools" / "fit_gate_functions.py"
    spec = importlib.util.spec_from_file_location("fit_gate_functions", path)
    fit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit)
    exp_c, p, q = fit.header_coefficients(fit.HEADER.read_text())
    assert fit.exp_error(exp_c) < 0.05 * fit.EPS
    assert fit.tanh_error(p, q) < 0.4 * fit.EPS


@settings(max_examples=100, deadline=None)
@given(problems(), st.integers(2, 5))
def test_thread_count_changes_nothing(problem, n_threads):
    """Any split of the units over threads gives the single-thread result bit for bit."""
    x, (K, R, b), mask, state, config = problem
    kwargs = dict(mask=mask, activation=config["activation"], go_backwards=config["go_backwards"],
                  recurrent_activation=config["recurrent_activation"])
    h0, c0 = state or (None, None)
    serial = engine_forward(x, K, R, b, h0, c0, n_threads=1, **kwargs)
    parallel = engine_forward(x, K, R, b, h0, c0, n_threads=n_threads, **kwargs)
    for name in serial:
        np.testing.assert_array_equal(parallel[name], serial[name], err_msg=name)


@st.composite
def kernel_variants(draw):
    """Shapes that fill several tiles and blocks (and leave ragged ones), either block width,
    the input projection fused or computed ahead in blocks of 1, 3 or 32 steps."""
    B, T, D, U = draw(st.integers(1, 14)), draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 40))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, K, R, b = random_problem(rng, B, T, D, U, dtype)
    mask, state = draw_mask_and_state(draw, rng, B, T, U, dtype)
    options = dict(wide=draw(st.sampled_from([True, False])),
                   projection_steps=draw(st.sampled_from([None, 0, 1, 3, 32])),
                   go_backwards=draw(st.booleans()), zero_output_for_mask=draw(st.booleans()))
    return x, (K, R, b if draw(st.booleans()) else None), mask, state, options


@settings(max_examples=200, deadline=None)
@given(kernel_variants(), st.integers(1, 3))
def test_block_widths_and_input_projection_match_reference(problem, n_threads):
    """Every way the kernel can lay out and schedule the work gives the reference's
    numbers, and the same bits as any other way: each unit sums bias, x rows, then h rows
    in one order whatever the block width, tile or projection; threads split units only."""
    x, (K, R, b), mask, state, options = problem
    h0, c0 = state or (None, None)
    got = engine_forward(x, K, R, b, h0, c0, mask, n_threads=n_threads, **options)
    want = reference.lstm_forward(x, K, R, b, state, mask, go_backwards=options["go_backwards"],
                                  zero_output_for_mask=options["zero_output_for_mask"])
    for name in ("outputs", "last_output", "h", "c"):
        np.testing.assert_allclose(got[name], want[name], **tol(x.dtype), err_msg=name)
    default = dict(options, wide=None, projection_steps=None)
    serial = engine_forward(x, K, R, b, h0, c0, mask, n_threads=1, **default)
    for name in serial:
        np.testing.assert_array_equal(got[name], serial[name], err_msg=name)


@settings(max_examples=100, deadline=None)
@given(kernel_variants(), st.integers(1, 2), st.booleans())
def test_a_sample_alone_gets_the_bits_it_gets_in_a_batch(problem, n_threads, float32_valued):
    """A sample run alone (one-sample tiles; with 256-bit blocks on AVX2, two blocks side
    by side: the pair tile) gets the bits it gets among others (tiles of several samples),
    over float64 or float32-valued recurrent rows: every unit sums bias, x rows, then h
    rows in one order, whoever it is batched with."""
    x, (K, R, b), mask, state, options = problem
    if float32_valued:
        R = R.astype(np.float32).astype(R.dtype)
    batch = engine_forward(x, K, R, b, *(state or (None, None)), mask, n_threads=n_threads, **options)
    for s in range(x.shape[0]):
        one = slice(s, s + 1)
        h0, c0 = (None, None) if state is None else (state[0][one], state[1][one])
        alone = engine_forward(x[one], K, R, b, h0, c0, None if mask is None else mask[one],
                               n_threads=n_threads, **options)
        for name in batch:
            np.testing.assert_array_equal(alone[name][0], batch[name][s], err_msg=f"{name} sample {s}")


def _avx512_level():
    """The CPU has x86-64-v4's AVX-512 (Linux: from /proc/cpuinfo; False elsewhere) and
    this build may use it (lstm_c._core.ISA_LIMIT)."""
    if lstm_c._core.ISA_LIMIT < 4:
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return all(f in flags for f in ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"))


@settings(max_examples=150, deadline=None)
@given(kernel_variants(), st.integers(1, 3), st.booleans())
def test_float64_reads_float32_valued_recurrent_rows_at_half_the_bytes(problem, n_threads, dropout):
    """A float32 model run in float64 keeps its recurrent rows in float32 as well, which
    steps with the input projected ahead read widened: the same products, so the same bits
    as the float64 rows, in any layout, schedule and thread count."""
    x, (K, R, b), mask, state, options = problem
    x, K, R = x.astype(np.float64), K.astype(np.float64), R.astype(np.float32).astype(np.float64)
    b = None if b is None else b.astype(np.float64)
    h0, c0 = (None, None) if state is None else (s.astype(np.float64) for s in state)
    drop = None
    if dropout:
        drop = (np.random.default_rng(x.size).random((x.shape[0], R.shape[0])) < 0.7) / 0.7
    run = dict(options, mask=mask, n_threads=n_threads, recurrent_dropout_mask=drop)
    single = engine_forward(x, K, R, b, h0, c0, **run)
    double = engine_forward(x, K, R, b, h0, c0, single_rows=False, **run)
    for name in single:
        np.testing.assert_array_equal(single[name], double[name], err_msg=name)


@st.composite
def one_sample_variants(draw):
    """One sample over steps that fill spread batches of 1 .. 6 (all four gates a step) or
    8 .. 12 (two gates a step) and leave a ragged last one
    (or no batch past the first), inputs narrower than a batch's slices (D < steps: empty
    slices) or wider, ragged blocks; masks, state, dropout, either direction and width."""
    T, D, U = draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.integers(1, 40))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, K, R, b = random_problem(rng, 1, T, D, U, dtype)
    if draw(st.booleans()):  # float64 over float32 values: the spread tile on float32 rows
        R = R.astype(np.float32).astype(dtype)
    mask, state = draw_mask_and_state(draw, rng, 1, T, U, dtype)
    drop = ((rng.random((1, U)) < 0.7) / 0.7).astype(dtype) if draw(st.booleans()) else None
    options = dict(mask=mask, recurrent_dropout_mask=drop, wide=draw(st.sampled_from([True, False])),
                   go_backwards=draw(st.booleans()), zero_output_for_mask=draw(st.booleans()))
    spread_steps = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 8, 10, 12]))
    return x, (K, R, b if draw(st.booleans()) else None), state, options, spread_steps


@settings(max_examples=150, deadline=None)
@given(one_sample_variants(), st.integers(1, 3))
def test_spread_projection_matches_reference_and_every_other_schedule(problem, n_threads):
    """One sample with its input projected in batches spread over the steps before them
    (the spread tile: a slice of the kernel rows within each step's recurrent rows, the
    sums kept in the buffer between slices) gives the reference's numbers and the same
    bits as the input fused into each step, projected in windows, or the default, in any
    thread count."""
    x, (K, R, b), state, options, spread_steps = problem
    h0, c0 = state or (None, None)
    team = {}
    got = engine_forward(x, K, R, b, h0, c0, n_threads=n_threads, spread_steps=spread_steps, team=team,
                         **options)
    assert team["spread"] == spread_steps
    want = reference.lstm_forward(x, K, R, b, state, options["mask"], go_backwards=options["go_backwards"],
                                  zero_output_for_mask=options["zero_output_for_mask"],
                                  recurrent_dropout_mask=options["recurrent_dropout_mask"])
    for name in ("outputs", "last_output", "h", "c"):
        np.testing.assert_allclose(got[name], want[name], **tol(x.dtype), err_msg=name)
    for schedule in (dict(projection_steps=0), dict(projection_steps=3), dict(spread_steps=0), {}):
        other = engine_forward(x, K, R, b, h0, c0, n_threads=1, **schedule, **options)
        for name in got:
            np.testing.assert_array_equal(got[name], other[name], err_msg=f"{name} {schedule}")


def test_which_tiles_256_bit_blocks_run():
    """The set the tiles' resolver picked at load time: AVX2's on a CPU with x86-64-v4 (it
    has x86-64-v3) unless the build is limited below it, baseline ones in such a build."""
    if lstm_c._core.ISA_LIMIT < 3:
        assert not lstm_c._core.avx2_tiles()
    elif _avx512_level():
        assert lstm_c._core.avx2_tiles()


@pytest.mark.parametrize("wide", [True, False])
def test_which_float64_kernels_keep_float32_rows(rng, wide):
    """Only float64 kernels whose every recurrent weight is a normal float32 value (or 0,
    or infinite) keep a float32 copy, laid out as the float64 rows; on an x86-64-v4 CPU (where the tests
    run) it is there for either block width."""
    x, K, R, b = random_problem(rng, 2, 3, 4, 37, np.float64)
    R32 = R.astype(np.float32)
    R32[0, :3] = (0.0, -0.0, np.finfo(np.float32).tiny)

    def rows(recurrent, dtype=np.float64, **options):
        kernel = lstm_c._core.Kernel(K.astype(dtype), recurrent.astype(dtype), b.astype(dtype), 0, 1,
                                     wide=wide, **options)
        return kernel, kernel.recurrent_rows_float32

    kernel, single = rows(R32)
    supported = lstm_c._core.single_rows_supported(kernel.lanes)
    if _avx512_level():
        assert supported
    if supported:
        assert single.dtype == np.float32 and single.ctypes.data % 64 == 0
        np.testing.assert_array_equal(single, kernel.weights[:, K.shape[0]:])
    else:
        assert single is None
    assert rows(R)[1] is None                                 # float64 values
    assert rows(R32, single_rows=False)[1] is None
    assert rows(R32, dtype=np.float32)[1] is None             # float32 has nothing to halve
    for odd in (np.nan, 1e300, 1e-40, 0.1):      # 1e-40: a float32 subnormal; 0.1: not a float32
        R_odd = R32.astype(np.float64)
        R_odd[1, 2] = odd
        assert rows(R_odd)[1] is None, odd


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B", [3, 13])
def test_weights_larger_than_l2_match_reference(rng, dtype, B):
    """Weights over twice the L2 (over the L2 per thread: the threshold) make the kernel
    prefetch the next block's rows as it goes (fused input with several tiles per block at
    B = 13, the input projected ahead at B = 3; 520 units leave float32 a ragged last
    block). Prefetching changes no number: the reference's results, and split over 4
    threads the same bits."""
    T, D = 4, 300
    U = next(u for u in (520, 1040, 2080)  # the size a CPU's L2 calls for
             if (D + u) * 4 * u * np.dtype(dtype).itemsize > 2 * lstm_c._core.L2_BYTES)
    x, K, R, b = random_problem(rng, B, T, D, U, dtype)
    mask = rng.random((B, T)) < 0.8
    want = reference.lstm_forward(x, K, R, b, None, mask)
    serial = engine_forward(x, K, R, b, mask=mask, n_threads=1)
    # sums of 820 products: float32 rounding reaches a few 1e-6 (summation orders differ)
    close = tol(dtype) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for name in ("outputs", "last_output", "h", "c"):
        np.testing.assert_allclose(serial[name], want[name], **close, err_msg=name)
    parallel = engine_forward(x, K, R, b, mask=mask, n_threads=4)
    for name in serial:
        np.testing.assert_array_equal(parallel[name], serial[name], err_msg=name)


def test_kernel_option_errors():
    x, K, R, b = random_problem(np.random.default_rng(0), 2, 3, 4, 5, np.float32)
    with pytest.raises(ValueError, match="projection_steps must be >= 0"):
        engine_forward(x, K, R, b, projection_steps=-1)
    for steps in (-2, -1, 7, 14):
        with pytest.raises(ValueError, match=r"spread_steps must be in 0 \.\. 6, even up to 12"):
            engine_forward(x[:1], K, R, b, spread_steps=steps)
    with pytest.raises(ValueError, match="spread_steps needs a batch of one sample, got 2"):
        engine_forward(x, K, R, b, spread_steps=3)
    with pytest.raises(ValueError, match="projection_steps or spread_steps, not both"):
        engine_forward(x[:1], K, R, b, projection_steps=4, spread_steps=3)
    assert lstm_c._core.lanes(np.float32, wide=True) == 16 and lstm_c._core.lanes(np.float64, wide=False) == 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_trace_matches_reference(rng, dtype):
    x, K, R, b = random_problem(rng, 3, 7, 4, 5, dtype)
    mask = rng.random((3, 7)) < 0.7
    h0, c0 = (rng.uniform(-1, 1, (3, 5)).astype(dtype) for _ in range(2))
    layer = lstm_c.LSTM(5, go_backwards=True, dtype=dtype)
    layer.set_weights([K, R, b])
    tr = layer.trace(x, initial_state=[h0, c0], mask=mask)
    expected = reference.lstm_forward(x, K, R, b, [h0, c0], mask, go_backwards=True)
    for name, ref_name in zip("ifgoch", ("i", "f", "g", "o", "c_seq", "h_seq")):
        np.testing.assert_allclose(getattr(tr, name), expected[ref_name], **tol(dtype), err_msg=name)
    np.testing.assert_allclose(tr.outputs, expected["outputs"], **tol(dtype))
    np.testing.assert_array_equal(tr.initial_h, h0)
    np.testing.assert_array_equal(tr.mask, mask)
    np.testing.assert_array_equal(tr.time_index, np.arange(7)[::-1])
    np.testing.assert_array_equal(tr.step_mask, mask[:, ::-1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_trace_equals_fast_path(rng, dtype, go_backwards):
    """Trace mode is the same kernel: its outputs and final state are bit-identical."""
    x, K, R, b = random_problem(rng, 4, 9, 3, 6, dtype)
    mask = rng.random((4, 9)) < 0.8
    layer = lstm_c.LSTM(6, return_sequences=True, return_state=True, go_backwards=go_backwards, dtype=dtype)
    layer.set_weights([K, R, b])
    out, h, c = layer(x, mask=mask)
    tr = layer.trace(x, mask=mask)
    np.testing.assert_array_equal(tr.outputs, out)
    np.testing.assert_array_equal(tr.h[:, -1], h)
    np.testing.assert_array_equal(tr.c[:, -1], c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 3, 13])
@pytest.mark.parametrize("units", [32, 40, 64])
def test_the_cell_gives_the_same_bits_on_every_path(rng, dtype, batch, units):
    """Whole 512-bit blocks without a mask finish a step in registers (lstmc_lstm_cell_*,
    on CPUs with AVX-512), traced or not, in place; a mask or a ragged last block runs the
    same cell on copies (and keeps the activated gates for the trace). Both give the same
    bits: one sample (the blocks finished together), a tile of samples and several tiles,
    and a call mixing the two (40 units in float32: two whole blocks of 16 and a ragged
    one). Elsewhere both take the portable loops."""
    x, K, R, b = random_problem(rng, batch, 7, 5, units, dtype)
    layer = lstm_c.LSTM(units, return_sequences=True, return_state=True, dtype=dtype)
    layer.set_weights([K, R, b])
    all_valid = np.ones(x.shape[:2], bool)
    for got, want in zip(layer(x), layer(x, mask=all_valid)):
        np.testing.assert_array_equal(got, want)
    traced, traced_masked = layer.trace(x), layer.trace(x, mask=all_valid)
    for name in ("i", "f", "g", "o", "c", "h", "outputs"):
        np.testing.assert_array_equal(getattr(traced, name), getattr(traced_masked, name))
    np.testing.assert_array_equal(traced.outputs, layer(x)[0])
    want = reference.lstm_forward(x, K, R, b)
    np.testing.assert_allclose(traced.outputs, want["outputs"], **tol(dtype))
    np.testing.assert_allclose(traced.c[:, -1], want["c"], **tol(dtype))


@pytest.mark.parametrize("units", [5, 384])
def test_a_trace_reuses_the_memory_of_one_let_go_and_never_of_one_kept(rng, units):
    """Tracing again writes into the last trace's memory once nothing holds it (no fresh
    buffer to fault in), never into a Trace, or an array of one, still referenced; the
    numbers are those of a fresh trace either way. 384 units: a streamed (aligned) trace."""
    x, K, R, b = random_problem(rng, 8, 256, 5, units, np.float32)
    mask = rng.random((8, 256)) < 0.8
    layer = lstm_c.LSTM(units, return_sequences=True)
    layer.set_weights([K, R, b])
    first = layer.trace(x)
    second = layer.trace(x, mask=mask)
    assert not np.shares_memory(first.states, second.states)   # the first is still held
    expected, address = second.states.copy(), second.states.ctypes.data
    del first, second
    third = layer.trace(x, mask=mask)
    assert third.states.ctypes.data == address                 # let go: reused
    np.testing.assert_array_equal(third.states, expected)
    np.testing.assert_array_equal(third.outputs, layer(x, mask=mask))
    kept = third.h
    del third
    fourth = layer.trace(x)
    assert not np.shares_memory(fourth.states, kept)
    np.testing.assert_array_equal(kept, expected[5])          # untouched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("units", [384, 392])
def test_a_streamed_trace_equals_a_copied_one(rng, monkeypatch, dtype, units):
    """A trace of at least STREAMED_TRACE_BYTES starts on a cache line and the kernel streams
    its full 64-byte rows past the caches (392 units: the last block is ragged and copied);
    into a buffer whose rows are not aligned every row is copied. Same bits, masked steps
    included, at 1 and 2 threads."""
    B, T, D = 8, 256, 5   # a float32 trace of 384 units: 18.9 MB
    x, K, R, b = random_problem(rng, B, T, D, units, dtype)
    mask = rng.random((B, T)) < 0.8
    layer = lstm_c.LSTM(units, dtype=dtype)
    layer.set_weights([K, R, b])
    for n_threads in (1, 2):
        monkeypatch.setattr(lstm_c._threads, "_configured", n_threads)
        streamed = layer.trace(x, mask=mask)
        assert streamed.states.nbytes >= lstm_c._core.STREAMED_TRACE_BYTES
        assert streamed.i.ctypes.data % 64 == 0
        size = 6 * B * T * units
        unaligned = np.empty(size + 1, dtype)[1:].reshape(6, B, T, units)
        h, c = np.zeros((B, units), dtype), np.zeros((B, units), dtype)
        layer._kernel.forward(x, h, c, np.empty((B, units), dtype), np.empty((B, T, units), dtype),
                              unaligned, mask.astype(np.uint8), None, go_backwards=False,
                              zero_output_for_mask=False, n_threads=n_threads)
        for got, want, name in zip(unaligned, (streamed.i, streamed.f, streamed.g, streamed.o,
                                               streamed.c, streamed.h), "ifgoch"):
            np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_dropout_mask_matches_reference(rng, dtype):
    x, K, R, b = random_problem(rng, 3, 5, 2, 4, dtype)
    drop = ((rng.random((3, 4)) > 0.3) / 0.7).astype(dtype)
    got = engine_forward(x, K, R, b, recurrent_dropout_mask=drop)
    want = reference.lstm_forward(x, K, R, b, recurrent_dropout_mask=drop)
    for name in ("outputs", "h", "c"):
        np.testing.assert_allclose(got[name], want[name], **tol(dtype))
    plain = engine_forward(x, K, R, b)
    assert not np.allclose(got["h"], plain["h"])  # the mask really was applied


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_memory_layouts(rng, layout, dtype):
    x, K, R, b = random_problem(rng, 3, 6, 4, 5, dtype)
    layer = lstm_c.LSTM(5, return_sequences=True, dtype=dtype)
    layer.set_weights([np.asfortranarray(K), R[:, :], b])
    expected = layer(x)
    if layout == "F":
        x_in = np.asfortranarray(x)
    elif layout == "strided":
        x_in = np.repeat(x, 2, axis=1)[:, ::2]
    else:
        x_in = x.copy()
    assert layout == "C" or not x_in.flags.c_contiguous
    np.testing.assert_array_equal(layer(x_in), expected)


def test_dtype_conversion(rng):
    """Integer, bool and float16 input are converted; output follows the layer's dtype."""
    layer = lstm_c.LSTM(3, seed=0)
    ints = rng.integers(-2, 3, (2, 4, 3))
    np.testing.assert_array_equal(layer(ints), layer(ints.astype(np.float32)))
    assert layer(ints.astype(np.float16)).dtype == np.float32
    assert layer(ints.astype(bool)).dtype == np.float32
    layer64 = lstm_c.LSTM(3, seed=0, dtype="float64")
    assert layer64(ints.astype(np.float32)).dtype == np.float64


def test_float32_and_float64_agree(rng):
    x, K, R, b = random_problem(rng, 2, 10, 3, 4, np.float64)
    outs = []
    for dtype in DTYPES:
        layer = lstm_c.LSTM(4, return_sequences=True, dtype=dtype)
        layer.set_weights([K, R, b])
        outs.append(layer(x))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_nan_propagates_like_keras(rng):
    """A NaN input poisons its own sample from that step on, and nothing else;
    a NaN at a masked step is never used (Keras selects, it does not multiply)."""
    x, K, R, b = random_problem(rng, 3, 5, 2, 3, np.float32)
    x[0, 2, 1] = np.nan
    x[1, 3, 0] = np.nan
    mask = np.ones((3, 5), bool)
    mask[1, 3] = False
    layer = lstm_c.LSTM(3, return_sequences=True)
    layer.set_weights([K, R, b])
    out = layer(x, mask=mask)
    assert np.isfinite(out[0, :2]).all() and np.isnan(out[0, 2:]).all()
    assert np.isfinite(out[1:]).all()
    want = reference.lstm_forward(x, K, R, b, mask=mask)["outputs"]
    np.testing.assert_allclose(out, want, **tol(np.float32))  # assert_allclose matches NaN to NaN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [False, True])
def test_gates_far_past_saturation_match_reference(rng, dtype, masked):
    """Pre-activations from 1 to 2^100 in size give the reference's outputs and state, on
    every path (40 units: whole blocks and a ragged one; a mask). The cell folds a
    sigmoid's denominator into tanh's (i g and o tanh(c) take one division each); in
    float32 that product overflows where i is below 1e-36, and must give 0, not NaN.
    Inputs and weights are multiples of 1/8 scaled by powers of two, and the recurrent
    kernel is 0, so that the pre-activations are exact in any order of summation (else a
    gate scaled by 2^13 turns float32's rounding into differences past the tolerance)."""
    B, T, D, U = 5, 6, 3, 40
    x = (rng.integers(-8, 9, (B, T, D)) / 8).astype(dtype)
    K, b = (rng.integers(-4, 5, (D, 4 * U)) / 8).astype(dtype), (rng.integers(-4, 5, 4 * U) / 8).astype(dtype)
    scale = rng.choice(np.asarray([1, 2.0 ** 5, 2.0 ** 13, 2.0 ** 100], dtype), 4 * U)  # per gate and unit
    K, R, b = K * scale, np.zeros((U, 4 * U), dtype), b * scale
    mask = rng.random((B, T)) < 0.7 if masked else None
    c0 = rng.uniform(-2, 2, (B, U)).astype(dtype)
    layer = lstm_c.LSTM(U, return_sequences=True, return_state=True, dtype=dtype)
    layer.set_weights([K, R, b])
    out, h, c = layer(x, mask=mask, initial_state=[np.zeros_like(c0), c0])
    with np.errstate(over="ignore"):
        want = reference.lstm_forward(x, K, R, b, [np.zeros_like(c0), c0], mask=mask)
    assert np.isfinite(out).all() and np.isfinite(c).all()
    np.testing.assert_allclose(out, want["outputs"], **tol(dtype))
    np.testing.assert_allclose(c, want["c"], **tol(dtype))
    traced = layer.trace(x, mask=mask, initial_state=[np.zeros_like(c0), c0])
    np.testing.assert_array_equal(traced.outputs, out)
    assert ((traced.i >= 0) & (traced.i <= 1)).all() and (np.abs(traced.g) <= 1).all()


def test_initializers_are_seeded():
    a, b, c = (lstm_c.LSTM(5, seed=s) for s in (7, 7, 8))
    for layer in (a, b, c):
        layer.build((None, None, 3))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    kernel, recurrent, bias = a.get_weights()
    np.testing.assert_array_equal(bias, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])  # unit_forget_bias
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(5), atol=1e-5)  # orthogonal rows
    limit = np.sqrt(6 / (3 + 20))  # glorot_uniform
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.5 * limit


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_sequence_gives_the_same_bits_alone_or_in_any_batch(rng, dtype):
    """Tiles of 1-6 samples and the projection ahead for small batches all sum each unit
    in one order, so batching (predict's 4096, a CLI block, a Dask chunk) changes no bit."""
    x, K, R, b = random_problem(rng, 13, 7, 5, 37, dtype)
    layer = lstm_c.LSTM(37, return_sequences=True, dtype=dtype)
    layer.set_weights([K, R, b])
    together = layer(x)
    for rows in ([4], [0, 12], slice(2, 9), slice(0, 6)):
        np.testing.assert_array_equal(layer(x[rows]), together[rows])


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("units, n_threads", [(64, 1), (128, 1), (224, 1), (256, 2), (416, 2)])
def test_which_calls_read_the_float32_rows(rng, units, n_threads, batch, wide):
    """By default a float64 call over 512-bit blocks reads the float32 copy of its
    recurrent rows only where a thread's share of the float64 rows exceeds
    SINGLE_ROWS_MIN_BYTES (in L2, widening costs more than the bytes it saves), and where
    L2 feeds 32 bytes a cycle only with one sample (more keep the FMA units busy); one over
    256-bit blocks in every call (AVX2's pair tile widens them faster than it reads float64
    rows); single_rows=True reads them in every call. The bits are the same."""
    x, K, R, b = random_problem(rng, batch, 4, 3, units, np.float64)
    R = R.astype(np.float32).astype(np.float64)
    kernel = lstm_c._core.Kernel(K, R, b, activation_code("tanh"), activation_code("sigmoid"), wide=wide)
    if kernel.recurrent_rows_float32 is None:
        pytest.skip("this CPU widens float32 rows unlike its float64 tiles")
    least = lstm_c._core.SINGLE_ROWS_MIN_BYTES if wide else 0
    most = 1 if wide and lstm_c._core.L2_FEEDS_32_BYTES else sys.maxsize
    assert (kernel.single_rows_min_bytes, kernel.single_rows_max_samples) == (least, most)
    share = kernel.weights[:, K.shape[0]:].nbytes / n_threads
    results = {}
    for single_rows in (None, True, False):
        report = {}
        results[single_rows] = engine_forward(x, K, R, b, n_threads=n_threads, wide=wide,
                                              single_rows=single_rows, team=report)
        expected = {None: share > least and batch <= most, True: True, False: False}
        assert report["single_rows"] == expected[single_rows]
    every_call = lstm_c._core.Kernel(K, R, b, activation_code("tanh"), activation_code("sigmoid"),
                                     wide=wide, single_rows=True)
    assert (every_call.single_rows_min_bytes, every_call.single_rows_max_samples) == (0, sys.maxsize)
    for name in results[None]:
        np.testing.assert_array_equal(results[None][name], results[False][name])
        np.testing.assert_array_equal(results[True][name], results[False][name])
