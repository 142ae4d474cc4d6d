"""The micro-kernel products around the LSTM backward (lstm_c._backward): the Embedding folded
into the LSTM's backward, a Dense layer's products, on both GEMM paths."""

import numpy as np
import pytest

from lstm_c import _backward, _threads
from lstm_c.activations import activation_code
from support import engine_forward, random_problem, tol
from test_backward_engine import DTYPES, GRADIENTS, _with_gemm_path, run_both


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("go_backwards, masked, bias", [(False, False, True), (True, True, False)])
def test_embedding_folded_into_the_lstm_backward(fast, dtype, go_backwards, masked, bias):
    """input_ids + embeddings (x = E[ids]): dK and the table's gradient from dZ's rows summed by
    id equal dK from x and the table gradient summed from dX, on both GEMM paths."""
    rng = np.random.default_rng(7)
    B, T, V, D, U = 13, 5, 11, 6, 37            # ragged against 12-row and 32-column tiles
    ids = rng.integers(0, V, (B, T))
    E = rng.normal(size=(V, D)).astype(dtype)
    _, K, R, b = random_problem(rng, B, T, D, U, dtype)
    x = E[ids]
    mask = rng.random((B, T)) < 0.7 if masked else None
    upstream = dict(d_outputs=rng.normal(size=(B, T, U)).astype(dtype))
    engine, _ = _with_gemm_path(fast, run_both, x, K, R, b if bias else None, None, None, mask, None, upstream,
                                go_backwards=go_backwards)
    forward = engine_forward(x, K, R, b if bias else None, mask=mask, go_backwards=go_backwards)
    trace = np.stack([forward[name] for name in ("i", "f", "g", "o", "c_seq", "h_seq")])
    zeros = np.zeros((B, U), dtype)
    folded = _with_gemm_path(fast, _backward.lstm_backward, x, K, R, b if bias else None, trace, zeros, zeros,
                             mask=None if mask is None else mask.astype(np.uint8), activation=activation_code("tanh"),
                             recurrent_activation=activation_code("sigmoid"), go_backwards=go_backwards,
                             input_ids=ids, embeddings=E, **upstream)
    assert folded["x"] is None and folded["embeddings"].dtype == dtype
    t = tol(dtype)
    for name, expected in [(name, engine[name]) for name in GRADIENTS[1:]] + [
            ("embeddings", _backward.sum_rows_by_id(engine["x"], ids, V))]:
        if expected is None:
            assert folded[name] is None
            continue
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(folded[name], expected, rtol=t["rtol"], atol=t["atol"] * scale, err_msg=name)
    with pytest.raises(ValueError, match="input_ids must be in"):
        _backward.lstm_backward(x, K, R, None, trace, zeros, zeros, activation=2, recurrent_activation=1,
                                input_ids=ids + V, embeddings=E)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, features, units", [(6400, 256, 100), (13, 45, 37), (1, 1, 1), (25, 12, 64)])
def test_linear_gradients_equal_numpy(fast, dtype, rows, features, units):
    """A linear Dense layer's backward on the micro-kernels (ragged tiles) or NumPy."""
    rng = np.random.default_rng(rows + features)
    x = rng.normal(size=(rows, features)).astype(dtype)
    d_y = rng.normal(size=(rows, units)).astype(dtype)
    kernel = rng.normal(size=(features, units)).astype(dtype)
    d_kernel, d_bias, d_x = _with_gemm_path(fast, _backward.linear_gradients, x, d_y, kernel, True, True)
    expected = (x.T.astype(np.float64) @ d_y, d_y.astype(np.float64).sum(axis=0), d_y.astype(np.float64) @ kernel.T)
    for got, want in zip((d_kernel, d_bias, d_x), expected):
        assert got.dtype == dtype and got.shape == want.shape and got.flags.c_contiguous
        np.testing.assert_allclose(got, want, rtol=0, atol=(1e-5 if dtype == np.float32 else 1e-12)
                                   * np.sqrt(rows) * max(1.0, np.abs(want).max()))
    sequence = _with_gemm_path(fast, _backward.linear_gradients, x.reshape(1, rows, features),
                               d_y.reshape(1, rows, units), kernel, False, False, 2)
    assert sequence[1] is None and sequence[2] is None
    np.testing.assert_array_equal(sequence[0], d_kernel)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("rows, features, units", [(6400, 256, 100), (300, 70, 50), (7, 3, 2)])
def test_linear_forward_equals_numpy(fast, rows, features, units):
    """A Dense layer's x @ kernel + bias in training steps: micro-kernels for large float32
    products (ragged 12-row and 32-column tiles), NumPy for small ones and elsewhere."""
    rng = np.random.default_rng(rows)
    x = rng.normal(size=(2, rows, features)).astype(np.float32)
    kernel = rng.normal(size=(features, units)).astype(np.float32)
    bias = rng.normal(size=units).astype(np.float32)
    expected = x.astype(np.float64) @ kernel + bias
    for b in (bias, None):
        got = _with_gemm_path(fast, _backward.linear_forward, x, kernel, b, 2)
        assert got.shape == (2, rows, units) and got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_allclose(got, expected - (0 if b is not None else bias), rtol=0,
                                   atol=1e-5 * np.sqrt(features) * np.abs(expected).max())


def test_folded_embedding_gradients_do_not_depend_on_the_thread_count():
    """The sums by token id are split by columns across threads: each column's sum runs in
    one order whatever the thread count (float32, both GEMM paths)."""
    rng = np.random.default_rng(11)
    B, T, V, D, U = 24, 20, 30, 16, 128
    ids = rng.integers(0, V, (B, T))
    E = rng.normal(size=(V, D)).astype(np.float32)
    _, K, R, b = random_problem(rng, B, T, D, U, np.float32)
    forward = engine_forward(E[ids], K, R, b)
    trace = np.stack([forward[name] for name in ("i", "f", "g", "o", "c_seq", "h_seq")])
    zeros = np.zeros((B, U), np.float32)
    d_outputs = rng.normal(size=(B, T, U)).astype(np.float32)
    for fast in (True, False):
        one, two = (_with_gemm_path(fast, _backward.lstm_backward, E[ids], K, R, b, trace, zeros, zeros,
                                    d_outputs=d_outputs, activation=activation_code("tanh"),
                                    recurrent_activation=activation_code("sigmoid"), input_ids=ids, embeddings=E,
                                    n_threads=n) for n in (1, 2))
        for name in ("kernel", "recurrent_kernel", "bias", "embeddings", "h0", "c0"):
            np.testing.assert_array_equal(one[name], two[name], err_msg=f"{name}, fast={fast}")


def test_gemms_ask_openmp_for_no_more_threads_than_pieces():
    """Asked for the most threads a call may have (MAX_THREADS, here on two cores), the
    gradient and Dense GEMMs start no more than they have pieces (OpenMP would start them
    all) and give the same bits as one thread."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 70)).astype(np.float32)
    d_y = rng.normal(size=(300, 50)).astype(np.float32)
    kernel = rng.normal(size=(70, 50)).astype(np.float32)
    many = _threads.MAX_THREADS
    for fast in (True, False):
        one, lots = (_with_gemm_path(fast, _backward.linear_gradients, x, d_y, kernel, True, True, n)
                     for n in (1, many))
        for a, b in zip(one, lots):
            np.testing.assert_array_equal(a, b, err_msg=f"fast={fast}")
        one, lots = (_with_gemm_path(fast, _backward.linear_forward, x, kernel, None, n) for n in (1, many))
        np.testing.assert_array_equal(one, lots, err_msg=f"fast={fast}")
    B, T, D, U = 8, 30, 16, 32
    _, K, R, b = random_problem(rng, B, T, D, U, np.float32)
    xs = rng.normal(size=(B, T, D)).astype(np.float32)
    forward = engine_forward(xs, K, R, b)
    trace = np.stack([forward[name] for name in ("i", "f", "g", "o", "c_seq", "h_seq")])
    zeros = np.zeros((B, U), np.float32)
    d_outputs = rng.normal(size=(B, T, U)).astype(np.float32)
    for fast in (True, False):
        one, lots = (_with_gemm_path(fast, _backward.lstm_backward, xs, K, R, b, trace, zeros, zeros,
                                     d_outputs=d_outputs, activation=activation_code("tanh"),
                                     recurrent_activation=activation_code("sigmoid"), n_threads=n)
                     for n in (1, many))
        for name in ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0"):
            np.testing.assert_array_equal(one[name], lots[name], err_msg=f"{name}, fast={fast}")
