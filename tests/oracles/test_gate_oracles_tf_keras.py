"""Every gate of tf-keras's LSTM, GRU (reset_after True and False) and SimpleRNN, plain and
Bidirectional, against a numpy oracle over the cell's raw ``kernel``/``recurrent_kernel``/``bias``
sliced by Keras's documented columns (``tests/oracles/raw.py``). The oracle is itself checked
against the layer's output and, step by step, against the tf-keras cell called as ``cell(x_t,
states)``."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.oracles import raw

keras = pytest.importorskip("tf_keras")

B, T, F, U = 2, 5, 3, 4
TOL = 2e-5  # float32 framework and trace against a float64 oracle


def _np(t) -> np.ndarray:
    return np.asarray(t.numpy(), np.float64)


def _act(fn) -> str:
    name = fn.__name__
    return "hard_sigmoid_keras2" if name == "hard_sigmoid" else name


def _seeded(layer, x, seed):
    layer(x)
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        v.assign(rng.normal(scale=0.6, size=tuple(v.shape)).astype("float32"))
    return layer


def _cell_oracle(rnn, x: np.ndarray) -> raw.Gates:
    cell = rnn.cell
    k, rk = _np(cell.kernel), _np(cell.recurrent_kernel)
    b = _np(cell.bias) if cell.use_bias else None
    act = _act(cell.activation)
    if isinstance(rnn, keras.layers.LSTM):
        return raw.keras_lstm(x, k, rk, b, act, _act(cell.recurrent_activation))
    if isinstance(rnn, keras.layers.GRU):
        ract = _act(cell.recurrent_activation)
        return raw.keras_gru(x, k, rk, b, cell.reset_after, act, ract)
    return raw.keras_simple(x, k, rk, b, act)


def _oracle(layer, x: np.ndarray) -> dict[str, raw.Gates]:
    if isinstance(layer, keras.layers.Bidirectional):
        back = raw.flip(_cell_oracle(layer.backward_layer, x[:, ::-1]))
        return {"forward": _cell_oracle(layer.forward_layer, x), "backward": back}
    return {"forward": _cell_oracle(layer, x)}


def _layers():
    L = keras.layers
    return {
        "lstm": lambda: L.LSTM(U, return_sequences=True),
        "lstm_nobias": lambda: L.LSTM(U, return_sequences=True, use_bias=False),
        "lstm_hard_sigmoid": lambda: L.LSTM(
            U, return_sequences=True, recurrent_activation="hard_sigmoid"
        ),
        "gru_reset_after": lambda: L.GRU(U, return_sequences=True, reset_after=True),
        "gru_reset_before": lambda: L.GRU(U, return_sequences=True, reset_after=False),
        "simple_rnn": lambda: L.SimpleRNN(U, return_sequences=True),
        "bi_lstm": lambda: L.Bidirectional(L.LSTM(U, return_sequences=True)),
        "bi_gru_reset_after": lambda: L.Bidirectional(L.GRU(U, return_sequences=True)),
        "bi_gru_reset_before": lambda: L.Bidirectional(
            L.GRU(U, return_sequences=True, reset_after=False)
        ),
        "bi_simple_rnn": lambda: L.Bidirectional(L.SimpleRNN(U, return_sequences=True)),
    }


NAMES = list(_layers())


@pytest.mark.parametrize("case", NAMES)
def test_every_gate_in_both_directions(case, rng):
    x = rng.normal(size=(B, T, F)).astype("float32")
    layer = _seeded(_layers()[case](), x, seed=len(case))
    want = _oracle(layer, x)
    merged = np.concatenate([want[d]["h"] for d in ("forward", "backward") if d in want], -1)
    np.testing.assert_allclose(merged, _np(layer(x)), atol=TOL)  # the oracle is Keras's layer
    t = rnnscope.trace(layer, x)
    assert set(t.directions) == set(want)
    for d, gates in want.items():
        assert set(t.names) == set(gates)
        for name, value in gates.items():
            np.testing.assert_allclose(t.get(name, d), value, atol=TOL, err_msg=f"{d} {name}")


@pytest.mark.parametrize("case", ["lstm", "gru_reset_after", "gru_reset_before", "simple_rnn"])
def test_keras_cell_step_by_step(case, rng):
    x = rng.normal(size=(B, T, F)).astype("float32")
    layer = _seeded(_layers()[case](), x, seed=40 + len(case))
    want = _oracle(layer, x)["forward"]
    t = rnnscope.trace(layer, x)
    lstm = isinstance(layer, keras.layers.LSTM)
    states = [keras.backend.zeros((B, U))] * (2 if lstm else 1)
    for s in range(T):
        _, states = layer.cell(x[:, s], states)
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        h = _np(states[0])
        np.testing.assert_allclose(want["h"][:, s], h, atol=TOL, err_msg=f"step {s}")
        np.testing.assert_allclose(t.get("h")[:, s], h, atol=TOL, err_msg=f"step {s}")
        if lstm:
            c = _np(states[1])
            np.testing.assert_allclose(want["c"][:, s], c, atol=TOL)
            np.testing.assert_allclose(t.get("c")[:, s], c, atol=TOL)
