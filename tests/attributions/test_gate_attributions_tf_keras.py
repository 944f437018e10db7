"""Gate attributions of a tf-keras model against the hand-written torch oracle given its
weights (sliced into torch's layout here: Keras GRU gates ``z, r, h``, torch ``r, z, n``)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

tf_keras = pytest.importorskip("tf_keras")
torch = pytest.importorskip("torch")
oracle = pytest.importorskip("tests.attributions.gate_oracle")

B, T, F, U, C = 2, 4, 3, 3, 2


def test_bidirectional_gru_equals_the_oracle_and_reproduces_the_output():
    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((T, F))
    rnn = tf_keras.layers.GRU(U, reset_after=True)
    h = tf_keras.layers.Bidirectional(rnn, name="rnn")(inp)
    m = tf_keras.Model(inp, tf_keras.layers.Dense(C, name="head")(h))
    rng = np.random.default_rng(1)
    for v in m.trainable_variables:
        v.assign(rng.normal(scale=0.7, size=v.shape))
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    a = rnnscope.gate_attributions(m, x, layer="rnn", target=1, n_steps=12)

    perm = np.r_[U : 2 * U, :U, 2 * U : 3 * U]  # Keras z, r, h -> torch r, z, n
    dirs = []
    for part in (m.get_layer("rnn").forward_layer, m.get_layer("rnn").backward_layer):
        k, r, b = (
            np.asarray(v, np.float64)
            for v in (part.cell.kernel, part.cell.recurrent_kernel, part.cell.bias)
        )
        dirs.append(oracle.layer_params(k[:, perm].T, r[:, perm].T, b[0, perm], b[1, perm]))
    w, bias = (oracle._t(np.asarray(v)) for v in m.get_layer("head").weights)
    _, g = oracle.forward(x, [dirs], "GRU", 0)

    def f(gates):
        seq, _ = oracle.forward(x, [dirs], "GRU", 0, gates)
        return (torch.cat([seq[:, -1, :U], seq[:, 0, U:]], -1) @ w + bias)[:, 1]

    want, f_g, _ = oracle.integrated_gradients(f, g, torch.full_like(g, 0.5), 12)
    got = np.stack([a.values["forward"], a.values["backward"]], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5 * np.abs(want).max())
    real = m(x, training=False).numpy()[:, 1]
    np.testing.assert_allclose(a.output, real, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f_g, real, rtol=1e-5, atol=1e-6)
    assert np.abs(a.delta).max() < 1e-4
