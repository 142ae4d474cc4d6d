"""How many threads the kernels use: resolved in one place.

Order of precedence: an explicit ``n_threads`` argument, then
``lstm_c.set_num_threads(n)``, then the environment (``LSTM_C_NUM_THREADS``, then
``OMP_NUM_THREADS``, read once), then every core this process may run on.
"""

import numbers
import os

__all__ = ["set_num_threads", "get_num_threads", "effective_n_threads", "checked_n_threads", "MAX_THREADS"]

#: The most threads a call may ask for: more than the largest machines' hardware threads,
#: and far below where OpenMP (GCC's libgomp) kills the process instead of failing (it
#: exits when it cannot create a thread, ~60 000 here, and overflows its stack at 100 000).
MAX_THREADS = 1024

_configured = None  # set_num_threads's value; None = follow the environment
_from_environment = None  # the environment's answer, read once (os.environ is slow per call)


def checked_n_threads(n, source):
    """An int in [1, MAX_THREADS] from an int-like or (environment) digit string, else ValueError."""
    if isinstance(n, str):
        value = int(n.strip()) if n.strip().isdigit() else 0
    elif isinstance(n, numbers.Integral) and not isinstance(n, bool):
        value = int(n)
    else:
        value = 0
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"{source} must be a positive integer up to {MAX_THREADS}, got {n!r}")
    return value


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_num_threads(n):
    """Set the number of threads lstm_c kernels use (``None`` restores the default).

    The default is ``LSTM_C_NUM_THREADS``, else ``OMP_NUM_THREADS``, else all cores,
    read at the first call that needs it; ``set_num_threads(None)`` reads them again.
    """
    global _configured, _from_environment
    _configured = None if n is None else checked_n_threads(n, "set_num_threads(n)")
    if n is None:
        _from_environment = None


def get_num_threads():
    """The number of threads the next kernel call will use."""
    return effective_n_threads(None)


def effective_n_threads(n_threads=None):
    """Resolve a thread count: explicit > set_num_threads > environment > all cores."""
    if n_threads is not None:
        return checked_n_threads(n_threads, "n_threads")
    if _configured is not None:
        return _configured
    global _from_environment
    if _from_environment is None:
        _from_environment = _read_environment()
    return _from_environment


def _read_environment():
    for var in ("LSTM_C_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value:
            # OMP_NUM_THREADS may be a list ("4,2") for nested regions: the first counts
            return checked_n_threads(value.split(",")[0], var)
    return _available_cores()
