"""Stateful layers: state carried per sample index, resets, batch-size rules (SEMANTICS.md section 4)."""

import numpy as np
import pytest

import lstm_c
from support import random_problem, tol


def stateful_pair(rng, dtype=np.float32, B=3, T=5, D=2, U=4, **config):
    x, K, R, b = random_problem(rng, B, T, D, U, dtype)
    layer = lstm_c.LSTM(U, stateful=True, return_sequences=True, dtype=dtype, **config)
    layer.set_weights([K, R, b])
    long = lstm_c.LSTM(U, return_sequences=True, dtype=dtype, **config)
    long.set_weights([K, R, b])
    return x, layer, long


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_two_calls_equal_one_long_call(rng, dtype, go_backwards):
    x, layer, long = stateful_pair(rng, dtype, go_backwards=go_backwards)
    first, second = layer(x), layer(x)
    whole = long(np.concatenate([x, x], axis=1))
    T = x.shape[1]
    np.testing.assert_allclose(first, whole[:, :T], **tol(dtype))
    np.testing.assert_allclose(second, whole[:, T:], **tol(dtype))


def test_state_is_per_sample_index(rng):
    """Slot i of batch k+1 continues slot i of batch k, and nothing else."""
    x, layer, long = stateful_pair(rng)
    layer(x)
    y = np.random.default_rng(5).uniform(-1, 1, x.shape).astype(np.float32)
    second = layer(y)
    for i in range(x.shape[0]):
        whole = long(np.concatenate([x[i:i + 1], y[i:i + 1]], axis=1))
        np.testing.assert_allclose(second[i], whole[0, x.shape[1]:], **tol(np.float32))


def test_states_property_and_reset(rng):
    x, layer, _ = stateful_pair(rng)
    assert layer.states is None  # batch size not known yet
    first = layer(x)
    h, c = layer.states
    np.testing.assert_array_equal(h, first[:, -1])
    assert not np.allclose(c, 0)
    h[:] = 99  # states hands out copies
    assert not np.any(layer.states[0] == 99)
    layer.reset_states()
    np.testing.assert_array_equal(layer.states[0], 0)
    np.testing.assert_array_equal(layer(x), first)  # bit-exact repeat after a reset
    layer.reset_state()  # Keras 3 spelling
    np.testing.assert_array_equal(layer(x), first)


def test_reset_chosen_samples_only(rng):
    x, layer, _ = stateful_pair(rng)
    fresh = layer(x)
    carried = layer(x)
    layer.reset_states()
    layer(x)
    layer.reset_states(samples=[1])
    h, c = layer.states
    assert np.all(h[1] == 0) and np.all(c[1] == 0) and not np.allclose(h[[0, 2]], 0)
    out = layer(x)
    np.testing.assert_array_equal(out[1], fresh[1])       # slot 1 starts over
    np.testing.assert_array_equal(out[[0, 2]], carried[[0, 2]])  # slots 0 and 2 carry on


def test_reset_to_given_states(rng):
    x, layer, long = stateful_pair(rng)
    h0, c0 = (rng.uniform(-1, 1, (3, 4)).astype(np.float32) for _ in range(2))
    layer.reset_states(states=[h0, c0])
    np.testing.assert_allclose(layer(x), long(x, initial_state=[h0, c0]), **tol(np.float32))
    layer.reset_states(states=[h0[:1], c0[:1]], samples=[2])
    np.testing.assert_array_equal(layer.states[0][2], h0[0])


def test_initial_state_overrides_stored_state(rng):
    x, layer, long = stateful_pair(rng)
    layer(x)
    h0, c0 = (rng.uniform(-1, 1, (3, 4)).astype(np.float32) for _ in range(2))
    out = layer(x, initial_state=[h0, c0])
    np.testing.assert_allclose(out, long(x, initial_state=[h0, c0]), **tol(np.float32))
    np.testing.assert_allclose(layer.states[0], out[:, -1], **tol(np.float32))  # and is written back


def test_wrong_batch_size_raises_and_keeps_state(rng):
    x, layer, _ = stateful_pair(rng)
    layer(x)
    before = layer.states
    with pytest.raises(ValueError, match=r"batch size 3.*shape \(2, 5, 2\).*reset_states\(batch_size=2\)"):
        layer(x[:2])
    with pytest.raises(ValueError, match="batch size 3"):
        layer(x[:1])  # Keras broadcasts a batch of 1 inside predict; lstm_c never does
    np.testing.assert_array_equal(layer.states[0], before[0])
    layer.reset_states(batch_size=2)
    assert layer(x[:2]).shape == (2, 5, 4)
    assert layer.states[0].shape == (2, 4)


def test_batch_size_argument_and_build(rng):
    layer = lstm_c.LSTM(4, stateful=True, batch_size=2, seed=0)
    layer.build((2, None, 3))
    np.testing.assert_array_equal(layer.states[0], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="batch size 2"):
        layer(np.zeros((3, 4, 3)))
    built = lstm_c.LSTM(4, stateful=True, seed=0)
    built.build((5, 10, 3))
    assert built.batch_size == 5


def test_trace_advances_state_like_a_call(rng):
    x, layer, _ = stateful_pair(rng)
    twin = lstm_c.LSTM(4, stateful=True, return_sequences=True)
    twin.set_weights(layer.get_weights())
    layer(x)
    tr = twin.trace(x)
    np.testing.assert_array_equal(twin.states[0], layer.states[0])
    second = layer(x)
    tr2 = twin.trace(x)
    np.testing.assert_array_equal(tr2.outputs, second)
    np.testing.assert_array_equal(tr2.initial_h, tr.h[:, -1])  # where the second trace started


def test_stateful_with_mask_carries_final_state(rng):
    x, layer, long = stateful_pair(rng)
    mask = rng.random(x.shape[:2]) < 0.6
    mask[0] = False
    layer(x, mask=mask)
    want_h = long.trace(x, mask=mask).h[:, -1]
    np.testing.assert_allclose(layer.states[0], want_h, **tol(np.float32))
    np.testing.assert_array_equal(layer.states[0][0], 0)  # fully masked sample: initial state kept


def test_stateless_layer_has_no_state(rng):
    layer = lstm_c.LSTM(3, seed=0)
    layer(np.zeros((2, 3, 1)))
    assert layer.states is None
    with pytest.raises(AttributeError, match="not stateful"):
        layer.reset_states()


def test_reset_states_bad_samples(rng):
    x, layer, _ = stateful_pair(rng)
    layer(x)
    for bad in ([3], [-1], [0.5], [[0]]):
        with pytest.raises(ValueError, match=r"samples must be batch slots in \[0, 3\)"):
            layer.reset_states(samples=bad)
    with pytest.raises(ValueError, match="state h must have shape"):
        layer.reset_states(states=[np.zeros((3, 5)), np.zeros((3, 4))])
    # a bad new batch size is refused before the held state is dropped
    held = layer.states
    for bad in (0, -3, 2.5, "2", True):
        with pytest.raises(ValueError, match="reset_states: batch_size must be a positive integer"):
            layer.reset_states(batch_size=bad)
    assert layer.batch_size == 3
    for kept, before in zip(layer.states, held):
        np.testing.assert_array_equal(kept, before)
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None"):
        lstm_c.LSTM(4, stateful=True, batch_size=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_plain_calls_equal_general_calls(rng, dtype, return_sequences, go_backwards):
    """A C-contiguous array of the layer's dtype takes the plain path (one call into the
    kernel); a Fortran-ordered copy of it takes the general one. Both give the same bits,
    calls and traces alike, carry the same state, and hand out copies of it."""
    x, K, R, b = random_problem(rng, 3, 4, 2, 5, dtype)
    layers = [lstm_c.LSTM(5, stateful=True, return_state=True, return_sequences=return_sequences,
                          go_backwards=go_backwards, dtype=dtype) for _ in "pg"]
    for layer in layers:
        layer.set_weights([K, R, b])
    for _ in range(3):
        plain, general = layers[0](x), layers[1](np.asfortranarray(x))
        for got, want in zip(plain, general):
            np.testing.assert_array_equal(got, want)
        plain[1][...] = np.nan  # the returned h is the caller's, not the layer's state
        np.testing.assert_array_equal(layers[0].states[0], general[1])
        assert plain[0].dtype == dtype and plain[0].shape == ((3, 4, 5) if return_sequences else (3, 5))
        plain, general = layers[0].trace(x), layers[1].trace(np.asfortranarray(x))
        for name in ("states", "outputs", "initial_h", "initial_c"):
            np.testing.assert_array_equal(getattr(plain, name), getattr(general, name))
        np.testing.assert_array_equal(layers[0].states[1], general.c[:, -1])


def test_a_streaming_step_takes_the_plain_path(rng, monkeypatch):
    """A stateful layer's next batch, and a stateless call of one array, go straight to the
    kernel, as do their traces; what the plain path cannot take (other dtypes, a wrong batch size, dropout while
    training) goes the general way, which converts or says what is wrong."""
    x, layer, long = stateful_pair(rng, dropout=0.5)
    layer(x)  # the first call builds the state: the general path
    general = lstm_c.LSTM._run

    def no_general_path(*args, **kwargs):
        raise AssertionError("took the general path")

    monkeypatch.setattr(lstm_c.LSTM, "_run", no_general_path)
    layer(np.ascontiguousarray(x[:, :1]))
    long(x)
    layer.trace(x)
    long.trace(x)
    with pytest.raises(AssertionError, match="general path"):
        layer(x.astype(np.float64))
    with pytest.raises(AssertionError, match="general path"):
        layer(x, training=True)
    monkeypatch.setattr(lstm_c.LSTM, "_run", general)
    with pytest.raises(ValueError, match="batch size 3"):
        layer(x[:2])
