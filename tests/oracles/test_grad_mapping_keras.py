"""Keras 3 weight gradients, mapped to gates: the backend's own autodiff (``tf.GradientTape``,
``torch.autograd.grad``, ``jax.grad`` of ``stateless_call``) of the model's weighted loss, each
variable's gradient sliced by hand by Keras's columns (LSTM ``i, f, c, o``; GRU ``z, r, h``, the
``(2, 3u)`` bias as two rows), against ``rnnscope.gradients(..., wrt="weights")``."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.oracles import autodiff, raw

pytestmark = pytest.mark.keras_backend
keras = pytest.importorskip("keras")

B, T, F = 3, 4, 2
WEIGHTS = np.array([0.5, 0.0, 2.25], "float32")  # sums to 2.75, not to the batch size 3


def _model():
    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((T, F))
    h = L.LSTM(3, return_sequences=True, name="lstm")(inp)
    h = L.Bidirectional(L.GRU(2, return_sequences=True), name="bigru")(h)
    h = L.GRU(2, return_sequences=True, reset_after=False, name="gru_rb")(h)
    h = L.SimpleRNN(2, name="srnn")(h)
    model = keras.Model(inp, L.Dense(1, name="head")(h))
    rng = np.random.default_rng(0)
    for v in model.trainable_variables:
        v.assign(rng.normal(scale=0.5, size=tuple(v.shape)).astype("float32"))
    return model


def _mse(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


def _weighted(y, y_pred):
    return keras.ops.sum(_mse(y, y_pred) * keras.ops.convert_to_tensor(WEIGHTS)) / B


def test_weight_gradients_equal_the_backends_autodiff_sliced_by_hand(rng):
    model = _model()
    x = rng.normal(size=(B, T, F)).astype("float32")
    y = rng.normal(size=(B, 1)).astype("float32")
    got = rnnscope.gradients(model, x, y, wrt="weights", loss=_mse, sample_weight=WEIGHTS)
    ty = keras.ops.convert_to_tensor(y)
    grads = autodiff.keras_grads(keras, model, lambda pred: _weighted(ty, pred), x)
    checked = 0
    for name, cell in (
        ("lstm", "LSTM"),
        ("bigru", "GRU"),
        ("gru_rb", "GRU"),
        ("srnn", "SimpleRNN"),
    ):
        layer = model.get_layer(name)
        subs = (
            [("forward", layer.forward_layer), ("backward", layer.backward_layer)]
            if isinstance(layer, keras.layers.Bidirectional)
            else [("forward", layer)]
        )
        for d, sub in subs:
            c = sub.cell
            blocks = raw.keras_raw_blocks(
                cell, grads[id(c.kernel)], grads[id(c.recurrent_kernel)], grads[id(c.bias)]
            )
            for (part, gate), block in blocks.items():
                np.testing.assert_allclose(
                    got[name].array(part, gate, d),
                    block,
                    rtol=2e-4,
                    atol=2e-6,
                    err_msg=f"{name} {d} {part} {gate}",
                )
                checked += 1
    # lstm 3 parts x 4 gates; bigru 2 x 4 parts x 3 gates; gru_rb 3 x 3; srnn 3
    assert checked == 12 + 24 + 9 + 3
    head = model.get_layer("head")
    np.testing.assert_allclose(got["head"].array("kernel"), grads[id(head.kernel)], rtol=2e-4)
    np.testing.assert_allclose(got["head"].array("bias"), grads[id(head.bias)], rtol=2e-4)
    assert np.abs(grads[id(head.bias)]).max() > 1e-3  # a gradient worth comparing
