"""lstm_c.dask on a LocalCluster of 2 workers equals in-memory results, stateless (blocks of
rows) and stateful (time chunks chained with the state); models pickle as weights + config."""

import pickle
import sys

import h5py
import numpy as np
import pytest

import lstm_c
from lstm_c import cli
from support import package_env

T, D = 17, 4


def masked_features(rng, n=12):
    x = rng.normal(size=(n, T, D)).astype(np.float32)
    x[1, 5:11] = 0
    x[4, :7] = 0
    return x


def stacked_model(stateful=False):
    return lstm_c.Sequential([
        lstm_c.Input((None, D)), lstm_c.Masking(), lstm_c.LSTM(6, return_sequences=True, seed=1, stateful=stateful),
        lstm_c.LSTM(5, return_sequences=True, seed=2, stateful=stateful), lstm_c.Dense(3, activation="gelu", seed=3)])


# ---------------------------------------------------------------------------- pickling (no Dask needed)
def test_models_pickle_as_weights_and_config(rng):
    """What ships a model to Dask workers in other processes: the engine's C kernel is rebuilt."""
    source = lstm_c.Input((None, D))
    merged = lstm_c.Bidirectional(lstm_c.LSTM(3, return_sequences=True, seed=1))(lstm_c.Masking()(source))
    model = lstm_c.Model(source, lstm_c.Dense(2, activation="gelu", seed=2)(lstm_c.LSTM(4, seed=3)(merged)))
    x = masked_features(rng)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict(x), model.predict(x))
    assert copy.summary(print_fn=None) == model.summary(print_fn=None)

    layer = lstm_c.LSTM(4, stateful=True, seed=0)
    layer(x)
    copy = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(copy.states[0], layer.states[0])
    np.testing.assert_array_equal(copy(x), layer(x))  # both continue from the same state


def test_without_dask_a_clear_message(monkeypatch):
    import lstm_c.dask

    monkeypatch.setitem(sys.modules, "dask", None)  # what an environment without Dask looks like
    with pytest.raises(ImportError, match=r'pip install "lstm_c\[dask\]"'):
        lstm_c.dask.predict(stacked_model(), np.zeros((1, 2, D)))


# ---------------------------------------------------------------------------- on a cluster
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.array")
    # Threads in this process: quick to start, and the workers still run blocks concurrently.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=50) as cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def test_blocks_of_rows_equal_predict(client, rng):
    import dask.array as da

    import lstm_c.dask

    model = stacked_model()
    x = masked_features(rng)
    y = lstm_c.dask.predict(model, da.from_array(x, chunks=(5, 6, D)))  # time is rechunked to one chunk
    assert y.chunks[0] == (5, 5, 2) and y.chunks[1] == (T,)
    np.testing.assert_allclose(client.compute(y).result(), model.predict(x), atol=1e-6)


def test_stateful_time_chunks_chain_the_state(client, rng):
    import dask.array as da

    import lstm_c.dask

    model = stacked_model(stateful=True)
    x = masked_features(rng)
    y = lstm_c.dask.predict(model, da.from_array(x, chunks=(5, 4, D)), n_threads=1)
    assert y.chunks[1] == (4, 4, 4, 4, 1)
    expected = stacked_model()
    expected.set_weights(model.get_weights())
    np.testing.assert_allclose(client.compute(y).result(), expected.predict(x), atol=1e-6)
    with pytest.raises(ValueError, match="stateful"):
        lstm_c.dask.predict(model, x, stream=False)
    for bad in (0, 100_000):
        with pytest.raises(ValueError, match="n_threads must be a positive integer"):
            lstm_c.dask.predict(model, x, n_threads=bad)


def test_several_outputs_and_last_step_outputs(client, rng):
    import lstm_c.dask

    source = lstm_c.Input((None, D))
    output, h, c = lstm_c.LSTM(5, return_state=True, seed=0)(source)
    model = lstm_c.Model(source, [output, h, c])
    x = masked_features(rng)
    results = lstm_c.dask.predict(model, x, stream=True, batch_size=4, chunk_size=5)
    for got, expected in zip(client.compute(results, sync=True), model.predict(x)):
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_files_are_read_lazily_by_path(client, rng, tmp_path):
    import lstm_c.dask

    model = stacked_model()
    x = masked_features(rng)
    np.save(tmp_path / "x.npy", x)
    with h5py.File(tmp_path / "x.h5", "w") as h5:
        h5["data/x"] = x
    arrays = [lstm_c.dask.from_file(tmp_path / "x.npy", batch_size=5),
              lstm_c.dask.from_file(tmp_path / "x.h5", dataset="data/x", batch_size=5)]
    zarr = pytest.importorskip("zarr")
    zarr.save_array(str(tmp_path / "x.zarr"), x)
    arrays.append(lstm_c.dask.from_file(tmp_path / "x.zarr", batch_size=5))
    for array in arrays:
        assert array.chunks[0] == (5, 5, 2)
        np.testing.assert_allclose(client.compute(lstm_c.dask.predict(model, array)).result(),
                                   model.predict(x), atol=1e-6)


@pytest.mark.parametrize("stream", [False, True])
def test_command_line_with_a_scheduler_address(client, rng, tmp_path, stream):
    model = stacked_model()
    model.save(tmp_path / "model.keras")
    x = masked_features(rng)
    np.save(tmp_path / "x.npy", x)
    output = tmp_path / "y.h5"
    extra = ["--stateful-stream", "--chunk", "5"] if stream else []
    argv = ["run", str(tmp_path / "model.keras"), str(tmp_path / "x.npy"), "-o", str(output),
            "--dask", client.scheduler.address, "--batch-size", "5", *extra]
    assert cli.main(argv) == 0
    with h5py.File(output, "r") as h5:
        np.testing.assert_allclose(h5["output"][()], model.predict(x), atol=1e-6)


def test_worker_processes_receive_the_model_and_the_file_by_pickle(rng, tmp_path, monkeypatch):
    """Separate worker processes: the model travels as weights + config (the gelu Dense as its
    name), the .npy input as its path."""
    distributed = pytest.importorskip("distributed")
    import lstm_c.dask

    monkeypatch.setenv("PYTHONPATH", package_env()["PYTHONPATH"])  # the workers import this lstm_c
    model = stacked_model(stateful=True)
    x = masked_features(rng)
    np.save(tmp_path / "x.npy", x)
    y = lstm_c.dask.predict(model, lstm_c.dask.from_file(tmp_path / "x.npy", batch_size=5, chunk_size=6), n_threads=1)
    expected = stacked_model()
    expected.set_weights(model.get_weights())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        np.testing.assert_allclose(client.compute(y).result(), expected.predict(x), atol=1e-6)
