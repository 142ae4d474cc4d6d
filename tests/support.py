"""Helpers shared by the test modules: tolerances, random LSTM problems, a direct engine
runner, and the environment for child processes.

Test modules import from here (``from support import ...``), not from conftest: with
conftest.py files in subdirectories too, ``import conftest`` would find whichever was
loaded last.
"""

import os
from pathlib import Path

import numpy as np

from lstm_c import _core
from lstm_c.activations import activation_code

#: Engine vs reference, relative (absolute for values near zero).
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def tol(dtype):
    return TOLERANCE[np.dtype(dtype).type]


def draw_mask_and_state(draw, rng, B, T, U, dtype):
    """For hypothesis strategies (``draw`` from ``st.composite``): maybe a (B, T) mask, maybe
    with one fully masked sample, and maybe an initial state [h0, c0]; None where not drawn."""
    from hypothesis import strategies as st

    mask = None
    if draw(st.booleans()):
        mask = rng.random((B, T)) < 0.6
        if draw(st.booleans()):
            mask[draw(st.integers(0, B - 1))] = False  # a fully masked sample
    state = None
    if draw(st.booleans()):
        state = [rng.uniform(-1, 1, (B, U)).astype(dtype) for _ in range(2)]
    return mask, state


def random_problem(rng, B, T, D, U, dtype=np.float32, scale=0.5):
    """x (B, T, D) and Keras-layout weights K (D, 4U), R (U, 4U), b (4U,)."""
    x = rng.uniform(-1, 1, (B, T, D)).astype(dtype)
    K = rng.uniform(-scale, scale, (D, 4 * U)).astype(dtype)
    R = rng.uniform(-scale, scale, (U, 4 * U)).astype(dtype)
    b = rng.uniform(-scale, scale, 4 * U).astype(dtype)
    return x, K, R, b


def engine_forward(x, K, R, b=None, h0=None, c0=None, mask=None, *, activation="tanh",
                   recurrent_activation="sigmoid", go_backwards=False, zero_output_for_mask=False,
                   recurrent_dropout_mask=None, n_threads=1, wide=None, projection_steps=None,
                   spread_steps=None, team=None, single_rows=True):
    """Call the kernel directly (bypassing the layer), e.g. to choose the thread count, the
    block width (``wide``), how the input projection runs (``projection_steps``,
    ``spread_steps``), how the team of threads behaves (``team``: Kernel.forward's
    ``_team``) or whether float64 may read float32-valued recurrent rows in float32
    (``single_rows``)."""
    B, T, _ = x.shape
    U = R.shape[0]
    dtype = x.dtype
    h = np.zeros((B, U), dtype) if h0 is None else np.array(h0, dtype)
    c = np.zeros((B, U), dtype) if c0 is None else np.array(c0, dtype)
    out_seq, out_last = np.empty((B, T, U), dtype), np.empty((B, U), dtype)
    trace = np.empty((6, B, T, U), dtype)
    kernel = _core.Kernel(K, R, b, activation_code(activation), activation_code(recurrent_activation),
                          wide=wide, single_rows=single_rows)
    kernel.forward(x, h, c, out_last, out_seq, trace,
                   None if mask is None else np.ascontiguousarray(mask, np.uint8), recurrent_dropout_mask,
                   go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask, n_threads=n_threads,
                   projection_steps=projection_steps, spread_steps=spread_steps, _team=team)
    return dict(outputs=out_seq, last_output=out_last, h=h, c=c, i=trace[0], f=trace[1], g=trace[2],
                o=trace[3], c_seq=trace[4], h_seq=trace[5])


def package_env():
    """The environment for a child Python that must import the lstm_c under test (the
    installed package, or an in-place build): its parent directory goes first on PYTHONPATH.
    Run the child outside the repository root, whose lstm_c/ holds sources only."""
    import lstm_c

    env = dict(os.environ)
    parent = str(Path(lstm_c.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


# ---------------------------------------------------------------------------- PyTorch and ONNX
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def torch_lstm_reference(x, state_dict, num_layers=1, bidirectional=False):
    """torch.nn.LSTM (batch_first) from its documented equations, in NumPy: gates
    ``W_ih x + b_ih + W_hh h + b_hh`` split i, f, g, o. Returns (output, h_n, c_n)."""
    def direction(x, suffix, reverse):
        W_ih, W_hh = state_dict[f"weight_ih{suffix}"], state_dict[f"weight_hh{suffix}"]
        b = state_dict.get(f"bias_ih{suffix}", 0) + state_dict.get(f"bias_hh{suffix}", 0)
        N, T, _ = x.shape
        H = W_hh.shape[1]
        h, c, out = np.zeros((N, H)), np.zeros((N, H)), np.zeros((N, T, H))
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            i, f, g, o = np.split(x[:, t] @ W_ih.T + h @ W_hh.T + b, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            out[:, t] = h
        return out, h, c

    hs, cs = [], []
    for layer in range(num_layers):
        runs = [direction(x, f"_l{layer}{suffix}", bool(suffix)) for suffix in (["", "_reverse"] if bidirectional
                                                                                  else [""])]
        x = np.concatenate([run[0] for run in runs], axis=-1)
        hs += [run[1] for run in runs]
        cs += [run[2] for run in runs]
    return x, np.stack(hs), np.stack(cs)


def onnx_lstm_reference(X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, direction="forward",
                        activations=None):
    """The ONNX LSTM operator from its specification (time-major, gates i, o, f, c), one
    sample at a time, as ONNX Runtime runs it: a reverse direction starts at each
    sequence's last step, Y is 0 after a sequence's end, an empty sequence ends with
    Y_h = Y_c = 0. ``activations``: (f, g, h) functions per direction."""
    T, N, _ = X.shape
    dirs, H = W.shape[0], R.shape[2]
    B = np.zeros((dirs, 8 * H)) if B is None else B
    lengths = [T] * N if sequence_lens is None else list(sequence_lens)
    h0 = np.zeros((dirs, N, H)) if initial_h is None else initial_h
    c0 = np.zeros((dirs, N, H)) if initial_c is None else initial_c
    activations = activations or [(_sigmoid, np.tanh, np.tanh)] * dirs
    Y, Y_h, Y_c = np.zeros((T, dirs, N, H)), np.zeros((dirs, N, H)), np.zeros((dirs, N, H))
    for d in range(dirs):
        f, g, h = activations[d]
        Wb, Rb = np.split(B[d], 2)
        for n in range(N):
            Ht, Ct = h0[d, n], c0[d, n]
            steps = range(lengths[n] - 1, -1, -1) if direction == "reverse" or d == 1 else range(lengths[n])
            for t in steps:
                zi, zo, zf, zc = np.split(W[d] @ X[t, n] + R[d] @ Ht + Wb + Rb, 4)
                Ct = f(zf) * Ct + f(zi) * g(zc)
                Ht = f(zo) * h(Ct)
                Y[t, d, n] = Ht
            if lengths[n]:
                Y_h[d, n], Y_c[d, n] = Ht, Ct
    return Y, Y_h, Y_c


def write_onnx(path, nodes, inputs, outputs, initializers=None, opset=17, ir_version=8):
    """An ONNX file written with lstm_c's protobuf writer. ``nodes``: (op, inputs, outputs,
    attributes); ``inputs``/``outputs``: (name, dtype, shape); ``initializers``: {name: array}."""
    from lstm_c.io.onnx_proto import MODEL, array_to_tensor, make_attribute, value_info

    graph = {"name": "test", "node": [{"op_type": op, "input": list(node_inputs), "output": list(node_outputs),
                                       "name": f"{op}_{k}",
                                       "attribute": [make_attribute(key, value) for key, value in attrs.items()]}
                                      for k, (op, node_inputs, node_outputs, attrs) in enumerate(nodes)],
             "initializer": [array_to_tensor(array, name) for name, array in (initializers or {}).items()],
             "input": [value_info(*spec) for spec in inputs], "output": [value_info(*spec) for spec in outputs]}
    model = {"ir_version": ir_version, "opset_import": [{"domain": "", "version": opset}], "graph": graph}
    Path(path).write_bytes(MODEL.encode(model))
    return path


def onnx_lstm_file(tmp_path, rng, direction="forward", layout=0, lengths=False, states=False, attrs=None, bias=True,
               peepholes=None, name="lstm.onnx"):
    """An ONNX model of one LSTM node (T=5, N=3, D=2, H=4) with random weights; returns
    (path, weights, feeds). ``lengths``: sequence_lens [5, 2, 0]; ``states``: initial_h/c inputs."""
    T, N, D, H = 5, 3, 2, 4
    dirs = 2 if direction == "bidirectional" else 1
    weights = {"W": rng.uniform(-.6, .6, (dirs, 4 * H, D)).astype("f4"),
               "R": rng.uniform(-.6, .6, (dirs, 4 * H, H)).astype("f4")}
    if bias:
        weights["B"] = rng.uniform(-.6, .6, (dirs, 8 * H)).astype("f4")
    if peepholes is not None:
        weights["P"] = peepholes
    x_shape = (N, T, D) if layout else (T, N, D)
    state_shape = (N, dirs, H) if layout else (dirs, N, H)
    inputs = [("X", "float32", x_shape)]
    feeds = {"X": rng.uniform(-1, 1, x_shape).astype("f4")}
    if lengths:
        inputs.append(("L", "int32", (N,)))
        feeds["L"] = np.array([T, 2, 0][:N], np.int32)
    if states:
        inputs += [("H0", "float32", state_shape), ("C0", "float32", state_shape)]
        feeds.update(H0=rng.uniform(-1, 1, state_shape).astype("f4"), C0=rng.uniform(-1, 1, state_shape).astype("f4"))
    node_inputs = ["X", "W", "R", "B" if bias else "", "L" if lengths else "", "H0" if states else "",
                   "C0" if states else "", "P" if peepholes is not None else ""]
    node = ("LSTM", node_inputs, ["Y", "Y_h", "Y_c"], {"hidden_size": H, "direction": direction, "layout": layout,
                                                        **(attrs or {})})
    outputs = [("Y", "float32", None), ("Y_h", "float32", None), ("Y_c", "float32", None)]
    return write_onnx(tmp_path / name, [node], inputs, outputs, weights), weights, feeds
