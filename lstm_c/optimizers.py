"""Optimizers with Keras 3's update rules and defaults: SGD, Adam, RMSprop.

An optimizer updates a list of weight arrays in place from a list of gradients of the same
shapes (a model's ``get_weights()`` order); its slots (momenta, averages) are kept per
position in that list, so one optimizer serves one model.

>>> import numpy as np, lstm_c
>>> w = [np.array([1.0, -2.0])]
>>> lstm_c.optimizers.SGD(learning_rate=0.1).apply([np.array([1.0, 1.0])], w)
>>> w[0]
array([ 0.9, -2.1])
"""

import numpy as np

try:
    from ._backward import adam_update as _adam_update
except ImportError:   # the compiled module is not built: the NumPy formulas alone
    _adam_update = None

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "get", "clip_by_norm", "checked_clipnorm"]


def checked_clipnorm(clipnorm):
    """``clipnorm`` as a positive float, or None; else ValueError (a negative one would
    turn the gradients around, NaN would poison them)."""
    if clipnorm is not None and not float(clipnorm) > 0:
        raise ValueError(f"clipnorm must be positive or None, got {clipnorm!r}")
    return None if clipnorm is None else float(clipnorm)


def clip_by_norm(gradient, clipnorm):
    """``gradient`` scaled down to L2 norm ``clipnorm`` if it is longer (Keras's clipnorm)."""
    norm = float(np.sqrt(np.sum(np.square(gradient, dtype=np.float64))))
    return gradient * (clipnorm / norm) if norm > clipnorm else gradient


class Optimizer:
    """Base class: ``apply(gradients, weights)`` clips (``clipnorm``: each gradient by its own
    norm, as Keras), counts the step and calls ``update`` per weight."""

    def __init__(self, learning_rate, clipnorm=None):
        if not float(learning_rate) > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.clipnorm = checked_clipnorm(clipnorm)
        self.iterations = 0
        self._slots = {}

    def apply(self, gradients, weights, clipnorm=None):
        """Update ``weights`` (a list of arrays, in place) by one step down ``gradients``.
        ``clipnorm`` overrides the optimizer's own for this step."""
        gradients, weights = list(gradients), list(weights)
        if len(gradients) != len(weights):
            raise ValueError(f"{type(self).__name__}.apply: {len(gradients)} gradients for {len(weights)} weights")
        clipnorm = self.clipnorm if clipnorm is None else clipnorm
        for index, (gradient, weight) in enumerate(zip(gradients, weights)):
            if gradient.shape != weight.shape:
                raise ValueError(f"gradient {index} has shape {gradient.shape}, its weight {weight.shape}")
            if clipnorm is not None:
                gradient = clip_by_norm(gradient, clipnorm)
            self.update(index, weight, gradient.astype(weight.dtype, copy=False))
        self.iterations += 1

    def slot(self, index, name, like):
        """The optimizer's ``name`` array for weight ``index`` (zeros at first)."""
        key = (index, name)
        if key not in self._slots or self._slots[key].shape != like.shape:
            self._slots[key] = np.zeros_like(like)
        return self._slots[key]

    def get_config(self):
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "iterations"}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class SGD(Optimizer):
    """``w -= lr * g``; with momentum ``m = momentum * m - lr * g; w += m`` (Nesterov:
    ``w += momentum * m - lr * g``). Keras defaults: learning_rate 0.01, momentum 0."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, clipnorm=None):
        super().__init__(learning_rate, clipnorm)
        if not 0 <= float(momentum) <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update(self, index, weight, gradient):
        lr = weight.dtype.type(self.learning_rate)
        if self.momentum == 0:
            weight -= lr * gradient
            return
        m = self.slot(index, "momentum", weight)
        m *= weight.dtype.type(self.momentum)
        m -= lr * gradient
        weight += weight.dtype.type(self.momentum) * m - lr * gradient if self.nesterov else m


class Adam(Optimizer):
    """Adam as Keras 3 writes it: ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``w -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)`` (epsilon outside
    the bias correction, 1e-7). ``amsgrad`` uses the running maximum of v."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 clipnorm=None):
        super().__init__(learning_rate, clipnorm)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)

    def update(self, index, weight, gradient):
        step = self.iterations + 1
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2 ** step) / (1 - self.beta_1 ** step)
        real = weight.dtype.type
        m, v = self.slot(index, "m", weight), self.slot(index, "v", weight)
        v_hat = self.slot(index, "v_hat", weight) if self.amsgrad else None
        if _adam_update is not None and weight.dtype in (np.float32, np.float64) and all(
                a.flags.c_contiguous and a.dtype == weight.dtype for a in (weight, gradient)):
            # one compiled pass, the lines below in the same operations (~8x faster on a char
            # model's weights, and one call instead of ~12 per weight on small ones)
            _adam_update(weight.reshape(-1), gradient.reshape(-1), m.reshape(-1), v.reshape(-1),
                         None if v_hat is None else v_hat.reshape(-1), alpha, self.beta_1, self.beta_2, self.epsilon)
            return
        m += (gradient - m) * real(1 - self.beta_1)
        v += (gradient * gradient - v) * real(1 - self.beta_2)
        if self.amsgrad:
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        weight -= real(alpha) * m / (np.sqrt(v) + real(self.epsilon))


class RMSprop(Optimizer):
    """``v = rho v + (1 - rho) g^2``; ``w -= lr g / sqrt(v + epsilon)`` (Keras 3 puts epsilon
    inside the root); ``centered`` subtracts the squared mean gradient from v; ``momentum``
    accumulates the increments. Keras defaults: learning_rate 0.001, rho 0.9, epsilon 1e-7."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 clipnorm=None):
        super().__init__(learning_rate, clipnorm)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def update(self, index, weight, gradient):
        real = weight.dtype.type
        v = self.slot(index, "velocity", weight)
        v *= real(self.rho)
        v += real(1 - self.rho) * gradient * gradient
        denominator = v
        if self.centered:
            average = self.slot(index, "average_gradient", weight)
            average *= real(self.rho)
            average += real(1 - self.rho) * gradient
            denominator = v - average * average
        increment = real(self.learning_rate) * gradient / np.sqrt(denominator + real(self.epsilon))
        if self.momentum > 0:
            m = self.slot(index, "momentum", weight)
            m *= real(self.momentum)
            m += increment
            increment = m
        weight -= increment


_NAMES = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(optimizer):
    """An :class:`Optimizer` from a name (``"adam"``, ``"sgd"``, ``"rmsprop"``, Keras defaults)
    or an Optimizer instance (returned as is)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _NAMES:
        return _NAMES[optimizer.lower()]()
    raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(_NAMES)} or pass an "
                     "lstm_c.optimizers.Optimizer")
