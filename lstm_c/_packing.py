"""Weights rearranged for the kernel: gate-interleaved blocks of hidden units.

The kernel cuts the U hidden units into blocks of ``lanes`` (W, one SIMD vector) and
computes all four gates of a block together. Keras's layout keeps each gate's U
columns together (i, f, c, o); here column ``blk * 4W + gate * W + lane`` holds
Keras column ``gate * U + blk * W + lane`` (zero where the last block is padding).
kernel (D, 4U) and recurrent_kernel (U, 4U) are stacked and stored block-major,
(n_blocks, D + U, 4W), so a step reads one contiguous run of weights per block, and
the thread that owns a block keeps it in its cache. Packing happens once per
``set_weights``, never per call.
"""

import numpy as np

__all__ = ["pack_weights", "padded_units", "float32_rows"]


def padded_units(units, lanes):
    return -(-units // lanes) * lanes


def pack_weights(kernel, recurrent_kernel, bias, lanes):
    """Keras-layout weights -> (weights (n_blocks, D + U, 4W), bias (4Up,) or None).

    A reshape and one transposing copy per matrix, written straight into the result: a
    training step repacks every step (``set_weights``), so this stays ~10x cheaper than
    gathering columns by index."""
    units = recurrent_kernel.shape[0]
    n_blocks = padded_units(units, lanes) // lanes
    features = kernel.shape[0]
    from ._core import aligned_empty  # (here: _core imports this module)

    # on a cache line: a 512-bit row of weights straddling two lines costs the kernel's
    # loads (NumPy aligns to 16 bytes only)
    weights = aligned_empty((n_blocks, features + units, 4, lanes), np.result_type(kernel))
    _pack_rows(kernel, weights[:, :features], units, lanes)
    _pack_rows(recurrent_kernel, weights[:, features:], units, lanes)
    bias_packed = None
    if bias is not None:
        bias_packed = np.empty((n_blocks, 1, 4, lanes), np.result_type(bias))
        _pack_rows(np.asarray(bias).reshape(1, -1), bias_packed, units, lanes)
        bias_packed = bias_packed.reshape(-1)
    return weights.reshape(n_blocks, features + units, 4 * lanes), bias_packed


def _pack_rows(matrix, out, units, lanes):
    """out[blk, row, gate, lane] = matrix[row, gate * units + blk * lanes + lane], 0 past the
    last unit. ``out`` is (n_blocks, rows, 4, lanes)."""
    rows, n_blocks = matrix.shape[0], out.shape[0]
    full = units // lanes
    gates = np.asarray(matrix).reshape(rows, 4, units)
    if full:
        out[:full] = gates[:, :, :full * lanes].reshape(rows, 4, full, lanes).transpose(2, 0, 1, 3)
    if full < n_blocks:   # the last block's padding lanes
        out[full] = 0
        out[full, :, :, :units - full * lanes] = gates[:, :, full * lanes:]


def float32_rows(rows):
    """``rows`` (float64, packed) as a new cache-line-aligned float32 array when every value
    is a float32 value, else None. The kernel reads such rows at half the bytes and gets the
    same products: a float32 value widens to float64 exactly. Subnormal float32 values do
    not count: the kernel runs with denormals-are-zero, which would read them as 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        # a few values first: a float64 model (trained in float64, repacked every
        # training step) fails at once, without a float32 copy of all its rows
        probe = rows[:1, :1]
        if not np.array_equal(probe.astype(np.float32), probe):
            return None
        single = rows.astype(np.float32)
    if not np.array_equal(single, rows):  # also rejects NaN, and values beyond float32
        return None
    magnitude = np.abs(single)
    if np.any((magnitude > 0) & (magnitude < np.finfo(np.float32).tiny)):
        return None
    from ._core import aligned_empty  # (here: _core imports this module)

    out = aligned_empty(single.shape, np.float32)
    out[...] = single
    return out
