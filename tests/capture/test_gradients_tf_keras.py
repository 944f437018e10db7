"""tf-keras activations and gradients against float64 central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.oracles import raw

tf_keras = pytest.importorskip("tf_keras")

B, T, F = 3, 4, 2
EPS = 1e-6


@pytest.fixture
def model():
    tf_keras.backend.set_floatx("float64")
    try:
        tf_keras.utils.set_random_seed(0)
        inp = tf_keras.Input((T, F))
        h = tf_keras.layers.LSTM(
            3, return_sequences=True, name="lstm", recurrent_activation="hard_sigmoid"
        )(inp)
        h = tf_keras.layers.Bidirectional(
            tf_keras.layers.GRU(2, return_sequences=True), name="bigru"
        )(h)
        out = tf_keras.layers.Dense(1, name="head")(tf_keras.layers.SimpleRNN(2, name="srnn")(h))
        m = tf_keras.Model(inp, out)
        rng = np.random.default_rng(0)
        for v in m.trainable_variables:
            v.assign(rng.normal(scale=0.5, size=v.shape))
        m.compile(loss="mse")
        yield m
    finally:
        tf_keras.backend.set_floatx("float32")


def _loss(m, x, y):
    return float(np.mean((y - m(x).numpy()) ** 2))


def test_weights_and_outputs_match_finite_differences(model, rng):
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))
    got = rnnscope.gradients(model, x, y, wrt="weights")
    pick = np.random.default_rng(4)
    fd = {}
    for v in model.trainable_variables:
        base = v.numpy().copy()
        g = np.full(base.shape, np.nan)
        for i in pick.choice(base.size, size=min(4, base.size), replace=False):
            idx = np.unravel_index(i, base.shape)
            vals = []
            for sign in (1, -1):
                w = base.copy()
                w[idx] += sign * EPS
                v.assign(w)
                vals.append(_loss(model, x, y))
            v.assign(base)
            g[idx] = (vals[0] - vals[1]) / (2 * EPS)
        fd[id(v)] = g
    checked = 0
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.Dense):
            pairs = [
                (got[layer.name].array("kernel"), fd[id(layer.kernel)], "kernel"),
                (got[layer.name].array("bias"), fd[id(layer.bias)], "bias"),
            ]
        elif hasattr(layer, "forward_layer") or hasattr(layer, "cell"):
            subs = (
                [("forward", layer.forward_layer), ("backward", layer.backward_layer)]
                if hasattr(layer, "forward_layer")
                else [("forward", layer)]
            )
            pairs = []
            for d, sub in subs:
                c = sub.cell
                kind = type(sub).__name__
                blocks = raw.keras_raw_blocks(
                    kind, fd[id(c.kernel)], fd[id(c.recurrent_kernel)], fd[id(c.bias)]
                )  # the FD gradients cut into gates by Keras's columns, by hand
                pairs += [
                    (got[layer.name].array(p, g, d), blk, f"{d} {p} {g}")
                    for (p, g), blk in blocks.items()
                ]
        else:
            continue
        for mine, block, what in pairs:
            mask = ~np.isnan(block)
            np.testing.assert_allclose(
                mine[mask], block[mask], rtol=1e-5, atol=1e-9, err_msg=f"{layer.name} {what}"
            )
            checked += int(mask.sum())
    assert checked == sum(min(4, int(np.prod(v.shape))) for v in model.trainable_variables)
    # d loss / d bigru's output, against central differences through tf-keras itself: the model
    # split at that output (the part after it is a tf-keras model of its own).
    outs = rnnscope.gradients(model, x, y, layers="bigru")
    bigru = model.get_layer("bigru")
    front = tf_keras.Model(model.inputs, bigru.output)
    back = tf_keras.Model(bigru.output, model.output)
    h = front(x).numpy()
    assert outs["bigru"].shape == h.shape == (B, T, 4)
    for idx in [(0, 0, 0), (1, T - 1, 3), (2, 2, 1)]:
        vals = []
        for sign in (1, -1):
            moved = h.copy()
            moved[idx] += sign * EPS
            vals.append(float(np.mean((y - back(moved).numpy()) ** 2)))
        fd_out = (vals[0] - vals[1]) / (2 * EPS)
        np.testing.assert_allclose(outs["bigru"][idx], fd_out, rtol=1e-5, atol=1e-10)
    assert np.abs(outs["bigru"]).max() > 1e-3
    assert not any("call" in layer.__dict__ for layer in model.layers)


def test_activations_match_trace(model, rng):
    x = rng.normal(size=(B, T, F))
    acts = rnnscope.activations(model, x, layers=["lstm", "bigru"])
    np.testing.assert_allclose(
        acts["lstm"], rnnscope.trace(model, x, layer="lstm").output(), atol=1e-10
    )
    np.testing.assert_allclose(
        acts["bigru"], rnnscope.trace(model, acts["lstm"], layer="bigru").output(), atol=1e-10
    )
