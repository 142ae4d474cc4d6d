"""Input checks shared by the layers: every error says what was expected and what came."""

import numpy as np

__all__ = ["as_float_array", "resolve_dtype", "as_mask", "as_state", "positive_int"]

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def positive_int(value, what, none_allowed=False):
    """``value`` as an int >= 1 (a Python or NumPy integer, not a bool), or None when
    ``none_allowed``; else ValueError naming ``what``."""
    if value is None and none_allowed:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer{' or None' if none_allowed else ''}, got {value!r}")
    return int(value)


def resolve_dtype(dtype):
    """'float32' / 'float64' (or the NumPy types) -> the NumPy dtype, else ValueError."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return np.dtype(name)


def as_float_array(value, dtype, what):
    """``value`` as a C-contiguous array of ``dtype``.

    Booleans, integers and other floats (float16, float32, float64) convert, as in
    Keras; anything else (complex, strings, objects) is a TypeError. ``what`` names the
    value in the error: a string, or a callable returning one (built only on error).
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        what = what() if callable(what) else what
        raise TypeError(f"{what} must be numeric (bool, integer or float), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def as_mask(mask, shape, what="mask"):
    """A (batch, timesteps) mask as a C-contiguous uint8 array (non-zero = use the step)."""
    arr = np.asarray(mask)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be boolean (or 0/1 numbers), got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{what} must have shape (batch, timesteps) = {tuple(shape)}, got {arr.shape}")
    return np.ascontiguousarray(arr != 0, dtype=np.uint8)


def as_state(value, shape, dtype, what):
    """One state array of exactly ``shape``, copied into a fresh C-contiguous array."""
    arr = as_float_array(value, dtype, what)
    if arr.shape != tuple(shape):
        raise ValueError(f"{what} must have shape (batch, units) = {tuple(shape)}, got {arr.shape}")
    return arr.copy()
