"""Layers: configuration + weights (+ state for stateful layers), Keras 3 semantics.

The layers validate and allocate; the loops live in the engine (``_core``).
"""

import numpy as np

from . import _core, initializers
from ._core import aligned_empty
from ._buffers import referenced_elsewhere
from ._symbolic import is_symbolic, symbolic_call
from ._threads import effective_n_threads
from ._validation import as_float_array, as_mask, as_state, positive_int, resolve_dtype
from .activations import activation_code, canonical_name
from .core_layers import Dense, Dropout, Embedding, Masking  # re-exported: every layer from one place
from .trace import Trace

__all__ = ["LSTM", "Bidirectional", "Dense", "Dropout", "Embedding", "Masking"]


class LSTM:
    """Long Short-Term Memory layer with the exact semantics of ``keras.layers.LSTM``.

    Parameters
    ----------
    units : int
        Dimensionality of the output and of the states h and c.
    activation, recurrent_activation : str or None
        Cell/output activation (default ``"tanh"``) and gate activation (default
        ``"sigmoid"``); see :data:`lstm_c.activations.ACTIVATIONS`. ``None`` = linear.
        ``"keras2_hard_sigmoid"`` is Keras 2's ``clip(0.2 x + 0.5, 0, 1)`` for old models.
    use_bias : bool
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
    unit_forget_bias : bool
        Initialise the forget-gate bias to 1 (as Keras).
    dropout, recurrent_dropout : float
        Fractions of inputs / recurrent state dropped, only when called with ``training=True``.
    return_sequences : bool
        Return the output of every step, (batch, timesteps, units), instead of the last, (batch, units).
    return_state : bool
        Return ``[output, h, c]``.
    go_backwards : bool
        Process time in reverse; a returned sequence stays in processing order.
    stateful : bool
        Start each call from the state the previous call ended in, sample index by
        sample index. The batch size is fixed by the first call (or ``batch_size``).
    dtype : {"float32", "float64"}
    seed : int or None
        Seeds the initializers and dropout masks; equal seeds give equal layers.
    zero_output_for_mask : bool
        Output 0 at masked steps instead of the previous output (Keras's Bidirectional sets this).
    unroll : bool
        Accepted for Keras compatibility; it changes nothing in the results.
    batch_size : int or None
        For a stateful layer, the batch size its state is built for.
    name : str or None
    """

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, dtype="float32", seed=None, *,
                 zero_output_for_mask=False, unroll=False, batch_size=None, name=None):
        units = positive_int(units, "units")
        for label, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(f"{label} must be in [0, 1), got {rate!r}")
        batch_size = positive_int(batch_size, "batch_size", none_allowed=True)
        self.units = units
        self.activation = canonical_name(activation)
        self.recurrent_activation = canonical_name(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        for init in (kernel_initializer, recurrent_initializer, bias_initializer):
            initializers.get(init)  # unknown names fail now, not at the first call
        self.unit_forget_bias = bool(unit_forget_bias)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.dtype = resolve_dtype(dtype)
        self.seed = seed
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.unroll = bool(unroll)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.name = name or "lstm"
        self._rng = np.random.default_rng(seed)
        self._act_code = activation_code(self.activation)
        self._rec_act_code = activation_code(self.recurrent_activation)
        self.input_dim = None
        self.kernel = self.recurrent_kernel = self.bias = None
        self._kernel = None  # the engine's packed copy of the weights (_core.Kernel)
        self._states = None  # [h, c] of a stateful layer once its batch size is known

    # ------------------------------------------------------------------ weights
    @property
    def built(self):
        return self.kernel is not None

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape``: (batch, timesteps, features) or features."""
        shape = (input_shape,) if isinstance(input_shape, (int, np.integer)) else tuple(input_shape)
        features = shape[-1]
        if features is None or int(features) < 1:
            raise ValueError(f"{self._label()} needs a known, positive feature size, got input shape {shape}")
        if len(shape) == 3 and shape[0] is not None and self.stateful and self.batch_size is None:
            self.batch_size = int(shape[0])
        D, U = int(features), self.units
        kernel = initializers.get(self.kernel_initializer)((D, 4 * U), self.dtype, self._rng)
        recurrent = initializers.get(self.recurrent_initializer)((U, 4 * U), self.dtype, self._rng)
        weights = [kernel, recurrent]
        if self.use_bias:
            bias_init = initializers.get(self.bias_initializer)
            if self.unit_forget_bias:
                bias = np.concatenate([bias_init((U,), self.dtype, self._rng), np.ones(U, self.dtype),
                                       bias_init((2 * U,), self.dtype, self._rng)])
            else:
                bias = bias_init((4 * U,), self.dtype, self._rng)
            weights.append(bias)
        self.set_weights(weights)

    def _weight_shapes(self, input_dim):
        U = self.units
        shapes = [("kernel", (input_dim, 4 * U)), ("recurrent_kernel", (U, 4 * U))]
        return shapes + [("bias", (4 * U,))] if self.use_bias else shapes

    def get_weights(self):
        """``[kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,)]`` (no bias without use_bias), copies."""
        if not self.built:
            return []
        weights = [self.kernel, self.recurrent_kernel] + ([self.bias] if self.use_bias else [])
        return [w.copy() for w in weights]

    def set_weights(self, weights):
        """Set the weights in Keras layout; builds the layer if needed (features from the kernel)."""
        weights = list(weights)
        expected_count = 3 if self.use_bias else 2
        if len(weights) != expected_count:
            names = ", ".join(name for name, _ in self._weight_shapes("D"))
            raise ValueError(f"{self._label()} expects {expected_count} weights [{names}], got {len(weights)}")
        arrays = [as_float_array(w, self.dtype, f"{self._label()} weight") for w in weights]
        input_dim = self.input_dim
        if input_dim is None:
            if arrays[0].ndim != 2:
                raise ValueError(f"{self._label()} kernel must be 2-D (features, {4 * self.units}), "
                                 f"got shape {arrays[0].shape}")
            input_dim = arrays[0].shape[0]
        for (name, shape), arr in zip(self._weight_shapes(input_dim), arrays):
            if arr.shape != shape:
                raise ValueError(f"{self._label()} weight {name!r} must have shape {shape}, got {arr.shape}")
        self.input_dim = input_dim
        self.kernel, self.recurrent_kernel = arrays[0].copy(), arrays[1].copy()
        self.bias = arrays[2].copy() if self.use_bias else None
        self._kernel = _core.Kernel(self.kernel, self.recurrent_kernel, self.bias,
                                    self._act_code, self._rec_act_code)
        if self.stateful and self.batch_size is not None and self._states is None:
            self.reset_states()

    def __getstate__(self):
        # The engine's Kernel (a C object holding packed weights) does not pickle; the
        # Keras-layout weights it was packed from do, and rebuild it on the other side
        # (a Dask worker, say).
        state = dict(self.__dict__)
        state["_kernel"] = None
        state.pop("_trace_buffer", None)   # scratch, not state
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.kernel is not None:
            self._kernel = _core.Kernel(self.kernel, self.recurrent_kernel, self.bias,
                                        self._act_code, self._rec_act_code)

    def count_params(self):
        if not self.built:
            raise ValueError(f"{self._label()} is not built yet: call it or build() it first")
        return sum(w.size for w in self.get_weights())

    # ------------------------------------------------------------------ state
    @property
    def states(self):
        """``[h, c]`` (each (batch, units)) of a stateful layer; None before its batch size is known
        and for stateless layers."""
        if self._states is None:
            return None
        return [s.copy() for s in self._states]

    def reset_states(self, states=None, samples=None, batch_size=None):
        """Reset a stateful layer's state.

        Parameters
        ----------
        states : [h, c] or None
            New state values, each (batch, units); None means zeros.
        samples : sequence of int or None
            Reset only these batch slots (to zeros, or to the rows of ``states``).
        batch_size : int or None
            Start fresh zero state for a new batch size (the only way to change it).
        """
        if not self.stateful:
            raise AttributeError(f"{self._label()} is not stateful: it keeps no state to reset")
        if batch_size is not None:
            if samples is not None:
                raise ValueError("reset_states: give either samples or batch_size, not both")
            self.batch_size = positive_int(batch_size, "reset_states: batch_size")
            self._states = None
        if states is None and self.batch_size is None:
            return  # nothing held yet: the first call starts from zeros anyway
        if states is not None:
            states = list(states)
            if len(states) != 2:
                raise ValueError(f"reset_states: states must be [h, c], got {len(states)} arrays")
            batch = np.shape(states[0])[0] if np.ndim(states[0]) == 2 else self.batch_size
            if samples is None:
                self.batch_size = batch
        B, U = self.batch_size, self.units
        if samples is None:
            given = [None if s is None else as_state(s, (B, U), self.dtype, f"reset_states: state {n}")
                     for s, n in zip(states or (None, None), "hc")]   # all checked before any is set
            self._states = [aligned_empty((B, U), self.dtype, zeros=True) for _ in "hc"]
            for state, value in zip(self._states, given):
                if value is not None:
                    state[...] = value
            return
        rows = np.asarray(samples)
        if rows.dtype.kind not in "iu" or rows.ndim != 1 or ((rows < 0) | (rows >= B)).any():
            raise ValueError(f"reset_states: samples must be batch slots in [0, {B}), got {samples!r}")
        if self._states is None:
            self._states = [aligned_empty((B, U), self.dtype, zeros=True) for _ in "hc"]
        for n, state in enumerate(self._states):
            state[rows] = 0 if states is None else as_state(
                states[n], (len(rows), U), self.dtype, f"reset_states: state {'hc'[n]}")

    def reset_state(self):
        """Keras 3's name for :meth:`reset_states` with no arguments."""
        self.reset_states()

    # ------------------------------------------------------------------ calling
    def __call__(self, x, initial_state=None, mask=None, training=False):
        """Run the layer over ``x`` (batch, timesteps, features).

        Returns the output ((batch, units), or (batch, timesteps, units) with
        ``return_sequences``), or ``[output, h, c]`` with ``return_state``.
        On a symbolic model input (:func:`lstm_c.Input`) it records the call for a model.
        """
        if type(x) is np.ndarray and initial_state is None and mask is None:
            # The plain call (a stateful layer's next batch, a streaming step) in one call
            # into the kernel; anything it cannot take goes the general way. The test of
            # _plain_call_possible is written out: a streaming step's ~5 us has no room
            # for a method call.
            kernel, states = self._kernel, self._states
            if kernel is not None and (states is not None or not self.stateful) and not (
                    training and (self.dropout > 0 or self.recurrent_dropout > 0)):
                result = kernel.call_plain(x, states, self.return_sequences, self.go_backwards,
                                           effective_n_threads())
                if result is not None:
                    if not self.return_state:
                        return result[0]
                    output, h, c, _ = result
                    return [output, h.copy(), c.copy()] if states is not None else [output, h, c]
        elif is_symbolic((x, initial_state, mask)):
            return symbolic_call(self, x, initial_state=initial_state, mask=mask)
        output, h, c, _ = self._run(x, initial_state, mask, training, want_trace=False)
        return [output, h, c] if self.return_state else output

    def trace(self, x, initial_state=None, mask=None):
        """Run the layer like a call (advancing a stateful layer's state the same way)
        and return a :class:`lstm_c.Trace` of every gate and state at every step.

        The layer keeps the memory of its last trace and writes the next trace of the same
        shape into it if nothing references the old one any more (a fresh trace must be
        faulted in by the OS, which can cost as much as the call): a Trace, or any array of
        it, that you keep is never overwritten."""
        states = self._states
        if (type(x) is np.ndarray and initial_state is None and mask is None
                and self._plain_call_possible(states)):
            initial = (None, None) if states is None else (states[0].copy(), states[1].copy())
            result = self._kernel.call_plain(x, states, self.return_sequences, self.go_backwards,
                                             effective_n_threads(), True, self._idle_trace_buffer())
            if result is not None:
                self._trace_buffer = result[3]
                return Trace(result[3], x, None, self.go_backwards, initial[0], initial[1], None)
        return self._run(x, initial_state, mask, False, want_trace=True)[3]

    def _plain_call_possible(self, states):
        """Whether a call with no mask, initial state or dropout can go straight to the
        kernel (Kernel.call_plain): built, and a stateful layer's state exists."""
        return self._kernel is not None and (states is not None or not self.stateful)

    def call_for_training(self, x, initial_state=None, mask=None, training=True):
        """A call that also returns what the backward pass (:mod:`lstm_c.backprop`) needs.

        Returns ``(outputs, saved)``: ``outputs`` as a call returns them, and ``saved`` a dict
        with ``trace`` (6, batch, timesteps, units: i, f, g, o, c, h in processing order),
        ``x`` (the input as the kernel saw it, after input dropout), ``mask`` (uint8 or None),
        ``h0`` and ``c0`` (the initial state), ``input_dropout`` (batch, 1, features) and
        ``recurrent_dropout`` (batch, units) (the masks multiplied in, or None).
        """
        saved = {}
        output, h, c, _ = self._run(x, initial_state, mask, training, want_trace=False, saved=saved)
        return ([output, h, c] if self.return_state else output), saved

    def _run(self, x, initial_state, mask, training, want_trace, saved=None):
        x = self._check_input(x)
        B, T, D = x.shape
        U = self.units
        if self._kernel is None:   # (not `built`: a property, and this is a streaming step's path)
            self.build(x.shape)
        mask_u8 = None if mask is None else as_mask(mask, (B, T))
        h, c = self._initial_state(initial_state, B)
        # what the call started from (the kernel overwrites h and c); a trace takes None
        # for the zeros of a stateless call without initial_state
        initial = ((None, None) if want_trace and initial_state is None and not self.stateful
                   else (h.copy(), c.copy()) if want_trace or saved is not None else None)

        input_dropout_mask = rec_dropout_mask = None
        if training and self.dropout > 0:
            input_dropout_mask = self._dropout_mask((B, 1, D), self.dropout)
            x = x * input_dropout_mask
        if training and self.recurrent_dropout > 0:
            rec_dropout_mask = self._dropout_mask((B, U), self.recurrent_dropout)

        # on cache lines, as every array the kernel's threads share (see aligned_empty)
        out_last = aligned_empty((B, U), self.dtype)
        trace = self._reused_trace((6, B, T, U)) if want_trace or saved is not None else None
        # Unmasked, the outputs are the trace's h: a trace need not write them twice.
        shared_outputs = want_trace and mask_u8 is None
        out_seq = (aligned_empty((B, T, U), self.dtype)
                   if (self.return_sequences or want_trace) and not shared_outputs else None)
        self._kernel.forward(
            x, h, c, out_last, out_seq, trace, mask_u8, rec_dropout_mask,
            go_backwards=self.go_backwards, zero_output_for_mask=self.zero_output_for_mask,
            n_threads=effective_n_threads())
        if shared_outputs:
            out_seq = trace[5]
        if self.stateful:
            self._states = [h, c]  # the kernel updated them in place; hand out copies only
            h, c = (h.copy(), c.copy()) if self.return_state else (None, None)
        output = out_seq if self.return_sequences else out_last
        if saved is not None:
            saved.update(trace=trace, x=x, mask=mask_u8, h0=initial[0], c0=initial[1],
                         input_dropout=input_dropout_mask, recurrent_dropout=rec_dropout_mask)
        if not want_trace:
            return output, h, c, None
        record = Trace(trace, x, None if mask_u8 is None else mask_u8.astype(bool),
                       self.go_backwards, initial[0], initial[1], None if shared_outputs else out_seq)
        return output, h, c, record

    def _reused_trace(self, shape):
        """The trace buffer of a trace or training call: the previous call's, once nothing
        holds it any more.

        A fresh trace is memory the OS must fault in and zero: 39 MB for LSTM(256) on
        64 x 100 steps, ~2 ms of page faults per training step; 157 MB for LSTM(512) on
        64 x 200, 10-230 ms per trace on the benchmark's VM, up to the call's own time. A
        training step's tape, or a trace its caller looked at and let go (the inspector
        moving to the next batch, a loop over batches), has been dropped by the next call,
        so its buffer is reused; while anything still references it (a Trace or one of its
        arrays kept, a shared layer's earlier call in the same step, a caller keeping
        ``saved``), a new one is made."""
        buffer = self._idle_trace_buffer()
        if buffer is None or buffer.shape != shape:
            buffer = self._trace_buffer = aligned_empty(shape, self.dtype)
        return buffer

    def _idle_trace_buffer(self):
        """The last trace buffer if nothing but this layer holds it any more, else None."""
        buffer = self.__dict__.get("_trace_buffer")
        # held here: the attribute and the `buffer` local
        return None if buffer is None or referenced_elsewhere(buffer, held=2) else buffer

    def _check_input(self, x):
        if not (type(x) is np.ndarray and x.dtype == self.dtype and x.flags.c_contiguous):
            x = as_float_array(x, self.dtype, lambda: f"{self._label()} input")
        shape = x.shape
        if len(shape) != 3:
            raise ValueError(f"{self._label()} expects input of shape (batch, timesteps, features), "
                             f"got {x.ndim}-D input of shape {shape}")
        B, T, D = shape
        if B == 0 or T == 0:
            raise ValueError(f"{self._label()} needs at least one sample and one timestep, "
                             f"got input of shape {shape}")
        if D != self.input_dim and self.input_dim is not None:
            raise ValueError(f"{self._label()} was built for {self.input_dim} features, "
                             f"got input with {D} (shape {shape})")
        if self.stateful and B != self.batch_size and self.batch_size is not None:
            raise ValueError(
                f"{self._label()} is stateful with state for batch size {self.batch_size}, got input "
                f"of shape {shape}. Feed batches of {self.batch_size} samples, or start fresh state "
                f"for {B} with reset_states(batch_size={B}).")
        return x

    def _initial_state(self, initial_state, B):
        """(h, c) to start from, arrays the kernel will overwrite with the final state:
        fresh ones, or a stateful layer's own stored state (updated in place)."""
        if initial_state is None and self._states is not None:   # a stateful layer's next batch
            return self._states
        shape = (B, self.units)
        if initial_state is not None:
            states = list(initial_state)
            if len(states) != 2:
                raise ValueError(f"{self._label()} initial_state must be [h, c], got {len(states)} arrays")
            return tuple(as_state(s, shape, self.dtype, f"{self._label()} initial_state {n}")
                         for s, n in zip(states, "hc"))
        if self.stateful:
            if self.batch_size is None:
                self.batch_size = B
            if self._states is None:
                self.reset_states()
            return self._states[0], self._states[1]
        return aligned_empty(shape, self.dtype, zeros=True), aligned_empty(shape, self.dtype, zeros=True)

    def _dropout_mask(self, shape, rate):
        keep = self._rng.random(shape) >= rate
        return (keep / (1.0 - rate)).astype(self.dtype)

    # ------------------------------------------------------------------ description
    def get_config(self):
        """The constructor arguments as plain data (``LSTM(**layer.get_config())`` rebuilds it)."""
        return {
            "units": self.units, "activation": self.activation,
            "recurrent_activation": self.recurrent_activation, "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer, "unit_forget_bias": self.unit_forget_bias,
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
            "return_sequences": self.return_sequences, "return_state": self.return_state,
            "go_backwards": self.go_backwards, "stateful": self.stateful,
            "dtype": self.dtype.name, "seed": self.seed,
            "zero_output_for_mask": self.zero_output_for_mask, "unroll": self.unroll,
            "batch_size": self.batch_size, "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def compute_output_shape(self, input_shape):
        """Output shape for an input of ``input_shape`` (None = any size); with return_state
        the list ``[output, h, c]`` of shapes. Raises ValueError if the input cannot fit."""
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(f"{self._label()} expects input of shape (batch, timesteps, features), "
                             f"got {len(shape)}-D input of shape {shape}")
        if self.input_dim is not None and shape[2] is not None and shape[2] != self.input_dim:
            raise ValueError(f"{self._label()} was built for {self.input_dim} features, "
                             f"got input with {shape[2]} (shape {shape})")
        batch, state = shape[0], (shape[0], self.units)
        output = (batch, shape[1], self.units) if self.return_sequences else state
        return [output, state, state] if self.return_state else output

    def compute_mask(self, inputs, mask):
        """The mask a model passes on: the input mask with return_sequences (not reversed by
        go_backwards, as in Keras), else None; ``[mask, None, None]`` with return_state."""
        output_mask = mask if self.return_sequences else None
        return [output_mask, None, None] if self.return_state else output_mask

    def _label(self):
        return f"LSTM(units={self.units})"

    def __repr__(self):
        defaults = LSTM(1).get_config()
        shown = {k: v for k, v in self.get_config().items() if k != "units" and v != defaults[k]}
        args = "".join(f", {k}={v!r}" for k, v in shown.items())
        return f"LSTM(units={self.units}{args})"


def __getattr__(name):
    # Bidirectional lives in its own module, which imports LSTM from here: import it on
    # first use so that `from lstm_c.layers import Bidirectional` works either way round.
    if name == "Bidirectional":
        from .bidirectional import Bidirectional

        return Bidirectional
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
