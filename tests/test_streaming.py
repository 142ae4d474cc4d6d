"""lstm_c.stream and ChunkRunner: time chunks with state carried equal one call on the whole
sequence; batches continue stateful models as predict does; the user's model is untouched."""

import tracemalloc

import numpy as np
import pytest

import lstm_c
from lstm_c.streaming import ChunkRunner, check_streamable

T = 23
CHUNK_SIZES = [1, 4, 7, T, 40]  # 4 and 7 do not divide T


def masked_inputs(rng, B=3, D=4):
    """Features with padded (all-zero) steps at the start, in the middle and at the end."""
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    x[0, 5:12] = 0
    x[1, :9] = 0
    x[2, 15:] = 0
    return x


def stacked_model(return_sequences, stateful=False, batch_size=None):
    return lstm_c.Sequential([
        lstm_c.Input((None, 4), batch_size=batch_size), lstm_c.Masking(),
        lstm_c.LSTM(5, return_sequences=True, seed=1, stateful=stateful),
        lstm_c.LSTM(6, return_sequences=return_sequences, seed=2, stateful=stateful),
        lstm_c.Dense(2, activation="softmax", seed=3)])


def joined(chunks, sequences):
    return np.concatenate(chunks, axis=1) if sequences else chunks[-1]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize("return_sequences", [True, False])
def test_stream_equals_one_call(rng, chunk_size, return_sequences):
    model = stacked_model(return_sequences)
    x = masked_inputs(rng)
    chunks = list(lstm_c.stream(model, x, chunk_size=chunk_size))
    assert len(chunks) == -(-T // chunk_size)
    np.testing.assert_allclose(joined(chunks, return_sequences), model(x), atol=1e-6)


def test_stream_of_token_ids_with_padding(rng):
    model = lstm_c.Sequential([lstm_c.Input((None,), dtype="int32"), lstm_c.Embedding(9, 4, mask_zero=True, seed=0),
                               lstm_c.LSTM(5, return_sequences=True, seed=1), lstm_c.Dense(3, seed=2)])
    ids = rng.integers(1, 9, size=(4, T))
    ids[0, 3:10] = 0
    ids[1, :6] = 0
    chunks = list(lstm_c.stream(model, ids, chunk_size=5))
    np.testing.assert_allclose(joined(chunks, True), model(ids), atol=1e-6)


def test_stream_of_a_generator_of_uneven_chunks(rng):
    model = stacked_model(True)
    x = masked_inputs(rng)
    bounds = [0, 2, 3, 11, 19, T]
    pieces = (x[:, a:b] for a, b in zip(bounds, bounds[1:]))
    np.testing.assert_allclose(joined(list(lstm_c.stream(model, pieces)), True), model(x), atol=1e-6)


def test_stream_of_a_functional_model_and_a_bare_layer(rng):
    source = lstm_c.Input((None, 4))
    sequence = lstm_c.LSTM(5, return_sequences=True, seed=1)(lstm_c.Masking()(source))
    model = lstm_c.Model(source, lstm_c.Dense(3, seed=2)(sequence))
    x = masked_inputs(rng)
    np.testing.assert_allclose(joined(list(lstm_c.stream(model, x, chunk_size=6)), True), model(x), atol=1e-6)

    layer = lstm_c.LSTM(5, return_state=True, seed=3)
    output, h, c = layer(x)
    *_, (last_output, last_h, last_c) = lstm_c.stream(layer, x, chunk_size=6)
    for got, expected in ((last_output, output), (last_h, h), (last_c, c)):
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_stateful_model_streams_from_zero_and_keeps_its_state(rng):
    model = stacked_model(True, stateful=True, batch_size=3)
    x = masked_inputs(rng)
    model(x[:, :4])  # the model now holds some state of its own
    held = [layer.states for layer in model.layers if layer.stateful]
    fresh = stacked_model(True)
    fresh.set_weights(model.get_weights())
    chunks = list(lstm_c.stream(model, x, chunk_size=5))
    np.testing.assert_allclose(joined(chunks, True), fresh(x), atol=1e-6)
    for before, layer in zip(held, [layer for layer in model.layers if layer.stateful]):
        for a, b in zip(before, layer.states):
            np.testing.assert_array_equal(a, b)


def test_stream_in_float64(rng):
    model = stacked_model(True)
    x = masked_inputs(rng)
    twin = lstm_c.Sequential([lstm_c.Input((None, 4)), lstm_c.Masking(dtype="float64"),
                              lstm_c.LSTM(5, return_sequences=True, dtype="float64"),
                              lstm_c.LSTM(6, return_sequences=True, dtype="float64"),
                              lstm_c.Dense(2, activation="softmax", dtype="float64")])
    twin.set_weights(model.get_weights())
    chunks = list(lstm_c.stream(model, x, chunk_size=5, dtype="float64"))
    assert chunks[0].dtype == np.float64
    np.testing.assert_allclose(joined(chunks, True), twin(x), rtol=1e-12, atol=1e-13)


def test_memory_stays_proportional_to_one_chunk(tmp_path, rng):
    """A memory-mapped sequence 100 times the chunk's size streams without loading it."""
    path = tmp_path / "long.npy"
    long = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(2, 100_000, 16))
    long[:] = rng.normal(size=(1, 100_000, 16)).astype(np.float32)
    del long
    model = lstm_c.Sequential([lstm_c.Input((None, 16)), lstm_c.LSTM(8, seed=0)])
    x = np.load(path, mmap_mode="r")
    tracemalloc.start()
    try:
        for output in lstm_c.stream(model, x, chunk_size=1000):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 10, f"streaming allocated {peak} bytes for a {x.nbytes}-byte input"
    np.testing.assert_allclose(output, model(np.asarray(x)), atol=1e-6)


@pytest.mark.parametrize("build, reason", [
    (lambda: lstm_c.Sequential([lstm_c.Input((None, 4)), lstm_c.Bidirectional(lstm_c.LSTM(3))]), "backwards"),
    (lambda: lstm_c.Sequential([lstm_c.Input((None, 4)), lstm_c.LSTM(3, go_backwards=True)]), "backwards"),
], ids=["bidirectional", "go_backwards"])
def test_models_that_cannot_stream_say_why(build, reason):
    with pytest.raises(ValueError, match=reason):
        next(lstm_c.stream(build(), np.zeros((1, 4, 4)), chunk_size=2))


def test_state_from_another_layer_cannot_stream():
    source, target = lstm_c.Input((None, 4)), lstm_c.Input((None, 3))
    _, h, c = lstm_c.LSTM(5, return_state=True)(source)
    model = lstm_c.Model([source, target], lstm_c.LSTM(5)(target, initial_state=[h, c]))
    with pytest.raises(ValueError, match="initial state comes from another layer"):
        check_streamable(model)


def test_runner_batches_continue_a_stateful_model_like_predict(rng):
    model = stacked_model(True, stateful=True, batch_size=3)
    x = np.concatenate([masked_inputs(rng), masked_inputs(rng)])
    runner = ChunkRunner(model)
    got = np.concatenate([runner.run(x[:3]), runner.run(x[3:])])
    assert all(layer.states is None or not np.any(layer.states[0]) for layer in model.layers if layer.stateful)
    np.testing.assert_allclose(got, model.predict(x), atol=1e-6)


def test_a_call_with_other_rows_than_the_carried_state_is_refused_in_those_terms(rng):
    """A chunk of 2 rows after chunks of 3 (or a stateful model's batch of 2 after 3) used
    to fail inside the first LSTM, as an initial_state of the wrong shape."""
    x = masked_inputs(rng)
    stream = lstm_c.stream(stacked_model(True), iter([x[:, :5], x[:2, 5:]]))
    next(stream)
    with pytest.raises(ValueError, match="this call has 2 rows, but the state carried from the calls before it "
                                         "is for 3 sequences: every chunk continues the same rows"):
        next(stream)
    runner = ChunkRunner(stacked_model(True, stateful=True, batch_size=3))
    runner.run(x)
    carry = runner.carry
    with pytest.raises(ValueError, match="has 1 row, but .* for 3 rows: a stateful layer's batches keep one size"):
        runner.run(x[:1])
    # the refused call changed nothing: the runner goes on as one resumed from before it
    np.testing.assert_array_equal(runner.run(x), ChunkRunner(runner.model, carry=carry).run(x))


def test_runner_sequences_give_the_output_for_every_prefix(rng):
    model = stacked_model(False)
    x = masked_inputs(rng)
    every_step = ChunkRunner(model, sequences=True).run(x)
    assert every_step.shape == (3, T, 2)
    for t in (0, 7, T - 1):
        np.testing.assert_allclose(every_step[:, t], model(x[:, :t + 1]), atol=1e-6)


def test_runner_states_and_trace(rng):
    model = stacked_model(True)
    x = masked_inputs(rng)
    runner = ChunkRunner(model, trace=True)
    runner.run(x)
    first, second = model.layers[1], model.layers[2]
    expected = first.trace(x, mask=np.any(x != 0, axis=-1))
    for name in ("i", "f", "g", "o", "c", "h", "outputs"):
        np.testing.assert_array_equal(getattr(runner.trace, name), getattr(expected, name))
    probe = lstm_c.LSTM(6, return_sequences=True, return_state=True)
    probe.set_weights(second.get_weights())
    _, h, c = probe(first(x, mask=np.any(x != 0, axis=-1)), mask=np.any(x != 0, axis=-1))
    np.testing.assert_allclose(runner.states["lstm_1"][0], h, atol=1e-6)
    np.testing.assert_allclose(runner.states["lstm_1"][1], c, atol=1e-6)
