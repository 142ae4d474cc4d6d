"""Throughput of batch runs: ``lstm-c run`` against the same work through the Python API,
and a Dask LocalCluster of 2 worker processes.

The workload is N sequences (default 100 000 x 50 steps x 16 features, float32) through a
model of one LSTM(64) returning its last output, read from a .npy file and written to one.

- "lstm-c run": ``python -m lstm_c run model.keras x.npy -o y.npy -q``, a fresh process.
- "Python API": a fresh process doing ``lstm_c.load``, ``np.load``, ``model.predict``,
  ``np.save``: the same start-up, reading and writing. With ``batch_size=4096`` (the
  batches lstm-c run uses) the difference is the command line's own overhead (target: at
  most 10 %); ``predict(x)`` alone uses predict's default batching (4096 samples per call).
- "predict only": ``model.predict(x, batch_size=4096)`` on an array in memory, in this process.
- Dask: ``lstm_c.dask.predict`` on ``from_file("x.npy")`` in blocks of 4096 rows, computed on
  a LocalCluster(n_workers=2, threads_per_worker=1) with one lstm_c thread per worker, and
  the same through ``lstm-c run --dask ADDRESS``.

Times are the median and the best of --repeats runs, the variants interleaved so that load from other
processes spreads over all of them. Results print as Markdown; ``--append PATH`` adds them
under a "Batch runs" heading of PATH (benchmarks/RESULTS.md).

    PYTHONPATH=. python benchmarks/bench_batch.py --append benchmarks/RESULTS.md
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (benchmarks/bench.py: machine description, CPU-load measurement)

import lstm_c  # noqa: E402
from lstm_c._batch import DEFAULT_BATCH_SIZE  # noqa: E402

HEADING = "## Batch runs"

#: The Python API in a fresh process: load, predict (argv[4]: batch size, or "all"), save.
API_SCRIPT = """\
import sys, numpy as np, lstm_c
model = lstm_c.load(sys.argv[1])
batch_size = None if sys.argv[4] == "all" else int(sys.argv[4])
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), batch_size=batch_size))
"""
CLI = "lstm-c run"
API_BATCHED = f"Python API, predict(x, batch_size={DEFAULT_BATCH_SIZE}) (lstm-c run's batches)"
API_DEFAULT = "Python API, predict(x) (its default batches of 4096)"


def make_files(directory, samples, timesteps, features, units):
    model = lstm_c.Sequential([lstm_c.Input((None, features)), lstm_c.LSTM(units, seed=0)])
    model.save(directory / "model.keras")
    rng = np.random.default_rng(0)
    x = np.lib.format.open_memmap(directory / "x.npy", mode="w+", dtype=np.float32,
                                  shape=(samples, timesteps, features))
    for start in range(0, samples, 10_000):  # in pieces: the input may be large
        x[start:start + 10_000] = rng.standard_normal(x[start:start + 10_000].shape, dtype=np.float32)
    x.flush()
    return model


def timed(command, env):
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def child_environment():
    """The environment for child processes: they import the lstm_c measured here."""
    env = dict(os.environ)
    parent = str(Path(lstm_c.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def measure_cli_and_api(directory, repeats, env):
    files = [str(directory / name) for name in ("model.keras", "x.npy")]
    api = [sys.executable, "-c", API_SCRIPT, *files, str(directory / "y_api.npy")]
    commands = {
        CLI: [sys.executable, "-m", "lstm_c", "run", *files, "-o", str(directory / "y_cli.npy"), "-q", "--force"],
        API_BATCHED: api + [str(DEFAULT_BATCH_SIZE)],
        API_DEFAULT: api + ["all"],
    }
    times = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            times[name].append(timed(command, env))
    if not np.allclose(np.load(directory / "y_cli.npy"), np.load(directory / "y_api.npy"), atol=1e-6):
        raise AssertionError("lstm-c run and the Python API disagree")
    return times


def measure_predict_only(model, directory, repeats):
    x = np.load(directory / "x.npy")
    model.predict(x[:100])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(x, batch_size=DEFAULT_BATCH_SIZE)
        times.append(time.perf_counter() - start)
    return times


def measure_dask(directory, repeats, env, batch_size=4096):
    from distributed import Client, LocalCluster

    import lstm_c.dask

    model = lstm_c.load(directory / "model.keras")
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]  # the worker processes import the same lstm_c
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=50) as cluster, Client(cluster) as client:
        x = lstm_c.dask.from_file(directory / "x.npy", batch_size=batch_size)
        y = lstm_c.dask.predict(model, x, n_threads=1)
        client.compute(y[:1]).result()  # warm the workers up
        command = [sys.executable, "-m", "lstm_c", "run", str(directory / "model.keras"), str(directory / "x.npy"),
                   "-o", str(directory / "y_dask.npy"), "-q", "--force", "--dask", cluster.scheduler_address,
                   "--batch-size", str(batch_size)]
        in_memory = "Dask predict, LocalCluster 2 workers x 1 thread (compute to memory)"
        through_cli = "lstm-c run --dask (same cluster, .npy to .npy)"
        results = {in_memory: [], through_cli: []}
        for _ in range(repeats):
            start = time.perf_counter()
            client.compute(y).result()
            results[in_memory].append(time.perf_counter() - start)
            results[through_cli].append(timed(command, env))
    if not np.allclose(np.load(directory / "y_dask.npy"), model.predict(np.load(directory / "x.npy")), atol=1e-6):
        raise AssertionError("lstm-c run --dask disagrees with predict")
    return results


def report(meta, shape, rows, overhead):
    samples, timesteps, features, units = shape
    lines = [f"### {meta['date']}: {samples} sequences x {timesteps} steps x {features} features, LSTM({units})",
             "", f"Machine: {meta['cpu']}, {meta['cores']} cores; lstm_c threads: {meta['threads']}. "
             f"CPU used by other processes during the run: {meta['foreign_cpu_pct']:.1f}% (shared machine: "
             "above a few % the times are pessimistic). Versions: "
             + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
             f"Command: `{meta['command']}`", "",
             "| variant | median s | best s | sequences/s (median) |", "|---|---|---|---|"]
    lines += [f"| {name} | {statistics.median(times):.2f} | {min(times):.2f} | "
              f"{samples / statistics.median(times):,.0f} |" for name, times in rows.items()]
    lines += ["", f"Command-line overhead vs the Python API with the same batches (fresh processes both, same "
              f"load and save): {overhead[0]:+.1f} % (median), {overhead[1]:+.1f} % (best run)."]
    return "\n".join(lines) + "\n"


def append_results(path, text):
    """Add ``text`` under the "Batch runs" heading of ``path`` (created if needed), keeping
    everything else in the file as it is."""
    path = Path(path)
    existing = path.read_text() if path.exists() else ""
    if HEADING not in existing:
        existing = existing.rstrip("\n") + ("\n\n" if existing else "") + f"{HEADING}\n\n" + \
            "Throughput of `lstm-c run` vs the Python API and of Dask (`benchmarks/bench_batch.py`).\n"
    start = existing.index(HEADING)
    following = existing.find("\n## ", start + len(HEADING))
    end = len(existing) if following < 0 else following + 1
    section = existing[start:end].rstrip("\n") + "\n\n" + text
    path.write_text(existing[:start] + section + ("\n" + existing[end:] if end < len(existing) else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--timesteps", type=int, default=50)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask measurements")
    parser.add_argument("--append", metavar="PATH", help="append the results to PATH under 'Batch runs'")
    args = parser.parse_args(argv)
    shape = (args.samples, args.timesteps, args.features, args.units)
    env = child_environment()
    bench.wait_until_quiet(max_wait_s=120)
    cpu_start = bench.cpu_snapshot()
    meta = bench.machine_info(lstm_c.get_num_threads())
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        model = make_files(directory, *shape)
        print("... lstm-c run and the Python API", file=sys.stderr, flush=True)
        rows = measure_cli_and_api(directory, args.repeats, env)
        print("... predict only", file=sys.stderr, flush=True)
        rows[f"predict only, batch_size={DEFAULT_BATCH_SIZE} (array in memory, this process)"] = \
            measure_predict_only(model, directory, args.repeats)
        if not args.no_dask:
            print("... Dask", file=sys.stderr, flush=True)
            rows.update(measure_dask(directory, args.repeats, env))
    meta["foreign_cpu_pct"] = 100 * (bench.foreign_load(cpu_start, bench.cpu_snapshot()) or 0)
    overhead = [100 * (summary(rows[CLI]) / summary(rows[API_BATCHED]) - 1) for summary in (statistics.median, min)]
    text = report(meta, shape, rows, overhead)
    print(text)
    if args.append:
        append_results(args.append, text)


if __name__ == "__main__":
    main()
