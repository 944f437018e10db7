"""tf-keras (legacy Keras 2) adapter, including CuDNNLSTM / CuDNNGRU layers."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.conftest import ATOL
from tests.handcalc import output_by_hand

tf_keras = pytest.importorskip("tf_keras")

B, T, F, U = 3, 6, 4, 5


def _randomise(layer, seed=0):
    r = np.random.default_rng(seed)
    layer.set_weights(
        [r.normal(scale=0.4, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


def _model(layer):
    inp = tf_keras.Input((T, F))
    model = tf_keras.Model(inp, layer(inp))
    _randomise(layer)
    return model


CELLS = [
    ("LSTM", {}),
    ("LSTM", {"recurrent_activation": "hard_sigmoid"}),
    ("GRU", {"reset_after": True}),
    ("GRU", {"reset_after": False, "recurrent_activation": "hard_sigmoid"}),
    ("SimpleRNN", {"activation": "relu"}),
]


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=[f"{c}-{k}" for c, k in CELLS])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_trace_equals_tf_keras_and_hand(cell, kwargs, bidirectional, rng):
    layer = getattr(tf_keras.layers, cell)(U, return_sequences=True, **kwargs)
    if bidirectional:
        layer = tf_keras.layers.Bidirectional(layer)
    model = _model(layer)
    x = rng.normal(size=(B, T, F)).astype("float32")
    want = model(x, training=False).numpy()
    w = rnnscope.rnn_weights(model)
    assert w.source == "tf_keras" and w.cell == cell
    if kwargs.get("recurrent_activation") == "hard_sigmoid":
        assert w.recurrent_activation == "hard_sigmoid_keras2"  # 0.2 x + 0.5, not Keras 3's x / 6
    np.testing.assert_allclose(rnnscope.trace(model, x).output(), want, atol=ATOL)
    np.testing.assert_allclose(output_by_hand(w, x), want, atol=ATOL)


def _cudnn(kind):
    if kind == "LSTM":
        from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM as cls
    else:
        from tf_keras.src.layers.rnn.cudnn_gru import CuDNNGRU as cls
    return cls


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_cudnn_layer_matches_tf_keras_conversion(kind, rng):
    """A CuDNN layer cannot run on CPU; the oracle is tf-keras's own conversion of its weights
    into a CPU layer (what tf-keras does when it loads a CuDNN file), run by tf-keras."""
    from tf_keras.src.saving.legacy.hdf5_format import _convert_rnn_weights

    cudnn = _cudnn(kind)(U, return_sequences=True)
    cudnn.build((None, T, F))
    _randomise(cudnn, seed=5)
    extra = {"reset_after": True, "recurrent_activation": "sigmoid"} if kind == "GRU" else {}
    cpu = getattr(tf_keras.layers, kind)(U, return_sequences=True, **extra)
    cpu.build((None, T, F))
    cpu.set_weights(_convert_rnn_weights(cpu, cudnn.get_weights()))
    x = rng.normal(size=(B, T, F)).astype("float32")
    want = cpu(x).numpy()

    w = rnnscope.rnn_weights(cudnn)
    assert w.kind == f"CuDNN{kind}" and w.cell == kind
    assert w.parts == ("kernel", "recurrent_kernel", "bias", "recurrent_bias")
    np.testing.assert_allclose(rnnscope.trace(cudnn, x).output(), want, atol=ATOL)
    # The bias is split, not summed: input side first, recurrent side second.
    bias = cudnn.get_weights()[2]
    np.testing.assert_array_equal(w.array("bias"), bias[: bias.size // 2])
    np.testing.assert_array_equal(w.array("recurrent_bias"), bias[bias.size // 2 :])


def test_sequential_names_and_dense(rng):
    model = tf_keras.Sequential(
        [
            tf_keras.layers.LSTM(U, input_shape=(T, F), name="enc"),
            tf_keras.layers.Dense(2, name="out"),
        ]
    )
    infos = rnnscope.layers(model)
    assert [(i.name, i.kind) for i in infos] == [("enc", "LSTM"), ("out", "Dense")]
    assert infos[0].shapes["kernel"] == (F, 4 * U)
    dense = rnnscope.weights(model, "out")
    assert dense.names == ("kernel", "bias")
    np.testing.assert_array_equal(dense.array("kernel"), model.layers[1].kernel.numpy())
