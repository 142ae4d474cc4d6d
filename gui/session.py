"""The state of one inspection, without Qt: model, batches, position, state mode, traces.

Every user action is a method here; widgets call them and redraw when the session tells
its listeners what changed. Tests drive a :class:`Session` directly.

Times are in *processing order* throughout (step k is the k-th step the layer took; for a
``go_backwards`` layer that is input time T-1-k), as in :class:`lstm_c.Trace`. A slot's
*timeline* is its batches one after another: global step ``batch * T + t``.
"""

from dataclasses import dataclass

import numpy as np

from lstm_c import demos
from lstm_c.activations import numpy_activation

from .data import InputData, plan_batches
from .model import InspectedModel
from .outputs import TOP_K, bidirectional_returns, next_guesses

__all__ = ["PROVENANCE", "QUANTITIES", "Session", "TraceJob", "WhatIf"]

#: Where a batch slot's initial (h0, c0) came from, by code (the index).
PROVENANCE = ("zeros", "carried", "given", "reset")
ZEROS, CARRIED, GIVEN, RESET = range(4)

#: What a trace records at every step, in display order.
QUANTITIES = ("i", "f", "g", "o", "c", "h")

#: The interventions :meth:`Session.what_if` replays.
WHAT_IF_KINDS = ("zero_c", "clamp_c", "reset")


@dataclass(frozen=True, eq=False)
class TraceResult:
    generation: int
    traces: list


class TraceJob:
    """Everything needed to trace all batches, detached from the session.

    :meth:`run` touches nothing the session owns, so it may run in a worker thread while
    the user keeps stepping; :meth:`Session.install` ignores a result that a later change
    made stale.
    """

    def __init__(self, model, streams, plan, provenance, given, generation):
        self.model, self.streams, self.plan = model, streams, plan
        self.provenance, self.given, self.generation = provenance, given, generation

    def run(self, progress=None, cancelled=None):
        """Trace every batch in order; ``progress(done, total)`` after each, ``cancelled()``
        polled between batches. Returns a :class:`TraceResult` (None when cancelled)."""
        traces = []
        K, B, U = self.plan.n_batches, self.plan.batch_size, self.model.units
        dtype = self.model.lstm.dtype
        h_final = c_final = np.zeros((B, U), dtype)
        for k in range(K):
            if cancelled is not None and cancelled():
                return None
            x, mask = self.model.encode(self.plan.cut(self.streams, k))
            carried = (self.provenance[k] == CARRIED)[:, None]
            h0 = np.where(carried, h_final, 0).astype(dtype)
            c0 = np.where(carried, c_final, 0).astype(dtype)
            if k in self.given:
                h0, c0 = self.given[k]
            trace = self.model.lstm.trace(x, initial_state=[h0, c0], mask=mask)
            h_final, c_final = trace.h[:, -1], trace.c[:, -1]
            traces.append(trace)
            if progress is not None:
                progress(k + 1, K)
        return TraceResult(self.generation, traces)


@dataclass(frozen=True, eq=False)
class WhatIf:
    """An intervention on one slot and its replay, over the slot's timeline from ``first_step``.

    ``original`` and ``changed`` map "h" and "c" to (n_steps, units) arrays; ``steps`` are
    the global steps they cover (the intervention step and everything after it).
    """

    kind: str
    sample: int
    unit: int
    step: int
    value: float
    steps: np.ndarray
    original: dict
    changed: dict


def _check_readable(model, data, plan):
    """Raise ValueError (naming the input) unless ``model`` can read the first batch of ``data``."""
    try:
        x, _ = model.encode(plan.cut(data.streams, 0))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{model.name} cannot read {data.source or 'this input'}: {error}") from error
    if x.ndim != 3 or x.shape[2] != model.lstm.input_dim:
        raise ValueError(f"{model.name} cannot read {data.source or 'this input'}: its LSTM expects "
                         f"{model.lstm.input_dim} features per step, the input gives shape {x.shape}")


class Session:
    """One inspection: a model, its input cut into batches, a position, and traces.

    Parameters
    ----------
    model : InspectedModel
    data : InputData
    batch_size, sequence_length : int
        How the input is cut (see :func:`gui.data.plan_batches`); the sequence length
        defaults to what fills one batch.
    layout : {"streams", "windows"}
        When the samples (or windows) do not divide into batches, the last batch is
        ragged: see :meth:`ragged_batches`.
    stateful : bool or None
        Carry each slot's final state into the next batch; None: as the model intends.
    compute : bool
        Trace right away (tests and small inputs); the app traces in a worker instead.
    """

    def __init__(self, model, data, *, batch_size=1, sequence_length=None, layout="streams",
                 stateful=None, compute=True):
        self.model = model
        self.data = data
        self.stateful = model.stateful_intended if stateful is None else bool(stateful)
        self.reset_every = None
        self._slot_resets = {}   # batch -> (B,) bool: slots the user reset before that batch
        self._given = {}         # batch -> (h0, c0) given as initial_state
        self._listeners = []
        self.generation = 0
        self._traced_generation = None
        self.traces = None
        self.what_if_result = None
        self.batch = self.sample = self.timestep = self.unit = 0
        self.pinned_units = ()
        self._timelines = {}
        self._batch_outputs = {}  # (what, batch, ...) -> computed once per batch of traces
        S, L = data.streams.shape[:2]
        default_length = L if S > 1 else max(L // batch_size, 1)
        self._use_plan(plan_batches(S, L, batch_size, sequence_length or default_length, layout,
                                    keep_remainder=True))
        if compute:
            self.recompute()

    @classmethod
    def from_demo(cls, name="brackets", **options):
        """A session on a bundled demo with its text and batching."""
        demo = demos.load(name)
        model = InspectedModel.from_demo(demo)
        options.setdefault("batch_size", demo.batch_size)
        options.setdefault("sequence_length", demo.sequence_length)
        return cls(model, InputData.from_text(demo.text, model, source=f"demo text ({name})"),
                   **options)

    # ------------------------------------------------------------------ listeners
    def listen(self, callback):
        """Call ``callback(changes)`` after every action; ``changes`` is a set of words:
        "model", "data", "mode", "traces", "position", "unit", "what_if"."""
        self._listeners.append(callback)

    def unlisten(self, callback):
        self._listeners.remove(callback)

    def _emit(self, *changes):
        changes = frozenset(changes)
        for callback in list(self._listeners):
            callback(changes)

    # ------------------------------------------------------------------ shape
    @property
    def n_batches(self):
        return self.plan.n_batches

    @property
    def batch_size(self):
        return self.plan.batch_size

    @property
    def sequence_length(self):
        return self.plan.sequence_length

    @property
    def units(self):
        return self.model.units

    def ragged_batches(self):
        """[(batch, samples)] for batches holding fewer samples than the batch size: a
        ragged last batch, when the samples or windows do not divide evenly. The session
        keeps it (its empty slots read zeros) rather than drop the data; a stateful Keras
        (or lstm_c) layer would reject it, as its state has ``batch_size`` rows."""
        return self.plan.ragged_batches()

    @property
    def total_steps(self):
        """Length of a slot's timeline: all its batches."""
        return self.n_batches * self.sequence_length

    @property
    def global_step(self):
        return self.batch * self.sequence_length + self.timestep

    # ------------------------------------------------------------------ loading
    def set_model(self, model, data):
        """Inspect another model, with input it can read (batching kept where it fits)."""
        plan = self._fitting_plan(data)  # these raise before anything changes
        _check_readable(model, data, plan)
        self.model, self.data = model, data
        self.unit, self.pinned_units = 0, ()
        self._given.clear()
        self.stateful = model.stateful_intended
        self._use_plan(plan)
        self._changed_inputs("model", "data")

    def set_input(self, data):
        """Inspect other input with the same model (batching kept where it fits)."""
        plan = self._fitting_plan(data)
        _check_readable(self.model, data, plan)
        self.data = data
        self._use_plan(plan)
        self._changed_inputs("data")

    def set_batching(self, batch_size, sequence_length, layout=None):
        """Cut the input again: ``batch_size`` slots, ``sequence_length`` steps per batch."""
        S, L = self.data.streams.shape[:2]
        self._use_plan(plan_batches(S, L, batch_size, sequence_length, layout or self.plan.layout,
                                    keep_remainder=True))
        self._changed_inputs("data")

    def _fitting_plan(self, data):
        """The current batching, shrunk until it fits ``data``."""
        S, L = data.streams.shape[:2]
        B = min(self.batch_size, S) if S > 1 else min(self.batch_size, L)
        T = min(self.sequence_length, L if S > 1 else L // B)
        return plan_batches(S, L, B, T, self.plan.layout, keep_remainder=True)

    def _use_plan(self, plan):
        self.plan = plan
        self._slot_resets.clear()
        self._given = {k: v for k, v in self._given.items() if k < self.n_batches
                       and v[0].shape == (self.batch_size, self.units)}
        self.batch = min(self.batch, self.n_batches - 1)
        self.sample = min(self.sample, self.batch_size - 1)
        self.timestep = min(self.timestep, self.sequence_length - 1)
        self.traces = None

    def _changed_inputs(self, *changes):
        self._invalidate()
        self._emit(*changes, "traces", "position", "unit")

    # ------------------------------------------------------------------ state mode
    def set_stateful(self, stateful):
        """Carry each slot's final state into the next batch (True) or start every batch
        from zeros (False), as a stateful / stateless Keras layer would."""
        if bool(stateful) != self.stateful:
            self.stateful = bool(stateful)
            self._changed_mode()

    def set_reset_every(self, batches):
        """Reset all slots before every ``batches``-th batch (None: never), like a training
        loop calling ``reset_states()`` every k batches."""
        if batches is not None and int(batches) < 1:
            raise ValueError(f"reset interval must be >= 1 batch or None, got {batches}")
        self.reset_every = None if batches is None else int(batches)
        self._changed_mode()

    def reset_states(self, samples=None, batch=None):
        """Reset the state of ``samples`` (batch slots; None: all) right before ``batch``
        (default: the current one), like ``layer.reset_states(samples=...)`` between calls."""
        batch = self.batch if batch is None else self._batch_index(batch)
        rows = self._slot_resets.setdefault(batch, np.zeros(self.batch_size, bool))
        if samples is None:
            rows[:] = True
        else:
            samples = np.atleast_1d(np.asarray(samples))
            if samples.dtype.kind not in "iu" or ((samples < 0) | (samples >= self.batch_size)).any():
                raise ValueError(f"samples must be slots in [0, {self.batch_size}), got {samples!r}")
            rows[samples] = True
        self._changed_mode()

    def clear_resets(self, batch=None):
        """Undo the resets requested before ``batch`` (None: before every batch)."""
        if batch is None:
            self._slot_resets.clear()
        else:
            self._slot_resets.pop(int(batch), None)
        self._changed_mode()

    def set_initial_state(self, h0, c0, batch=0):
        """Start ``batch`` from a given ``initial_state=[h0, c0]``, each (batch_size, units)."""
        shape = (self.batch_size, self.units)
        batch = self._batch_index(batch)
        h0, c0 = (np.asarray(s, self.model.lstm.dtype) for s in (h0, c0))
        if h0.shape != shape or c0.shape != shape:
            raise ValueError(f"initial state must be two arrays of shape {shape}, got {h0.shape}, {c0.shape}")
        self._given[batch] = (h0.copy(), c0.copy())
        self._changed_mode()

    def _batch_index(self, batch):
        """One of the current batches (0 .. n_batches - 1), else ValueError: a reset or
        state filed under any other number would never run, or fail the next trace."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 0 <= batch < self.n_batches:
            raise ValueError(f"batch must be one of the {self.n_batches} batches (0 .. {self.n_batches - 1}), "
                             f"got {batch!r}")
        return int(batch)

    def clear_initial_state(self, batch=0):
        self._given.pop(int(batch), None)
        self._changed_mode()

    def requested_resets(self):
        """(n_batches, batch_size) bools: a reset was asked for right before that batch,
        by the user or the "reset every k" schedule."""
        requested = np.zeros((self.n_batches, self.batch_size), bool)
        if self.reset_every:
            requested[::self.reset_every] = True
        for batch, rows in self._slot_resets.items():
            if batch < self.n_batches:
                requested[batch] |= rows
        return requested

    @property
    def provenance(self):
        """(n_batches, batch_size) codes into :data:`PROVENANCE`: where each slot's (h0, c0) came from."""
        return self._provenance(self.stateful)

    def _provenance(self, stateful):
        requested = self.requested_resets()
        codes = np.where(requested, RESET, ZEROS).astype(np.int8)
        if stateful:
            codes[1:][~requested[1:]] = CARRIED
        for batch in self._given:
            codes[batch] = GIVEN
        return codes

    def _changed_mode(self):
        self._invalidate(keep_traces=True)
        self._emit("mode", "traces")

    # ------------------------------------------------------------------ traces
    def trace_job(self, stateful=None):
        """A :class:`TraceJob` for the current settings (or the other state mode)."""
        stateful = self.stateful if stateful is None else stateful
        return TraceJob(self.model, self.data.streams, self.plan, self._provenance(stateful),
                        dict(self._given), self.generation)

    def install(self, result):
        """Take the traces a job computed; False (and nothing changes) if they are stale."""
        if result is None or result.generation != self.generation:
            return False
        self.traces = result.traces
        self._traced_generation = result.generation
        self._timelines.clear()
        self._batch_outputs.clear()
        self._emit("traces", "position")
        return True

    def recompute(self, progress=None):
        """Trace all batches now, in this thread."""
        return self.install(self.trace_job().run(progress))

    @property
    def has_traces(self):
        return self.traces is not None

    @property
    def traces_current(self):
        """The traces match the current settings (else they are missing or being recomputed)."""
        return self.traces is not None and self._traced_generation == self.generation

    def work_size(self):
        """Rough cost of tracing everything, in multiply-adds."""
        per_step = 4 * self.units * (self.model.features + self.units)
        return self.n_batches * self.batch_size * self.sequence_length * per_step

    def _invalidate(self, keep_traces=False):
        self.generation += 1
        self.what_if_result = None
        if not keep_traces:
            self.traces = None
        self._timelines.clear()
        self._batch_outputs.clear()

    @property
    def trace(self):
        """The current batch's :class:`lstm_c.Trace`."""
        return self.traces[self.batch]

    def value(self, name, step=None):
        """(units,) of quantity ``name`` at the current sample and batch, at ``step``
        (default: the current timestep)."""
        return getattr(self.trace, name)[self.sample, self.timestep if step is None else step]

    def previous_state(self):
        """(h, c) the current step started from, each (units,)."""
        if self.timestep == 0:
            return self.trace.initial_h[self.sample], self.trace.initial_c[self.sample]
        return self.value("h", self.timestep - 1), self.value("c", self.timestep - 1)

    def input_step(self):
        """(features,) the layer read at the current step."""
        return self.trace.x[self.sample, self.trace.time_index[self.timestep]]

    def timeline(self, name, sample=None):
        """(total_steps, units) of ``name`` ("i" ... "h", "outputs") along a slot's batches,
        or (total_steps, features) for "x" (in processing order)."""
        sample = self.sample if sample is None else sample
        key = (name, sample)
        if key not in self._timelines:
            if name == "x":
                parts = [tr.x[sample, tr.time_index] for tr in self.traces]
            else:
                parts = [getattr(tr, name)[sample] for tr in self.traces]
            self._timelines[key] = np.concatenate(parts)
        return self._timelines[key]

    def characters(self, sample=None):
        """The characters of a slot's timeline (processing order), or None for non-text input."""
        if self.data.text is None:
            return None
        sample = self.sample if sample is None else sample
        time_index = self.traces[0].time_index if self.traces else np.arange(self.sequence_length)
        text = self.data.text
        return [text[start + t] if filled else " "  # an empty slot of a ragged batch
                for start, filled in zip(self.plan.start[:, sample], self.plan.filled[:, sample])
                for t in time_index]

    # ------------------------------------------------------------------ what the model returns
    def _for_batch(self, key, compute):
        """``compute()`` for the current batch, once per batch of the current traces."""
        key = (*key, self.batch)
        if key not in self._batch_outputs:
            self._batch_outputs[key] = compute()
        return self._batch_outputs[key]

    def next_guesses(self, k=TOP_K):
        """The model's ``k`` most likely next classes after the current step of the current
        slot, [(label, probability)] most likely first; None when the model has no output
        head after its LSTM (``self.model.head_description`` says why).

        The head reads the traced h, so the guesses follow the session's state mode."""
        if self.model.head is None:
            return None
        guesses = self._for_batch(("guesses", k),
                                  lambda: next_guesses(self.model.head(self.trace.outputs), k))
        at = (self.sample, self.timestep)
        return [(self.model.class_label(c), float(p))
                for c, p in zip(guesses.classes[at], guesses.probabilities[at])]

    def bidirectional_returns(self, merge_mode="concat", return_sequences=True):
        """What the model's Bidirectional returns for the current batch with ``merge_mode``
        (a :class:`gui.outputs.BidirectionalReturns`); None unless the traced LSTM is the
        forward layer of one. The backward layer reads the same input from zeros."""
        if self.model.backward_lstm is None:
            return None
        backward = self._for_batch(("backward",), lambda: self.model.backward_lstm.trace(
            self.trace.x, mask=self.trace.mask))
        return bidirectional_returns(self.trace, backward, merge_mode, return_sequences)

    # ------------------------------------------------------------------ position
    def _move(self, batch=None, timestep=None, sample=None):
        changes = {"position"}
        if batch is not None:
            batch = int(np.clip(batch, 0, self.n_batches - 1))
        if sample is not None:
            sample = int(np.clip(sample, 0, self.batch_size - 1))
            if sample != self.sample:
                self.what_if_result = None
                changes.add("what_if")
        self.batch = self.batch if batch is None else batch
        self.sample = self.sample if sample is None else sample
        if timestep is not None:
            self.timestep = int(np.clip(timestep, 0, self.sequence_length - 1))
        self._emit(*changes)

    def step(self, n=1):
        """Move ``n`` timesteps along the slot's timeline, across batch boundaries.
        Returns False (and stays put) at either end."""
        target = self.global_step + int(n)
        if not 0 <= target < self.total_steps:
            return False
        self.set_global_step(target)
        return True

    def set_global_step(self, step):
        batch, timestep = divmod(int(np.clip(step, 0, self.total_steps - 1)), self.sequence_length)
        self._move(batch=batch, timestep=timestep)

    def set_timestep(self, timestep):
        self._move(timestep=timestep)

    def set_batch(self, batch):
        self._move(batch=batch)

    def next_batch(self):
        self._move(batch=self.batch + 1)

    def prev_batch(self):
        self._move(batch=self.batch - 1)

    def set_sample(self, sample):
        self._move(sample=sample)

    def select_unit(self, unit):
        """Make ``unit`` the selected unit (the cell update, unit plots and input colours follow it)."""
        unit = int(unit)
        if not 0 <= unit < self.units:
            raise ValueError(f"unit must be in [0, {self.units}), got {unit}")
        self.unit = unit
        self._emit("unit")

    def pin_unit(self, unit):
        """Add ``unit`` to (or remove it from) the units plotted beside the selected one."""
        unit = int(unit)
        pinned = [u for u in self.pinned_units if u != unit]
        if len(pinned) == len(self.pinned_units):
            pinned.append(unit)
        self.pinned_units = tuple(pinned)
        self._emit("unit")

    # ------------------------------------------------------------------ what-if
    def what_if(self, kind="zero_c", unit=None, step=None, value=0.0):
        """Intervene after one step of the current slot and replay everything after it.

        Parameters
        ----------
        kind : {"zero_c", "clamp_c", "reset"}
            Set ``unit``'s c to 0, or to ``value``, or reset the whole (h, c) to zeros.
            h follows c as the cell computes it: ``h = o * activation(c)``.
        unit : int or None
            Default: the selected unit.
        step : int or None
            Global step after which to intervene (default: the current one).

        Returns
        -------
        WhatIf
            The original and the replayed h and c from ``step`` to the end of the slot's
            timeline (later batches follow only where the state is carried).
        """
        if kind not in WHAT_IF_KINDS:
            raise ValueError(f"what-if kind must be one of {WHAT_IF_KINDS}, got {kind!r}")
        unit = self.unit if unit is None else int(unit)
        step = self.global_step if step is None else int(step)
        T, sample, lstm = self.sequence_length, self.sample, self.model.lstm
        batch, t = divmod(step, T)
        trace = self.traces[batch]
        h, c = trace.h[sample, t].copy(), trace.c[sample, t].copy()
        if kind == "reset":
            h[:], c[:] = 0, 0
        else:
            c[unit] = 0.0 if kind == "zero_c" else value
            h[unit] = trace.o[sample, t, unit] * numpy_activation(lstm.activation)(c[unit])
        changed_h, changed_c = [h[None]], [c[None]]
        provenance = self.provenance[:, sample]
        for k in range(batch, self.n_batches):
            if k > batch and provenance[k] != CARRIED:
                break
            first = t + 1 if k == batch else 0
            if first < T:
                x, mask = self.model.encode(self.plan.cut(self.data.streams, k)[sample:sample + 1])
                steps = slice(0, T - first) if lstm.go_backwards else slice(first, T)
                replay = lstm.trace(x[:, steps], initial_state=[h[None], c[None]],
                                    mask=None if mask is None else mask[:, steps])
                changed_h.append(replay.h[0])
                changed_c.append(replay.c[0])
                h, c = replay.h[0, -1], replay.c[0, -1]
        changed = {"h": np.concatenate(changed_h), "c": np.concatenate(changed_c)}
        steps = np.arange(step, step + len(changed["h"]))
        original = {name: self.timeline(name, sample)[steps] for name in ("h", "c")}
        self.what_if_result = WhatIf(kind, sample, unit, step, float(value), steps, original, changed)
        self._emit("what_if")
        return self.what_if_result

    def clear_what_if(self):
        self.what_if_result = None
        self._emit("what_if")
