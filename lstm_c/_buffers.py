"""Whether a buffer the engine would like to reuse is still referenced by anyone else.

A layer keeps the memory of its last trace and writes the next one into it once nothing
else holds it: a fresh buffer of that size is memory the OS must fault in and zero, which
can cost as much as the call. Cache-line-aligned buffers themselves come from
``lstm_c._core.aligned_empty``.
"""

import sys

__all__ = ["referenced_elsewhere"]


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
