"""Training for lstm_c models, Keras-shaped: compile, fit, train_on_batch, evaluate.

:class:`TrainingMixin` is a base of every model (Sequential and functional). A step runs
the model through a :class:`lstm_c.backprop.Tape`, takes the loss and its gradients
(:mod:`lstm_c.backprop`) and lets the optimizer update the weights.

Stateful models train as in Keras's text-generation tutorials: a fixed batch size,
``shuffle=False``, batch ``k + 1`` continuing batch ``k`` slot by slot, gradients stopping
at batch boundaries (truncated BPTT) and the state reset at the start of every epoch
(callbacks may reset it at other times).

Ctrl-C stops ``fit`` cleanly: the weights stay those of the last completed step and
``fit`` returns the history so far.
"""

import contextlib
import math
import signal
import sys
import threading

import numpy as np

from . import losses, optimizers
from ._blas_threads import one_thread_pool, single_threaded_blas

__all__ = ["TrainingMixin", "Callback"]


class Callback:
    """Hooks ``fit`` calls; override any. ``logs`` holds ``loss`` (and ``val_loss``).

    Examples
    --------
    Reset a stateful model's state every 10 batches instead of once per epoch:

    >>> class ResetEvery10(lstm_c.training.Callback):            # doctest: +SKIP
    ...     def on_batch_begin(self, batch, logs=None):
    ...         if batch % 10 == 0:
    ...             self.model.reset_states()
    """

    model = None

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C while the weights are written, so a model is never left half updated;
    the KeyboardInterrupt is raised right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class _Progress:
    """One epoch's progress: a tqdm bar (verbose=1, if tqdm is installed), else one line per epoch."""

    def __init__(self, n_batches, epoch, epochs, verbose):
        self.verbose, self.title, self.bar = verbose, f"Epoch {epoch + 1}/{epochs}", None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=n_batches, desc=self.title, unit="batch", leave=True, file=sys.stdout)

    def update(self, loss):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self, logs):
        text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.close()
        elif self.verbose:
            print(f"{self.title} - {text}")


def _as_list(arrays):
    return list(arrays) if isinstance(arrays, (list, tuple)) else [arrays]


def _unlisted(targets):
    """One model output's targets as the array itself, several as the list (as given)."""
    return targets if len(targets) > 1 else targets[0]


class TrainingMixin:
    """compile / fit / train_on_batch / evaluate for lstm_c models."""

    optimizer = None
    loss = None

    def compile(self, optimizer="rmsprop", loss=None, from_logits=False):
        """Choose the optimizer and the loss for training.

        Parameters
        ----------
        optimizer : str or lstm_c.optimizers.Optimizer
            ``"adam"``, ``"sgd"``, ``"rmsprop"`` (Keras defaults) or an instance.
        loss : str or lstm_c.losses.Loss
            ``"mse"``, ``"binary_crossentropy"``, ``"categorical_crossentropy"``,
            ``"sparse_categorical_crossentropy"`` or an instance.
        from_logits : bool
            For a loss given by name: the model outputs logits rather than probabilities.
        """
        if loss is None:
            raise ValueError(f"{self._label()}.compile needs a loss, e.g. loss=\"mse\"")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss, from_logits)

    def train_on_batch(self, x, y, clipnorm=None):
        """One training step on one batch; returns the batch's loss (before the update)."""
        from . import backprop

        self._check_compiled("train_on_batch")
        clipnorm = optimizers.checked_clipnorm(clipnorm)
        with one_thread_pool(x if isinstance(x, (list, tuple)) else [x]):   # see lstm_c/_blas_threads.py
            outputs, tape = backprop.forward(self, x, training=True)
            value, d_outputs = backprop.loss_and_output_gradients(self.loss, outputs, y, tape.model_output_masks())
            grads = backprop.backward(self, tape, d_outputs)
            per_layer = [layer.get_weights() for layer in self.layers]
            weights = [w for layer_weights in per_layer for w in layer_weights]
            self.optimizer.apply(grads, weights, clipnorm)
        with _interrupts_deferred():   # as self.set_weights(weights), without taking copies to count them
            for layer, layer_weights in zip(self.layers, per_layer):
                if layer_weights:
                    layer.set_weights(layer_weights)
        return value

    def evaluate(self, x, y, batch_size=None, verbose=0):
        """The loss on ``(x, y)`` at inference (no dropout), averaged over samples as Keras."""
        from . import backprop

        self._check_compiled("evaluate")
        inputs, targets = self._samples(x, y, "evaluate")
        total, seen = 0.0, 0
        for rows in self._batches(len(inputs[0]), batch_size, shuffle=False, rng=None, what="evaluate"):
            with single_threaded_blas():
                outputs, tape = backprop.forward(self, [a[rows] for a in inputs], training=False, record=False)
            batch_targets = [t[rows] for t in targets]
            value, _ = backprop.loss_and_output_gradients(self.loss, outputs, _unlisted(batch_targets),
                                                          tape.model_output_masks())
            total, seen = total + value * len(rows), seen + len(rows)
        if verbose:
            print(f"evaluate - loss: {total / seen:.4f}")
        return total / seen

    def fit(self, x, y, epochs=1, batch_size=None, shuffle=True, validation_data=None, clipnorm=None,
            verbose=1, callbacks=None, seed=None, validation_split=0.0):
        """Train for ``epochs`` passes over ``(x, y)``.

        Parameters
        ----------
        x, y : array or list of arrays
            Inputs and targets (one array per model input / output).
        epochs : int
        batch_size : int or None
            Samples per step (Keras's default 32); a stateful model's own batch size.
        shuffle : bool
            Shuffle the samples every epoch. Stateful models need ``shuffle=False``.
        validation_data : (x_val, y_val) or None
            Evaluated after every epoch as ``val_loss``.
        validation_split : float in [0, 1)
            Without ``validation_data``: hold out this fraction of the samples, the last
            ones before any shuffling (as Keras), as the validation data.
        clipnorm : float or None
            Clip each gradient to this L2 norm (Keras's ``clipnorm``; overrides the optimizer's).
        verbose : {0, 1, 2}
            0 silent, 1 a progress bar per epoch (tqdm, if installed), 2 one line per epoch.
        callbacks : list of Callback or None
        seed : int or None
            Seeds the shuffling.

        Returns
        -------
        dict
            ``{"loss": [per epoch], "val_loss": [...]}`` (also kept as ``model.history``). A
            stateful model's state is reset at the start of every epoch.
        """
        self._check_compiled("fit")
        # everything checked before the first step changes a weight
        clipnorm = optimizers.checked_clipnorm(clipnorm)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        inputs, targets = self._samples(x, y, "fit")
        if validation_data is not None:
            validation_data = self._validation_pair(validation_data)
        elif validation_split:
            inputs, targets, validation_data = self._split_off_validation(inputs, targets, validation_split)
        n = len(inputs[0])
        rng = np.random.default_rng(seed)
        callbacks = list(callbacks or [])
        for callback in callbacks:
            callback.model = self
        self.history = history = {"loss": []}
        if validation_data is not None:
            history["val_loss"] = []
        stateful = self.stateful_batch_size is not None or any(getattr(layer, "stateful", False) for layer in self.layers)
        self._notify(callbacks, "on_train_begin")
        try:
            for epoch in range(epochs):
                if stateful:
                    self.reset_states()
                self._notify(callbacks, "on_epoch_begin", epoch)
                batches = self._batches(n, batch_size, shuffle, rng, "fit")
                progress = _Progress(len(batches), epoch, epochs, verbose)
                total, seen = 0.0, 0
                for number, rows in enumerate(batches):
                    self._notify(callbacks, "on_batch_begin", number)
                    batch_targets = [t[rows] for t in targets]
                    value = self.train_on_batch([a[rows] for a in inputs], _unlisted(batch_targets), clipnorm)
                    total, seen = total + value * len(rows), seen + len(rows)
                    progress.update(total / seen)
                    self._notify(callbacks, "on_batch_end", number, {"loss": value})
                logs = {"loss": total / seen}
                if validation_data is not None:
                    if stateful:
                        self.reset_states()
                    logs["val_loss"] = self.evaluate(*validation_data, batch_size=batch_size)
                for key, value in logs.items():
                    history[key].append(value)
                progress.close(logs)
                self._notify(callbacks, "on_epoch_end", epoch, logs)
        except KeyboardInterrupt:
            print(f"\nTraining interrupted in epoch {len(history['loss']) + 1}: the weights of the last "
                  "completed step are kept.", file=sys.stderr)
        self._notify(callbacks, "on_train_end", {k: v[-1] for k, v in history.items() if v})
        return history

    # ------------------------------------------------------------------ helpers
    def _samples(self, x, y, what):
        """The input and target lists of ``(x, y)``, as many samples each."""
        inputs, targets = self._input_list(x), _as_list(y)
        n = len(inputs[0])
        if any(len(t) != n for t in targets):
            raise ValueError(f"{self._label()}.{what}: {n} input samples but targets of {[len(t) for t in targets]}")
        return inputs, targets

    def _validation_pair(self, validation_data):
        """fit's ``validation_data``, checked as evaluate will take it."""
        if not isinstance(validation_data, (list, tuple)) or len(validation_data) != 2:
            got = f"{len(validation_data)} items" if isinstance(validation_data, (list, tuple)) \
                else type(validation_data).__name__
            raise ValueError(f"{self._label()}.fit: validation_data must be (x_val, y_val) (sample weights are "
                             f"not supported), got {got}")
        inputs, targets = self._samples(*validation_data, "fit validation_data")
        if len(inputs[0]) == 0:
            raise ValueError(f"{self._label()}.fit: validation_data has no samples")
        return inputs, _unlisted(targets)

    def _split_off_validation(self, inputs, targets, validation_split):
        """Keras's validation_split: the last floor(n * split) samples, before shuffling."""
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        n = len(inputs[0])
        split_at = int(math.floor(n * (1.0 - float(validation_split))))
        if split_at == 0 or split_at == n:
            raise ValueError(f"{self._label()}.fit: {n} samples cannot be split into training and validation "
                             f"data with validation_split={validation_split}; give more data or another split")
        held_out = ([a[split_at:] for a in inputs], _unlisted([t[split_at:] for t in targets]))
        return [a[:split_at] for a in inputs], [t[:split_at] for t in targets], held_out

    def _check_compiled(self, what):
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(f"{self._label()} must be compiled before {what}: call "
                               "model.compile(optimizer, loss) first")

    def _batches(self, n, batch_size, shuffle, rng, what):
        """Row indices of each batch; a stateful model gets whole batches of its size, in order."""
        if n == 0:
            raise ValueError(f"{self._label()}.{what} needs at least one sample")
        if shuffle and self.stateful_batch_size is not None:
            raise ValueError(f"{self._label()} is stateful: batch k + 1 continues batch k, so {what} needs "
                             "shuffle=False")
        batch_size = self._checked_batch_size(n, batch_size, default=32 if what == "fit" else n, what=what)
        order = rng.permutation(n) if shuffle else np.arange(n)
        return [order[start:start + batch_size] for start in range(0, n, batch_size)]

    @staticmethod
    def _notify(callbacks, hook, *args):
        for callback in callbacks:
            getattr(callback, hook)(*args)
