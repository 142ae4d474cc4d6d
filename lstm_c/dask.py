"""Dask: run an lstm_c model over arrays larger than memory, on one machine or a cluster.

Dask is an optional dependency (``pip install "lstm_c[dask]"``: dask[array] and
distributed; zarr for Zarr inputs); this module imports it when a function needs it.

    >>> import dask.array as da, lstm_c, lstm_c.dask
    >>> model = lstm_c.Sequential([lstm_c.Input((None, 16)), lstm_c.LSTM(64, seed=0)])
    >>> x = da.random.random((10_000, 50, 16), chunks=(1_000, 50, 16)).astype("float32")
    >>> y = lstm_c.dask.predict(model, x)           # lazy: (10_000, 64), one task per block of rows
    >>> y.compute().shape                           # or with a dask.distributed Client
    (10000, 64)

Two ways through the data (both equal in-memory results):

- ``stream=False`` (stateless models): blocks of rows run independently, each over whole
  sequences (the time axis is rechunked to one chunk); equals ``model.predict(x)``.
- ``stream=True`` (the default for stateful models): each block of rows runs through its
  time chunks in order, a chain of tasks handing the recurrent state on; equals
  ``np.concatenate(list(lstm_c.stream(model, x, chunk_size=...)), axis=1)``, i.e. one call on
  the whole sequence from zero state. Rows of other blocks run in parallel.

The model travels to the workers by pickle, as its configuration and weights (the engine's
C objects are rebuilt there). Inputs from files stay on disk: :func:`from_file` reads
``.npy`` (memory-mapped), HDF5 and Zarr lazily, and ships file names, not data, so every
worker must see the same path.
"""

import operator

import numpy as np

from ._inputs import open_array
from ._threads import checked_n_threads
from .streaming import ChunkRunner, check_streamable

__all__ = ["predict", "from_file", "from_array", "blocks_with_positions"]


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError('lstm_c.dask needs Dask: pip install "lstm_c[dask]" (dask[array] and distributed)') from None
    return dask, da


def _run_block(model, block, carry, options, encode, n_threads):
    """One task: the model on one block, continuing ``carry`` -> (outputs, carry)."""
    if n_threads is not None:
        from ._threads import set_num_threads

        set_num_threads(n_threads)  # the worker process's setting: one model per worker thread
    if encode is not None:
        block = encode(block)
    runner = ChunkRunner(model, carry=carry, **options)
    outputs = runner.run(block)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return outputs, (runner.carry if options["continue_time"] else None)


def _is_stateful(model):
    layers = [model] if not hasattr(model, "layers") else model.layers
    return any(getattr(layer, "stateful", False) for layer in layers)


def predict(model, x, *, stream=None, batch_size=None, chunk_size=None, dtype=None, sequences=False,
            encode=None, n_threads=None):
    """The model's output for ``x`` as a lazy Dask array (a list of them for several outputs).

    Parameters
    ----------
    model : lstm_c.Sequential, lstm_c.Model or lstm_c.LSTM
        Not changed (a stateful model's stored state is neither used nor advanced).
    x : dask.array.Array or array-like
        (samples, timesteps, features), or (samples, timesteps) of token ids.
    stream : bool or None
        Run each block of rows through its time chunks with state carried (see the module
        notes). None: True for stateful models, False otherwise. A stateful model with
        ``stream=False`` is a ValueError: its ``predict`` batches continue one another,
        which cannot run in parallel.
    batch_size : int or None
        Rows per block (rechunks axis 0); None keeps ``x``'s chunks.
    chunk_size : int or None
        Timesteps per chunk when streaming (rechunks axis 1); None keeps ``x``'s chunks.
    dtype : {"float32", "float64"} or None
        Run in this precision instead of the model's.
    sequences : bool
        Every LSTM returns its whole sequence (see :class:`lstm_c.streaming.ChunkRunner`).
    encode : callable or None
        Applied to each input block first, on the worker (e.g. one-hot encoding of ids).
    n_threads : int or None
        lstm_c threads in each worker process (``lstm_c.set_num_threads`` there); None
        leaves the workers' setting. With several worker threads per process, give 1.

    Returns
    -------
    dask.array.Array or list of dask.array.Array
    """
    dask, da = _dask()
    x = x if isinstance(x, da.Array) else da.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"lstm_c.dask.predict expects (samples, timesteps, ...) input, got shape {x.shape}")
    if n_threads is not None:
        n_threads = checked_n_threads(n_threads, "n_threads")  # here, not in a worker
    stateful = _is_stateful(model)
    stream = stateful if stream is None else bool(stream)
    if stateful and not stream:
        raise ValueError("the model is stateful: its predict batches continue one another, which cannot run in "
                         "parallel; use stream=True (each row one sequence, carried along time from zero state)")
    if stream:
        check_streamable(model)
    x = x.rechunk({**{axis: -1 for axis in range(2, x.ndim)}, 0: batch_size or x.chunks[0],
                   1: (chunk_size or x.chunks[1]) if stream else -1})
    options = dict(continue_time=stream, dtype=dtype, sequences=sequences)
    shapes = _output_shapes(model, x, options, encode)

    model_task = dask.delayed(model, pure=True)
    blocks = x.to_delayed().reshape(len(x.chunks[0]), len(x.chunks[1]))
    run = dask.delayed(_run_block, pure=True, nout=2)
    pieces = [[] for _ in shapes]  # per output: rows of blocks
    for i, rows in enumerate(x.chunks[0]):
        carry, row_pieces = None, [[] for _ in shapes]
        for j, steps in enumerate(x.chunks[1]):
            outputs, carry = run(model_task, blocks[i, j], carry, options, encode, n_threads)
            last_chunk = j == len(x.chunks[1]) - 1
            for k, (trailing, out_dtype, has_time) in enumerate(shapes):
                if has_time or last_chunk:
                    shape = (rows, steps) + trailing if has_time else (rows,) + trailing
                    value = dask.delayed(operator.getitem, pure=True)(outputs, k)
                    row_pieces[k].append(da.from_delayed(value, shape, dtype=out_dtype))
        for k, (_, _, has_time) in enumerate(shapes):
            pieces[k].append(da.concatenate(row_pieces[k], axis=1) if has_time else row_pieces[k][0])
    results = [da.concatenate(rows, axis=0) for rows in pieces]
    return results if len(results) > 1 else results[0]


def _output_shapes(model, x, options, encode):
    """Per output: (shape after the batch and time axes, dtype, has a time axis), from a run on one step."""
    probe = np.zeros((1, 1) + x.shape[2:], x.dtype)
    if encode is not None:
        probe = encode(probe)
    outputs = ChunkRunner(model, **options).run(probe)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return [(out.shape[2:], out.dtype, True) if out.ndim >= 3 else (out.shape[1:], out.dtype, False)
            for out in outputs]


def from_array(array, *, batch_size=None, chunk_size=None):
    """A Dask array over an array-like (an ndarray, a lazily read file array, a Zarr array)
    in blocks of ``batch_size`` rows and ``chunk_size`` timesteps (None: all)."""
    _, da = _dask()
    chunks = (batch_size or -1, chunk_size or -1) + (-1,) * (len(array.shape) - 2)
    if hasattr(array, "chunks") and hasattr(array, "store"):  # Zarr: Dask reads it natively
        return da.from_zarr(array, chunks=chunks)
    # name=False: a random name, rather than hashing the whole array (or a file's reader).
    return da.from_array(array, chunks=chunks, asarray=True, name=False)


def from_file(path, *, key=None, dataset=None, batch_size=None, chunk_size=None):
    """A Dask array over the array in a file: ``.npy`` (memory-mapped), ``.h5``/``.hdf5``
    and ``.zarr`` (``dataset``) are read lazily by the workers; ``.npz`` (``key``) and
    ``.csv`` are loaded here first."""
    return from_array(open_array(path, key=key, dataset=dataset), batch_size=batch_size, chunk_size=chunk_size)


def blocks_with_positions(array):
    """``[(index, delayed block)]`` for every block of a Dask array: where each block goes."""
    offsets = [np.concatenate([[0], np.cumsum(chunks)]) for chunks in array.chunks]
    blocks = array.to_delayed()
    return [(tuple(slice(int(offsets[axis][n]), int(offsets[axis][n + 1])) for axis, n in enumerate(position)),
             blocks[position])
            for position in np.ndindex(blocks.shape)]

