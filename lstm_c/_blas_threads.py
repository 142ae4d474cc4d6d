"""Keep BLAS to one thread while lstm_c's own OpenMP threads run a model.

OpenBLAS keeps its worker threads spinning for a while after each call; on a machine with
as many threads as cores, an OpenMP region that starts meanwhile (the LSTM kernels, one
barrier per timestep) waits on cores the spinning BLAS threads hold, and a model that
alternates NumPy's BLAS (Dense) with LSTM layers slows down several times over
(Embedding + LSTM(256) + Dense, 64 x 100 steps, 2 threads: predict 32 ms, 13 ms with BLAS
held to one thread). So models run with one thread pool only, ours: on calls large enough
for BLAS to thread, BLAS is held to one thread (threadpoolctl, as scikit-learn does), and
the large weight-gradient GEMMs of training are split across the OpenMP threads
(lstm_c/_backward.pyx).

Without threadpoolctl nothing is limited and the GEMMs run on BLAS's own threads.
"""

import contextlib

import numpy as np

__all__ = ["single_threaded_blas", "one_thread_pool", "can_limit_blas"]

_controller = None


def _get_controller():
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller


def can_limit_blas():
    """True when BLAS can be held to one thread (threadpoolctl is installed)."""
    return bool(_get_controller())


def single_threaded_blas():
    """A context in which NumPy's and SciPy's BLAS use one thread (a no-op without threadpoolctl)."""
    controller = _get_controller()
    if not controller:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


#: Positions (samples x timesteps) per call below which BLAS is left alone: OpenBLAS runs
#: products of under ~262k multiply-adds on the calling thread (its threading threshold),
#: so its pool never spins for a streaming call, and taking the limit would cost ~20 us,
#: half of a small model's step.
SMALL_CALL_POSITIONS = 64


def one_thread_pool(arrays):
    """single_threaded_blas() around a model call on ``arrays`` (its inputs) when lstm_c runs
    more than one thread and the call is large enough for BLAS to use its own threads; else
    a no-op (at one thread of ours there is no team for BLAS's threads to hold up)."""
    from ._threads import effective_n_threads

    positions = max((int(np.prod(np.shape(a)[:2])) for a in arrays), default=0)
    if positions < SMALL_CALL_POSITIONS or effective_n_threads() == 1:
        return contextlib.nullcontext()
    return single_threaded_blas()
