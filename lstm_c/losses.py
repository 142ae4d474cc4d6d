"""Losses with Keras 3's definitions, each with its gradient.

A loss is computed per position (every axis but the last of the prediction, so a
(batch, timesteps, classes) prediction has batch * timesteps positions) and averaged over
the positions, Keras's ``"sum_over_batch_size"`` reduction. With an output mask (padding
from Embedding(mask_zero) or Masking reaching the output) only the unmasked positions
count: the average is over them, as Keras does.

Probabilities are clipped to [1e-7, 1 - 1e-7] (Keras's epsilon) before their logarithm;
inside the clip the gradient is exact, outside it is zero, as TensorFlow's clip gives.

>>> import numpy as np, lstm_c
>>> loss = lstm_c.losses.get("sparse_categorical_crossentropy", from_logits=True)
>>> value, d_pred = loss.value_and_gradient(np.array([0, 1]), np.zeros((2, 3)))
>>> round(float(value), 6)          # log(3)
1.098612
"""

import numpy as np

__all__ = ["Loss", "MeanSquaredError", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "get", "LOSSES"]

EPSILON = 1e-7


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Loss:
    """Base class: subclasses give ``positions(y_true, y_pred) -> (loss per position, its
    gradient with respect to y_pred)``; this class averages and applies masks."""

    name = "loss"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred, mask=None):
        """The mean loss (a float)."""
        return self.value_and_gradient(y_true, y_pred, mask)[0]

    def value_and_gradient(self, y_true, y_pred, mask=None):
        """``(mean loss, d mean loss / d y_pred)``; ``mask`` has the shape of the positions
        (y_pred.shape[:-1]), True = the position counts."""
        y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            raise TypeError(f"{self.name}: predictions must be floats, got dtype {y_pred.dtype}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # in the prediction's precision, as Keras computes (float32 for float32 models)
            per_position, gradient = self.positions(np.asarray(y_true), y_pred)
        if mask is None:
            count = max(per_position.size, 1)
            return float(np.sum(per_position, dtype=np.float64)) / count, gradient * y_pred.dtype.type(1 / count)
        mask = np.broadcast_to(np.asarray(mask, bool), per_position.shape)
        count = max(int(mask.sum()), 1)
        value = float(np.sum(np.where(mask, per_position, 0), dtype=np.float64)) / count
        return value, np.where(mask[..., None], gradient, 0) * y_pred.dtype.type(1 / count)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}

    def __repr__(self):
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true) ** 2)`` over the last axis, then over positions."""

    name = "mean_squared_error"

    def positions(self, y_true, y_pred):
        _check_same_shape(self, y_true, y_pred)
        error = y_pred - y_true
        return np.mean(error ** 2, axis=-1), 2 * error / error.shape[-1]


class BinaryCrossentropy(Loss):
    """``-(t log p + (1 - t) log(1 - p))`` averaged over the last axis; ``from_logits``:
    p = sigmoid(y_pred), computed stably."""

    name = "binary_crossentropy"

    def positions(self, y_true, y_pred):
        _check_same_shape(self, y_true, y_pred)
        n = y_pred.shape[-1]
        if self.from_logits:   # max(z, 0) - z t + log(1 + e^-|z|), TensorFlow's stable form
            z = y_pred
            loss = np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))
            return loss.mean(axis=-1), (1 / (1 + np.exp(-z)) - y_true) / n
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        inside = (y_pred >= EPSILON) & (y_pred <= 1 - EPSILON)
        loss = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
        return loss.mean(axis=-1), np.where(inside, (p - y_true) / (p * (1 - p)), 0) / n


class CategoricalCrossentropy(Loss):
    """``-sum(t log p)`` over the classes (last axis) with one-hot (or soft) targets t.
    Probabilities are normalised to sum to 1 first, as Keras does; ``from_logits``:
    p = softmax(y_pred)."""

    name = "categorical_crossentropy"

    def positions(self, y_true, y_pred):
        _check_same_shape(self, y_true, y_pred)
        if self.from_logits:
            log_p = _log_softmax(y_pred)
            return -(y_true * log_p).sum(axis=-1), np.exp(log_p) * y_true.sum(axis=-1, keepdims=True) - y_true
        total = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / total
        p = np.clip(q, EPSILON, 1 - EPSILON)
        d_q = np.where((q >= EPSILON) & (q <= 1 - EPSILON), -y_true / p, 0)
        d_pred = (d_q - (d_q * q).sum(axis=-1, keepdims=True)) / total   # through q = y / sum(y)
        return -(y_true * np.log(p)).sum(axis=-1), d_pred


class SparseCategoricalCrossentropy(Loss):
    """Categorical crossentropy with integer class ids as targets (shape: y_pred's without
    the last axis). From probabilities Keras takes ``log(clip(p))`` as logits, so the loss
    is ``-log p_t + log(sum p)`` (with clipped p)."""

    name = "sparse_categorical_crossentropy"

    def positions(self, y_true, y_pred):
        labels = np.asarray(y_true)
        if labels.shape == y_pred.shape[:-1] + (1,):
            labels = labels[..., 0]
        if labels.shape != y_pred.shape[:-1]:
            raise ValueError(f"{self.name}: targets must have shape {y_pred.shape[:-1]} (class ids), "
                             f"got {labels.shape}")
        if labels.dtype.kind not in "biuf" or (labels.dtype.kind == "f" and np.any(labels != np.round(labels))):
            raise ValueError(f"{self.name}: targets must be integer class ids")
        labels = labels.astype(np.intp)[..., None]
        classes = y_pred.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(f"{self.name}: class ids must be in [0, {classes}), got {labels.min()}..{labels.max()}")
        if self.from_logits:   # one exp pass: softmax = e / sum(e), -log p_t = log sum(e) - shifted_t
            shifted = y_pred - y_pred.max(axis=-1, keepdims=True)
            loss = -np.take_along_axis(shifted, labels, axis=-1)[..., 0]
            gradient = np.exp(shifted, out=shifted)
            total = gradient.sum(axis=-1, keepdims=True)
            loss += np.log(total[..., 0])
            gradient /= total                                          # softmax - one_hot
            gradient.reshape(-1, classes)[np.arange(labels.size), labels.reshape(-1)] -= 1
            return loss, gradient
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        inside = (y_pred >= EPSILON) & (y_pred <= 1 - EPSILON)
        total = p.sum(axis=-1, keepdims=True)
        loss = np.log(total[..., 0]) - np.log(np.take_along_axis(p, labels, axis=-1)[..., 0])
        gradient = np.broadcast_to(1 / total, p.shape).copy()         # d/dp of log(sum p) - log p_t
        gradient.reshape(-1, classes)[np.arange(labels.size), labels.reshape(-1)] -= \
            1 / np.take_along_axis(p, labels, axis=-1).reshape(-1)
        return loss, np.where(inside, gradient, 0)


def _check_same_shape(loss, y_true, y_pred):
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{loss.name}: targets must have the predictions' shape {y_pred.shape}, got {y_true.shape}")


#: Loss names (Keras's, with its short aliases) -> classes.
LOSSES = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(loss, from_logits=False):
    """A :class:`Loss` from a name (with ``from_logits``) or a Loss instance (returned as is)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss](from_logits=from_logits)
    raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)} or pass an lstm_c.losses.Loss")
