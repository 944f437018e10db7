"""Gate attributions of Keras 3 models, on whichever backend KERAS_BACKEND selects.

Oracle: the hand-written torch oracle (``gate_oracle.py``) given the Keras weights, sliced into
torch's layout in this test by the two frameworks' documented gate orders (Keras LSTM
``i, f, c, o`` = torch ``i, f, g, o``; Keras GRU ``z, r, h``, torch ``r, z, n``); ``F(G)``
against the Keras model's own output.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
oracle = pytest.importorskip("tests.attributions.gate_oracle")

B, T, F, U, C = 2, 4, 3, 3, 2


def _np(v):
    return np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64)


@functools.cache
def _model(kind):
    keras.utils.set_random_seed(0)
    inp = keras.Input((T, F))
    if kind == "bi_lstm":
        h = keras.layers.Bidirectional(keras.layers.LSTM(U), name="rnn")(inp)
    elif kind == "bi_gru_sum":
        rnn = keras.layers.GRU(U, return_sequences=True)
        h = keras.layers.Bidirectional(rnn, merge_mode="sum", name="rnn")(inp)
        h = keras.layers.Flatten()(h)  # every step in its place: a flipped sequence shows
    else:  # "gru_before": Keras's reset_after=False
        h = keras.layers.GRU(U, reset_after=False, name="rnn")(inp)
    m = keras.Model(inp, keras.layers.Dense(C, name="head")(h))
    rng = np.random.default_rng(1)
    for v in m.trainable_variables:
        v.assign(rng.normal(scale=0.7, size=v.shape).astype("float32"))
    return m


def _x(seed=2):
    return np.random.default_rng(seed).normal(size=(B, T, F)).astype(np.float32)


def _torch_params(cell_layer, gru):
    """One Keras cell's weights in torch's layout, for the oracle."""
    cell = cell_layer.cell
    k, r = _np(cell.kernel), _np(cell.recurrent_kernel)
    b = _np(cell.bias)
    if not gru:
        return oracle.layer_params(k.T, r.T, b, np.zeros_like(b))
    perm = np.r_[U : 2 * U, :U, 2 * U : 3 * U]  # Keras z, r, h -> torch r, z, n
    if cell.reset_after:
        return oracle.layer_params(k[:, perm].T, r[:, perm].T, b[0, perm], b[1, perm])
    return oracle.layer_params(k[:, perm].T, r[:, perm].T, b[perm], np.zeros(3 * U), False)


def _oracle(kind, x, unit, n_steps):
    return _oracle_of(_model(kind), kind, x, unit, n_steps)


def _oracle_of(m, kind, x, unit, n_steps):
    layer = m.get_layer("rnn")
    gru = kind != "bi_lstm"
    parts = [layer.forward_layer, layer.backward_layer] if kind.startswith("bi") else [layer]
    layers = [[_torch_params(p, gru) for p in parts]]
    w, bias = (oracle._t(_np(v)) for v in (m.get_layer("head").kernel, m.get_layer("head").bias))
    cell = "GRU" if gru else "LSTM"
    _, g = oracle.forward(x, layers, cell, 0)
    neutral = [0.5, 0.5] if gru else [0.5, 0.5, 0.0, 0.5]
    base = torch.tensor(neutral, dtype=torch.float64).reshape(-1, 1).expand(g.shape)

    def readout(seq):
        if kind == "bi_lstm":  # the last state of each direction: backward's is at step 0
            return torch.cat([seq[:, -1, :U], seq[:, 0, U:]], -1)
        if kind == "bi_gru_sum":
            return (seq[:, :, :U] + seq[:, :, U:]).reshape(len(seq), -1)
        return seq[:, -1]

    def f(gates):
        seq, _ = oracle.forward(x, layers, cell, 0, gates)
        return (readout(seq) @ w + bias)[np.arange(len(x)), unit]

    return oracle.integrated_gradients(f, g, base, n_steps)


@pytest.mark.parametrize("kind", ["bi_lstm", "bi_gru_sum", "gru_before"])
def test_gate_attributions_equal_the_torch_oracle_given_the_same_weights(kind):
    m, x, unit = _model(kind), _x(), np.array([1, 0])
    a = rnnscope.gate_attributions(m, x, layer="rnn", target=unit, n_steps=12)
    want, f_g, f_g0 = _oracle(kind, x, unit, 12)
    got = np.stack([a.values[d] for d in a.directions], axis=1)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5 * np.abs(want).max())
    real = _np(m(x, training=False))[np.arange(B), unit]  # F(G) is the model's output
    np.testing.assert_allclose(a.output, real, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f_g, real, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.baseline_output, f_g0, rtol=1e-5, atol=1e-6)
    total = sum(v.reshape(B, -1).sum(axis=1) for v in a.values.values())
    np.testing.assert_allclose(total - (a.output - a.baseline_output), a.delta, atol=1e-6)
    assert np.abs(a.delta).max() < 1e-4


def test_go_backwards_layer_with_states_reproduces_the_model_output():
    keras.utils.set_random_seed(3)
    inp = keras.Input((T, F))
    seq, h, c = keras.layers.LSTM(
        U, go_backwards=True, return_sequences=True, return_state=True, name="rnn"
    )(inp)
    feat = keras.layers.Concatenate()([keras.layers.Flatten()(seq), h, c])
    m = keras.Model(inp, keras.layers.Dense(C)(feat))
    x = _x(4)
    a = rnnscope.gate_attributions(m, x, layer="rnn", target=1, n_steps=16)
    real = _np(m(x, training=False))[:, 1]
    np.testing.assert_allclose(a.output, real, rtol=1e-5, atol=1e-6)
    assert np.abs(a.delta).max() < 1e-3
    with pytest.raises(rnnscope.UnsupportedError, match="Dense"):
        rnnscope.gate_attributions(m, x, layer=m.layers[-1].name)


def test_new_weights_are_used_by_the_next_call_and_the_layer_is_left_as_found():
    m, x = _model.__wrapped__("gru_before"), _x(5)  # a fresh model: its weights change here
    layer = m.get_layer("rnn")
    rnnscope.gate_attributions(m, x, layer="rnn", target=1, n_steps=4)
    assert "call" not in vars(layer)  # the replaced call is gone
    rng = np.random.default_rng(6)
    for v in m.trainable_variables:
        v.assign(rng.normal(scale=0.7, size=v.shape).astype("float32"))
    a = rnnscope.gate_attributions(m, x, layer="rnn", target=1, n_steps=12)
    want, _, _ = _oracle_of(m, "gru_before", x, np.array([1, 1]), 12)
    got = a.values["forward"][:, None]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5 * np.abs(want).max())
    np.testing.assert_allclose(a.output, _np(m(x, training=False))[:, 1], rtol=1e-5, atol=1e-6)
