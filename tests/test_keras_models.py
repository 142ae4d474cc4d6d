"""Live parity with Keras 3 for whole models and files.

Keras models with random weights are saved as .keras and as legacy .h5; lstm_c loads each
file (without Keras) and must predict what the Keras model predicts, within 1e-5. Models
lstm_c saves must load in Keras and predict the same. Skipped without Keras.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

import lstm_c  # noqa: E402

# Keras (TensorFlow backend) warns about NumPy 2 copy semantics on every conversion.
pytestmark = [pytest.mark.oracle, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TOL = dict(rtol=1e-5, atol=1e-5)
FORMATS = [".keras", ".h5"]
L = keras.layers


def randomize(model, seed=0, scale=0.5):
    """Give every weight of a Keras model random values (the initial biases are all zero)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-scale, scale, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def as_list(outputs):
    return [np.asarray(o) for o in outputs] if isinstance(outputs, (list, tuple)) else [np.asarray(outputs)]


def assert_same(got, want):
    got, want = as_list(got), as_list(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL)


def round_trip(keras_model, tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    keras_model.save(path)
    return lstm_c.load(path)


def token_ids(rng, batch, timesteps, vocab, padded=True):
    ids = rng.integers(1, vocab, (batch, timesteps))
    if padded:
        for row in range(batch):
            ids[row, rng.integers(1, timesteps + 1):] = 0  # trailing padding of random length
        ids[0] = 0  # one sample entirely padding
    return ids


# ---------------------------------------------------------------------------- Keras files -> lstm_c
@pytest.mark.parametrize("suffix", FORMATS)
def test_stateful_char_rnn_over_several_predict_calls(tmp_path, suffix):
    vocab, batch = 20, 2
    model = randomize(keras.Sequential([keras.Input((None,), batch_size=batch, dtype="int32"),
                                        L.Embedding(vocab, 6), L.LSTM(8, return_sequences=True, stateful=True),
                                        L.Dense(vocab)]))
    loaded = round_trip(model, tmp_path, suffix)
    assert loaded.stateful_batch_size == batch
    rng = np.random.default_rng(1)
    for call in range(3):  # each predict continues the state of the previous one
        ids = rng.integers(0, vocab, (4, 5))
        assert_same(loaded.predict(ids), model.predict(ids, batch_size=batch, verbose=0))


@pytest.mark.parametrize("suffix", FORMATS)
def test_trained_stacked_classifier(tmp_path, suffix):
    """A compiled, trained model: its file also holds optimizer state, which lstm_c ignores."""
    model = randomize(keras.Sequential([keras.Input((7, 4)), L.LSTM(6, return_sequences=True), L.Dropout(0.3),
                                        L.LSTM(5, return_sequences=True, recurrent_activation="hard_sigmoid"),
                                        L.LSTM(4, activation="relu"), L.Dense(3, activation="softmax")]), seed=2)
    x = np.random.default_rng(2).normal(size=(8, 7, 4)).astype("float32")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    assert_same(round_trip(model, tmp_path, suffix)(x), model(x))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("suffix", FORMATS)
def test_bidirectional_tagger_with_masks(tmp_path, suffix, merge_mode):
    vocab = 15
    ids_in = keras.Input((None,), dtype="int32")
    embedded = L.Embedding(vocab, 5, mask_zero=True)(ids_in)
    sequences = L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode=merge_mode)(embedded)
    tag = L.TimeDistributed(L.Dense(3, activation="softmax"))
    outputs = [tag(s) for s in sequences] if merge_mode is None else tag(sequences)
    summary = L.Bidirectional(L.LSTM(3, return_state=True), merge_mode=merge_mode)(embedded)
    model = randomize(keras.Model(ids_in, as_outputs(outputs) + list(summary)), seed=3)
    ids = token_ids(np.random.default_rng(3), 4, 6, vocab)
    assert_same(round_trip(model, tmp_path, suffix)(ids), model(ids))


def as_outputs(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


@pytest.mark.parametrize("suffix", FORMATS)
def test_masking_and_go_backwards(tmp_path, suffix):
    model = randomize(keras.Sequential([keras.Input((6, 3)), L.Masking(mask_value=-1.0),
                                        L.LSTM(5, return_sequences=True, go_backwards=True),
                                        L.Dense(4, activation="tanh"),
                                        L.LSTM(3, go_backwards=True)]), seed=4)
    x = np.random.default_rng(4).normal(size=(4, 6, 3)).astype("float32")
    x[0, 4:] = -1.0
    x[1, :2] = -1.0
    x[2] = -1.0
    assert_same(round_trip(model, tmp_path, suffix)(x), model(x))


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_sequential_nested_in_a_sequential_runs_as_its_layers(tmp_path, suffix):
    """Keras lets a Sequential be a layer of another (a pretrained encoder under a new head);
    lstm_c runs its layers in its place, the mask of its Masking reaching the outer LSTM,
    with its weights read from inside the nested model in both formats."""
    encoder = keras.Sequential([keras.Input((None, 3)), L.Masking(mask_value=0.0),
                                L.LSTM(5, return_sequences=True), L.Dropout(0.2)], name="encoder")
    model = randomize(keras.Sequential([keras.Input((None, 3)), encoder, L.LSTM(4), L.Dense(2)]), seed=7)
    x = np.random.default_rng(7).normal(size=(3, 6, 3)).astype("float32")
    x[0, 3:] = 0.0
    loaded = round_trip(model, tmp_path, suffix)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in encoder.layers] + \
        [layer.name for layer in model.layers[1:]]
    assert_same(loaded(x), model(x))
    outer = keras.Sequential([keras.Input((None, 3)), keras.Sequential([encoder], name="wrapper"), L.LSTM(2)])
    outer.save(tmp_path / f"deeper{suffix}")
    with pytest.raises(ValueError, match="the Sequential 'wrapper' holds another Sequential .'encoder'.: "
                                         "lstm_c reads one level of nesting"):
        lstm_c.load(tmp_path / f"deeper{suffix}")
    source = keras.Input((None, 3))
    keras.Model(source, L.Dense(1)(encoder(source))).save(tmp_path / f"functional{suffix}")
    with pytest.raises(ValueError, match="layer 'encoder' is a whole Sequential model: lstm_c runs a model used "
                                         "as a layer only when both are Sequential"):
        lstm_c.load(tmp_path / f"functional{suffix}")


def keras_encoder_decoder():
    source, target = keras.Input((None, 4)), keras.Input((None, 6))
    _, h, c = L.LSTM(5, return_state=True)(L.Masking()(source))
    decoded, dh, dc = L.LSTM(5, return_sequences=True, return_state=True)(target, initial_state=[h, c])
    return randomize(keras.Model([source, target], [L.Dense(6, activation="softmax")(decoded), dh, dc, h]), seed=5)


@pytest.mark.parametrize("suffix", FORMATS)
def test_functional_model_returning_states(tmp_path, suffix):
    model = keras_encoder_decoder()
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(3, 7, 4)).astype("float32"), rng.normal(size=(3, 4, 6)).astype("float32")
    x[1, 5:] = 0
    loaded = round_trip(model, tmp_path, suffix)
    assert_same(loaded([x, y]), model([x, y]))


# ---------------------------------------------------------------------------- lstm_c -> Keras
def test_lstm_c_models_load_in_keras(tmp_path):
    rng = np.random.default_rng(6)
    ids_in = lstm_c.Input((None,), dtype="int32")
    embedded = lstm_c.Embedding(12, 4, mask_zero=True, seed=0)(ids_in)
    y, fh, fc, bh, bc = lstm_c.Bidirectional(lstm_c.LSTM(3, return_sequences=True, return_state=True, seed=1),
                                             merge_mode="ave")(embedded)
    decoded = lstm_c.LSTM(3, go_backwards=True, return_sequences=True, seed=2)(y, initial_state=[bh, bc])
    ours = lstm_c.Model(ids_in, [lstm_c.Dense(5, activation="softmax", seed=3)(decoded), fh])
    ours.save(tmp_path / "tagger.keras")
    theirs = keras.saving.load_model(tmp_path / "tagger.keras")
    ids = token_ids(rng, 4, 6, 12)
    assert_same(ours(ids), theirs(ids))
    # And back: Keras re-saves it, lstm_c reads Keras's file.
    theirs.save(tmp_path / "again.keras")
    assert_same(lstm_c.load(tmp_path / "again.keras")(ids), theirs(ids))


def test_stateful_lstm_c_model_loads_in_keras(tmp_path):
    ours = lstm_c.Sequential([lstm_c.Embedding(10, 3, seed=0), lstm_c.LSTM(4, return_sequences=True, stateful=True,
                                                                           seed=1), lstm_c.Dense(10, seed=2)])
    rng = np.random.default_rng(7)
    first = rng.integers(0, 10, (2, 5))
    ours(first)  # fixes the input shape and the batch size (2)
    ours.reset_states()
    ours.save(tmp_path / "char_rnn.keras")
    theirs = keras.saving.load_model(tmp_path / "char_rnn.keras")
    for ids in (first, rng.integers(0, 10, (2, 5)), rng.integers(0, 10, (2, 3))):
        assert_same(ours.predict(ids), theirs.predict(ids, verbose=0))
