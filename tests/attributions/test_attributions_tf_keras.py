"""tf-keras attributions: completeness of integrated gradients, saliency against central finite
differences, occlusion against direct re-evaluation, all from the model's own forward."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

tf_keras = pytest.importorskip("tf_keras")

B, T, F, C = 3, 4, 2, 2


@pytest.fixture(scope="module")
def model():
    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((T, F))
    h = tf_keras.layers.GRU(3, name="gru")(inp)
    m = tf_keras.Model(inp, tf_keras.layers.Dense(C, name="head")(h))
    rng = np.random.default_rng(0)
    for v in m.trainable_variables:
        v.assign(rng.normal(scale=0.6, size=v.shape))
    return m


def _f(m, x):
    return m(x, training=False).numpy()[:, 1]


def test_tf_keras_attributions_against_the_models_own_forward(model):
    x = np.random.default_rng(1).normal(size=(B, T, F)).astype(np.float32)
    a = rnnscope.attributions(model, x, target=1, n_steps=40)
    fdiff = _f(model, x) - _f(model, np.zeros_like(x))
    np.testing.assert_allclose(a.values.reshape(B, -1).sum(1) - fdiff, a.delta, atol=2e-5)
    assert np.abs(a.delta).max() <= 1e-4 * np.abs(fdiff).max()

    s = rnnscope.attributions(model, x, target=1, method="saliency", absolute=False)
    eps, fd = 3e-3, np.zeros_like(s.values)
    for i in range(T):
        for j in range(F):
            up, down = x.copy(), x.copy()
            up[:, i, j] += eps
            down[:, i, j] -= eps
            fd[:, i, j] = (_f(model, up) - _f(model, down)) / (2 * eps)
    assert np.abs(s.values - fd).max() <= 1e-2 * np.abs(fd).max()

    o = rnnscope.attributions(model, x, target=1, method="occlusion", window=2, stride=2)
    for start in (0, 2):
        xo = x.copy()
        xo[:, start : start + 2] = 0.0
        np.testing.assert_allclose(o.values[:, start, 0], _f(model, x) - _f(model, xo), rtol=1e-5)


def test_tf_keras_token_inputs_with_mask_zero_against_the_models_own_layers():
    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((None,), dtype="int32")
    h = tf_keras.layers.Embedding(7, 3, mask_zero=True, name="emb")(inp)
    m = tf_keras.Model(inp, tf_keras.layers.Dense(C, name="head")(tf_keras.layers.GRU(3)(h)))
    tok = np.array([[3, 1, 4, 1, 5], [2, 6, 5, 0, 0]], dtype="int32")
    a = rnnscope.attributions(m, tok, target=0, baseline=2, n_steps=12)
    assert "call" not in vars(m.get_layer("emb"))
    emb = m.get_layer("emb").embeddings.numpy()
    gru, head = m.layers[2], m.get_layer("head")

    def tail(e):
        return head(gru(e, mask=tok != 0)).numpy()[:, 0]

    fdiff = tail(emb[tok]) - tail(emb[np.full_like(tok, 2)])
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)) - fdiff, a.delta, atol=2e-6)
    assert np.abs(a.delta).max() <= 1e-3 * np.abs(fdiff).max()
    assert np.abs(a.values[1, 3:]).max() == 0
    alone = rnnscope.attributions(m, tok[1:, :3], target=0, baseline=2, n_steps=12)
    np.testing.assert_allclose(alone.values[0], a.values[1, :3], atol=1e-6)


def test_tf_keras_masking_held_fixed_complete_per_sample_and_equal_alone():
    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((None, F))
    h = tf_keras.layers.Masking(0.0)(inp)
    lstm, head = tf_keras.layers.LSTM(3, name="lstm"), tf_keras.layers.Dense(C, name="head")
    m = tf_keras.Model(inp, head(lstm(h)))
    x = np.random.default_rng(2).normal(size=(2, 5, F)).astype("float32")
    x[0, 3:] = 0.0  # right padding
    x[1, :2] = 0.0  # left padding
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], dtype=bool)
    a = rnnscope.attributions(m, x, target=1, n_steps=8)
    np.testing.assert_array_equal(a.mask, mask)
    assert np.all(a.values[~mask] == 0)
    f = lambda v: head(lstm(v, mask=mask)).numpy()[:, 1]
    fdiff = f(x) - f(np.zeros_like(x))
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)) - fdiff, a.delta, atol=2e-6)
    one = rnnscope.attributions(m, x[1:, mask[1]], target=1, n_steps=8)  # left padding
    np.testing.assert_allclose(one.values[0], a.values[1, mask[1]], atol=1e-6)
