"""Sequential and functional models: masks flowing between layers, state passing,
stateful predict, summary, weights, and .keras round trips inside lstm_c."""

import subprocess
import sys

import numpy as np
import pytest

import lstm_c
from support import package_env
from lstm_c.reference import (bidirectional_forward, dense_forward, embedding_forward, lstm_forward,
                              masking_forward)

TOL = dict(rtol=1e-5, atol=1e-6)


def char_rnn(vocab=12, embedding_dim=4, units=5, batch_size=None, stateful=False, seed=0):
    inputs = [lstm_c.Input((None,), batch_size=batch_size, dtype="int32")] if batch_size else []
    return lstm_c.Sequential(inputs + [
        lstm_c.Embedding(vocab, embedding_dim, mask_zero=True, seed=seed),
        lstm_c.LSTM(units, return_sequences=True, stateful=stateful, seed=seed + 1),
        lstm_c.Dense(vocab, seed=seed + 2),
    ])


def test_sequential_passes_embedding_mask_through_lstm_and_dense(rng):
    model = lstm_c.Sequential([lstm_c.Embedding(9, 3, mask_zero=True, seed=0),
                               lstm_c.LSTM(4, return_sequences=True, seed=1),
                               lstm_c.Dense(4, activation="tanh", seed=2),
                               lstm_c.LSTM(2, seed=3)])
    ids = np.array([[3, 1, 0, 0, 5], [0, 2, 8, 7, 1], [0, 0, 0, 0, 0]])
    got = model(ids)
    table, (K1, R1, b1), (Kd, bd), (K2, R2, b2) = (layer.get_weights() for layer in model.layers)
    table = table[0]
    x, mask = embedding_forward(ids, table, mask_zero=True)
    h1 = lstm_forward(x, K1, R1, b1, mask=mask)["outputs"]
    expected = lstm_forward(dense_forward(h1, Kd, bd, "tanh"), K2, R2, b2, mask=mask)["last_output"]
    np.testing.assert_allclose(got, expected, **TOL)
    assert np.all(got[2] == 0)  # a fully masked sample outputs zeros


def test_masking_reaches_a_bidirectional_and_go_backwards_lstm(rng):
    model = lstm_c.Sequential([lstm_c.Input((6, 3)), lstm_c.Masking(-1.0),
                               lstm_c.LSTM(3, return_sequences=True, go_backwards=True, seed=0),
                               lstm_c.Bidirectional(lstm_c.LSTM(2, return_sequences=True, seed=1), merge_mode="mul")])
    x = rng.uniform(-1, 1, (3, 6, 3)).astype("float32")
    x[0, 4:] = -1.0
    x[1, :2] = -1.0
    masked, mask = masking_forward(x, -1.0)
    backward, bi = model.layers[1], model.layers[2]
    h = lstm_forward(masked, *backward.get_weights(), mask=mask, go_backwards=True)["outputs"]
    weights = bi.get_weights()
    # Keras passes the mask on unreversed, although go_backwards reversed the sequence.
    expected = bidirectional_forward(h, weights[:3], weights[3:], mask=mask, merge_mode="mul",
                                     return_sequences=True)["outputs"]
    np.testing.assert_allclose(model(x), expected, **TOL)


def encoder_decoder(features=3, vocab=5, units=4):
    source, target = lstm_c.Input((None, features), name="source"), lstm_c.Input((None, vocab), name="target")
    _, h, c = lstm_c.LSTM(units, return_state=True, seed=0, name="encoder")(source)
    decoder = lstm_c.LSTM(units, return_sequences=True, return_state=True, seed=1, name="decoder")
    sequence, _, _ = decoder(target, initial_state=[h, c])
    dense = lstm_c.Dense(vocab, activation="softmax", seed=2, name="probabilities")
    return lstm_c.Model([source, target], dense(sequence), name="seq2seq"), (source, h, c), decoder, dense


def test_functional_encoder_states_start_the_decoder(rng):
    model, _, decoder, dense = encoder_decoder()
    encoder = model.layers[2]
    x, y = rng.uniform(-1, 1, (2, 7, 3)), np.eye(5)[rng.integers(0, 5, (2, 4))]
    enc = lstm_forward(x.astype("float32"), *encoder.get_weights())
    dec = lstm_forward(y.astype("float32"), *decoder.get_weights(), initial_state=[enc["h"], enc["c"]])
    np.testing.assert_allclose(model([x, y]), dense_forward(dec["outputs"], *dense.get_weights(), "softmax"), **TOL)
    assert [layer.name for layer in model.layers] == ["source", "target", "encoder", "decoder", "probabilities"]


def test_shared_layers_make_an_inference_loop_that_matches_teacher_forcing(rng):
    model, (source, h, c), decoder, dense = encoder_decoder()
    encoder_model = lstm_c.Model(source, [h, c])
    step_input = lstm_c.Input((1, 5))
    state_inputs = [lstm_c.Input((4,)), lstm_c.Input((4,))]
    step, step_h, step_c = decoder(step_input, initial_state=state_inputs)
    decoder_model = lstm_c.Model([step_input] + state_inputs, [dense(step), step_h, step_c])
    x, y = rng.uniform(-1, 1, (2, 7, 3)), np.eye(5)[rng.integers(0, 5, (2, 4))]
    states = encoder_model(x)
    steps = []
    for t in range(4):
        probabilities, *states = decoder_model([y[:, t:t + 1]] + states)
        steps.append(probabilities)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), model([x, y]), **TOL)


def test_a_layer_called_with_initial_state_gets_no_implicit_mask_but_passes_it_on(rng):
    """Keras 3 hands a layer its input's mask only when that input is the call's one tensor;
    the outputs still carry the mask on. Keras 2 passed it in both cases (keras2_masking)."""
    ids_in = lstm_c.Input((None,), dtype="int32")
    embedded = lstm_c.Embedding(7, 3, mask_zero=True, seed=0)(ids_in)
    _, h, c = lstm_c.LSTM(2, return_state=True, seed=1)(embedded)
    middle = lstm_c.LSTM(2, return_sequences=True, seed=2)(embedded, initial_state=[h, c])
    model = lstm_c.Model(ids_in, lstm_c.LSTM(2, seed=3)(middle))
    ids = np.array([[0, 3, 4, 0, 0], [5, 6, 1, 2, 3]])
    table, first, second, third = (layer.get_weights() for layer in model.layers[1:])
    x, mask = embedding_forward(ids, table[0], mask_zero=True)
    start = lstm_forward(x, *first, mask=mask)
    for keras2, middle_mask in ((False, None), (True, mask)):
        model.keras2_masking = keras2
        h2 = lstm_forward(x, *second, initial_state=[start["h"], start["c"]], mask=middle_mask)["outputs"]
        np.testing.assert_allclose(model(ids), lstm_forward(h2, *third, mask=mask)["last_output"], **TOL)


def test_stateful_predict_continues_each_sample_slot(rng):
    model = char_rnn(batch_size=2, stateful=True)
    ids = rng.integers(1, 12, (6, 5))
    got = model.predict(ids)
    # Slot s of batch k continues slot s of batch k - 1: rows s, s + 2, s + 4 form one stream.
    table, lstm_weights, dense_weights = ([*layer.get_weights()] for layer in model.layers)
    for slot in range(2):
        stream = np.concatenate(list(ids[slot::2]), axis=0)[None]
        run = lstm_forward(embedding_forward(stream, table[0])[0], *lstm_weights)
        expected = dense_forward(run["outputs"], *dense_weights)[0].reshape(3, 5, 12)
        np.testing.assert_allclose(got[slot::2], expected, **TOL)
    model.reset_states()
    np.testing.assert_array_equal(model.predict(ids[:2]), got[:2])
    with pytest.raises(ValueError, match="batch size 2: predict needs batch_size=2 .*, got batch_size=3"):
        model.predict(ids, batch_size=3)
    with pytest.raises(ValueError, match="needs a multiple of 2 samples, got 5"):
        model.predict(ids[:5])
    with pytest.raises(ValueError, match="stateful with state for batch size 2"):
        model(ids[:1])


def test_stateless_predict_batches_are_independent(rng):
    model = char_rnn()
    ids = rng.integers(0, 12, (7, 6))
    np.testing.assert_allclose(model.predict(ids, batch_size=3), model(ids), **TOL)
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None, got 0"):
        model.predict(ids, batch_size=0)


def test_summary_lists_shapes_and_parameter_counts():
    text = char_rnn(vocab=12, embedding_dim=4, units=5, batch_size=2, stateful=True).summary(print_fn=None)
    assert "embedding (Embedding)  (2, None, 4)" in text
    assert "lstm (LSTM)            (2, None, 5)" in text and "200" in text  # 4 * 5 * (4 + 5 + 1)
    assert "dense (Dense)          (2, None, 12)" in text and "72" in text
    assert "Total params: 320 (1.25 KB)" in text
    model, *_ = encoder_decoder()
    text = model.summary(print_fn=None)
    assert "decoder (LSTM)" in text and "target[0][0], encoder[0][1], encoder[0][2]" in text
    assert "[(None, None, 4), (None, 4), (None, 4)]" in text
    lines = []
    assert lstm_c.Sequential([lstm_c.LSTM(3)]).summary(print_fn=lines.append) is None
    assert "0 (unbuilt)" in lines[0] and "?" in lines[0]


def test_weights_round_trip_and_errors(rng):
    model, *_ = encoder_decoder()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 16), (4, 16), (16,), (5, 16), (4, 16), (16,), (4, 5), (5,)]
    other, *_ = encoder_decoder()
    other.set_weights(weights)
    x, y = rng.uniform(size=(1, 2, 3)), rng.uniform(size=(1, 3, 5))
    np.testing.assert_array_equal(other([x, y]), model([x, y]))
    with pytest.raises(ValueError, match="has 8 weight arrays, got 9"):
        other.set_weights(weights + [weights[0]])
    with pytest.raises(ValueError, match="not built yet"):
        lstm_c.Sequential([lstm_c.LSTM(3)]).set_weights([])


def test_model_errors_say_expected_and_got():
    a, b = lstm_c.Input((2, 3)), lstm_c.Input((2, 3), name="other")
    y = lstm_c.LSTM(2)(b)
    with pytest.raises(ValueError, match=r"depend on the input 'other' of shape \(None, 2, 3\), which is not "
                                         r"among the model's inputs \['input_layer'\]"):
        lstm_c.Model(a, y)
    # unnamed Inputs share their default name: the message says it is another one
    with pytest.raises(ValueError, match=r"input 'input_layer' \(another lstm_c.Input of that name\) of shape "
                                         r"\(None, 5, 3\)"):
        lstm_c.Model(a, lstm_c.LSTM(2)(lstm_c.Input((5, 3))))
    with pytest.raises(ValueError, match="returns several .* use lstm_c.Model"):
        lstm_c.Sequential([lstm_c.LSTM(2, return_state=True)])
    model = lstm_c.Model([a, b], [y])
    with pytest.raises(ValueError, match="takes 2 input arrays, got 1"):
        model([np.zeros((1, 2, 3))])
    with pytest.raises(ValueError, match=r"input 1 \('other'\) expects shape \(None, 2, 3\), got an array of shape "
                                         r"\(1, 2, 4\)"):
        model([np.zeros((1, 2, 3)), np.zeros((1, 2, 4))])
    with pytest.raises(ValueError, match="LSTM.units=2. was built for 3 features, got input with 4"):
        model.layers[2](lstm_c.Input((2, 4)))
    with pytest.raises(ValueError, match="saves Keras 3 .keras files"):
        model.save("model.h5")
    with pytest.raises(TypeError, match="holds no values"):
        np.asarray(y)


def test_save_and_load_round_trip(tmp_path, rng):
    ids = rng.integers(0, 12, (4, 6))
    stateful = char_rnn(batch_size=2, stateful=True)
    stateful.save(tmp_path / "char_rnn.keras")
    loaded = lstm_c.load(tmp_path / "char_rnn.keras")
    assert isinstance(loaded, lstm_c.Sequential) and loaded.stateful_batch_size == 2
    np.testing.assert_array_equal(loaded.predict(ids), stateful.predict(ids))
    model, *_ = encoder_decoder()
    model.save(tmp_path / "seq2seq.keras")
    loaded = lstm_c.load(str(tmp_path / "seq2seq.keras"))
    x, y = rng.uniform(size=(2, 3, 3)), rng.uniform(size=(2, 4, 5))
    np.testing.assert_array_equal(loaded([x, y]), model([x, y]))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.summary(print_fn=None).replace("seq2seq", "") == model.summary(print_fn=None).replace("seq2seq", "")


def test_loading_needs_no_framework(tmp_path):
    char_rnn(batch_size=1).save(tmp_path / "m.keras")
    code = ("import sys, numpy as np, lstm_c; m = lstm_c.load(sys.argv[1]); m.predict(np.ones((1, 3), int)); "
            "print([n for n in ('tensorflow', 'keras', 'torch', 'jax') if n in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras")], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env=package_env())
    assert out.stdout.strip() == "[]"



def test_predict_batches_a_large_input_by_default(rng, monkeypatch):
    """Without batch_size, a stateless model runs 4096 samples per call: same results as
    one call over everything (the LSTM's sums do not depend on the batch)."""
    from lstm_c.model import DEFAULT_PREDICT_BATCH_SIZE

    model = lstm_c.Sequential([lstm_c.Input((3, 2)), lstm_c.LSTM(4, seed=1)])
    x = rng.standard_normal((DEFAULT_PREDICT_BATCH_SIZE + 5, 3, 2)).astype(np.float32)
    calls = []
    call = lstm_c.LSTM.__call__

    def counting_call(layer, x, *args, **kwargs):
        calls.append(len(x))
        return call(layer, x, *args, **kwargs)

    monkeypatch.setattr(lstm_c.LSTM, "__call__", counting_call)
    out = model.predict(x)
    assert calls == [DEFAULT_PREDICT_BATCH_SIZE, 5]
    np.testing.assert_array_equal(out, model.predict(x, batch_size=len(x)))
