"""The inspector's Qt-free heart: Session stepping, state provenance, resets, what-if."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstm_c
from lstm_c import demos
from lstm_c.gui.data import InputData
from lstm_c.gui.model import InspectedModel
from lstm_c.gui.session import CARRIED, GIVEN, RESET, ZEROS, Session


@pytest.fixture
def session():
    return Session.from_demo("brackets", batch_size=4, sequence_length=32)


def numeric_session(rng, stateful=True, batch_size=3, length=60, sequence_length=10, units=5):
    model = InspectedModel.random(units, 2, seed=1)
    data = InputData.from_array(rng.normal(size=(length, 2)), model)
    return Session(model, data, batch_size=batch_size, sequence_length=sequence_length,
                   stateful=stateful)


def test_stepping_crosses_batch_boundaries(session):
    T = session.sequence_length
    session.set_timestep(T - 1)
    assert session.step(+1) and (session.batch, session.timestep) == (1, 0)
    assert session.step(-1) and (session.batch, session.timestep) == (0, T - 1)
    session.set_global_step(session.total_steps - 1)
    assert not session.step(+1) and session.global_step == session.total_steps - 1
    session.set_global_step(0)
    assert not session.step(-1)
    session.next_batch()
    session.next_batch()
    session.prev_batch()
    assert session.batch == 1 and session.timestep == 0


def test_position_is_clamped_and_listeners_hear_changes(session):
    heard = []
    session.listen(heard.append)
    session.set_batch(99)
    session.set_sample(-3)
    session.set_timestep(10_000)
    assert (session.batch, session.sample, session.timestep) == (
        session.n_batches - 1, 0, session.sequence_length - 1)
    session.select_unit(2)
    assert session.unit == 2 and "unit" in heard[-1]
    with pytest.raises(ValueError):
        session.select_unit(session.units)
    session.pin_unit(3)
    session.pin_unit(5)
    session.pin_unit(3)
    assert session.pinned_units == (5,)
    assert all("position" in changes for changes in heard[:3])


def test_stateful_carries_final_state_into_the_same_slot(session):
    assert session.stateful  # the demo intends it
    for k in range(1, session.n_batches):
        previous, current = session.traces[k - 1], session.traces[k]
        np.testing.assert_array_equal(current.initial_h, previous.h[:, -1])
        np.testing.assert_array_equal(current.initial_c, previous.c[:, -1])
    assert (session.provenance[0] == ZEROS).all() and (session.provenance[1:] == CARRIED).all()


def test_stateless_and_reset_start_from_zeros(session):
    session.set_stateful(False)
    session.recompute()
    assert (session.provenance == ZEROS).all()
    for trace in session.traces:
        assert not trace.initial_h.any() and not trace.initial_c.any()
    session.set_stateful(True)
    session.reset_states(batch=2)
    session.recompute()
    assert (session.provenance[2] == RESET).all() and (session.provenance[3] == CARRIED).all()
    assert not session.traces[2].initial_h.any()
    np.testing.assert_array_equal(session.traces[3].initial_h, session.traces[2].h[:, -1])


def test_per_slot_reset_touches_only_that_slot(session):
    session.set_batch(1)
    session.reset_states(samples=[2])
    session.recompute()
    initial = session.traces[1].initial_h
    assert not initial[2].any()
    np.testing.assert_array_equal(np.delete(initial, 2, 0), np.delete(session.traces[0].h[:, -1], 2, 0))
    assert list(session.provenance[1]) == [CARRIED, CARRIED, RESET, CARRIED]
    session.clear_resets()
    assert (session.provenance[1] == CARRIED).all()
    with pytest.raises(ValueError):
        session.reset_states(samples=[4])


def test_session_equals_a_stateful_layer_fed_batch_by_batch(rng):
    """The session's explicit carry is what lstm_c's (and Keras's) stateful layer does,
    including lstm_c's per-slot reset (six batches: resets of all slots before 0 and 4,
    of slot 1 before 2)."""
    session = numeric_session(rng, length=180)
    assert session.n_batches == 6
    session.reset_states(samples=[1], batch=2)
    session.set_reset_every(4)
    session.recompute()
    layer = lstm_c.LSTM(session.units, stateful=True, return_sequences=True)
    layer.set_weights(session.model.lstm.get_weights())
    for k in range(session.n_batches):
        if k % 4 == 0:
            layer.reset_states()
        if k == 2:
            layer.reset_states(samples=[1])
        x = session.plan.cut(session.data.streams, k)
        np.testing.assert_array_equal(layer(x), session.traces[k].outputs)


def test_reset_schedule_and_given_initial_state(rng):
    session = numeric_session(rng)
    session.set_reset_every(2)
    assert (session.provenance[::2] == RESET).all() and (session.provenance[1::2] == CARRIED).all()
    h0 = rng.normal(size=(3, 5))
    c0 = rng.normal(size=(3, 5))
    session.set_initial_state(h0, c0, batch=1)
    session.recompute()
    assert (session.provenance[1] == GIVEN).all()
    np.testing.assert_allclose(session.traces[1].initial_h, h0.astype(np.float32))
    with pytest.raises(ValueError):
        session.set_reset_every(0)
    with pytest.raises(ValueError):
        session.set_initial_state(h0[:2], c0[:2])
    # a batch that does not exist: refused, where it used to be filed and break the next trace
    # (past the end) or mark the last batch GIVEN while it ran from its carried state (-1)
    for batch in (session.n_batches, -1, 1.0, True):
        with pytest.raises(ValueError, match=f"one of the {session.n_batches} batches"):
            session.set_initial_state(h0, c0, batch=batch)
        with pytest.raises(ValueError, match=f"one of the {session.n_batches} batches"):
            session.reset_states(batch=batch)
    before = session.provenance.copy()
    session.recompute()
    np.testing.assert_array_equal(session.provenance, before)


def test_what_if_replays_from_the_changed_state(session):
    session.set_global_step(40)
    result = session.what_if("zero_c", unit=0)
    assert result.steps[0] == 40 and result.changed["c"][0, 0] == 0
    np.testing.assert_array_equal(result.changed["c"][0, 1:], result.original["c"][0, 1:])
    # replaying by hand from the changed state gives the same trajectory
    trace = session.trace
    h, c = trace.h[0, 8].copy(), trace.c[0, 8].copy()
    c[0] = 0
    h[0] = trace.o[0, 8, 0] * np.tanh(0)
    x = session.trace.x[:1, 9:]
    replay = session.model.lstm.trace(x, initial_state=[h[None], c[None]])
    np.testing.assert_allclose(result.changed["h"][1:1 + replay.timesteps], replay.h[0], rtol=1e-6)
    # stateful: the changed state flows into later batches of the slot, to the end
    assert result.steps[-1] == session.total_steps - 1


def test_what_if_stops_where_state_is_not_carried(session):
    session.set_stateful(False)
    session.recompute()
    result = session.what_if("reset", step=5)
    assert result.steps[-1] == session.sequence_length - 1
    assert not result.changed["h"][0].any()
    clamp = session.what_if("clamp_c", unit=1, step=3, value=2.5)
    assert clamp.changed["c"][0, 1] == pytest.approx(2.5)
    with pytest.raises(ValueError):
        session.what_if("explode")


def test_batching_keeps_position_valid_and_rejects_too_short_input(session):
    session.set_global_step(session.total_steps - 1)
    session.set_batching(2, 16)
    assert session.batch < session.n_batches and session.timestep < 16 and not session.has_traces
    with pytest.raises(ValueError, match="does not fill one batch"):
        session.set_batching(4, 10_000)
    assert session.sequence_length == 16  # unchanged after the error


def test_set_input_and_set_model_fit_the_batching(rng, session):
    session.set_input(InputData.from_text("(a)" * 10, session.model))
    session.recompute()
    assert session.batch_size * session.sequence_length <= 30
    model = InspectedModel.random(4, 3, seed=0)
    session.set_model(model, InputData.from_array(rng.normal(size=(2, 7, 3)), model))
    session.recompute()
    assert (session.batch_size, session.sequence_length, session.units) == (2, 7, 4)
    assert session.characters() is None


def test_from_model_traces_the_first_lstm_after_the_layers_before_it():
    """The seam for lstm_c.Sequential: any object with a ``layers`` list works."""
    demo = demos.load("brackets")

    class OneHot:
        def __call__(self, ids, mask=None):
            return demo.one_hot(ids)

    class TinyModel:
        name = "tiny"
        layers = [OneHot(), demo.lstm]

    model = InspectedModel.from_model(TinyModel())
    assert model.input_kind == "numeric" and model.units == 8 and not model.lstm.stateful
    x, mask = model.encode(demo.ids("(()")[None])
    assert x.shape == (1, 3, len(demo.vocabulary)) and mask is None
    with pytest.raises(ValueError, match="no LSTM"):
        InspectedModel.from_model(type("NoLSTM", (), {"layers": [OneHot()]})())


def test_importing_lstm_c_and_the_session_never_imports_qt():
    import os

    env = dict(os.environ, PYTHONPATH=str(Path(lstm_c.__file__).resolve().parents[1]))
    code = ("import sys; sys.path.insert(0, %r); from _gui_alias import ensure_lstm_c_gui; "
            "import lstm_c; ensure_lstm_c_gui(); "
            "import lstm_c.gui.session, lstm_c.gui.analysis, lstm_c.gui.exports, lstm_c.gui.data; "
            "bad = [m for m in sys.modules if m.startswith(('PyQt', 'pyqtgraph'))]; "
            "assert not bad, bad" % str(Path(__file__).parent))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd="/")


def test_opens_a_saved_keras_model_and_traces_its_first_lstm(tmp_path):
    """A char-RNN-like Sequential saved as .keras: the Embedding (mask_zero) feeds the
    stateful LSTM, whose mask and stateful intent the inspector picks up."""
    from lstm_c.gui.model import open_model

    model = lstm_c.Sequential([lstm_c.Embedding(12, 5, mask_zero=True),
                               lstm_c.LSTM(6, return_sequences=True, stateful=True),
                               lstm_c.Dense(12)])
    ids = np.random.default_rng(0).integers(1, 12, (2, 20))
    ids[:, 15:] = 0  # padding
    model(ids)
    path = tmp_path / "char_rnn.keras"
    model.save(path)
    inspected = open_model(path)
    assert inspected.input_kind == "ids" and inspected.stateful_intended and inspected.units == 6
    session = Session(inspected, InputData.from_array(ids, inspected), batch_size=2, sequence_length=20)
    trace = session.trace
    assert trace.mask is not None and not trace.mask[:, 15:].any()
    np.testing.assert_array_equal(trace.h[:, 15:], np.repeat(trace.h[:, 14:15], 5, axis=1))
    model.reset_states()
    expected = model.layers[1](model.layers[0](ids), mask=ids != 0)
    np.testing.assert_allclose(trace.outputs, expected, rtol=1e-6)


def test_bidirectional_model_inspects_the_forward_layer():
    model = lstm_c.Sequential([lstm_c.Bidirectional(lstm_c.LSTM(3, return_sequences=True))])
    x = np.random.default_rng(1).normal(size=(2, 6, 4)).astype(np.float32)
    model(x)
    inspected = InspectedModel.from_model(model)
    assert "forward" in inspected.description and inspected.units == 3
    session = Session(inspected, InputData.from_array(x, inspected), batch_size=2, sequence_length=6)
    forward = model.layers[0].forward_layer
    np.testing.assert_allclose(session.trace.h, forward.trace(x).h, rtol=1e-6)
