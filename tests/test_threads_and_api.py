"""Threads, the GIL, and the shape of the public package."""

import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import lstm_c
from support import engine_forward, package_env, random_problem
from lstm_c import _core, _threads
from lstm_c.activations import ACTIVATIONS, activation_code


@pytest.fixture(autouse=True)
def restore_threads():
    yield
    lstm_c.set_num_threads(None)


def test_results_identical_at_one_and_many_threads(rng):
    x, K, R, b = random_problem(rng, 16, 20, 8, 12, np.float32)
    mask = rng.random((16, 20)) < 0.8
    layer = lstm_c.LSTM(12, return_sequences=True)
    layer.set_weights([K, R, b])
    lstm_c.set_num_threads(1)
    serial = layer(x, mask=mask)
    lstm_c.set_num_threads(4)
    np.testing.assert_array_equal(layer(x, mask=mask), serial)


def test_thread_count_resolution(monkeypatch):
    monkeypatch.delenv("LSTM_C_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3,1")
    lstm_c.set_num_threads(None)  # re-read the environment
    assert lstm_c.get_num_threads() == 3
    monkeypatch.setenv("LSTM_C_NUM_THREADS", "5")
    assert lstm_c.get_num_threads() == 3  # read once, not per call
    lstm_c.set_num_threads(None)
    assert lstm_c.get_num_threads() == 5
    lstm_c.set_num_threads(2)
    assert lstm_c.get_num_threads() == 2
    assert _threads.effective_n_threads(7) == 7
    lstm_c.set_num_threads(None)
    assert lstm_c.get_num_threads() == 5
    for bad in (0, -1, 1.5, "two", True, _threads.MAX_THREADS + 1, 2**31, 10**20):
        with pytest.raises(ValueError, match="positive integer"):
            lstm_c.set_num_threads(bad)
    lstm_c.set_num_threads(_threads.MAX_THREADS)
    assert lstm_c.get_num_threads() == _threads.MAX_THREADS
    # OpenMP kills the process past some tens of thousands of threads: a clear error first
    monkeypatch.setenv("LSTM_C_NUM_THREADS", "100000")
    lstm_c.set_num_threads(None)
    with pytest.raises(ValueError, match="LSTM_C_NUM_THREADS must be a positive integer up to 1024"):
        lstm_c.get_num_threads()
    monkeypatch.setenv("LSTM_C_NUM_THREADS", "0")
    lstm_c.set_num_threads(None)
    with pytest.raises(ValueError, match="LSTM_C_NUM_THREADS must be a positive integer"):
        lstm_c.get_num_threads()


def test_openmp_is_compiled_in():
    # The supported build has OpenMP; a serial build must at least say so.
    assert lstm_c.openmp_enabled() is True
    assert _core.cpu_count() >= 1


def test_gil_released_two_threads_progress(rng):
    """Two Python threads running two layers both finish, with the right answers."""
    layers, inputs, expected = [], [], []
    for seed in (1, 2):
        x, K, R, b = random_problem(np.random.default_rng(seed), 8, 200, 16, 32, np.float32)
        layer = lstm_c.LSTM(32, return_sequences=True)
        layer.set_weights([K, R, b])
        layers.append(layer), inputs.append(x), expected.append(layer(x))
    results = [None, None]
    progress = [0, 0]

    def work(k):
        for _ in range(20):
            results[k] = layers[k](inputs[k])
            progress[k] += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert progress == [20, 20]
    for k in range(2):
        np.testing.assert_array_equal(results[k], expected[k])


def test_python_runs_while_a_kernel_computes(rng):
    """While one thread is inside a long kernel call, another keeps executing Python:
    the longest pause the main thread sees is far shorter than the call."""
    import time

    lstm_c.set_num_threads(1)  # leave a core for the Python loop
    x, K, R, b = random_problem(rng, 4, 4000, 32, 64, np.float32)
    layer = lstm_c.LSTM(64)
    layer.set_weights([K, R, b])
    layer(x)  # built and warm
    done = threading.Event()
    worker = threading.Thread(target=lambda: (layer(x), done.set()))
    start = last = time.perf_counter()
    longest_pause = 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        longest_pause, last = max(longest_pause, now - last), now
    call_seconds = time.perf_counter() - start
    worker.join()
    # Holding the GIL, the kernel would stall this loop for the whole call. The call is
    # timed in the same run, so a machine busy with other work slows both alike; the
    # margin leaves room for this thread being descheduled now and then.
    assert longest_pause < 0.75 * call_seconds, (longest_pause, call_seconds)


def test_activation_codes_match_the_c_enum():
    header = (Path(lstm_c.__file__).parent / "_activations.h").read_text()
    codes = re.search(r"enum \{\s*LSTMC_LINEAR = 0,.*?\}", header, re.S).group(0)  # the activations' enum
    enum = dict(re.findall(r"LSTMC_(\w+) = (\d+),", codes))
    for name in ACTIVATIONS:
        canonical = {"swish": "silu", "hard_swish": "hard_silu"}.get(name, name)
        key = "HARD_SIGMOID_KERAS2" if canonical == "keras2_hard_sigmoid" else canonical.upper()
        assert int(enum[key]) == activation_code(name), name
    assert _core.N_ACTIVATIONS == len(enum)  # every code has a name


def test_public_names():
    assert sorted(lstm_c.__all__) == sorted(set(lstm_c.__all__))
    for name in lstm_c.__all__:
        assert hasattr(lstm_c, name), name


def test_import_pulls_in_no_framework(tmp_path):
    code = ("import sys, lstm_c; heavy = [m for m in ('tensorflow', 'keras', 'torch', 'onnxruntime', "
            "'PyQt6') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env=package_env())
    assert out.stdout.strip() == "[]"


def test_repr_and_config_round_trip():
    layer = lstm_c.LSTM(3, return_sequences=True, go_backwards=True, activation="relu", seed=4)
    assert repr(layer) == ("LSTM(units=3, activation='relu', return_sequences=True, "
                           "go_backwards=True, seed=4)")
    clone = lstm_c.LSTM.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = np.ones((1, 2, 2))
    np.testing.assert_array_equal(clone(x), layer(x))  # same seed, same weights


@pytest.mark.parametrize("dtype, weights", [(np.float32, "own"), (np.float64, "own"),
                                            (np.float64, "float32 values")])
@pytest.mark.parametrize("B, schedule", [(9, {}), (2, {}), (2, {"projection_steps": 3}),
                                         (1, {"spread_steps": 3})])
def test_team_that_splits_and_regroups_gives_the_same_bits(rng, dtype, weights, B, schedule):
    """With no patience (any wait at a barrier leaves thread 0 alone) and no pause before
    regrouping, a two-thread call splits and comes back together every few steps, the
    called-back thread resuming from thread 0's h, c and projected input. The input fused
    (B = 9) or projected ahead (B = 2: in the default blocks, and in blocks of 3 steps, so
    that regroups land on block starts too; B = 1: in batches of 3 spread over the steps,
    whose slices thread 0 takes over with the blocks), with masks, go_backwards and
    recurrent dropout, float64 reading its own rows or float32-valued ones in float32: the
    same bits as one thread, however the splits fall."""
    T, D, U = (40, 24, 96) if B > 1 else (40, 64, 192)   # one sample: enough work for two threads
    x, K, R, b = random_problem(rng, B, T, D, U, dtype)
    if weights == "float32 values":
        R = R.astype(np.float32).astype(dtype)
    options = dict(mask=rng.random((B, T)) < 0.8, go_backwards=True, **schedule,
                   recurrent_dropout_mask=(rng.random((B, U)) < 0.7).astype(dtype) / 0.7)
    serial = engine_forward(x, K, R, b, n_threads=1, **options)
    counts = {"fallbacks": 0, "regroups": 0}
    for _ in range(20):  # until it has split and regrouped a few times (a busy machine may delay it)
        team = {"patience": -1.0, "regroup_first": 0.0}
        split = engine_forward(x, K, R, b, n_threads=2, team=team, **options)
        for name in serial:
            np.testing.assert_array_equal(split[name], serial[name], err_msg=name)
        counts = {key: counts[key] + team[key] for key in counts}
        if min(counts.values()) >= 3:
            break
    if _core.openmp_enabled():
        assert min(counts.values()) >= 3, counts


@pytest.mark.parametrize("wide", [True, False])
def test_one_sample_spreads_its_projection_where_it_measured_faster(rng, wide):
    """By default one sample spreads its projection over the steps with 512-bit blocks,
    inputs at least half as wide as the units and weights past an eighth of L2 (and within
    LONG_WINDOW_WEIGHT_BYTES), SPREAD_STEPS a batch; on several threads only with inputs
    as wide as the units, and in float64 not over a float32 model's float32 recurrent rows.
    Otherwise it projects ahead in windows (or fuses)."""
    def run(B=1, T=20, D=128, U=256, n_threads=1, dtype=np.float32, float32_values=False):
        x, K, R, b = random_problem(rng, B, T, D, U, dtype)
        if float32_values:
            R = R.astype(np.float32).astype(dtype)
        team = {}
        engine_forward(x, K, R, b, n_threads=n_threads, wide=wide, team=team)
        return team

    def default_spread(**shape):
        return run(**shape)["spread"]

    def when_wide(steps):
        return steps if wide else 0

    assert default_spread() == default_spread(D=256) == when_wide(_core.SPREAD_STEPS)
    assert default_spread(U=32, D=16) == 0                      # weights in L1
    assert default_spread(D=64) == 0                            # the projection too small a share
    assert default_spread(B=2) == default_spread(T=_core.SPREAD_STEPS) == 0
    # 16 MB of float64 weights: a kernel read every few steps pushed the recurrent rows out of L3
    assert default_spread(T=8, D=512, U=512, dtype=np.float64) == 0
    if _core.openmp_enabled():
        assert default_spread(n_threads=2) == 0                 # inputs narrower than the units
        assert default_spread(D=256, n_threads=2) == when_wide(_core.SPREAD_STEPS)
        assert default_spread(D=256, n_threads=2, dtype=np.float64) == when_wide(_core.SPREAD_STEPS)
        # float64 over float32 rows (4.7 MB: read so past 5/8 of a 2 MB L2 per thread)
        team = run(D=384, U=384, n_threads=2, dtype=np.float64, float32_values=True)
        assert team["spread"] == (0 if team["single_rows"] else when_wide(_core.SPREAD_STEPS))


def test_small_batches_project_ahead_in_windows_by_their_weights(rng):
    """Batches smaller than a tile project their input PROJECTION_STEPS ahead at a time
    (at most T), or PROJECTION_STEPS_LONG when the weights pass LONG_WINDOW_WEIGHT_BYTES
    (each window reads the kernel again); larger batches fuse it into each step."""
    def default_window(B=2, T=40, D=16, U=32, dtype=np.float32):
        K = np.zeros((D, 4 * U), dtype)
        R = np.zeros((U, 4 * U), dtype)
        x = rng.uniform(-1, 1, (B, T, D)).astype(dtype)
        team = {}
        engine_forward(x, K, R, spread_steps=0 if B == 1 else None, team=team)
        return team["projection_steps"]

    assert default_window() == _core.PROJECTION_STEPS < _core.PROJECTION_STEPS_LONG
    assert default_window(T=5) == 5
    assert default_window(B=_core.TILE_SAMPLES) == 0
    # LSTM(512) on 512 features: 8 MB of weights in float32, 16 in float64
    assert 8 << 20 < _core.LONG_WINDOW_WEIGHT_BYTES < 16 << 20
    assert default_window(B=1, D=512, U=512, dtype=np.float32) == _core.PROJECTION_STEPS
    assert default_window(B=1, D=512, U=512, dtype=np.float64) == _core.PROJECTION_STEPS_LONG


def test_team_counts_nothing_for_one_thread(rng):
    x, K, R, b = random_problem(rng, 2, 10, 24, 96, np.float32)
    team = {"patience": -1.0, "regroup_first": 0.0}
    engine_forward(x, K, R, b, n_threads=1, team=team)
    assert (team["fallbacks"], team["regroups"]) == (0, 0)


def test_oversubscribed_machine_falls_back_to_one_thread(rng):
    """With both cores taken by other processes, a two-thread call must not turn each
    step's barrier into a scheduler round trip: it finishes alone, with the same bits."""
    x, K, R, b = random_problem(rng, 4, 200, 8, 64, np.float32)
    layer = lstm_c.LSTM(64, return_sequences=True)
    layer.set_weights([K, R, b])
    lstm_c.set_num_threads(1)
    expected = layer(x)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        lstm_c.set_num_threads(2)
        for _ in range(5):
            np.testing.assert_array_equal(layer(x), expected)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _offset_array(values, offset_bytes):
    """A C-contiguous copy of ``values`` starting ``offset_bytes`` past a cache line."""
    raw = _core.aligned_empty(values.nbytes + 64, np.uint8)
    out = raw[offset_bytes:offset_bytes + values.nbytes].view(values.dtype).reshape(values.shape)
    out[...] = values
    return out


@pytest.mark.parametrize("offset", [0, 16, 40])
def test_states_off_a_cache_line_run_as_aligned_copies_with_the_same_bits(rng, offset):
    """The kernel's threads share the rows of h and c; states off a cache line run as
    aligned copies (no line written by two cores), and the caller's arrays still end up
    holding the final state, bit for bit what aligned states give."""
    x, K, R, b = random_problem(rng, 7, 9, 5, 64, np.float32)
    kernel = _core.Kernel(K, R, b, activation_code("tanh"), activation_code("sigmoid"))
    h0, c0 = rng.standard_normal((2, 7, 64)).astype(np.float32)
    results = []
    for off in (0, offset):
        h, c = _offset_array(h0, off), _offset_array(c0, off)
        out_seq, out_last = np.empty((7, 9, 64), np.float32), np.empty((7, 64), np.float32)
        kernel.forward(x, h, c, out_last, out_seq, n_threads=2)
        assert h.ctypes.data % 64 == off
        results.append((h, c, out_seq, out_last))
    for aligned, shifted in zip(*results):
        np.testing.assert_array_equal(shifted, aligned)
    assert not np.array_equal(results[1][0], h0)   # the final state came back


def test_aligned_empty():
    a = _core.aligned_empty((3, 5), np.float64)
    assert a.shape == (3, 5) and a.dtype == np.float64 and a.flags.c_contiguous and a.flags.writeable
    assert a.ctypes.data % _core.CACHE_LINE == 0 and a.base is not None
    z = _core.aligned_empty(7, "float32", zeros=True)
    assert z.shape == (7,) and not z.any()
    with pytest.raises(ValueError, match="negative"):
        _core.aligned_empty((2, -1), np.float32)


def test_a_layer_hands_the_kernel_arrays_on_cache_lines(rng):
    """Outputs, traces and states start on a cache line (NumPy's own arrays need not):
    a line at a thread boundary is then never written by both threads."""
    layer = lstm_c.LSTM(20, return_sequences=True, return_state=True, stateful=True)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    output, h, c = layer(x)
    trace = layer.trace(x)
    for array in (output, trace.i, *layer._states):   # (.states hands out copies)
        assert array.ctypes.data % 64 == 0


@pytest.mark.parametrize("units", [64, 40])
def test_a_trace_on_several_threads_is_the_trace_on_one(rng, units):
    """On several threads the trace is written with streaming stores (whole cache lines,
    where its rows start on one: units a multiple of 16 in float32); it holds the same bits
    as one thread's, which stays in cache."""
    B, T, D = 8, 7, 32
    assert B * (D + units) * 4 * units >= 2 * _core.MIN_STEP_WORK_PER_THREAD  # two threads run
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    layer = lstm_c.LSTM(units, return_sequences=True, seed=1)
    lstm_c.set_num_threads(1)
    serial = layer.trace(x)
    lstm_c.set_num_threads(2)
    parallel = layer.trace(x)
    for name in ("i", "f", "g", "o", "c", "h"):
        np.testing.assert_array_equal(getattr(parallel, name), getattr(serial, name), err_msg=name)


@pytest.mark.parametrize("T", [1, 2, 3, 8])
def test_a_call_on_two_threads_ends_with_the_state_of_one(rng, T):
    """The team skips the barrier after the last step (the region's end is one) and the
    final h comes back from whichever buffer holds it (odd T: the spare one) once every
    thread is done: outputs and states are one thread's bits, for short calls too."""
    x, K, R, b = random_problem(rng, 2, T, 64, 128, np.float32)
    h0, c0 = rng.standard_normal((2, 2, 128)).astype(np.float32)
    serial = engine_forward(x, K, R, b, h0, c0, n_threads=1)
    team = {}
    split = engine_forward(x, K, R, b, h0, c0, n_threads=2, team=team)
    if _core.openmp_enabled():
        assert team["threads"] == 2
    for name in serial:
        np.testing.assert_array_equal(split[name], serial[name], err_msg=name)


@pytest.mark.parametrize("units, threads", [(64, 1), (128, 2)])
def test_a_streaming_step_runs_on_two_threads_once_each_has_its_share(rng, units, threads):
    """A step of LSTM(64) on 64 features (32k multiply-adds) is less than two threads'
    worth (MIN_STEP_WORK_PER_THREAD) and runs alone, one call of one step or of several;
    one of LSTM(128) (98k) runs on two even as a single streaming step."""
    B, D = 1, 64
    assert (B * (D + units) * 4 * units >= 2 * _core.MIN_STEP_WORK_PER_THREAD) == (threads == 2)
    for T in (1, 5):
        x, K, R, b = random_problem(rng, B, T, D, units, np.float32)
        team = {}
        engine_forward(x, K, R, b, n_threads=2, team=team)
        assert team["threads"] == (threads if _core.openmp_enabled() else 1), T


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wide", [None, False])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("threads", [2, 3])
def test_many_samples_on_small_weights_split_into_groups_give_one_threads_bits(rng, dtype, wide,
                                                                             go_backwards, threads):
    """Weights within GROUP_WEIGHT_BYTES and GROUPS_PER_THREAD tiles of samples per thread:
    the threads split the samples, each group running every step alone. A ragged last group
    and block, an odd number of steps (h ends in the spare buffer), a mask (a fully masked
    sample among them), recurrent dropout and the trace, home ranges of 8 and 9 groups or of
    5, 6 and 6: one thread's bits."""
    B, T, D, U = 101, 7, 5, 33
    x, K, R, b = random_problem(rng, B, T, D, U, dtype)
    h0, c0 = rng.uniform(-1, 1, (2, B, U)).astype(dtype)
    mask = rng.random((B, T)) > 0.3
    mask[3] = False
    dropout = (rng.random((B, U)) > 0.2).astype(dtype) / dtype(0.8)
    kwargs = dict(h0=h0, c0=c0, mask=mask, go_backwards=go_backwards, wide=wide,
                  recurrent_dropout_mask=dropout)
    serial = engine_forward(x, K, R, b, n_threads=1, **kwargs)
    team = {}
    split = engine_forward(x, K, R, b, n_threads=threads, team=team, **kwargs)
    if _core.openmp_enabled():
        assert team["threads"] == threads and team["groups"], team
    for name in serial:
        np.testing.assert_array_equal(split[name], serial[name], err_msg=name)


@pytest.mark.skipif(not _core.openmp_enabled(), reason="a build without OpenMP has no threads")
def test_groups_of_a_thread_openmp_did_not_give_are_taken_by_the_others(tmp_path):
    """Each thread first takes the sample groups of its home range; a range whose thread
    OpenMP did not start (OMP_THREAD_LIMIT below the call's threads) is run by the others,
    every group once: the same bits as one thread."""
    code = """if True:
        import numpy as np
        from lstm_c import _core
        rng = np.random.default_rng(7)
        B, T, D, U = 96, 5, 8, 48  # three blocks: a call of three threads
        x = rng.standard_normal((B, T, D)).astype(np.float32)
        K, R = (0.3 * rng.standard_normal((n, 4 * U)).astype(np.float32) for n in (D, U))
        kernel = _core.Kernel(K, R, None, 2, 1)
        outputs = []
        for threads in (1, 3):
            h, c = (_core.aligned_empty((B, U), np.float32, zeros=True) for _ in range(2))
            last, seq = _core.aligned_empty((B, U), np.float32), _core.aligned_empty((B, T, U), np.float32)
            team = {}
            kernel.forward(x, h, c, last, seq, n_threads=threads, _team=team)
            outputs.append((seq, h, c))
        assert team["groups"] and team["threads"] == 2, team
        for one, split in zip(*outputs):
            assert np.array_equal(one, split)
        print("ok")
    """
    env = dict(package_env(), OMP_THREAD_LIMIT="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("B, U", [(256, 64), (8, 64), (256, 512)])
def test_only_many_samples_on_weights_within_half_an_l2_split_into_groups(rng, B, U):
    """A batch of a few tiles (threads would idle at the end) or weights a core's L2 could
    not hold whole (every group would stream them: LSTM(512) on 16 features, 4.3 MB) split
    the blocks, with a barrier a step; 256 x LSTM(64) (80 KB) splits the samples."""
    D = 16
    x, K, R, b = random_problem(rng, B, 2, D, U, np.float32)
    fits = 4 * (D + U) * 4 * U <= _core.GROUP_WEIGHT_BYTES
    assert fits == (U == 64)    # any L2 from 160 KB to 8 MB
    team = {}
    engine_forward(x, K, R, b, n_threads=2, team=team)
    if _core.openmp_enabled():
        assert team["groups"] == (fits and B == 256), team
