"""Running a model piece by piece: batches that continue a stateful model, and time chunks
of sequences too long to hold (:func:`stream`).

:class:`ChunkRunner` calls a model's own graph (``model._run``) but swaps each recurrent
layer for a stateless copy given its state explicitly, so the runner carries state from
one call to the next itself and never reads or changes the state the user's model holds.

    >>> import numpy as np, lstm_c
    >>> model = lstm_c.Sequential([lstm_c.Input((None, 3)), lstm_c.LSTM(4, return_sequences=True, seed=0)])
    >>> x = np.random.default_rng(0).normal(size=(2, 10, 3))
    >>> chunks = list(lstm_c.stream(model, x, chunk_size=4))      # steps 0-3, 4-7, 8-9
    >>> np.allclose(np.concatenate(chunks, axis=1), model(x), atol=1e-6)
    True
"""

import numpy as np

from ._symbolic import InputLayer, SymbolicTensor, flatten
from ._validation import positive_int
from .bidirectional import Bidirectional
from .core_layers import Any, Dense, Dropout, Embedding, Masking, NotEqual
from .layers import LSTM
from .model import Model, Sequential

__all__ = ["ChunkRunner", "stream", "time_chunks", "check_streamable", "clone_layer", "replayable"]

#: Layers whose output at step t depends on the input at step t only: they stream as they are.
TIME_LOCAL_LAYERS = (Dense, Dropout, Embedding, Masking, NotEqual)


def clone_layer(layer, dtype=None, **lstm_changes):
    """A copy of ``layer`` with the same weights, in ``dtype`` (None: unchanged), with
    ``lstm_changes`` applied to the configuration of an LSTM (of both LSTMs of a Bidirectional)."""
    config = layer.get_config()
    recurrent_configs = ([config] if isinstance(layer, LSTM) else
                         [config[side]["config"] for side in ("layer", "backward_layer")]
                         if isinstance(layer, Bidirectional) else [])
    for part in recurrent_configs:
        part.update(lstm_changes)
    if dtype is not None:
        for part in recurrent_configs or [config]:
            part["dtype"] = np.dtype(dtype).name
    clone = type(layer).from_config(config)
    if layer.built:
        clone.set_weights(layer.get_weights())
    return clone


def replayable(model):
    """Whether lstm_c can run ``model`` layer call by layer call (and so carry state itself):
    lstm_c's Sequential and Model and a bare recurrent layer, not e.g. a graph loaded from ONNX."""
    return isinstance(model, (Sequential, Model, LSTM, Bidirectional))


def _layer_calls(model):
    """``[(key, layer, recorded call arguments)]`` in the order ``model._run`` makes the calls
    (the keys are those it passes to its ``call`` hook)."""
    if isinstance(model, (LSTM, Bidirectional)):
        return [(0, model, {})]
    if isinstance(model, Sequential):
        return [(position, layer, {}) for position, layer in enumerate(model.layers)]
    if isinstance(model, Model):
        return [(position, node.layer, node.kwargs) for position, node in enumerate(model.nodes)
                if not isinstance(node.layer, InputLayer)]
    return []


def check_streamable(model):
    """Raise ValueError, naming the layer and why, if ``model`` cannot run in time chunks.

    A model streams when every layer is either time-local (Dense, Dropout, Embedding,
    Masking: step t of the output needs step t of the input only) or a forward LSTM that
    starts from its own state, which the chunks then carry.
    """
    if not replayable(model):
        raise ValueError(f"cannot stream a model of type {type(model).__name__}: lstm_c streams its own Sequential "
                         "and Model (whose layer calls it can follow), not a graph it runs as a whole")
    for _, layer, recorded in _layer_calls(model):
        name = f"layer {layer.name!r} ({type(layer).__name__})"
        if isinstance(layer, Bidirectional) or getattr(layer, "go_backwards", False):
            raise ValueError(f"cannot stream {name}: it reads the sequence backwards from its end, so it needs "
                             "the whole sequence at once; run it on whole sequences instead")
        if isinstance(layer, LSTM):
            if any(isinstance(t, SymbolicTensor) for t in flatten(recorded.get("initial_state"))):
                raise ValueError(f"cannot stream {name}: its initial state comes from another layer, which has "
                                 "read the whole input only after the last chunk")
        elif isinstance(layer, Any):
            if layer.axis not in (-1, 2):
                raise ValueError(f"cannot stream {name}: it reduces over axis {layer.axis}, not the feature axis")
        elif not isinstance(layer, TIME_LOCAL_LAYERS):
            raise ValueError(f"cannot stream {name}: lstm_c does not know whether it looks across time steps "
                             f"(it streams {', '.join(t.__name__ for t in TIME_LOCAL_LAYERS)} and forward LSTMs)")


class ChunkRunner:
    """Runs a model on successive pieces of input, carrying the recurrent state itself.

    Parameters
    ----------
    model : lstm_c.Sequential, lstm_c.Model or lstm_c.LSTM
        Left untouched: neither its stored state nor its configuration changes.
    continue_time : bool
        True: every call continues the sequences of the previous call in time (chunks of
        the same rows), so every LSTM carries its state, and outputs at leading masked steps
        repeat the previous chunk's output: the chunks together equal one call on the whole
        sequence. False: calls are successive batches, as in ``model.predict``: only
        stateful layers continue (slot by slot); stateless layers start from zeros.
    dtype : {"float32", "float64"} or None
        Run in this precision (the layers are copied); None keeps the model's.
    sequences : bool
        Make every LSTM return its whole sequence (the layers after it then run on every
        step: the output at step t is what the model gives for the sequence cut at t).
    trace : bool
        Record a :class:`lstm_c.Trace` of the model's first LSTM on every call (:attr:`trace`).
    carry : dict or None
        A :attr:`carry` of an earlier runner to continue from (e.g. on another machine).

    Attributes
    ----------
    states : dict
        ``{label: [h, c]}`` (``[fh, fc, bh, bc]`` for Bidirectional): each recurrent layer's
        final state after the last call, labelled by layer name.
    trace : lstm_c.Trace or None
        The first LSTM's trace of the last call (with ``trace=True``).
    """

    def __init__(self, model, *, continue_time=False, dtype=None, sequences=False, trace=False, carry=None):
        if continue_time:
            check_streamable(model)
        if not replayable(model) and (dtype or sequences or trace):
            asked = ", ".join(name for name, value in (("dtype", dtype), ("sequences", sequences), ("trace", trace))
                              if value)
            raise ValueError(f"a model of type {type(model).__name__} runs as a whole, as it is: {asked} cannot "
                             "apply to it")
        self.model = model
        self.continue_time = continue_time
        self.states, self.trace = {}, None
        calls = _layer_calls(model)
        recurrent = [(key, layer) for key, layer, _ in calls if isinstance(layer, (LSTM, Bidirectional))]
        if sequences:
            for _, layer in recurrent:
                if isinstance(layer, Bidirectional) and not layer.return_sequences:
                    raise ValueError(f"cannot return every step of {layer._label()}: its backward half would "
                                     "have read the steps after it")
        self._labels = self._unique_labels(recurrent)
        self._traced_key = next((key for key, layer in recurrent if isinstance(layer, LSTM)), None) if trace else None
        if trace and self._traced_key is None:
            raise ValueError("nothing to trace: the model has no LSTM layer (outside Bidirectional)")
        self._carry_keys = {key for key, layer in recurrent if continue_time or layer.stateful}
        # Stateless copies that return their state, so that state is passed in and out explicitly.
        self._clones = {}
        for key, layer in recurrent:
            forced_sequences = sequences or (continue_time and isinstance(layer, LSTM))
            changes = dict(stateful=False, batch_size=None, return_state=True)
            if forced_sequences:
                changes["return_sequences"] = True
            self._clones[key] = clone_layer(layer, dtype, **changes)
        if dtype is not None:
            for key, layer, _ in calls:
                if key not in self._clones and "dtype" in layer.get_config():
                    self._clones[key] = clone_layer(layer, dtype)
        self._layers = {key: layer for key, layer, _ in calls}
        self._sequences = sequences
        self.reset(carry)

    @staticmethod
    def _unique_labels(recurrent):
        labels, taken = {}, set()
        for key, layer in recurrent:
            label, n = layer.name, 0
            while label in taken:
                n += 1
                label = f"{layer.name}_{n}"
            taken.add(label)
            labels[key] = label
        return labels

    def reset(self, carry=None):
        """Forget the carried state (start new sequences), or continue from ``carry``."""
        carry = carry or {}
        self._carried = {key: [s.copy() for s in states] for key, states in carry.get("states", {}).items()}
        # Per sample: has any step been valid yet? Before that, a masked step outputs 0.
        self._seen_valid = {key: seen.copy() for key, seen in carry.get("seen_valid", {}).items()}

    @property
    def carry(self):
        """Everything the next call continues from, as plain arrays (picklable)."""
        return {"states": {key: [s.copy() for s in states] for key, states in self._carried.items()},
                "seen_valid": {key: seen.copy() for key, seen in self._seen_valid.items()}}

    def run(self, inputs):
        """The model's output(s) for ``inputs`` (as a call of the model would return them)."""
        self._check_rows(inputs)
        if isinstance(self.model, (LSTM, Bidirectional)):
            return self._call(0, self.model, (inputs,), {})
        if not replayable(self.model):
            return self.model(inputs)
        outputs = self.model._run(self.model._input_list(inputs), False, call=self._call)
        return outputs if self.model._several_outputs else outputs[0]

    def _check_rows(self, inputs):
        """The carried state has one row per sequence: a call with other rows is refused
        here, in those terms, before any layer runs."""
        if not self._carried:
            return
        first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        rows = np.shape(first)[0] if np.ndim(first) > 0 else None
        carried = len(next(iter(self._carried.values()))[0])
        if rows != carried:
            what = "sequences: every chunk continues the same rows" if self.continue_time \
                else "rows: a stateful layer's batches keep one size"
            raise ValueError(f"this call has {rows} row{'' if rows == 1 else 's'}, but the state carried from the "
                             f"calls before it is for {carried} {what}")

    # ------------------------------------------------------------------ the call hook
    def _call(self, key, layer, args, kwargs):
        clone = self._clones.get(key)
        if clone is None:
            return layer(*args, **kwargs)
        if not isinstance(layer, (LSTM, Bidirectional)):
            return clone(*args, **kwargs)
        kwargs = dict(kwargs)
        if kwargs.get("initial_state") is None:
            kwargs["initial_state"] = self._carried.get(key)
        if key == self._traced_key:
            record = clone.trace(args[0], initial_state=kwargs["initial_state"], mask=kwargs.get("mask"))
            results = [record.outputs, record.h[:, -1].copy(), record.c[:, -1].copy()]
            self.trace = record
        else:
            results = list(clone(*args, **kwargs))
        n_states = 2 if isinstance(layer, LSTM) else 4
        outputs, states = results[:-n_states], results[-n_states:]
        if self.continue_time and kwargs.get("mask") is not None and not clone.zero_output_for_mask:
            self._repeat_previous_output(key, outputs[0], kwargs["mask"], kwargs["initial_state"])
        if isinstance(layer, LSTM) and not (layer.return_sequences or self._sequences) and outputs[0].ndim == 3:
            outputs[0] = np.ascontiguousarray(outputs[0][:, -1])  # the sequence was only for the carry
        if key in self._carry_keys:
            self._carried[key] = states
        self.states[self._labels[key]] = states
        if layer.return_state:
            return outputs + states
        return outputs if len(outputs) > 1 else outputs[0]

    def _repeat_previous_output(self, key, sequence, mask, previous_state):
        """Make the outputs of a chunk's leading masked steps what one long call gives.

        At a masked step an LSTM outputs its previous output, which a call starts at 0; in
        one long call, that is the last valid step's output, h, once a sample had one. The
        chunk's call cannot know that, so its leading masked steps are patched with the h
        the chunk started from. ``sequence`` is (batch, steps, units), patched in place.
        """
        mask = np.asarray(mask, bool)
        seen = self._seen_valid.get(key)
        if seen is not None and previous_state is not None:
            before_first_valid = ~np.logical_or.accumulate(mask, axis=1) & seen[:, None]
            if before_first_valid.any():
                rows, steps = np.nonzero(before_first_valid)
                sequence[rows, steps] = previous_state[0][rows]
        self._seen_valid[key] = mask.any(axis=1) if seen is None else seen | mask.any(axis=1)


def time_chunks(inputs, chunk_size):
    """Consecutive time slices ``x[:, t:t + chunk_size]`` of an array (or of each array of a
    list): views, so a memory-mapped array is read one chunk at a time."""
    positive_int(chunk_size, "chunk_size")
    arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if any(np.ndim(a) < 2 for a in arrays):
        raise ValueError(f"time chunks need (batch, timesteps, ...) arrays, got shapes {[np.shape(a) for a in arrays]}")
    steps = {np.shape(a)[1] for a in arrays}
    if len(steps) != 1:
        raise ValueError(f"every input needs the same number of timesteps, got {sorted(steps)}")
    for start in range(0, steps.pop(), chunk_size):
        pieces = [a[:, start:start + chunk_size] for a in arrays]
        yield pieces if isinstance(inputs, (list, tuple)) else pieces[0]


def stream(model, chunks, *, chunk_size=None, dtype=None):
    """Run ``model`` over consecutive time chunks of the same sequences, carrying its state.

    Parameters
    ----------
    model : lstm_c.Sequential, lstm_c.Model or lstm_c.LSTM
        Forward LSTMs and time-local layers (Dense, Dropout, Embedding, Masking) only;
        anything else (Bidirectional, go_backwards) is a ValueError. The model's own state
        is neither used nor changed: every stream starts from zero state.
    chunks : iterable of arrays, or an array with ``chunk_size``
        Chunks (batch, steps, ...) of the same rows, in time order; they may differ in length.
        Consumed lazily: memory stays proportional to one chunk (a generator, or slices
        of a memory-mapped array, never loads the whole sequence).
    chunk_size : int or None
        With an array (e.g. ``np.load(path, mmap_mode="r")``): cut it into chunks of this
        many steps.
    dtype : {"float32", "float64"} or None
        Run in this precision instead of the model's.

    Yields
    ------
    ndarray or list of ndarray
        For each chunk, the model's output for it: the chunk's steps for a model that
        returns sequences (concatenated along axis 1 they equal one call on the whole
        sequence), the output after the chunk's last step for one that does not (the last
        chunk's is the whole sequence's).
    """
    if chunk_size is not None:
        chunks = time_chunks(chunks, chunk_size)
    runner = ChunkRunner(model, continue_time=True, dtype=dtype)
    for chunk in chunks:
        yield runner.run(chunk)
