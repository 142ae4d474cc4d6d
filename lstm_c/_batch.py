"""``lstm-c run``'s work: cut the input into blocks, run the model on each, place the
results in the output file(s).

Three ways through the data, one writer:

- batches of whole sequences (:func:`run_batches`), as ``model.predict``;
- time chunks of the same rows with state carried (:func:`run_stream`, ``--stateful-stream``);
- blocks computed by a Dask cluster (:func:`run_dask`, ``--dask``), written as they arrive.

Memory is proportional to one block: inputs are read block by block and outputs written
into memory-mapped files (see :mod:`lstm_c._outputs`).
"""

from dataclasses import dataclass

import numpy as np

from ._inputs import UsageError
from .model import DEFAULT_PREDICT_BATCH_SIZE
from .streaming import ChunkRunner, replayable

__all__ = ["RunOptions", "ResultWriter", "run_batches", "run_stream", "run_dask", "batch_size_for"]

#: Sequences per call of a stateless model when --batch-size is not given (predict's default).
DEFAULT_BATCH_SIZE = DEFAULT_PREDICT_BATCH_SIZE

#: The names of a recurrent layer's final states in the output file.
STATE_NAMES = {2: ("h", "c"), 4: ("forward_h", "forward_c", "backward_h", "backward_c")}


@dataclass
class RunOptions:
    """What ``lstm-c run`` was asked for (see ``lstm-c run --help``)."""

    batch_size: int = None
    last: bool = False
    sequences: bool = False
    states: bool = False
    chunk: int = None
    dtype: str = None
    trace: bool = False

    def runner(self, model, continue_time=False):
        return ChunkRunner(model, continue_time=continue_time, dtype=self.dtype, sequences=self.sequences,
                           trace=self.trace)


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


class ResultWriter:
    """Places blocks of results in the output (and trace) files.

    An output with a time axis (3-D or more: (samples, timesteps, ...)) is written block by
    block along time when streaming; one without (the last step's output, states) once per
    block of rows, after its last time chunk.
    """

    def __init__(self, sink, trace_sink, samples, timesteps, options):
        self.sink, self.trace_sink = sink, trace_sink
        self.samples, self.timesteps = samples, timesteps
        self.options = options
        self._pending = {}

    @staticmethod
    def _place(sink, name, block, index, leading):
        """Write ``block`` at ``index`` of array ``name``, created as ``leading`` + the block's
        other axes on first use."""
        block = np.asarray(block)
        array = sink.arrays.get(name)
        if array is None:
            array = sink.create(name, leading + block.shape[len(leading):], block.dtype)
        array[index] = block

    def outputs(self, outputs, rows, steps=None):
        """The model's outputs for ``rows`` (and, streaming, the time chunk ``steps``)."""
        outputs = _as_list(outputs)
        samples = len(range(*rows.indices(self.samples)))
        for k, output in enumerate(outputs):
            name = "output" if len(outputs) == 1 else f"output_{k}"
            if output.shape[:1] != (samples,):
                raise ValueError(f"the model's output {k} has shape {output.shape} for {samples} input samples: "
                                 "lstm-c writes outputs with the samples first")
            if self.options.last and output.ndim >= 3:
                output = output[:, -1]
            if steps is None:
                self._place(self.sink, name, output, rows, (self.samples,))
            elif output.ndim >= 3:
                self._place(self.sink, name, output, (rows, steps), (self.samples, self.timesteps))
            else:
                self._pending[name] = output  # only the last chunk's counts

    def finish_rows(self, rows, states):
        """After the last time chunk of ``rows``: the pending last-step outputs, and the states."""
        for name, output in self._pending.items():
            self._place(self.sink, name, output, rows, (self.samples,))
        self._pending = {}
        if self.options.states:
            for label, arrays in states.items():
                for state_name, state in zip(STATE_NAMES[len(arrays)], arrays):
                    self._place(self.sink, f"states/{label}/{state_name}", state, rows, (self.samples,))

    def trace(self, trace, rows, steps=None):
        """The traced LSTM's gates and states (Trace fields, (samples, timesteps, units))."""
        if self.trace_sink is None:
            return
        sink, whole = self.trace_sink, (self.samples, self.timesteps)
        time_index = (rows, slice(None)) if steps is None else (rows, steps)
        fields = trace.as_dict()
        for name in ("i", "f", "g", "o", "c", "h", "outputs", "x", "mask"):
            if name in fields:
                self._place(sink, name, fields[name], time_index, whole)
        if steps is None or steps.start == 0:
            for name in ("initial_h", "initial_c"):
                self._place(sink, name, fields[name], rows, (self.samples,))
        if "time_index" not in sink.arrays:
            sink.put("go_backwards", np.array(trace.go_backwards))
            steps_processed = np.arange(self.timesteps)
            sink.put("time_index", steps_processed[::-1].copy() if trace.go_backwards else steps_processed)


def _is_stateful(model):
    return any(getattr(layer, "stateful", False) for layer in model.layers)


def batch_size_for(model, samples, requested):
    """Sequences per call: what ``model.predict(x, batch_size=requested)`` would use, and the
    same errors (a stateful model's batches continue one another slot by slot)."""
    if not replayable(model):  # e.g. an ONNX graph, which may not even have the batch first
        if requested is not None:
            raise UsageError(f"a model of type {type(model).__name__} runs all samples in one call: --batch-size "
                             "does not apply")
        return samples
    fixed = model.stateful_batch_size
    if fixed is not None:
        if requested not in (None, fixed):
            raise UsageError(f"the model is stateful with batch size {fixed}: --batch-size must be {fixed}, "
                             f"got {requested}")
        requested = fixed
    elif requested is None:
        return samples if _is_stateful(model) else min(samples, DEFAULT_BATCH_SIZE)
    if _is_stateful(model) and samples % requested:
        raise ValueError(f"the model is stateful: its batches of {requested} continue one another, so the "
                         f"input needs a multiple of {requested} samples, got {samples} "
                         "(or use --stateful-stream)")
    return requested


def _row_blocks(samples, batch_size):
    for start in range(0, samples, batch_size):
        yield slice(start, min(samples, start + batch_size))


def run_batches(source, data, options, writer, progress):
    """Whole sequences, a batch at a time (stateful layers continue from batch to batch)."""
    runner = options.runner(source.model)
    for rows in _row_blocks(data.samples, batch_size_for(source.model, data.samples, options.batch_size)):
        writer.outputs(runner.run(data.block(rows)), rows)
        writer.trace(runner.trace, rows)
        writer.finish_rows(rows, runner.states)
        progress(rows.stop - rows.start)


def run_stream(source, data, options, writer, progress):
    """Each block of rows in time chunks of ``options.chunk`` steps, state carried."""
    runner = options.runner(source.model, continue_time=True)
    T = data.timesteps
    for rows in _row_blocks(data.samples, options.batch_size or data.samples):
        runner.reset()
        for start in range(0, T, options.chunk):
            steps = slice(start, min(T, start + options.chunk))
            writer.outputs(runner.run(data.block(rows, steps)), rows, steps)
            writer.trace(runner.trace, rows, steps)
            progress((rows.stop - rows.start) * (steps.stop - steps.start))
        writer.finish_rows(rows, runner.states)


def run_dask(client, source, data, options, writer, progress, streaming):
    """Blocks computed on the cluster of ``client``, written in whatever order they finish."""
    from . import dask as lstm_dask

    x = lstm_dask.from_array(data.raw, batch_size=options.batch_size or DEFAULT_BATCH_SIZE,
                             chunk_size=options.chunk if streaming else None)
    outputs = _as_list(lstm_dask.predict(source.model, x, stream=streaming, dtype=options.dtype,
                                         sequences=options.sequences, encode=data.encode))
    if options.last:
        outputs = [y[:, -1] if y.ndim >= 3 else y for y in outputs]
    names = ["output"] if len(outputs) == 1 else [f"output_{k}" for k in range(len(outputs))]
    blocks = []  # (where the block goes, its delayed value, how much progress it makes)
    for k, (name, y) in enumerate(zip(names, outputs)):
        target = writer.sink.create(name, y.shape, y.dtype)
        for index, block in lstm_dask.blocks_with_positions(y):
            rows = index[0].stop - index[0].start
            steps = index[1].stop - index[1].start if streaming and y.ndim >= 3 else data.timesteps
            blocks.append((target, index, block, (rows * steps if streaming else rows) if k == 0 else 0))
    from distributed import as_completed

    futures = client.compute([block for _, _, block, _ in blocks])
    where = {future.key: (target, index, amount) for future, (target, index, _, amount) in zip(futures, blocks)}
    for future in as_completed(futures):
        target, index, amount = where[future.key]
        target[index] = future.result()
        progress(amount)
        future.release()
