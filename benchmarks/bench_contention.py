"""Multi-threaded calls on a machine that another process shares.

A call split over threads waits at every step for its slowest thread, so a core taken by
another process, even for a few milliseconds, stalls the whole team. This measures one
shape's calls (return_sequences=True, float32, the weights and input of bench.py) in
three situations, each engine's calls in a block after a pause of bench.py's (the thread
pool of the engine before, spinning, would take a core from the next):

- "quiet": nothing else running;
- "bursts": another process busy for --burst-ms in every --period-ms on the last core
  the engines use (a daemon waking up, a shared VM's neighbour);
- "hog": another process busy all the time on that core.

It prints each engine's median, 90th percentile and worst call in milliseconds. This
process and its threads are kept to the first --threads cores, so that the competitor
takes one of theirs on any machine.

    PYTHONPATH=. python benchmarks/bench_contention.py --shape big --calls 30
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the engines and the problem, built the same way)

COMPETITORS = {
    "quiet": None,
    "bursts": ("import os, sys, time\n"
               "burst, period = float(sys.argv[1]) / 1e3, float(sys.argv[2]) / 1e3\n"
               "while True:\n"
               "    start = time.perf_counter()\n"
               "    while time.perf_counter() - start < burst: pass\n"
               "    time.sleep(period - burst)\n"),
    "hog": "while True: pass\n",
}


def start_competitor(kind, core, burst_ms, period_ms):
    code = COMPETITORS[kind]
    if code is None:
        return None
    child = subprocess.Popen([sys.executable, "-c", code, str(burst_ms), str(period_ms)])
    os.sched_setaffinity(child.pid, {core})
    time.sleep(0.3)  # running before the first call
    return child


def measure(runs, calls):
    """Each engine's `calls` call times in ms."""
    times = {}
    for name, fn in runs.items():
        bench.settle()
        times[name] = [bench.time_once(fn) * 1e3 for _ in range(calls)]
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="big", choices=sorted(bench.SHAPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=30, help="calls per engine and situation")
    parser.add_argument("--burst-ms", type=float, default=3.0)
    parser.add_argument("--period-ms", type=float, default=200.0)
    parser.add_argument("--engines", default="lstm_c,torch,onnxruntime")
    args = parser.parse_args(argv)

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < args.threads:
        parser.error(f"--threads {args.threads} needs as many cores; this process may use {len(cores)}")
    mine = cores[:args.threads]
    os.sched_setaffinity(0, mine)  # before any thread pool starts: the pools inherit it

    K, R, b, x = bench.make_problem(*bench.SHAPES[args.shape])
    runs = {}
    for name in args.engines.split(","):
        if name == "lstm_c":
            bench.lstm_c.set_num_threads(args.threads)
        elif not bench.available(name):
            print(f"({name} is not installed: left out)")
            continue
        fn = bench.BUILDERS[name](K, R, b, x, args.threads)[0]
        fn()  # warm-up
        runs[name] = fn

    B, T, D, H = bench.SHAPES[args.shape]
    print(f"{args.shape} ({B}x{T}x{D}x{H}), {args.threads} threads on cores {mine}, {args.calls} calls "
          f"per engine and situation; bursts: {args.burst_ms:g} ms in every {args.period_ms:g} ms. "
          f"Times in ms: median / 90th percentile / worst.\n")
    print("| situation | " + " | ".join(runs) + " |")
    print("|---|" + "---|" * len(runs))
    for kind in COMPETITORS:
        child = start_competitor(kind, mine[-1], args.burst_ms, args.period_ms)
        try:
            times = measure(runs, args.calls)
        finally:
            if child is not None:
                child.kill()
                child.wait()
        cells = [f"{np.median(t):.1f} / {np.percentile(t, 90):.1f} / {max(t):.1f}" for t in times.values()]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
