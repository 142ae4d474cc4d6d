"""lstm-c: every input and output format round-trips to what the Python API computes; bad
input exits 1 (usage 2) with one line on stderr and leaves no file behind."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import lstm_c
from lstm_c import cli, demos
from lstm_c.streaming import ChunkRunner
from support import package_env

N, T, D = 10, 9, 4


@pytest.fixture
def files(tmp_path, rng):
    """A model of features (masking, stacked LSTMs, softmax) saved as .keras, and its input."""
    model = lstm_c.Sequential([
        lstm_c.Input((None, D)), lstm_c.Masking(), lstm_c.LSTM(6, return_sequences=True, seed=1),
        lstm_c.LSTM(5, seed=2), lstm_c.Dense(3, activation="softmax", seed=3)])
    model.save(tmp_path / "model.keras")
    x = rng.normal(size=(N, T, D)).astype(np.float32)
    x[2, 4:] = 0  # padding
    np.save(tmp_path / "x.npy", x)
    return tmp_path, lstm_c.load(tmp_path / "model.keras"), x


@pytest.fixture
def id_files(tmp_path, rng):
    """A model of token ids (Embedding with padding id 0) with a vocabulary beside it."""
    model = lstm_c.Sequential([
        lstm_c.Input((None,), dtype="int32"), lstm_c.Embedding(6, 4, mask_zero=True, seed=0),
        lstm_c.LSTM(5, return_sequences=True, seed=1), lstm_c.Dense(6, seed=2)])
    model.save(tmp_path / "ids.keras")
    (tmp_path / "ids.vocab.json").write_text('{"vocabulary": "_abcde", "lowercase": true}')
    return tmp_path, lstm_c.load(tmp_path / "ids.keras"), rng.integers(0, 6, size=(N, T))


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Every test runs in its own directory: file names on the command line are relative."""
    monkeypatch.chdir(tmp_path)


def run(tmp_path, *argv):
    """lstm-c in this process, in tmp_path -> the exit status."""
    assert Path.cwd() == tmp_path
    return cli.main(list(argv))


def leftovers(tmp_path):
    """Temporary files a run left in tmp_path (hidden names start with a dot)."""
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("output", ["y.npy", "y.npz", "y.h5"])
def test_npy_input_to_each_output_format(files, output):
    tmp_path, model, x = files
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", output) == 0
    path = tmp_path / output
    got = np.load(path) if output.endswith(".npy") else np.load(path)["output"] if output.endswith(".npz") \
        else h5py.File(path, "r")["output"][()]
    np.testing.assert_array_equal(got, model.predict(x))
    assert leftovers(tmp_path) == []


def test_npz_h5_and_zarr_inputs(files):
    tmp_path, model, x = files
    np.savez(tmp_path / "x.npz", features=x, other=x[:1])
    with h5py.File(tmp_path / "x.h5", "w") as h5:
        h5["group/features"] = x
        h5["other"] = x[:1]
    expected = model.predict(x)
    assert run(tmp_path, "run", "model.keras", "x.npz", "--key", "features", "-o", "a.npy") == 0
    assert run(tmp_path, "run", "model.keras", "x.h5", "--dataset", "group/features", "-o", "b.npy") == 0
    for name in ("a.npy", "b.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / name), expected)
    zarr = pytest.importorskip("zarr")
    zarr.save_array(str(tmp_path / "x.zarr"), x)
    assert run(tmp_path, "run", "model.keras", "x.zarr", "-o", "c.npy") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), expected)


def test_csv_is_one_sequence_of_features_or_rows_of_ids(files, id_files):
    tmp_path, model, x = files
    header = ",".join(f"f{k}" for k in range(D))
    np.savetxt(tmp_path / "one.csv", x[0], delimiter=",", header=header, comments="")
    assert run(tmp_path, "run", "model.keras", "one.csv", "-o", "one.npy") == 0
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), model.predict(x[:1]), atol=1e-6)

    _, id_model, ids = id_files
    np.savetxt(tmp_path / "ids.csv", ids, delimiter=",", fmt="%d")
    assert run(tmp_path, "run", "ids.keras", "ids.csv", "-o", "ids.npy") == 0
    np.testing.assert_allclose(np.load(tmp_path / "ids.npy"), id_model.predict(ids), atol=1e-6)


def test_text_through_a_demo_and_through_a_vocabulary_file(id_files):
    tmp_path, id_model, _ = id_files
    demo = demos.load("brackets")
    text = 'print("(a)", f(x[0]))\n'
    (tmp_path / "code.txt").write_text(text)
    assert run(tmp_path, "run", "brackets", "code.txt", "-o", "demo.npy") == 0
    demo.lstm.reset_states()
    np.testing.assert_allclose(np.load(tmp_path / "demo.npy"), demo.lstm(demo.one_hot(text)[None]), atol=1e-6)

    (tmp_path / "words.txt").write_text("Bad cab")
    assert run(tmp_path, "run", "ids.keras", "words.txt", "-o", "words.npy") == 0
    ids = np.array([[2, 1, 4, 0, 3, 1, 2]])  # lower-cased; " " is not in the vocabulary -> 0
    np.testing.assert_allclose(np.load(tmp_path / "words.npy"), id_model.predict(ids), atol=1e-6)


def test_last_sequences_states_and_trace(files):
    tmp_path, model, x = files
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "y.npz", "--sequences", "--states", "--trace") == 0
    runner = ChunkRunner(model, sequences=True, trace=True)
    expected = runner.run(x)
    with np.load(tmp_path / "y.npz") as y, np.load(tmp_path / "y.trace.npz") as trace:
        np.testing.assert_array_equal(y["output"], expected)
        for label, (h, c) in runner.states.items():
            np.testing.assert_array_equal(y[f"states/{label}/h"], h)
            np.testing.assert_array_equal(y[f"states/{label}/c"], c)
        for name, value in runner.trace.as_dict().items():
            np.testing.assert_array_equal(trace[name], value)
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "last.npy", "--sequences", "--last") == 2
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "last.npy", "--last") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "last.npy"), model.predict(x))


@pytest.mark.parametrize("batch_size", [None, 3])
def test_stateful_stream_equals_one_call(files, batch_size):
    tmp_path, model, x = files
    extra = ["--batch-size", str(batch_size)] if batch_size else []
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "s.h5", "--stateful-stream", "--chunk", "4",
               "--sequences", "--states", "--trace", "t.h5", *extra) == 0
    expected = ChunkRunner(model, sequences=True, trace=True)
    with h5py.File(tmp_path / "s.h5", "r") as h5, h5py.File(tmp_path / "t.h5", "r") as trace:
        np.testing.assert_allclose(h5["output"][()], expected.run(x), atol=1e-6)
        np.testing.assert_allclose(h5["states/lstm_1/h"][()], expected.states["lstm_1"][0], atol=1e-6)
        for name in ("i", "c", "h", "outputs", "x", "mask", "initial_h"):
            np.testing.assert_allclose(trace[name][()], expected.trace.as_dict()[name], atol=1e-6)


def test_a_graph_loaded_from_onnx_runs_as_a_whole(tmp_path, rng, capsys):
    if not hasattr(lstm_c, "export_onnx"):
        pytest.skip("this lstm_c has no ONNX export")
    model = lstm_c.Sequential([lstm_c.Input((None, D)), lstm_c.LSTM(6, return_sequences=True, seed=1),
                               lstm_c.Dense(3, seed=2)])
    lstm_c.export_onnx(model, tmp_path / "model.onnx")
    x = rng.normal(size=(N, T, D)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert run(tmp_path, "run", "model.onnx", "x.npy", "-o", "y.npy") == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x), atol=1e-6)
    assert run(tmp_path, "run", "model.onnx", "x.npy", "-o", "z.npy", "--stateful-stream", "--chunk", "3") == 1
    assert "cannot stream a model of type OnnxModel" in capsys.readouterr().err


def test_stateful_model_batches_continue_as_in_predict(tmp_path, rng):
    model = lstm_c.Sequential([lstm_c.Input((None, D), batch_size=2),
                               lstm_c.LSTM(4, return_sequences=True, stateful=True, seed=0)])
    model.save(tmp_path / "stateful.keras")
    x = rng.normal(size=(6, T, D)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert run(tmp_path, "run", "stateful.keras", "x.npy", "-o", "y.npy") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(x))
    assert run(tmp_path, "run", "stateful.keras", "x.npy", "-o", "z.npy", "--batch-size", "3") == 2


def test_dtype_threads_and_force(files):
    tmp_path, model, x = files
    threads_before = lstm_c.get_num_threads()
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "y.npy", "--dtype", "float64", "--threads", "1") == 0
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, model.predict(x), atol=1e-5)
    assert lstm_c.get_num_threads() == threads_before  # restored after the run
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "y.npy", "--force") == 0
    assert np.load(tmp_path / "y.npy").dtype == np.float32


def test_progress_bar_only_when_asked_off_a_terminal(files, capsys):
    tmp_path, _, _ = files
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "a.npy") == 0
    assert capsys.readouterr().err == ""
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "b.npy", "--progress") == 0
    assert "seq/s" in capsys.readouterr().err
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "c.npy", "--progress", "-q") == 0
    assert capsys.readouterr().err == ""


def test_python_dash_m_in_a_child_process(files):
    tmp_path, model, x = files
    result = subprocess.run([sys.executable, "-m", "lstm_c", "run", "model.keras", "x.npy", "-o", "y.npy"],
                            cwd=tmp_path, env=package_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(x))
    result = subprocess.run([sys.executable, "-m", "lstm_c", "run", "model.keras", "gone.npy", "-o", "z.npy"],
                            cwd=tmp_path, env=package_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["lstm-c: error: input gone.npy: no such file"]


# ---------------------------------------------------------------------------- errors
def _bad_inputs(tmp_path, x):
    np.save(tmp_path / "flat.npy", x[0])
    np.save(tmp_path / "narrow.npy", x[..., :2])
    np.save(tmp_path / "words.npy", np.array([["a", "b"]]))
    np.savez(tmp_path / "one.npz", features=x)
    with h5py.File(tmp_path / "x.h5", "w") as h5:
        h5["features"] = x
    (tmp_path / "text.csv").write_text("1,2,3,4\n5,six,7,8\n")
    (tmp_path / "ragged.csv").write_text("1,2,3,4\n5,6\n")


@pytest.mark.parametrize("argv, status, message", [
    (["model.keras", "missing.npy"], 1, "no such file"),
    (["missing.keras", "x.npy"], 1, "no such file"),
    (["model.keras", "flat.npy"], 1, "got an array of shape (9, 4)"),
    (["model.keras", "narrow.npy"], 1, "reads 4 features per step, the input has 2"),
    (["model.keras", "words.npy"], 1, "expected numbers"),
    (["model.keras", "x.h5", "--dataset", "nope"], 1, "has no dataset 'nope'"),
    (["model.keras", "one.npz", "--key", "nope"], 1, "has no array 'nope'"),
    (["model.keras", "text.csv"], 1, "line 2, column 2: expected a number, got 'six'"),
    (["model.keras", "ragged.csv"], 1, "line 2: expected 4 values"),
    (["model.keras", "x.npy", "--key", "a"], 2, "--key applies to .npz"),
    (["model.keras", "x.npy", "--chunk", "3"], 2, "--stateful-stream and --chunk"),
    (["model.keras", "x.npy", "--batch-size", "0"], 2, "positive integer"),
    (["model.keras", "x.npy", "--threads", "0"], 2, "positive integer"),
    (["model.keras", "x.npy", "--threads", "100000"], 2, "at most 1024 threads"),
    (["model.keras", "code.txt"], 1, "needs the model's vocabulary"),
], ids=lambda value: value if isinstance(value, int) else None)
def test_bad_input_exits_with_one_line_and_no_file(files, capsys, argv, status, message):
    tmp_path, _, x = files
    _bad_inputs(tmp_path, x)
    (tmp_path / "code.txt").write_text("abc")
    assert run(tmp_path, "run", *argv, "-o", "out.npy") == status
    lines = capsys.readouterr().err.strip().splitlines()
    assert message in lines[-1]
    if status == 1:
        assert len(lines) == 1 and lines[0].startswith("lstm-c: error: ")
    assert not (tmp_path / "out.npy").exists() and leftovers(tmp_path) == []


def test_existing_output_is_kept_without_force(files, capsys):
    tmp_path, _, _ = files
    (tmp_path / "out.npy").write_bytes(b"precious")
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "out.npy") == 1
    assert capsys.readouterr().err.strip() == "lstm-c: error: out.npy exists; pass --force to overwrite it"
    assert (tmp_path / "out.npy").read_bytes() == b"precious"
    assert run(tmp_path, "run", "model.keras", "x.npy", "-o", "out.npy", "--states") == 2  # .npy: one array


def test_a_run_failing_halfway_leaves_nothing(id_files, capsys):
    tmp_path, _, ids = id_files
    ids[-1, -1] = 99  # out of the vocabulary: the last batch fails after the first was written
    np.save(tmp_path / "ids.npy", ids)
    assert run(tmp_path, "run", "ids.keras", "ids.npy", "-o", "y.npz", "--batch-size", "4", "--trace") == 1
    assert "expects ids in [0, 6)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.keras", "ids.npy", "ids.vocab.json"]


# ---------------------------------------------------------------------------- info, bench, inspect
def test_info(files, capsys, tmp_path):
    tmp_path, _, _ = files
    assert run(tmp_path, "info", "model.keras") == 0
    out = capsys.readouterr().out
    assert "lstm_1 (LSTM)" in out and "Streams: yes" in out and "Stateful: no" in out
    lstm_c.Sequential([lstm_c.Input((None, D)), lstm_c.Bidirectional(lstm_c.LSTM(3))]).save(tmp_path / "bi.keras")
    assert run(tmp_path, "info", "bi.keras") == 0
    assert "Streams: no: cannot stream layer" in capsys.readouterr().out


def test_builtin_bench(capsys):
    assert cli.main(["bench", "--builtin", "--shapes", "seq"]) == 0
    assert "sequences/s" in capsys.readouterr().out


def test_inspect_without_the_gui_says_how_to_install_it(monkeypatch, capsys):
    def missing():
        raise ModuleNotFoundError("No module named 'PyQt6'", name="PyQt6")

    monkeypatch.setattr(cli, "_gui_app", missing)
    assert cli.main(["inspect", "brackets"]) == 1
    assert capsys.readouterr().err.strip() == (
        'lstm-c: error: lstm-c inspect needs the desktop inspector: pip install "lstm_c[gui]" (missing: PyQt6)')
