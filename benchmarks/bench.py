"""Benchmark lstm_c's LSTM forward pass against the NumPy reference, PyTorch,
ONNX Runtime and (with --keras) Keras 3 / TensorFlow.

Everything runs in one process with the same float32 weights (Keras layout) and
the same inputs, return_sequences=True. Before timing, every competitor's output
is checked against lstm_c's (max abs difference <= 1e-4; a warning otherwise).
A time is the median of repeated runs after a warm-up; the number of repeats is
chosen so that a measurement takes ~0.75 s (at least 5 runs; --quick: ~0.1 s, 3).
The engines of a shape are measured in three interleaved rounds (lstm_c, torch, ONNX
Runtime, lstm_c, torch, ...), each engine's runs split over them, so that a drift of a
shared machine's speed over the seconds a shape takes hits every engine alike. Before
each round's block the process sleeps 0.25 s, so that the thread pools of the engine
measured before (OpenMP, ONNX Runtime, OpenBLAS workers spin after a run) are idle and
do not take a core from the next one. lstm_c's own ratios (trace / fast,
float64 / float32) come from one round-robin measurement of the four calls (~3 s;
each round ~1 ms of each: one call, or back-to-back calls of a short one): measured
apart, a drift of the machine's speed between the measurements showed in the ratio
(trace / fast from 0.8 to 1.4 in runs minutes apart). "float64 / float32" runs the
float32 model in float64, whose recurrent weights lstm_c may read in float32 (they are
float32 values: same bits); "float64-valued" runs the same weights nudged by 2^-40
(relative) off float32 values, which it reads in float64.
Competitors that cannot be imported show "-". The summary's last column judges each
shape against the speed issue's targets (TARGET_*: "met", or what was missed and by how
much), and a line counts the shapes that met them all.

GFLOP/s counts 2*B*T*4H*(D+H) flops (the two GEMMs), and "% sgemm" relates that
to NumPy's float32 2048^3 matmul rate measured at startup (NumPy's OpenBLAS as the
OPENBLAS_* environment configures it, which is left as is: with OPENBLAS_CORETYPE
pinning an older ISA, engines using wider SIMD can exceed 100%). --threads sets
lstm_c's, torch's and ONNX Runtime's threads; OpenBLAS's (NumPy: reference, sgemm)
follow OPENBLAS_NUM_THREADS. On a shared machine, a shape during which other
processes used > 2% of the CPU is measured again (--retries); the share is reported.

    PYTHONPATH=. python benchmarks/bench.py --markdown
    PYTHONPATH=. python benchmarks/bench.py --shapes stream,seq --threads 1 --quick
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

try:
    import lstm_c
except ImportError:  # run from a checkout without PYTHONPATH: use the repository's package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import lstm_c
from lstm_c.reference import lstm_forward

SHAPES = {  # name: (B, T, D, H)
    "stream": (1, 1, 64, 128), "seq": (1, 100, 64, 128), "med": (32, 100, 128, 256),
    "big": (64, 200, 512, 512), "many": (256, 50, 16, 64),
    "deepbench_device": (1, 150, 256, 256), "deepbench_server": (4, 25, 512, 512),
}
ENGINES = ["lstm_c", "reference", "torch", "onnxruntime", "keras"]
TOLERANCE = 1e-4
REFERENCE_LIMIT_S = 5.0   # skip the NumPy reference when one run is estimated above this
RSS_SHAPE = "big"
BUSY_LIMIT = 0.02          # share of the CPU used by other processes that spoils a measurement
ROUNDS = 3                 # interleaved blocks each engine's runs of a shape are split into
# The speed issue's targets, judged per shape in every run (see targets_missed)
TARGET_RATIO = 0.8         # lstm_c's time against the best competitor's ...
TARGET_PCT_SGEMM = 90.0    # ... or this share of sgemm's rate while still the fastest
TARGET_STREAM_US = 5.0     # a stateful layer's call on one step
TARGET_TRACE = 1.25        # trace mode against the plain call
TARGET_FLOAT64 = 2.2       # float64 against float32


# ---------------------------------------------------------------- data and engines
def make_problem(B, T, D, H, seed=0):
    """Float32 Keras-layout weights (kernel, recurrent_kernel, bias) and an input x."""
    rng = np.random.default_rng(seed)
    limit = math.sqrt(6.0 / (D + 4 * H))
    K = rng.uniform(-limit, limit, (D, 4 * H)).astype(np.float32)
    R = (rng.standard_normal((H, 4 * H)) / math.sqrt(H)).astype(np.float32)
    b = rng.uniform(-0.1, 0.1, 4 * H).astype(np.float32)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    return K, R, b, x


def build_lstm_c(K, R, b, x, threads, dtype="float32"):
    layer = lstm_c.LSTM(R.shape[0], return_sequences=True, seed=0, dtype=dtype)
    layer.set_weights([w.astype(dtype) for w in (K, R, b)])
    xd = x.astype(dtype)
    return (lambda: layer(xd)), np.asarray, layer


def build_reference(K, R, b, x, threads):
    return (lambda: lstm_forward(x, K, R, b)), (lambda out: out["outputs"])


def build_torch(K, R, b, x, threads):
    import torch
    torch.set_num_threads(threads)
    D, H = K.shape[0], R.shape[0]
    lstm = torch.nn.LSTM(D, H, batch_first=True).eval()
    with torch.no_grad():  # same gate order (i, f, g, o); torch adds two biases
        for name, value in (("weight_ih_l0", K.T), ("weight_hh_l0", R.T),
                            ("bias_ih_l0", b), ("bias_hh_l0", np.zeros_like(b))):
            getattr(lstm, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
    xt = torch.from_numpy(x)

    @torch.inference_mode()
    def run():
        return lstm(xt)[0]
    return run, (lambda out: out.numpy())


def onnx_lstm_model(K, R, b):
    """A one-node ONNX LSTM: Keras gate blocks (i, f, c, o) -> ONNX (i, o, f, c)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    D, H = K.shape[0], R.shape[0]
    order = [0, 3, 1, 2]
    W = K.T.reshape(4, H, D)[order].reshape(1, 4 * H, D)
    Rw = R.T.reshape(4, H, H)[order].reshape(1, 4 * H, H)
    Bw = np.concatenate([b.reshape(4, H)[order].ravel(), np.zeros(4 * H, np.float32)])[None]
    inits = [numpy_helper.from_array(np.ascontiguousarray(a, np.float32), n)
             for n, a in (("W", W), ("R", Rw), ("B", Bw))]
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=H)
    graph = helper.make_graph(
        [node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", D])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 1, "B", H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def build_onnxruntime(K, R, b, x, threads):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(onnx_lstm_model(K, R, b), opts, providers=["CPUExecutionProvider"])
    feeds = {"X": np.ascontiguousarray(x.transpose(1, 0, 2))}  # time-major, outside the timing
    return (lambda: sess.run(["Y"], feeds)[0]), (lambda y: y[:, 0].transpose(1, 0, 2))


def build_keras(K, R, b, x, threads):
    import tensorflow as tf
    import keras
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised by an earlier shape: same threads
    layer = keras.layers.LSTM(R.shape[0], return_sequences=True)
    layer.build(x.shape)
    layer.set_weights([K, R, b])
    fn = tf.function(lambda t: layer(t, training=False))  # graph mode, as in predict()
    xt = tf.constant(x)
    return (lambda: fn(xt)), np.asarray


BUILDERS = {"lstm_c": lambda *a: build_lstm_c(*a)[:2], "reference": build_reference,
            "torch": build_torch, "onnxruntime": build_onnxruntime, "keras": build_keras}


# ---------------------------------------------------------------- timing
def time_once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def repeats(seconds_per_round, target_s, min_reps, max_reps):
    """Rounds of calls that fill ~target_s, within [min_reps, max_reps]."""
    return int(min(max_reps, max(min_reps, math.ceil(target_s / max(seconds_per_round, 1e-7)))))


def interleaved_medians(runs, target_s, rounds=ROUNDS):
    """Median seconds per call of each engine in ``runs`` ({name: (fn, min_reps,
    max_reps)}): the repeats that fill ~target_s (estimated from one warm call) are split
    into ``rounds`` blocks and the engines' blocks interleaved, each after settle() and one
    untimed call (which wakes the engine's own thread pool). -> {name: (median, reps)}"""
    per_round = {}
    for name, (fn, min_reps, max_reps) in runs.items():
        per_round[name] = math.ceil(repeats(time_once(fn), target_s, min_reps, max_reps) / rounds)
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (fn, *_) in runs.items():
            settle()
            fn()
            times[name].extend(time_once(fn) for _ in range(per_round[name]))
    return {name: (statistics.median(row), len(row)) for name, row in times.items()}


def paired_medians(fns, target_s, min_reps, max_reps=10_000, block_s=1e-3):
    """Median seconds per call of each of ``fns``, measured round-robin so that a drift in
    the machine's speed, which on a shared VM moves 10-25% between seconds, hits every one
    alike: for ratios between them. A round runs each function for ~``block_s`` (one call,
    or back-to-back calls of a short one): one call of each in turn measured a streaming
    step's float64 weights after the float32 call had evicted them from L2, a mixture no
    caller runs (stream at 1 thread: float64 / float32 2.21-2.26 so, 1.66-1.75 in blocks).
    Each round starts one function later, so that none always follows the same one: a
    call right after one in the other precision can be slower (big at one thread on a
    Zen 4, medians of 5 rounds: the first float64 call after a float32 one or the trace
    1061-1099 ms, the float64 call after it 1022-1034; with a fixed order, float64 /
    float32 measured 2.22-2.33 in four runs where float64-valued weights, one call later,
    measured 2.10-2.15)."""
    singles = [min(time_once(fn) for _ in range(3)) for fn in fns]  # (the first call after a pause is slow)
    blocks = [max(1, math.ceil(block_s / max(t, 1e-7))) for t in singles]
    reps = repeats(sum(t * n for t, n in zip(singles, blocks)), target_s, min_reps, max_reps)
    times = [[] for _ in fns]
    for round_ in range(reps):
        for i in range(len(fns)):
            j = (round_ + i) % len(fns)
            times[j].extend(time_once(fns[j]) for _ in range(blocks[j]))
    return [statistics.median(row) for row in times]


def settle(seconds=0.25):
    """Let the thread pools of the engine measured before go idle. OpenMP (torch), ONNX
    Runtime and OpenBLAS workers spin for a while after a run (OpenBLAS: ~2^28 cycles) and
    would take a core from whatever is measured next in this process."""
    time.sleep(seconds)


def sgemm_gflops(n=2048, tries=5):
    a, b = (np.random.default_rng(1).standard_normal((n, n)).astype(np.float32) for _ in range(2))
    a @ b
    return 2 * n ** 3 / min(time_once(lambda: a @ b) for _ in range(tries)) / 1e9


def stream_latency_us(K, R, b, x, target_s):
    """µs per call of a stateful lstm_c layer fed one (1, 1, D) step at a time: the best of
    7 runs of n back-to-back calls (as timeit reports; the other engines' idle thread pools
    spinning in this process inflate single runs)."""
    layer = lstm_c.LSTM(R.shape[0], stateful=True)
    layer.set_weights([K, R, b])
    x_t = np.ascontiguousarray(x[:1, :1])
    for _ in range(100):
        layer(x_t)
    n = max(1000, int(target_s / 7 / (time_once(lambda: layer(x_t)) + 1e-7)))
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            layer(x_t)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


# ---------------------------------------------------------------- peak RSS (subprocess)
def peak_rss_mib():
    """This process's peak RSS: VmHWM (ru_maxrss can carry the forking parent's peak over exec)."""
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024


def rss_child(engine, threads):
    """Run in a fresh process: build `engine` for RSS_SHAPE, run once, print peak RSS (MiB)."""
    lstm_c.set_num_threads(threads)
    K, R, b, x = make_problem(*SHAPES[RSS_SHAPE])
    run, to_numpy = BUILDERS[engine](K, R, b, x, threads)
    before = peak_rss_mib()
    to_numpy(run())
    peak = peak_rss_mib()
    print(json.dumps({"peak_mib": peak, "run_delta_mib": peak - before}))


def peak_rss(engine, threads):
    cmd = [sys.executable, os.path.abspath(__file__), "--rss-child", engine, "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- one shape
def available(engine):
    modules = {"torch": ["torch"], "onnxruntime": ["onnx", "onnxruntime"], "keras": ["keras"]}
    if engine == "keras":
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        for module in modules.get(engine, []):
            __import__(module)
        return True
    except ImportError:
        return False


def bench_shape(name, engines, args, peak):
    B, T, D, H = SHAPES[name]
    K, R, b, x = make_problem(B, T, D, H)
    target, min_reps = (0.1, 3) if args.quick else (0.75, 5)
    flops = 2 * B * T * 4 * H * (D + H)
    res = {"shape": name, "B": B, "T": T, "D": D, "H": H, "engines": {}, "notes": []}

    run_c, _, layer = build_lstm_c(K, R, b, x, args.threads)
    expected = run_c()
    runs = {}
    for engine in engines:
        entry = res["engines"][engine] = {"ms": None}
        if engine == "reference":  # estimate from a few steps before committing to a full run
            k = min(T, 5)
            est = time_once(lambda: lstm_forward(x[:, :k], K, R, b)) * T / k
            if est > REFERENCE_LIMIT_S:
                entry["skipped"] = f"skipped (one run ~{est:.0f} s)"
                res["notes"].append(f"reference {entry['skipped']}")
                continue
        run, to_numpy = BUILDERS[engine](K, R, b, x, args.threads)
        if engine != "lstm_c":
            out = to_numpy(run())
            diff = float(np.max(np.abs(out - expected)))
            entry["max_abs_diff"] = diff
            if not diff <= TOLERANCE:
                msg = f"WARNING {name}: {engine} differs from lstm_c by {diff:.2e} (> {TOLERANCE:g})"
                print(msg, file=sys.stderr)
                res["notes"].append(msg)
        reps = (3, 5) if engine == "reference" else (min_reps, 10_000)
        runs[engine] = (run, *reps)
    for engine, (sec, n) in interleaved_medians(runs, target).items():
        res["engines"][engine].update(ms=sec * 1e3, reps=n, gflops=flops / sec / 1e9,
                                      pct_sgemm=100 * flops / sec / 1e9 / peak)

    t_fast = res["engines"]["lstm_c"]["ms"]
    others = {e: v["ms"] for e, v in res["engines"].items() if e != "lstm_c" and v["ms"]}
    if others:
        best = min(others, key=others.get)
        res["best"], res["ratio_vs_best"] = best, t_fast / others[best]
    trace = layer.trace(x)
    if not np.array_equal(trace.outputs, expected):
        res["notes"].append("WARNING: lstm_c trace outputs differ from the fast path")
    run64 = build_lstm_c(K, R, b, x, args.threads, "float64")[0]
    nudged = [w.astype(np.float64) * (1 + 2.0 ** -40) for w in (K, R, b)]
    run64_valued = build_lstm_c(*nudged, x, args.threads, "float64")[0]
    settle()
    fast, traced, double, valued = paired_medians(
        [run_c, lambda: layer.trace(x), run64, run64_valued], 4 * target, min_reps)
    res["trace_ratio"], res["f64_ratio"] = traced / fast, double / fast
    res["f64_valued_ratio"] = valued / fast
    if B == 1 and T == 1:
        settle()
        res["stateful_step_us"] = stream_latency_us(K, R, b, x, target)
    return res


def targets_missed(r):
    """The speed issue's targets that shape result `r` missed, as short reasons (empty: all
    met): lstm_c's time at most TARGET_RATIO of the best competitor's, or at least
    TARGET_PCT_SGEMM of sgemm's rate while faster than every competitor; the stateful step
    within TARGET_STREAM_US; trace / fast within TARGET_TRACE; float64 / float32 within
    TARGET_FLOAT64, for float32-valued weights (the issue's float64) and float64-valued
    ones."""
    missed = []
    ratio, pct = r.get("ratio_vs_best"), r["engines"]["lstm_c"].get("pct_sgemm")
    if ratio is None:
        missed.append("no competitor")
    elif ratio > TARGET_RATIO and not (pct is not None and pct >= TARGET_PCT_SGEMM and ratio < 1):
        missed.append(f"speed {ratio:.2f}" + (f" at {pct:.0f}% sgemm" if pct is not None else ""))
    step = r.get("stateful_step_us")
    if step is not None and step > TARGET_STREAM_US:
        missed.append(f"step {step:.1f} µs")
    for key, limit, label in (("trace_ratio", TARGET_TRACE, "trace"), ("f64_ratio", TARGET_FLOAT64, "float64"),
                              ("f64_valued_ratio", TARGET_FLOAT64, "float64-valued")):
        if r.get(key) is not None and r[key] > limit:
            missed.append(f"{label} {r[key]:.2f}")
    return missed


def wait_until_quiet(max_wait_s=300, window_s=3.0):
    """Sleep until other processes use < BUSY_LIMIT of the CPU over a window (or give up)."""
    deadline = time.time() + max_wait_s
    while time.time() < deadline:
        start = cpu_snapshot()
        time.sleep(window_s)
        if foreign_load(start, cpu_snapshot()) < BUSY_LIMIT:
            return


# ---------------------------------------------------------------- reporting
def cpu_snapshot():
    """(machine busy CPU-seconds, total CPU-seconds, this process's + children's CPU-seconds)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    hz, t, idle = os.sysconf("SC_CLK_TCK"), os.times(), ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz, t.user + t.system + t.children_user + t.children_system


def foreign_load(start, end):
    """Share of the machine's CPU used by other processes between two cpu_snapshot()s."""
    if end[1] <= start[1]:
        return 0.0
    return max(0.0, (end[0] - start[0]) - (end[2] - start[2])) / (end[1] - start[1])


def kernels_run():
    """Which of lstm_c's kernels this machine runs: the block width its weights are packed
    in, and the tiles of 256-bit blocks (AVX2 with FMA, else baseline code)."""
    width = lstm_c._core.lanes(np.float32) * 32
    if width == 512:
        return "512-bit blocks (AVX-512)"
    return f"{width}-bit blocks ({'AVX2 and FMA' if lstm_c._core.avx2_tiles() else 'baseline'})"


def machine_info(threads):
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    versions = {"python": platform.python_version(), "lstm_c": lstm_c.__version__}
    for mod in ("numpy", "scipy", "torch", "onnxruntime", "onnx", "keras", "tensorflow"):
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "?")
    blas = None
    try:
        import threadpoolctl
        blas = sorted({(i["filepath"].rsplit("/", 1)[-1], i["num_threads"])
                       for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"})
    except ImportError:
        pass
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("OPENBLAS_", "OMP_", "LSTM_C_", "MKL_"))}
    cmd = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())),
                    "python", *map(shlex.quote, sys.argv)])
    # the lstm_c revision measured (-dirty: uncommitted changes), else its location
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, cwd=os.path.dirname(lstm_c.__file__)).stdout.strip()
    except OSError:
        rev = ""
    versions["lstm_c"] += f" ({rev or os.path.dirname(os.path.dirname(lstm_c.__file__))})"
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), "threads": threads, "versions": versions,
            "blas_threads": blas, "command": cmd, "kernels": kernels_run()}


def fmt(v, spec=".2f", missing="-"):
    return missing if v is None else format(v, spec)


def render(header, rows, markdown):
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in [header, *rows])


def report(meta, results, engines, markdown):
    v = meta["versions"]
    out = [f"{'### ' if markdown else ''}{meta['threads']} thread(s), {meta['date']}", "",
           f"Machine: {meta['cpu']}, {meta['cores']} cores. NumPy sgemm 2048^3: "
           f"{meta['sgemm_gflops']:.1f} GFLOP/s. BLAS (OpenBLAS) threads: "
           f"{meta['blas_threads'] or 'unknown'}. \"other CPU %\": CPU share used by other "
           "processes while a shape was measured (above ~2% distorts the timings).",
           "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items())
           + f". lstm_c's kernels: {meta.get('kernels', '?')}.",
           f"Command: `{meta['command']}`", *([meta["note"]] if "note" in meta else []), ""]
    rows = []
    for r in results:
        for e in engines:
            d = r["engines"].get(e)
            if d is None:
                continue
            ms = d.get("skipped") or fmt(d["ms"], ".3f")
            rows.append([r["shape"], f"{r['B']}x{r['T']}x{r['D']}x{r['H']}", e, ms,
                         fmt(d.get("gflops"), ".1f"), fmt(d.get("pct_sgemm"), ".1f"),
                         fmt(d.get("ms") and d["ms"] / r["engines"]["lstm_c"]["ms"]),
                         fmt(d.get("max_abs_diff"), ".1e")])
    out.append(render(["shape", "BxTxDxH", "engine", "ms", "GFLOP/s", "% sgemm",
                       "time / lstm_c", "max abs diff"], rows, markdown))
    rows = [[r["shape"], fmt(r["engines"]["lstm_c"]["ms"], ".3f"), r.get("best", "-"),
             fmt(r.get("ratio_vs_best")), fmt(r["trace_ratio"]), fmt(r["f64_ratio"]),
             fmt(r.get("f64_valued_ratio")), fmt(r.get("foreign_cpu_pct"), ".1f"),
             "; ".join(r["targets_missed"]) or "met"]
            for r in results]
    out += ["", render(["shape", "lstm_c ms", "best competitor", "lstm_c / best",
                        "trace / fast", "float64 / float32", "float64-valued / float32",
                        "other CPU %", "targets"], rows, markdown)]
    met = sum(not r["targets_missed"] for r in results)
    out.append(f"\nThe speed issue's targets (lstm_c / best <= {TARGET_RATIO:g}, or >= "
               f"{TARGET_PCT_SGEMM:g}% of sgemm and the fastest; a stateful step <= {TARGET_STREAM_US:g} µs; "
               f"trace / fast <= {TARGET_TRACE:g}; float64 / float32 <= {TARGET_FLOAT64:g}): "
               f"met on {met} of {len(results)} shapes.")
    for r in results:
        if "stateful_step_us" in r:
            out.append(f"\n{r['shape']}: stateful lstm_c layer, one (1,1,{r['D']}) step per call (best of 7 runs): "
                       f"{r['stateful_step_us']:.1f} µs/call.")
        if "peak_rss" in r:
            parts = [f"{e} {d['peak_mib']:.0f} MiB (+{d['run_delta_mib']:.0f} during the run)"
                     if d else f"{e} failed" for e, d in r["peak_rss"].items()]
            out.append(f"\n{r['shape']}: peak RSS, one fresh process per engine "
                       f"(imports + weights + one run): " + "; ".join(parts) + ".")
        out += [f"\n{n}" for n in r["notes"] if n.startswith("WARNING")]
    print("\n".join(out))


# ---------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="threads for lstm_c (OpenMP), torch and ONNX Runtime (default: all cores)")
    p.add_argument("--shapes", default=",".join(SHAPES),
                   help=f"comma-separated subset of: {', '.join(SHAPES)}")
    p.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    p.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    p.add_argument("--keras", action="store_true", help="include Keras 3 / TensorFlow (slow import)")
    p.add_argument("--retries", type=int, default=3,
                   help="redo a shape (after waiting for quiet) when other processes used more than "
                        f"{100 * BUSY_LIMIT:g}%% of the CPU meanwhile (default 3)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--rss-child", choices=ENGINES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.rss_child:
        return rss_child(args.rss_child, args.threads)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        p.error(f"unknown shape(s) {unknown}; choose from {list(SHAPES)}")

    lstm_c.set_num_threads(args.threads)
    wanted = [e for e in ENGINES if not (e == "reference" and args.no_reference)
              and not (e == "keras" and not args.keras)]
    engines = [e for e in wanted if available(e)]
    missing = [e for e in wanted if e not in engines]
    meta = machine_info(args.threads)
    meta["sgemm_gflops"] = sgemm_gflops()
    meta["missing"] = missing
    blas = {n for _, n in meta["blas_threads"] or ()}
    if blas and blas != {args.threads}:
        meta["note"] = (f"NOTE: OpenBLAS (NumPy: reference, sgemm rate) uses {sorted(blas)} threads "
                        f"while --threads is {args.threads}; set OPENBLAS_NUM_THREADS to match.")
        print(meta["note"], file=sys.stderr)
    results = []
    for name in shapes:
        for attempt in range(args.retries + 1):  # redo a shape that other processes disturbed
            print(f"... {name}", file=sys.stderr, flush=True)
            start = cpu_snapshot()
            res = bench_shape(name, engines, args, meta["sgemm_gflops"])
            busy = foreign_load(start, cpu_snapshot())
            res["foreign_cpu_pct"] = 100 * busy
            if busy < BUSY_LIMIT or attempt == args.retries:
                break
            print(f"... other processes used {busy:.0%} of the CPU: waiting, then again",
                  file=sys.stderr, flush=True)
            wait_until_quiet()
        if name == RSS_SHAPE:  # outside the timed window: memory does not mind a busy machine
            res["peak_rss"] = {e: peak_rss(e, args.threads) for e in engines}
        res["targets_missed"] = targets_missed(res)
        results.append(res)
    for r in results:  # "-" for engines that could not be imported
        for e in missing:
            r["engines"][e] = {"ms": None}
    report(meta, results, wanted, args.markdown)
    if missing:
        print(f"\nNot importable (shown as '-'): {', '.join(missing)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
