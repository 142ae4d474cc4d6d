"""Weight initializers with Keras's definitions, drawn from a NumPy Generator.

Each initializer is ``f(shape, dtype, rng) -> ndarray``; a layer passes its own
seeded ``numpy.random.Generator``, so equal seeds give equal weights.
"""

import numpy as np

from ._blas_threads import single_threaded_blas

__all__ = ["INITIALIZERS", "get"]


def _fans(shape):
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _variance_scaling(scale, mode, distribution):
    def init(shape, dtype, rng):
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, fan)
        if distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        # truncated normal at two standard deviations, rescaled to keep the variance
        stddev = np.sqrt(variance) / 0.87962566103423978
        values = rng.standard_normal(shape)
        outside = np.abs(values) > 2
        while outside.any():
            values[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2
        return (values * stddev).astype(dtype)
    return init


def orthogonal(shape, dtype, rng, gain=1.0):
    """A (semi-)orthogonal matrix: QR of a Gaussian matrix, signs fixed by diag(R)."""
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    # On BLAS's own threads, the QR left them spinning for ~0.1 s after it returned,
    # holding a core the layer's first calls needed (LSTM(256), 2 threads: the first six
    # calls 2-3x slower); on the calling thread alone it is also quicker (9 vs 20 ms).
    with single_threaded_blas():
        q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q[:rows, :cols]).reshape(shape).astype(dtype)


INITIALIZERS = {
    "zeros": lambda shape, dtype, rng: np.zeros(shape, dtype),
    "ones": lambda shape, dtype, rng: np.ones(shape, dtype),
    "orthogonal": orthogonal,
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "random_uniform": lambda shape, dtype, rng: rng.uniform(-0.05, 0.05, shape).astype(dtype),
    "random_normal": lambda shape, dtype, rng: (0.05 * rng.standard_normal(shape)).astype(dtype),
}


def get(name):
    """The initializer called ``name`` (also accepts a callable ``f(shape, dtype, rng)``)."""
    if callable(name):
        return name
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; choose one of: {', '.join(sorted(INITIALIZERS))}")
    return INITIALIZERS[name]
