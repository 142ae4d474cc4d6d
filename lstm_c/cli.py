"""lstm-c: run LSTM models over files from scripts and cron jobs.

    lstm-c run MODEL INPUT -o OUTPUT [options]   the model's output for every sequence of INPUT
    lstm-c info MODEL                            layers, shapes, parameters, stateful, streamable
    lstm-c bench [ARGS]                          the speed table (benchmarks/bench.py in a checkout)
    lstm-c inspect [MODEL] [ARGS]                open the lstm-inspector desktop app

Exit status: 0 done, 2 bad usage, 1 a model or data error (one line on stderr; --debug
shows the traceback). Output appears only complete: it is written to a temporary file
beside OUTPUT and renamed at the end, and an existing OUTPUT is kept unless --force.
"""

import argparse
import importlib
import importlib.util
import sys
import traceback
import zipfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import _batch
from ._inputs import INPUT_SUFFIXES, UsageError, open_input, open_model
from ._outputs import OUTPUT_SUFFIXES, open_sink
from ._threads import MAX_THREADS

__all__ = ["main", "build_parser"]

PROGRAM = "lstm-c"

#: Exceptions that mean "this model or this data cannot be used": one line, exit status 1.
DATA_ERRORS = (ValueError, TypeError, OSError, KeyError, EOFError, zipfile.BadZipFile, ImportError, MemoryError)

RUN_EPILOG = """\
input files:
  .npy (memory-mapped), .npz (--key NAME), .h5/.hdf5 and .zarr (--dataset PATH): an array
      (samples, timesteps, features), or (samples, timesteps) of token ids for a model that
      starts with an Embedding.
  .csv: numbers (one optional header row of names). For a model of features: ONE sequence,
      a row per timestep and a column per feature. For a model of token ids: a row per
      sequence, a column per timestep.
  .txt: text for a character model, one sequence; characters become ids through the model's
      vocabulary (bundled demos have one; otherwise --vocab FILE.json or MODEL.vocab.json
      beside the model: {"vocabulary": "abc...", "lowercase": false, "unknown_index": 0}),
      one-hot encoded when the model reads features.

output files (.npy, .npz, .h5/.hdf5):
  "output" (or output_0, output_1, ... for several); with --states also
  "states/LAYER/h" and "states/LAYER/c" per LSTM ("forward_h" ... for Bidirectional):
  .npz or .h5 only. --trace writes the first LSTM's gates and states (i f g o c h outputs
  x mask initial_h initial_c time_index go_backwards, as lstm_c.Trace) to a separate file.

examples:
  lstm-c run brackets lstm_c/demos/brackets.txt -o brackets.npz --states
  lstm-c run model.keras x.npy -o y.npy --batch-size 1024
  lstm-c run model.keras long.npy -o y.h5 --stateful-stream --chunk 1000
"""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _thread_count(text):
    value = _positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_THREADS} threads, got {text!r}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a model over an input file", epilog=RUN_EPILOG, parents=[common],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("model", metavar="MODEL", help="a model file lstm_c.load reads, or a bundled demo name")
    run.add_argument("input", metavar="INPUT", help=f"input file: {', '.join(INPUT_SUFFIXES)}")
    run.add_argument("-o", "--output", required=True, metavar="OUTPUT", help=f"{', '.join(OUTPUT_SUFFIXES)}")
    run.add_argument("--batch-size", type=_positive_int, metavar="N",
                     help="sequences per call (default: the stateful batch size, else up to "
                          f"{_batch.DEFAULT_BATCH_SIZE}; with --stateful-stream: all rows)")
    shape = run.add_mutually_exclusive_group()
    shape.add_argument("--last", action="store_true", help="write only the output at the final timestep")
    shape.add_argument("--sequences", action="store_true",
                       help="write the output at every timestep (LSTMs return sequences; the layers after them "
                            "run on each step)")
    run.add_argument("--states", action="store_true", help="also write each LSTM's final h and c")
    run.add_argument("--stateful-stream", action="store_true",
                     help="read each sequence in time chunks of --chunk steps, state carried (any length)")
    run.add_argument("--chunk", type=_positive_int, metavar="T", help="timesteps per chunk (--stateful-stream)")
    run.add_argument("--threads", type=_thread_count, metavar="N", help="lstm_c threads (default: all cores)")
    run.add_argument("--dtype", choices=("float32", "float64"), help="compute precision (default: the model's)")
    run.add_argument("--trace", nargs="?", const=True, metavar="PATH",
                     help="also write the first LSTM's trace (default PATH: OUTPUT with .trace.npz)")
    run.add_argument("--key", metavar="NAME", help="the array of an .npz input")
    run.add_argument("--dataset", metavar="PATH", help="the dataset of an .h5/.zarr input")
    run.add_argument("--vocab", metavar="FILE", help="vocabulary (.json) for .txt input")
    run.add_argument("--force", action="store_true", help="overwrite existing output files")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.add_argument("--progress", action="store_true", help="a progress bar even when stderr is not a terminal")
    run.add_argument("--dask", metavar="ADDRESS", help="compute on the Dask scheduler at ADDRESS (tcp://host:8786)")
    run.set_defaults(handler=command_run)

    info = commands.add_parser("info", help="describe a model", parents=[common])
    info.add_argument("model", metavar="MODEL")
    info.add_argument("--vocab", metavar="FILE", help="vocabulary (.json) to show")
    info.set_defaults(handler=command_info)

    bench = commands.add_parser("bench", help="the speed table; other arguments go to the benchmark", parents=[common],
                                description="Runs benchmarks/bench.py when lstm_c runs from a source checkout "
                                            "(its arguments pass through), else a small built-in timing.")
    bench.add_argument("--builtin", action="store_true", help="the built-in timing even in a checkout")
    bench.set_defaults(handler=command_bench, passes_arguments=True)

    inspect = commands.add_parser("inspect", help="open the lstm-inspector desktop app ([gui] extra)",
                                  parents=[common])
    inspect.add_argument("model", metavar="MODEL", nargs="?")
    inspect.set_defaults(handler=command_inspect, passes_arguments=True)
    return parser


# ---------------------------------------------------------------------------- run
def _check_run_usage(args):
    output = Path(args.output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"OUTPUT must end in {', '.join(OUTPUT_SUFFIXES)}, got {args.output!r}")
    if args.stateful_stream != (args.chunk is not None):
        raise UsageError("--stateful-stream and --chunk T go together")
    if args.dask and (args.states or args.trace):
        raise UsageError("--states and --trace are not available with --dask")
    if args.states and output.suffix.lower() == ".npy":
        raise UsageError("--states writes several arrays: OUTPUT must be .npz or .h5, not .npy")
    if args.trace is True:
        return output.with_name(output.stem + ".trace.npz")
    if args.trace and Path(args.trace).suffix.lower() not in (".npz", ".h5", ".hdf5"):
        raise UsageError(f"--trace PATH must end in .npz or .h5, got {args.trace!r}")
    return Path(args.trace) if args.trace else None


def _progress_bar(args, total, unit):
    """A tqdm bar on stderr (or a no-op): shown on a terminal, or anywhere with --progress."""
    if args.quiet or not (args.progress or sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        print(f"{PROGRAM}: no progress bar: tqdm is not installed", file=sys.stderr)
        return None
    return tqdm(total=total, unit=unit, unit_scale=total >= 10_000, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5)


@contextmanager
def _threads(n):
    """lstm_c's thread count set to ``n`` (None: unchanged) for a block, then restored: main()
    may run inside a larger program."""
    from . import _threads as threads

    previous = threads._configured
    if n is not None:
        threads.set_num_threads(n)
    try:
        yield
    finally:
        threads._configured = previous


def command_run(args):
    trace_path = _check_run_usage(args)
    with _threads(args.threads):
        return _run_model(args, trace_path)


def _run_model(args, trace_path):
    options = _batch.RunOptions(batch_size=args.batch_size, last=args.last, sequences=args.sequences,
                                states=args.states, chunk=args.chunk, dtype=args.dtype, trace=trace_path is not None)
    source = open_model(args.model, args.vocab)
    with ExitStack() as stack:
        data = open_input(args.input, source, key=args.key, dataset=args.dataset)
        stack.callback(data.close)
        client = _dask_client(args.dask) if args.dask else None
        if client is not None:
            stack.callback(client.close)
        # Sinks last: they commit first when the block ends, while the input is still open.
        sink = stack.enter_context(open_sink(args.output, args.force))
        trace_sink = stack.enter_context(open_sink(trace_path, args.force)) if trace_path else None
        writer = _batch.ResultWriter(sink, trace_sink, data.samples, data.timesteps, options)
        streaming = args.stateful_stream
        total, unit = (data.samples * data.timesteps, "step") if streaming else (data.samples, "seq")
        bar = _progress_bar(args, total, unit)
        if bar is not None:
            stack.callback(bar.close)
        progress = bar.update if bar is not None else (lambda n: None)
        if client is not None:
            _batch.run_dask(client, source, data, options, writer, progress, streaming)
        elif streaming:
            _batch.run_stream(source, data, options, writer, progress)
        else:
            _batch.run_batches(source, data, options, writer, progress)
    return 0


def _dask_client(address):
    try:
        from distributed import Client
    except ImportError:
        raise ImportError('--dask needs Dask: pip install "lstm_c[dask]"') from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as error:
        raise OSError(f"cannot reach the Dask scheduler at {address}: {error}") from None


# ---------------------------------------------------------------------------- info
def _stateful_text(model, stateful_layers):
    if not stateful_layers:
        return "no"
    batch = model.stateful_batch_size
    return f"{', '.join(stateful_layers)} ({'batch size ' + str(batch) if batch else 'batch size not fixed'})"


def command_info(args):
    from .streaming import check_streamable

    source = open_model(args.model, args.vocab)
    model = source.model
    print(model.summary(print_fn=None))
    layers = model.layers
    stateful = [layer.name for layer in layers if getattr(layer, "stateful", False)]
    try:
        check_streamable(model)
        streams = "yes (lstm-c run --stateful-stream)"
    except ValueError as error:
        streams = f"no: {error}"
    lines = [f"Input shape: {source.input_shape}", f"Output shape: {getattr(model, 'output_shape', '?')}",
             f"Parameters: {model.count_params()}",
             f"Stateful: {_stateful_text(model, stateful)}",
             f"Streams: {streams}"]
    if source.vocabulary is not None:
        lines.append(f"Vocabulary: {len(source.vocabulary.characters)} characters "
                     f"(lowercase={source.vocabulary.lowercase})")
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------------------- bench, inspect
def _source_tree():
    """The repository root when lstm_c runs from a checkout (an in-place build), else None."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "setup.py").is_file() else None


def _load_file_module(name, path, package_dir=None):
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=None if package_dir is None else [str(package_dir)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def command_bench(args, passed=()):
    root = _source_tree()
    script = root / "benchmarks" / "bench.py" if root else None
    if script is not None and script.is_file() and not args.builtin:
        status = _load_file_module("lstm_c_benchmarks_bench", script).main(list(passed))
    else:
        from ._bench import main as builtin_bench

        status = builtin_bench(list(passed))
    return status or 0


def _gui_app():
    """``lstm_c.gui.app``: installed, or the gui/ directory of a source checkout."""
    try:
        return importlib.import_module("lstm_c.gui.app")
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("lstm_c.gui"):
            raise  # the inspector is there but a dependency (PyQt6, pyqtgraph) is not
    root = _source_tree()
    if root is None or not (root / "gui" / "app.py").is_file():
        raise ModuleNotFoundError("the inspector is not installed", name="lstm_c.gui")
    import lstm_c

    lstm_c.gui = _load_file_module("lstm_c.gui", root / "gui" / "__init__.py", root / "gui")
    return importlib.import_module("lstm_c.gui.app")


def command_inspect(args, passed=()):
    try:
        app = _gui_app()
    except ImportError as error:
        missing = getattr(error, "name", None) or str(error)
        raise ImportError(f'lstm-c inspect needs the desktop inspector: pip install "lstm_c[gui]" '
                          f"(missing: {missing})") from None
    return app.main(([args.model] if args.model else []) + list(passed)) or 0


# ---------------------------------------------------------------------------- main
def _one_line(error):
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, (ValueError, OSError, ImportError)) else f"{type(error).__name__}: {text}"


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
        if extra and not getattr(args, "passes_arguments", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exit:  # argparse: --help (0) or a usage error (2), already printed
        return exit.code
    try:
        return args.handler(args, extra) if getattr(args, "passes_arguments", False) else args.handler(args)
    except UsageError as error:
        print(f"{PROGRAM} {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place that turns errors into an exit status
        if args.debug:
            traceback.print_exc()
        known = isinstance(error, DATA_ERRORS)
        hint = "" if known or args.debug else " (an lstm-c bug? --debug shows the traceback)"
        print(f"{PROGRAM}: error: {_one_line(error)}{hint}", file=sys.stderr)
        return 1
