"""Keras 3 adapter, on whichever backend KERAS_BACKEND selects (the suite runs all three)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.conftest import ATOL
from tests.handcalc import output_by_hand

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras_backend

B, T, F, U = 3, 6, 4, 5

CELLS = [
    ("LSTM", {}),
    ("LSTM", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
    ("LSTM", {"use_bias": False}),
    ("LSTM", {"go_backwards": True}),
    ("GRU", {"reset_after": True}),
    ("GRU", {"reset_after": False}),
    ("GRU", {"activation": "linear", "recurrent_activation": "hard_sigmoid"}),
    ("SimpleRNN", {}),
    ("SimpleRNN", {"activation": "relu"}),
]


def _randomise(layer, seed=0):
    r = np.random.default_rng(seed)
    layer.set_weights(
        [r.normal(scale=0.4, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _model(layer):
    inp = keras.Input((T, F))
    model = keras.Model(inp, layer(inp))
    _randomise(layer)
    return model


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=[f"{c}-{k}" for c, k in CELLS])
@pytest.mark.parametrize("sequences", [True, False], ids=["seq", "last"])
def test_trace_equals_keras_and_hand(cell, kwargs, sequences, rng):
    layer = getattr(keras.layers, cell)(U, return_sequences=sequences, **kwargs)
    model = _model(layer)
    x = rng.normal(size=(B, T, F)).astype("float32")
    want = _np(model(x, training=False))
    w = rnnscope.rnn_weights(model)
    assert (w.cell, w.units, w.input_dim, w.source) == (cell, U, F, "keras")
    t = rnnscope.trace(model, x)
    np.testing.assert_allclose(t.output(sequences=sequences), want, atol=ATOL)
    hand = output_by_hand(w, x)
    if kwargs.get("go_backwards"):
        hand = hand[:, ::-1] if sequences else hand[:, :1]
    np.testing.assert_allclose(hand if sequences else hand[:, -1], want, atol=ATOL)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_bidirectional_every_merge_mode(cell, merge_mode, rng):
    layer = keras.layers.Bidirectional(
        getattr(keras.layers, cell)(U, return_sequences=True), merge_mode=merge_mode
    )
    model = _model(layer)
    x = rng.normal(size=(B, T, F)).astype("float32")
    want = model(x, training=False)
    w = rnnscope.rnn_weights(model, "bidirectional")
    assert w.directions == ("forward", "backward") and w.merge_mode == merge_mode
    got = rnnscope.trace(model, x).output()
    if merge_mode is None:
        for g, k in zip(got, want, strict=True):
            np.testing.assert_allclose(g, _np(k), atol=ATOL)
    else:
        np.testing.assert_allclose(got, _np(want), atol=ATOL)
    # The backward direction really is the backward layer's weights.
    np.testing.assert_array_equal(
        w.array("recurrent_kernel", direction="backward"),
        _np(layer.backward_layer.cell.recurrent_kernel),
    )


def test_bidirectional_last_step(rng):
    layer = keras.layers.Bidirectional(keras.layers.LSTM(U))
    model = _model(layer)
    x = rng.normal(size=(B, T, F)).astype("float32")
    got = rnnscope.trace(model, x).output(sequences=False)
    np.testing.assert_allclose(got, _np(model(x)), atol=ATOL)


def test_gate_blocks_are_keras_columns():
    layer = keras.layers.GRU(U, reset_after=True)
    _model(layer)
    w = rnnscope.rnn_weights(layer)
    kernel = _np(layer.cell.kernel)
    bias = _np(layer.cell.bias)
    np.testing.assert_array_equal(w.array("kernel", "reset"), kernel[:, U : 2 * U])
    np.testing.assert_array_equal(w.array("bias", "new"), bias[0, 2 * U :])
    np.testing.assert_array_equal(w.array("recurrent_bias", "update"), bias[1, :U])
    assert w.gates == ("update", "reset", "new") and w.reset_after is True
    lstm = keras.layers.LSTM(U)
    _model(lstm)
    lw = rnnscope.rnn_weights(lstm)
    np.testing.assert_array_equal(
        lw.array("recurrent_kernel", "forget"), _np(lstm.cell.recurrent_kernel)[:, U : 2 * U]
    )
    assert lw.parts == ("kernel", "recurrent_kernel", "bias")


def test_custom_activation_is_called_through_keras(rng):
    def scaled_tanh(v):
        return keras.ops.tanh(v) * 0.8

    layer = keras.layers.LSTM(U, activation=scaled_tanh, return_sequences=True)
    model = _model(layer)
    x = rng.normal(size=(B, T, F)).astype("float32")
    w = rnnscope.rnn_weights(model)
    assert w.activation.startswith("custom:") and "scaled_tanh" in w.activation
    np.testing.assert_allclose(rnnscope.trace(model, x).output(), _np(model(x)), atol=ATOL)


def test_sequential_functional_subclassed_nested(rng):
    seq = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.LSTM(U, return_sequences=True),
            keras.layers.GRU(3),
            keras.layers.Dense(2),
        ],
        name="seq",
    )
    infos = rnnscope.layers(seq)
    assert [i.kind for i in infos] == ["LSTM", "GRU", "Dense"]
    assert [i.name for i in infos] == [layer.name for layer in seq.layers]
    assert infos[0].shapes == {
        "kernel": (F, 4 * U),
        "recurrent_kernel": (U, 4 * U),
        "bias": (4 * U,),
    }

    inner = keras.Sequential(
        [keras.Input((T, F)), keras.layers.LSTM(U, return_sequences=True, name="enc")], name="inner"
    )
    inp = keras.Input((T, F))
    out = keras.layers.Dense(1, name="head")(keras.layers.SimpleRNN(2, name="rnn")(inner(inp)))
    nested = keras.Model(inp, out, name="outer")
    names = [i.name for i in rnnscope.layers(nested)]
    assert names == ["inner/enc", "rnn", "head"]
    assert rnnscope.rnn_weights(nested, "enc").name == "inner/enc"
    dense = rnnscope.weights(nested, "head")
    assert isinstance(dense, rnnscope.LayerWeights) and dense.names == ("kernel", "bias")

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.rnn = keras.layers.GRU(U, return_sequences=True)
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.rnn(x))

    sub = Sub()
    x = rng.normal(size=(B, T, F)).astype("float32")
    sub(x)
    _randomise(sub.rnn)
    kinds = [i.kind for i in rnnscope.layers(sub)]
    assert kinds == ["GRU", "Dense"]
    np.testing.assert_allclose(rnnscope.trace(sub, x).output(), _np(sub.rnn(x)), atol=ATOL)


def test_unbuilt_and_unknown(rng):
    model = keras.Sequential([keras.layers.LSTM(U)])
    with pytest.raises(rnnscope.LayerError, match="no layers with weights"):
        rnnscope.rnn_weights(model)
    built = _model(keras.layers.LSTM(U))
    with pytest.raises(rnnscope.LayerError, match=r"'nope' not found.*\(LSTM\)"):
        rnnscope.rnn_weights(built, "nope")


def test_initial_state(rng):
    layer = keras.layers.LSTM(U, return_sequences=True)
    inp, h0, c0 = keras.Input((T, F)), keras.Input((U,)), keras.Input((U,))
    model = keras.Model([inp, h0, c0], layer(inp, initial_state=[h0, c0]))
    _randomise(layer)
    x = rng.normal(size=(B, T, F)).astype("float32")
    h, c = (rng.normal(size=(B, U)).astype("float32") for _ in range(2))
    want = _np(model([x, h, c]))
    np.testing.assert_allclose(
        rnnscope.trace(layer, x, initial_state=[h, c]).output(), want, atol=ATOL
    )
