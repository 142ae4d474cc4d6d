"""The layers around an LSTM: Embedding, Masking, Dense, Dropout (Keras 3 semantics).

Each is configuration + weights, like :class:`lstm_c.LSTM`. Masks flow as in Keras:
``Embedding(mask_zero=True)`` and ``Masking`` produce a (batch, timesteps) mask,
Dense and Dropout pass the mask they receive on unchanged, and a model hands it to
the next layer (see :mod:`lstm_c.model`).
"""

import inspect
import re

import numpy as np

from . import initializers
from ._symbolic import is_symbolic, symbolic_call
from ._validation import as_float_array, positive_int, resolve_dtype
from .activations import ACTIVATIONS, canonical_name, numpy_activation

__all__ = ["Layer", "Embedding", "Masking", "Dense", "Dropout", "DENSE_ACTIVATIONS"]


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # shifted: exp never overflows
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# Activations over the last axis, which the LSTM kernel has no use for but output layers do.
_AXIS_ACTIVATIONS = {"softmax": _softmax, "log_softmax": _log_softmax}

#: Every activation name Dense accepts: the elementwise set of the LSTM plus softmax.
DENSE_ACTIVATIONS = tuple(sorted(set(_AXIS_ACTIVATIONS) | set(ACTIVATIONS)))


def _dense_activation(name):
    """(canonical name, NumPy function) for a Dense activation."""
    if name in _AXIS_ACTIVATIONS:
        return name, _AXIS_ACTIVATIONS[name]
    try:
        canonical = canonical_name(name)
    except ValueError:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(DENSE_ACTIVATIONS)} "
                         "(or None for linear)") from None
    return canonical, numpy_activation(canonical)


def _rate(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value < 1:
        raise ValueError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


def _checked_shape(weight, expected, what):
    if weight.shape != expected:
        raise ValueError(f"{what} must have shape {expected}, got {weight.shape}")


class Layer:
    """What every lstm_c layer other than LSTM shares: a name, a dtype, calls on arrays or
    on symbolic model inputs, masks passed through, config round trip and repr.

    Subclasses implement ``call(inputs, mask=None, training=False)`` and
    ``compute_output_shape(input_shape)``; layers with weights also ``build``,
    ``get_weights`` and ``set_weights``.
    """

    #: The layer accepts a mask (the model passes the incoming one).
    supports_masking = True
    #: A Keras operation (NotEqual, Any) rather than a layer: not listed in model.layers.
    is_operation = False
    stateful = False
    #: Configuration keys shown in error messages, e.g. ``Dense(units=8)``.
    _label_keys = ()

    def __init__(self, dtype="float32", name=None):
        self.dtype = resolve_dtype(dtype)
        self.name = name or re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    @property
    def built(self):
        return True

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (layers without weights: nothing)."""

    def __call__(self, inputs, *args, **kwargs):
        """Apply the layer to an array, or record the call on a symbolic model input."""
        if is_symbolic((inputs, args, kwargs)):
            return symbolic_call(self, inputs, *args, **kwargs)
        return self.call(inputs, *args, **kwargs)

    def compute_mask(self, inputs, mask):
        """The mask for the next layer: the incoming one, unchanged (Keras's default for
        layers that support masking)."""
        return mask

    def get_weights(self):
        return []

    def set_weights(self, weights):
        if len(weights):
            raise ValueError(f"{self._label()} has no weights, got {len(weights)} arrays")

    def count_params(self):
        return sum(int(w.size) for w in self.get_weights())

    def get_config(self):
        """The constructor arguments as plain data (``cls(**layer.get_config())`` rebuilds it)."""
        config = {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}
        if "dtype" in config:
            config["dtype"] = config["dtype"].name
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _label(self):
        # Cheap on purpose: error messages on hot paths build it (no get_config/inspect here).
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._label_keys)
        return f"{type(self).__name__}({args})"

    def __repr__(self):
        """The label keys, then every setting that differs from a default layer's."""
        config = self.get_config()
        defaults = type(self)(**{k: config[k] for k in self._label_keys}).get_config()
        shown = [f"{k}={config[k]!r}" for k in self._label_keys]
        shown += [f"{k}={v!r}" for k, v in config.items() if k not in self._label_keys and v != defaults[k]]
        return f"{type(self).__name__}({', '.join(shown)})"


class Embedding(Layer):
    """Turns token ids into vectors: row ``i`` of an (input_dim, output_dim) table for id ``i``.

    Parameters
    ----------
    input_dim : int
        Vocabulary size: ids run from 0 to ``input_dim - 1``.
    output_dim : int
        Length of each vector.
    mask_zero : bool
        Treat id 0 as padding: the layer then produces a mask (ids != 0) that the
        following LSTM uses to skip those steps.
    embeddings_initializer : str or callable
        Keras's default draws uniformly from [-0.05, 0.05].
    dtype : {"float32", "float64"}
    seed : int or None
    name : str or None
    """

    supports_masking = False  # it makes a mask, it does not take one
    _label_keys = ("input_dim", "output_dim")

    def __init__(self, input_dim, output_dim, mask_zero=False, embeddings_initializer="random_uniform",
                 dtype="float32", seed=None, name=None):
        super().__init__(dtype, name)
        self.input_dim = positive_int(input_dim, "Embedding input_dim")
        self.output_dim = positive_int(output_dim, "Embedding output_dim")
        self.mask_zero = bool(mask_zero)
        initializers.get(embeddings_initializer)  # unknown names fail now
        self.embeddings_initializer = embeddings_initializer
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.embeddings = None

    @property
    def built(self):
        return self.embeddings is not None

    def build(self, input_shape=None):
        init = initializers.get(self.embeddings_initializer)
        self.set_weights([init((self.input_dim, self.output_dim), self.dtype, self._rng)])

    def get_weights(self):
        """``[embeddings (input_dim, output_dim)]``, a copy."""
        return [self.embeddings.copy()] if self.built else []

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != 1:
            raise ValueError(f"{self._label()} expects 1 weight [embeddings], got {len(weights)}")
        table = as_float_array(weights[0], self.dtype, f"{self._label()} embeddings")
        _checked_shape(table, (self.input_dim, self.output_dim), f"{self._label()} embeddings")
        self.embeddings = table.copy()

    def call(self, inputs, mask=None, training=False):
        if not self.built:
            self.build()
        ids = self._as_ids(inputs)
        return self.embeddings[ids]

    def _as_ids(self, inputs):
        ids = np.asarray(inputs)
        if ids.dtype.kind == "f":
            if not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)):
                raise ValueError(f"{self._label()} expects integer token ids, got non-integer values "
                                 f"in an array of dtype {ids.dtype}")
        elif ids.dtype.kind not in "biu":
            raise TypeError(f"{self._label()} expects integer token ids, got dtype {ids.dtype}")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(f"{self._label()} expects ids in [0, {self.input_dim}), got ids from "
                             f"{ids.min()} to {ids.max()} (shape {ids.shape})")
        return ids

    def compute_mask(self, inputs, mask=None):
        """``ids != 0`` with ``mask_zero``, else None."""
        return np.asarray(inputs) != 0 if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)



class Masking(Layer):
    """Marks the timesteps whose features all equal ``mask_value`` as padding.

    The mask is ``any(x != mask_value, axis=-1)`` (True = use the step); the output is
    ``x`` with the masked steps set to 0, as in Keras.

    Parameters
    ----------
    mask_value : float
    dtype : {"float32", "float64"}
    name : str or None
    """

    _label_keys = ("mask_value",)

    def __init__(self, mask_value=0.0, dtype="float32", name=None):
        super().__init__(dtype, name)
        self.mask_value = float(mask_value)

    def call(self, inputs, mask=None, training=False):
        x = as_float_array(inputs, self.dtype, lambda: f"{self._label()} input")
        return x * self.compute_mask(x)[..., None]

    def compute_mask(self, inputs, mask=None):
        """(batch, timesteps): True where some feature differs from ``mask_value``."""
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class Dense(Layer):
    """``activation(x @ kernel + bias)`` over the last axis of a 2-D or 3-D input.

    On a sequence (batch, timesteps, features) it applies to every timestep (Keras's
    Dense on 3-D input, same as ``TimeDistributed(Dense)``).

    Parameters
    ----------
    units : int
    activation : str or None
        Any name in :data:`DENSE_ACTIVATIONS` (the LSTM activations plus ``"softmax"``
        and ``"log_softmax"``); None = linear.
    use_bias : bool
    kernel_initializer, bias_initializer : str or callable
    dtype : {"float32", "float64"}
    seed : int or None
    name : str or None
    """

    _label_keys = ("units",)

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", dtype="float32", seed=None, name=None):
        super().__init__(dtype, name)
        self.units = positive_int(units, "Dense units")
        self.activation, self._activation_fn = _dense_activation(activation)
        self.use_bias = bool(use_bias)
        for init in (kernel_initializer, bias_initializer):
            initializers.get(init)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.kernel = self.bias = None

    @property
    def built(self):
        return self.kernel is not None

    @property
    def input_dim(self):
        return None if self.kernel is None else self.kernel.shape[0]

    def __getstate__(self):
        # The activation function may be a lambda, which pickle cannot store: its name can.
        state = dict(self.__dict__)
        del state["_activation_fn"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._activation_fn = _dense_activation(self.activation)[1]

    def build(self, input_shape):
        features = tuple(input_shape)[-1]
        if features is None:
            raise ValueError(f"{self._label()} needs a known feature size, got input shape {tuple(input_shape)}")
        weights = [initializers.get(self.kernel_initializer)((int(features), self.units), self.dtype, self._rng)]
        if self.use_bias:
            weights.append(initializers.get(self.bias_initializer)((self.units,), self.dtype, self._rng))
        self.set_weights(weights)

    def get_weights(self):
        """``[kernel (features, units), bias (units,)]`` (no bias without use_bias), copies."""
        if not self.built:
            return []
        return [self.kernel.copy()] + ([self.bias.copy()] if self.use_bias else [])

    def set_weights(self, weights):
        weights = list(weights)
        expected = 2 if self.use_bias else 1
        if len(weights) != expected:
            names = "kernel, bias" if self.use_bias else "kernel"
            raise ValueError(f"{self._label()} expects {expected} weights [{names}], got {len(weights)}")
        kernel = as_float_array(weights[0], self.dtype, f"{self._label()} kernel")
        if kernel.ndim != 2 or kernel.shape[1] != self.units:
            raise ValueError(f"{self._label()} kernel must have shape (features, {self.units}), got {kernel.shape}")
        if self.use_bias:
            bias = as_float_array(weights[1], self.dtype, f"{self._label()} bias")
            _checked_shape(bias, (self.units,), f"{self._label()} bias")
            self.bias = bias.copy()
        self.kernel = kernel.copy()

    def call(self, inputs, mask=None, training=False):
        x = as_float_array(inputs, self.dtype, lambda: f"{self._label()} input")
        self.compute_output_shape(x.shape)
        if not self.built:
            self.build(x.shape)
        y = x @ self.kernel
        if self.use_bias:
            y += self.bias
        with np.errstate(all="ignore"):  # inf/NaN follow IEEE, silently, as in Keras
            return self._activation_fn(y)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) not in (2, 3):
            raise ValueError(f"{self._label()} expects 2-D (batch, features) or 3-D (batch, timesteps, "
                             f"features) input, got {len(shape)}-D input of shape {shape}")
        if self.built and shape[-1] is not None and shape[-1] != self.input_dim:
            raise ValueError(f"{self._label()} was built for {self.input_dim} features, "
                             f"got input with {shape[-1]} (shape {shape})")
        return shape[:-1] + (self.units,)



class Dropout(Layer):
    """Drops a fraction ``rate`` of the inputs when training; the identity at inference.

    Parameters
    ----------
    rate : float
        In [0, 1). Kept values are scaled by ``1 / (1 - rate)`` when training.
    seed : int or None
    dtype : {"float32", "float64"}
    name : str or None
    """

    _label_keys = ("rate",)

    def __init__(self, rate, seed=None, dtype="float32", name=None):
        super().__init__(dtype, name)
        self.rate = _rate(rate, "Dropout rate")
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def call(self, inputs, mask=None, training=False):
        if not training or self.rate == 0:
            return inputs
        x = as_float_array(inputs, self.dtype, lambda: f"{self._label()} input")
        return x * self.dropout_mask(x.shape)

    def dropout_mask(self, shape):
        """The mask a training call multiplies in: 0 for dropped values, ``1 / (1 - rate)`` for
        kept ones, drawn from the layer's seeded generator (the backward pass reuses it)."""
        keep = self._rng.random(shape) >= self.rate
        return (keep / (1.0 - self.rate)).astype(self.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class NotEqual(Layer):
    """The Keras operation ``inputs != value``, as Keras 3 records it in a functional model
    to compute the mask of Embedding(mask_zero) or Masking. Loaded models use it."""

    supports_masking = False
    is_operation = True
    output_dtype = "bool"
    _label_keys = ("value",)

    def __init__(self, value=0.0, name=None):
        super().__init__("float32", name)
        self.value = value

    def call(self, inputs, *args, training=False):
        value = args[0] if args else self.value
        return np.asarray(inputs) != value

    def compute_mask(self, inputs, mask):
        return None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class Any(Layer):
    """The Keras operation ``any(inputs, axis)`` (see :class:`NotEqual`)."""

    supports_masking = False
    is_operation = True
    output_dtype = "bool"
    _label_keys = ("axis",)

    def __init__(self, axis=-1, keepdims=False, name=None):
        super().__init__("float32", name)
        self.axis = int(axis)
        self.keepdims = bool(keepdims)

    def call(self, inputs, training=False):
        return np.any(inputs, axis=self.axis, keepdims=self.keepdims)

    def compute_mask(self, inputs, mask):
        return None

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if self.keepdims:
            shape[self.axis] = 1
        else:
            del shape[self.axis]
        return tuple(shape)
