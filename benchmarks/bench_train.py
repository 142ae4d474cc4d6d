"""Time per training step, lstm_c against PyTorch: same model, same batch, same threads.

Two models from issue 6, float32, Adam, one step = forward + loss + backward + update:
  char   Embedding(100, 64) -> LSTM(256, return_sequences) -> Dense(100), B=64, T=100,
         sparse categorical crossentropy from logits at every step
  small  LSTM(64) -> Dense(1) on (B=32, T=50, D=8), mean squared error
A time is the median of --steps steps after two warm-up steps (wall clock), or with
--process-time their minimum in CPU time of the process: at one thread, on a machine
shared with other jobs, that measures the work rather than the waits. lstm_c's and
torch's steps alternate in blocks of 5 (caches warm within a block), so that both see the
same minutes of the machine's load. --threads sets lstm_c's OpenMP threads, OpenBLAS's and
torch's. The machine's load average is printed: on a shared machine, wall-clock numbers
from a busy minute mean little.

--breakdown also times lstm_c's parts, and the choice between saving the forward's gates
(trace mode) and recomputing the pre-activations in backward (two GEMMs over all steps).

    PYTHONPATH=. python benchmarks/bench_train.py --threads 2 --markdown benchmarks/RESULTS_train.md
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_train.py --threads 1 --process-time --steps 30
"""

import argparse
import os
import statistics
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--models", default="char,small")
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--markdown", help="append a results table to this file")
    parser.add_argument("--process-time", action="store_true",
                        help="minimum CPU time of the process instead of the median wall time (one thread)")
    return parser.parse_args()


ARGS = parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)   # before NumPy/SciPy load OpenBLAS

import numpy as np  # noqa: E402

import lstm_c  # noqa: E402
from lstm_c import _backward, backprop  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

MODELS = {
    "char": dict(B=64, T=100, vocab=100, embed=64, units=256),
    "small": dict(B=32, T=50, D=8, units=64),
}


def make_problem(name, rng):
    """(lstm_c model, x, y, loss name, torch builder) for one benchmark model."""
    spec = MODELS[name]
    if name == "char":
        model = lstm_c.Sequential([lstm_c.Embedding(spec["vocab"], spec["embed"], seed=0),
                                   lstm_c.LSTM(spec["units"], return_sequences=True, seed=0),
                                   lstm_c.Dense(spec["vocab"], seed=0)])
        x = rng.integers(0, spec["vocab"], (spec["B"], spec["T"]))
        y = rng.integers(0, spec["vocab"], (spec["B"], spec["T"]))
        return model, x, y, "sparse_categorical_crossentropy"
    model = lstm_c.Sequential([lstm_c.LSTM(spec["units"], seed=0), lstm_c.Dense(1, seed=0)])
    x = rng.normal(size=(spec["B"], spec["T"], spec["D"])).astype(np.float32)
    return model, x, rng.normal(size=(spec["B"], 1)).astype(np.float32), "mse"


class TorchTwin(torch.nn.Module if torch else object):
    """The lstm_c model in torch, with its weights (b_hh held at 0: Keras has one bias)."""

    def __init__(self, model):
        super().__init__()
        layers = model.layers
        self.embedding = None
        if isinstance(layers[0], lstm_c.Embedding):
            self.embedding = torch.nn.Embedding.from_pretrained(torch.from_numpy(layers[0].embeddings), freeze=False)
            layers = layers[1:]
        lstm, dense = layers
        K, R, b = lstm.get_weights()
        self.lstm = torch.nn.LSTM(K.shape[0], lstm.units, batch_first=True)
        self.dense = torch.nn.Linear(dense.kernel.shape[0], dense.units)
        self.every_step = lstm.return_sequences
        with torch.no_grad():
            self.lstm.weight_ih_l0.copy_(torch.from_numpy(K.T.copy()))
            self.lstm.weight_hh_l0.copy_(torch.from_numpy(R.T.copy()))
            self.lstm.bias_ih_l0.copy_(torch.from_numpy(b))
            self.lstm.bias_hh_l0.zero_().requires_grad_(False)
            self.dense.weight.copy_(torch.from_numpy(dense.kernel.T.copy()))
            self.dense.bias.copy_(torch.from_numpy(dense.bias))

    def forward(self, x):
        y, _ = self.lstm(self.embedding(x) if self.embedding is not None else x)
        return self.dense(y if self.every_step else y[:, -1])


def median_time(step, steps):
    """Seconds per call of ``step``: the median wall time, or (--process-time) the minimum CPU time."""
    clock = time.process_time if ARGS.process_time else time.perf_counter
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        start = clock()
        step()
        times.append(clock() - start)
    return min(times) if ARGS.process_time else statistics.median(times)


def paired_times(steps_by_name, steps, block=5):
    """Seconds per call of each step function (as median_time): ``steps`` timed calls of
    each, in turns of ``block`` calls, each turn after one untimed call."""
    clock = time.process_time if ARGS.process_time else time.perf_counter
    times = {name: [] for name in steps_by_name}
    while len(times[next(iter(times))]) < steps:
        for name, step in steps_by_name.items():
            step()   # warm-up: the other's turn has evicted this one's data from the caches
            for _ in range(block):
                start = clock()
                step()
                times[name].append(clock() - start)
    pick = min if ARGS.process_time else statistics.median
    return {name: pick(values) for name, values in times.items()}


def lstm_c_step(name, rng):
    model, x, y, loss = make_problem(name, rng)
    model.compile(lstm_c.optimizers.Adam(), loss, from_logits=True)
    return lambda: model.train_on_batch(x, y)


def torch_step(name, rng):
    model, x, y, loss = make_problem(name, rng)
    model.predict(x[:1])   # build
    twin = TorchTwin(model)
    optimizer = torch.optim.Adam([p for p in twin.parameters() if p.requires_grad], lr=0.001, eps=1e-7)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad()
        out = twin(x_t)
        if loss == "mse":
            value = torch.nn.functional.mse_loss(out, y_t)
        else:
            value = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y_t.reshape(-1))
        value.backward()
        optimizer.step()

    return step


def breakdown(name, rng, steps):
    """lstm_c's parts of one step, and save-vs-recompute for the LSTM layer."""
    model, x, y, loss = make_problem(name, rng)
    model.compile(lstm_c.optimizers.Adam(), loss, from_logits=True)
    model.train_on_batch(x, y)
    parts = {}
    parts["inference forward"] = median_time(lambda: model.predict(x), steps)
    parts["training forward (trace saved)"] = median_time(lambda: backprop.forward(model, x), steps)
    outputs, tape = backprop.forward(model, x)
    loss_fn = lstm_c.losses.get(loss, True)
    _, d_outputs = backprop.loss_and_output_gradients(loss_fn, outputs, y, tape.model_output_masks())
    parts["backward, all layers"] = median_time(lambda: backprop.backward(model, tape, d_outputs), steps)
    lstm = next(layer for layer in model.layers if isinstance(layer, lstm_c.LSTM))
    saved = next(entry[2] for entry in tape.entries.values() if entry[0] is lstm)
    parts["recompute pre-activations (the alternative to saving gates)"] = median_time(
        lambda: _backward.recompute_preactivations(saved["x"], lstm.kernel, lstm.recurrent_kernel, lstm.bias,
                                                   saved["trace"], saved["h0"], None, False), steps)
    return parts


def main():
    lstm_c.set_num_threads(ARGS.threads)
    if torch is not None:
        torch.set_num_threads(ARGS.threads)
    load = os.getloadavg()[0]
    timing = "minimum process time" if ARGS.process_time else "median wall time"
    lines = [f"threads {ARGS.threads}, {os.cpu_count()} cores, load average {load:.2f}, "
             f"torch {torch.__version__ if torch else 'absent'}, {timing} of {ARGS.steps} steps", "",
             "| model | lstm_c ms/step | torch ms/step | speed-up |", "|---|---:|---:|---:|"]
    for name in ARGS.models.split(","):
        steps = {"lstm_c": lstm_c_step(name, np.random.default_rng(0))}
        if torch is not None:
            steps["torch"] = torch_step(name, np.random.default_rng(0))
        times = paired_times(steps, ARGS.steps)
        ours, theirs = times["lstm_c"], times.get("torch", float("nan"))
        lines.append(f"| {name} {MODELS[name]} | {1e3 * ours:.2f} | {1e3 * theirs:.2f} | {theirs / ours:.2f}x |")
        print(lines[-1], flush=True)
        if ARGS.breakdown:
            for part, seconds in breakdown(name, np.random.default_rng(0), ARGS.steps).items():
                lines.append(f"|   {part} | {1e3 * seconds:.2f} | | |")
                print(lines[-1], flush=True)
    if ARGS.markdown:
        with open(ARGS.markdown, "a") as out:
            out.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    sys.exit(main())
