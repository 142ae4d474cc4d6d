"""Trace: everything an LSTM computed on one call, step by step."""

from dataclasses import dataclass

import numpy as np

__all__ = ["Trace"]

#: The recorded quantities, in the order the kernel writes them.
TRACE_FIELDS = ("i", "f", "g", "o", "c", "h")


# Not frozen: a frozen dataclass's __init__ costs ~1 us more, a third of a streaming
# step; the record is not meant to be modified all the same.
@dataclass(eq=False, slots=True)
class Trace:
    """The gates and states of an LSTM at every step of one call.

    All step-indexed arrays are (batch, timesteps, units) in *processing order*:
    step ``k`` is the k-th step the layer took, which is input time ``k``, or
    ``timesteps - 1 - k`` for a ``go_backwards`` layer (see :attr:`time_index`).
    That is the order of the layer's ``return_sequences`` output.

    Attributes
    ----------
    i, f, g, o : ndarray
        Input gate, forget gate, candidate values and output gate after their
        activations. At a masked step these are what the cell computed and then
        discarded (the state did not change).
    c, h : ndarray
        Cell and hidden state after each step (carried unchanged by masked steps).
    outputs : ndarray
        The layer's output at each step: ``h`` after a valid step; at a masked step
        the previous output (0 before the first valid step), or 0 with
        ``zero_output_for_mask``.
    x : ndarray
        The input (batch, timesteps, features) in input-time order, as the kernel saw it.
    mask : ndarray or None
        (batch, timesteps) booleans in input-time order; True = the step was used.
    initial_h, initial_c : ndarray
        (batch, units): the state the call started from.
    go_backwards : bool
    states : ndarray
        (6, batch, timesteps, units): i, f, g, o, c, h stacked, as the kernel wrote them;
        the six attributes are views of it.
    """

    states: np.ndarray
    x: np.ndarray
    mask: np.ndarray = None
    go_backwards: bool = False
    # None where the obvious value is meant (zeros; h): copying zeros and making views
    # nobody may read was a fifth of a streaming step's trace
    _initial_h: np.ndarray = None
    _initial_c: np.ndarray = None
    _outputs: np.ndarray = None

    # Views made on access: unpacking six views up front was a tenth of a streaming step.
    i = property(lambda self: self.states[0], doc="Input gate, (batch, timesteps, units).")
    f = property(lambda self: self.states[1], doc="Forget gate, (batch, timesteps, units).")
    g = property(lambda self: self.states[2], doc="Candidate values, (batch, timesteps, units).")
    o = property(lambda self: self.states[3], doc="Output gate, (batch, timesteps, units).")
    c = property(lambda self: self.states[4], doc="Cell state after each step.")
    h = property(lambda self: self.states[5], doc="Hidden state after each step.")

    @property
    def outputs(self):
        """The layer's output at each step (``h`` unless masked steps changed it)."""
        return self.states[5] if self._outputs is None else self._outputs

    @property
    def initial_h(self):
        """(batch, units): h before the first step."""
        return self._initial_state(self._initial_h)

    @property
    def initial_c(self):
        """(batch, units): c before the first step."""
        return self._initial_state(self._initial_c)

    def _initial_state(self, stored):
        return np.zeros((self.batch_size, self.units), self.states.dtype) if stored is None else stored

    @property
    def batch_size(self):
        return self.h.shape[0]

    @property
    def timesteps(self):
        return self.h.shape[1]

    @property
    def units(self):
        return self.h.shape[2]

    @property
    def time_index(self):
        """Input timestep processed at each step: ``arange(T)``, reversed for go_backwards."""
        steps = np.arange(self.timesteps)
        return steps[::-1].copy() if self.go_backwards else steps

    @property
    def step_mask(self):
        """(batch, timesteps) mask in processing order (all True without a mask)."""
        if self.mask is None:
            return np.ones((self.batch_size, self.timesteps), bool)
        return self.mask[:, self.time_index]

    def gates(self):
        """The four gates as a dict ``{"i": ..., "f": ..., "g": ..., "o": ...}``."""
        return {name: getattr(self, name) for name in ("i", "f", "g", "o")}

    def as_dict(self):
        """All arrays by name (None-valued fields left out), e.g. for ``np.savez``."""
        names = TRACE_FIELDS + ("outputs", "x", "mask", "initial_h", "initial_c")
        arrays = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        arrays["go_backwards"] = np.array(self.go_backwards)
        return arrays

    def __repr__(self):
        return (f"Trace(batch_size={self.batch_size}, timesteps={self.timesteps}, "
                f"units={self.units}, go_backwards={self.go_backwards}, "
                f"masked={self.mask is not None}, dtype={self.h.dtype})")
