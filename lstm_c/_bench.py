"""``lstm-c bench`` outside a source checkout: how fast lstm_c runs here, on its own.

The full comparison (the NumPy reference, PyTorch, ONNX Runtime, Keras; peak memory) is
``benchmarks/bench.py`` in the repository, which ``lstm-c bench`` runs when it is there.
This is the installed package's small stand-in: lstm_c alone, float32, return_sequences,
the median of repeated calls.
"""

import argparse
import math
import statistics
import time

import numpy as np

from ._threads import get_num_threads, set_num_threads
from .cli import _thread_count
from .layers import LSTM

#: name: (batch, timesteps, features, units); a subset of benchmarks/bench.py's shapes.
SHAPES = {"seq": (1, 100, 64, 128), "med": (32, 100, 128, 256), "many": (256, 50, 16, 64)}


def time_shape(B, T, D, H, target_s=0.5):
    """Median seconds of one call on random data, repeats filling about ``target_s``."""
    rng = np.random.default_rng(0)
    layer = LSTM(H, return_sequences=True, seed=0)
    layer.build((None, None, D))
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    start = time.perf_counter()
    layer(x)  # warm-up, and the estimate of how many repeats fit
    first = time.perf_counter() - start
    times = []
    for _ in range(max(5, min(1000, math.ceil(target_s / max(first, 1e-6))))):
        start = time.perf_counter()
        layer(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lstm-c bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated subset of {', '.join(SHAPES)}")
    parser.add_argument("--threads", type=_thread_count, help="lstm_c threads (default: all cores)")
    arguments = parser.parse_args(argv)
    names = [name.strip() for name in arguments.shapes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes {unknown}; choose from {list(SHAPES)}")
    if arguments.threads:
        set_num_threads(arguments.threads)
    print(f"lstm_c alone, float32, {get_num_threads()} thread(s); the full comparison is benchmarks/bench.py "
          "in the source repository")
    print(f"{'shape':>6} {'BxTxDxH':>16} {'ms':>10} {'sequences/s':>12} {'GFLOP/s':>8}")
    for name in names:
        B, T, D, H = SHAPES[name]
        seconds = time_shape(B, T, D, H)
        gflops = 2 * B * T * 4 * H * (D + H) / seconds / 1e9
        print(f"{name:>6} {f'{B}x{T}x{D}x{H}':>16} {seconds * 1e3:>10.3f} {B / seconds:>12.0f} {gflops:>8.1f}")
    return 0
