"""Keras 3 multi-input models with token inputs (every backend): one record per input, tokens
at their own ``Embedding``'s output; completeness across inputs against the model's own
outputs on x and on the baseline (token 0 and zero features)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend

keras = pytest.importorskip("keras")

B, T = 3, 5


@functools.cache
def _model():
    keras.utils.set_random_seed(0)
    w = keras.Input((T,), dtype="int32", name="words")
    t = keras.Input((T,), dtype="int32", name="tags")
    f = keras.Input((T, 2), name="feats")
    ew = keras.layers.Embedding(9, 3, name="word_emb")(w)
    et = keras.layers.Embedding(4, 2, name="tag_emb")(t)
    h = keras.layers.Concatenate()([ew, et, f])
    out = keras.layers.Dense(3, name="head")(keras.layers.GRU(4, name="gru")(h))
    m = keras.Model([w, t, f], out)
    rng = np.random.default_rng(0)
    for v in m.trainable_variables:
        v.assign(rng.normal(scale=0.6, size=v.shape).astype("float32"))
    return m


def _inputs():
    rng = np.random.default_rng(1)
    w = rng.integers(1, 9, (B, T)).astype("int32")
    t = rng.integers(0, 4, (B, T)).astype("int32")
    return w, t, rng.normal(size=(B, T, 2)).astype("float32")


def _f(m, ins, target):
    return np.asarray(keras.ops.convert_to_numpy(m(list(ins), training=False)))[:, target]


def test_one_record_per_input_complete_across_inputs():
    m, (w, t, f) = _model(), _inputs()
    recs = rnnscope.attributions(m, [w, t, f], target=2, baseline=[0, 0, 0.0], n_steps=24)
    assert [r.input for r in recs] == ["words", "tags", "feats"]
    assert [r.values.shape for r in recs] == [(B, T, 1), (B, T, 1), (B, T, 2)]
    assert [r.settings.get("embedding") for r in recs] == ["word_emb", "tag_emb", None]
    # baseline=[0, 0, 0.0]: token 0's embeddings and zero features: the model on zero inputs
    fdiff = _f(m, (w, t, f), 2) - _f(m, (np.zeros_like(w), np.zeros_like(t), 0 * f), 2)
    total = sum(r.values.sum(axis=(1, 2)) for r in recs)
    np.testing.assert_allclose(total - fdiff, recs[0].delta, atol=3e-6)
    assert np.abs(recs[0].delta).max() <= 2e-3 * np.abs(fdiff).max()
    assert all("call" not in vars(layer) for layer in m.layers)


def test_saliency_names_and_the_dict_input():
    m, (w, t, f) = _model(), _inputs()
    a = rnnscope.attributions(m, {"words": w, "tags": t, "feats": f}, target=0, method="saliency")
    b = rnnscope.attributions(
        m,
        [w, t, f],
        target=0,
        method="saliency",
        embedding={"words": "word_emb", "tags": "tag_emb"},
    )
    assert [r.input for r in a] == ["words", "tags", "feats"]
    for ra, rb in zip(a, b, strict=True):
        np.testing.assert_allclose(ra.values, rb.values, atol=1e-7)
