"""Arrays that start on a cache line, for the kernel's streamed stores and packed weights.

The kernel writes a large trace with non-temporal stores of whole 64-byte lines (a trace is
six times the output and is not read again by the call: streaming it keeps the weights in
cache and saves reading every line before overwriting it). Those stores need 64-byte
aligned rows, and NumPy aligns large arrays to 16 bytes only. The packed weights start on
a line too, so that no 512-bit vector of them straddles two.
"""

import math
import sys

import numpy as np

__all__ = ["CACHE_LINE", "aligned_empty", "referenced_elsewhere"]

CACHE_LINE = 64


def aligned_empty(shape, dtype, min_bytes=0):
    """``np.empty(shape, dtype)`` (``dtype`` an ``np.dtype``), starting on a cache line when it
    has at least ``min_bytes``.

    An aligned result is a view of a byte buffer (its ``base``): whoever checks how many
    references it has must count the base's."""
    # (np.prod and np.dtype() here were 2.6 us, more than half a streaming step)
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes < min_bytes:
        return np.empty(shape, dtype)
    raw = np.empty(nbytes + CACHE_LINE, np.uint8)
    skip = -raw.ctypes.data % CACHE_LINE
    return raw[skip:skip + nbytes].view(dtype).reshape(shape)


def referenced_elsewhere(array, held):
    """Whether anything besides the caller's ``held`` references can reach ``array``'s memory.

    Views of a view share its base, not the view: an aligned buffer's views (a trace's
    ``h``, say) count on the byte buffer under it, so that is counted too."""
    # getrefcount sees two more: this function's parameter and its own argument
    if sys.getrefcount(array) > held + 2:
        return True
    base = array.base
    # the base's references: `array`'s, the `base` local and getrefcount's argument
    return base is not None and sys.getrefcount(base) > 3
