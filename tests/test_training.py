"""compile / fit / train_on_batch / evaluate, optimizers, stateful truncated BPTT, Ctrl-C."""

import numpy as np
import pytest

import lstm_c
from lstm_c import optimizers, reference, reference_backward
from lstm_c.training import Callback

F64 = dict(dtype="float64")


def sum_problem(rng, n=64, T=8, D=3):
    x = rng.normal(size=(n, T, D)).astype(np.float32)
    return x, x.sum(axis=(1, 2))[:, None] / 5


def small_model(seed=0, **lstm_options):
    return lstm_c.Sequential([lstm_c.LSTM(12, seed=seed, **lstm_options), lstm_c.Dense(1, seed=seed)])


def test_fit_reduces_the_loss_and_reports_history(rng, capsys):
    x, y = sum_problem(rng)
    model = small_model()
    model.compile(optimizer=optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, y, epochs=12, batch_size=16, validation_data=(x[:16], y[:16]), verbose=2, seed=0)
    assert set(history) == {"loss", "val_loss"} and len(history["loss"]) == 12
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert model.history is history
    assert "Epoch 12/12 - loss:" in capsys.readouterr().out
    assert model.evaluate(x[:16], y[:16]) == pytest.approx(history["val_loss"][-1])


def test_fit_is_reproducible_from_a_seed(rng):
    x, y = sum_problem(rng, n=32)
    results = []
    for _ in range(2):
        model = small_model(dropout=0.2, recurrent_dropout=0.2)
        model.compile(optimizers.SGD(0.05, momentum=0.9), "mse")
        results.append(model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=3)["loss"])
    assert results[0] == results[1]


def test_train_on_batch_is_gradients_then_one_optimizer_step(rng):
    x, y = sum_problem(rng, n=8)
    model, twin = small_model(), small_model()
    model.compile(optimizers.RMSprop(0.01, momentum=0.5, centered=True), "mse")
    value, grads = lstm_c.gradients(twin, x, y, "mse")
    weights = twin.get_weights()
    optimizers.RMSprop(0.01, momentum=0.5, centered=True).apply(grads, weights)
    assert model.train_on_batch(x, y) == pytest.approx(value)
    for got, expected in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, expected)


def test_evaluate_is_the_loss_of_predict(rng):
    x, y = sum_problem(rng, n=20)
    model = small_model()
    model.compile("sgd", "mse")
    assert model.evaluate(x, y, batch_size=6) == pytest.approx(np.mean((model.predict(x) - y) ** 2), rel=1e-6)


def test_compile_and_fit_errors(rng):
    x, y = sum_problem(rng, n=8)
    model = small_model()
    with pytest.raises(RuntimeError, match="must be compiled"):
        model.fit(x, y)
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile("adagrad", "mse")
    with pytest.raises(ValueError, match="needs a loss"):
        model.compile("adam")
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="8 input samples but targets of"):
        model.fit(x, y[:4])
    # evaluate used to score 8 samples against the first 8 of 12 targets without a word
    with pytest.raises(ValueError, match=r"evaluate: 8 input samples but targets of \[12\]"):
        model.evaluate(x, np.concatenate([y, y[:4]]))
    with pytest.raises(TypeError, match="cannot compute gradients through"):
        lstm_c.gradients(lstm_c.Sequential([object_layer()]), x, y, "mse")


@pytest.mark.parametrize("options, message", [
    (dict(validation_data=None, validation_split=0.99), "8 samples cannot be split"),
    (dict(validation_split=1.0), r"validation_split must be in \[0, 1\)"),
    (dict(validation_data="x"), r"validation_data must be \(x_val, y_val\).*got str"),
    (dict(validation_data=("x", "y", "weights")), r"sample weights are not supported\), got 3 items"),
    (dict(validation_data=("VX", "VY4")), "5 input samples but targets of"),
    (dict(epochs=2.5), "epochs must be a non-negative integer"),
    (dict(epochs=-1), "epochs must be a non-negative integer"),
    (dict(clipnorm=-1.0), "clipnorm must be positive"),
    (dict(clipnorm=float("nan")), "clipnorm must be positive"),
])
def test_bad_fit_arguments_are_refused_before_any_step(rng, options, message):
    """A wrong validation set, epoch count or clipnorm used to surface after an epoch of
    training (or turned the gradients around): now fit refuses it with the weights as
    they were."""
    x, y = sum_problem(rng, n=8)
    stand_ins = {"VX": x[:5], "VY4": y[:4]}
    if isinstance(options.get("validation_data"), tuple):
        options["validation_data"] = tuple(stand_ins.get(v, v) for v in options["validation_data"])
    model = small_model()
    model.compile("sgd", "mse")
    before = model.get_weights()
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0, **options)
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="clipnorm must be positive"):
        model.train_on_batch(x, y, clipnorm=0.0)


def test_validation_split_holds_out_the_last_samples_as_keras(rng):
    """validation_split=0.25 of 12 samples trains on the first 9 (floor(12 * 0.75)) and
    validates on the last 3, before shuffling: the run of validation_data=(x[9:], y[9:])."""
    x, y = sum_problem(rng, n=12)
    runs = []
    for options in (dict(validation_split=0.25), dict(validation_data=(x[9:], y[9:]))):
        model = small_model()
        model.compile("sgd", "mse")
        inputs, targets = (x, y) if "validation_split" in options else (x[:9], y[:9])
        runs.append(model.fit(inputs, targets, epochs=2, batch_size=3, verbose=0, seed=1, **options))
    assert runs[0] == runs[1] and len(runs[0]["val_loss"]) == 2


def object_layer():
    class Unknown:  # a layer-like object lstm_c has no backward rule for
        name, built, stateful, supports_masking = "unknown", True, False, True

        def __call__(self, x, mask=None, training=False):
            return x

        def compute_output_shape(self, shape):
            return shape

        def compute_mask(self, x, mask):
            return mask

        def get_weights(self):
            return []

    return Unknown()


def test_ctrl_c_stops_cleanly_keeping_the_weights(rng, capsys):
    x, y = sum_problem(rng, n=40)
    model = small_model()
    model.compile("adam", "mse")
    snapshot = {}

    class Interrupt(Callback):
        def on_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations == 7:
                snapshot["weights"] = self.model.get_weights()
                raise KeyboardInterrupt

    history = model.fit(x, y, epochs=5, batch_size=10, callbacks=[Interrupt()], verbose=0)
    assert history["loss"] == [pytest.approx(history["loss"][0])] and len(history["loss"]) == 1
    for got, kept in zip(model.get_weights(), snapshot["weights"]):
        np.testing.assert_array_equal(got, kept)
    assert "interrupted in epoch 2" in capsys.readouterr().err


# ---------------------------------------------------------------------------- stateful
def stateful_model(B=2, U=3, D=2):
    return lstm_c.Sequential([lstm_c.Input((None, D), batch_size=B, dtype="float64"),
                              lstm_c.LSTM(U, stateful=True, return_sequences=True, seed=4, **F64)])


def test_stateful_gradients_stop_at_the_batch_boundary(rng):
    """Truncated BPTT by hand: batch 2 starts from batch 1's final state, taken as a constant."""
    model = stateful_model()
    first, second = rng.normal(size=(2, 2, 5, 2))
    model.predict(first)                                        # state now after batch 1
    value, grads = lstm_c.gradients(model, second, np.zeros((2, 5, 3)), "mse")
    K, R, b = model.layers[0].get_weights()
    start = reference.lstm_forward(first, K, R, b)
    run = reference.lstm_forward(second, K, R, b, [start["h"], start["c"]])
    d_outputs = 2 * run["outputs"] / run["outputs"].size        # of mean((out - 0)^2)
    expected = reference_backward.lstm_backward(second, K, R, b, [start["h"], start["c"]], d_outputs=d_outputs)
    assert value == pytest.approx(np.mean(run["outputs"] ** 2))
    for got, name in zip(grads, ("kernel", "recurrent_kernel", "bias")):
        np.testing.assert_allclose(got, expected[name], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.layers[0].states[0], run["h"], rtol=1e-12)   # the state moved on


def test_stateful_fit_resets_state_each_epoch_and_needs_ordered_batches(rng):
    model = stateful_model()
    model.compile(optimizers.SGD(0.1), "mse")
    x, y = rng.normal(size=(6, 5, 2)), rng.normal(size=(6, 5, 3)) * 0.1
    seen = []

    class Watch(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.model.layers[0].states[0].copy())

    model.fit(x, y, epochs=3, shuffle=False, verbose=0, callbacks=[Watch()])
    assert len(seen) == 3 and all(np.all(state == 0) for state in seen)
    assert np.any(model.layers[0].states[0] != 0)
    with pytest.raises(ValueError, match="needs shuffle=False"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="multiple of 2 samples"):
        model.fit(x[:5], y[:5], shuffle=False, verbose=0)


# ---------------------------------------------------------------------------- optimizers
def test_optimizer_formulas_and_defaults():
    g, w0 = np.array([0.5, -1.0]), np.array([1.0, 2.0])

    w = [w0.copy()]
    sgd = optimizers.SGD(0.1, momentum=0.9, nesterov=True)
    sgd.apply([g], w)
    sgd.apply([g], w)
    m1 = -0.1 * g
    m2 = 0.9 * m1 - 0.1 * g
    np.testing.assert_allclose(w[0], w0 + (0.9 * m1 - 0.1 * g) + (0.9 * m2 - 0.1 * g))

    w = [w0.copy()]
    optimizers.Adam().apply([g], w)   # first step: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(.001) / 0.1
    alpha = 0.001 * np.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(w[0], w0 - alpha * 0.1 * g / (np.sqrt(0.001 * g * g) + 1e-7))

    w = [w0.copy()]
    optimizers.RMSprop().apply([g], w)
    np.testing.assert_allclose(w[0], w0 - 0.001 * g / np.sqrt(0.1 * g * g + 1e-7))

    w = [w0.copy()]
    optimizers.SGD(1.0, clipnorm=0.5).apply([np.array([3.0, 4.0])], w)
    np.testing.assert_allclose(w[0], w0 - np.array([0.3, 0.4]))
    assert repr(optimizers.get("adam")).startswith("Adam(learning_rate=0.001")


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_progress_bar_or_a_line_per_epoch(rng, capsys, monkeypatch, tqdm_installed):
    if not tqdm_installed:
        monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)   # import fails: no bar
    elif pytest.importorskip("tqdm") is None:
        return
    x, y = sum_problem(rng, n=8)
    model = small_model()
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, batch_size=4, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "loss: " in out


def test_packed_weights_layout():
    """pack_weights: column blk * 4W + gate * W + lane holds Keras column gate * U + blk * W + lane,
    zero where the last block is padding (the layout _packing.py's docstring gives)."""
    from lstm_c._packing import pack_weights

    rng = np.random.default_rng(0)
    for D, U, W in [(3, 5, 4), (2, 8, 4), (1, 1, 16)]:
        K, R, b = rng.normal(size=(D, 4 * U)), rng.normal(size=(U, 4 * U)), rng.normal(size=4 * U)
        weights, bias = pack_weights(K, R, b, W)
        n_blocks = -(-U // W)
        assert weights.shape == (n_blocks, D + U, 4 * W) and weights.flags.c_contiguous
        stacked = np.concatenate([K, R])
        for blk in range(n_blocks):
            for gate in range(4):
                for lane in range(W):
                    unit = blk * W + lane
                    column = weights[blk, :, gate * W + lane]
                    expected = stacked[:, gate * U + unit] if unit < U else 0
                    np.testing.assert_array_equal(column, expected)
                    assert bias[blk * 4 * W + gate * W + lane] == (b[gate * U + unit] if unit < U else 0)
        assert pack_weights(K, R, None, W)[1] is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_embedding_folded_into_lstm_gives_the_unfolded_gradients(dtype):
    """backprop folds Embedding -> LSTM (the table's gradient from the LSTM's dZ); a Dropout(0)
    in between keeps the layers apart. Both walks give the same gradients."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 9, (14, 6))
    ids[0, 3:] = 0
    labels = rng.integers(0, 5, (14, 6))

    def model(*between):
        return lstm_c.Sequential([lstm_c.Embedding(9, 4, mask_zero=True, seed=1, dtype=dtype), *between,
                                  lstm_c.LSTM(33, return_sequences=True, seed=1, dtype=dtype),
                                  lstm_c.Dense(5, seed=1, dtype=dtype)])

    folded, apart = model(), model(lstm_c.Dropout(0.0, dtype=dtype))
    _, grads = lstm_c.gradients(folded, ids, labels, "sparse_categorical_crossentropy", from_logits=True)
    _, expected = lstm_c.gradients(apart, ids, labels, "sparse_categorical_crossentropy", from_logits=True)
    rtol = 1e-4 if dtype == "float32" else 1e-12
    for n, (got, want) in enumerate(zip(grads, expected)):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max(), err_msg=f"weight {n}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_equals_the_numpy_formulas(monkeypatch, dtype, amsgrad):
    """Adam's compiled one-pass update (lstm_c._backward.adam_update) against its NumPy lines,
    NaN included; bit-identical on x86-64, where nothing is contracted into FMAs."""
    import platform

    rng = np.random.default_rng(1)
    shapes = [(33, 40), (7,), (3,)]
    fused_weights = [rng.normal(size=s).astype(dtype) for s in shapes]
    numpy_weights = [w.copy() for w in fused_weights]
    fused, plain = optimizers.Adam(amsgrad=amsgrad), optimizers.Adam(amsgrad=amsgrad)
    for step in range(4):
        grads = [rng.normal(size=s).astype(dtype) * 10.0 ** rng.integers(-6, 3) for s in shapes]
        if step == 2:
            grads[2][1] = np.nan
        fused.apply(grads, fused_weights)
        with monkeypatch.context() as patch:
            patch.setattr(optimizers, "_adam_update", None)
            plain.apply(grads, numpy_weights)
    exact = platform.machine() in ("x86_64", "AMD64")
    for got, expected in zip(fused_weights + list(fused._slots.values()), numpy_weights + list(plain._slots.values())):
        if exact:
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("batch, units", [(2, 4), (16, 704)])
def test_training_calls_reuse_the_trace_only_once_it_is_released(batch, units):
    """A training call reuses the previous call's trace buffer (no fresh 40 MB to fault in
    every step), but never one that something still holds: a shared layer's earlier call in
    the same step, or a caller keeping a view of it. A trace starts on a cache line: it is a
    view of a byte buffer, which its views reference instead. (16, 704): a 17 MB trace,
    written with streaming stores."""
    layer = lstm_c.LSTM(units, return_sequences=True, seed=0)
    x = np.ones((batch, 64, 5), np.float32)
    _, first = layer.call_for_training(x)
    _, second = layer.call_for_training(x)
    assert second["trace"] is not first["trace"]   # the first is still held
    expected, address = second["trace"].copy(), second["trace"].ctypes.data
    del first, second
    _, third = layer.call_for_training(x)
    assert third["trace"].ctypes.data == address     # released: reused
    assert third["trace"].base is not None and third["trace"].ctypes.data % 64 == 0
    assert (third["trace"].nbytes >= lstm_c._core.STREAMED_TRACE_BYTES) == (units == 704)
    np.testing.assert_array_equal(third["trace"], expected)
    kept_view = third["trace"][5]
    del third
    _, fourth = layer.call_for_training(x)
    assert not np.shares_memory(fourth["trace"], kept_view)
