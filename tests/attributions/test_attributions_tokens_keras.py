"""Keras 3 token inputs (every backend): attributions at the ``Embedding``'s output.

Oracles, from the model's own layers: completeness of integrated gradients against the model's
LSTM and Dense layers called by this test on the embedding vectors and the mask Keras computes
from the tokens; a padded batch (``mask_zero=True``) against each sample alone, unpadded; and a
torch twin with the same weights (Captum-proven on torch) giving the same attributions.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend

keras = pytest.importorskip("keras")

V, D, U, C = 10, 4, 5, 3


@functools.cache
def _model(mask_zero=True, seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None,), dtype="int32", name="words")
    h = keras.layers.Embedding(V, D, mask_zero=mask_zero, name="emb")(inp)
    h = keras.layers.LSTM(U, name="lstm")(h)
    m = keras.Model(inp, keras.layers.Dense(C, name="head")(h))
    rng = np.random.default_rng(seed)
    for v in m.trainable_variables:
        v.assign(rng.normal(scale=0.6, size=v.shape).astype("float32"))
    return m


def _tokens():
    tok = np.random.default_rng(1).integers(1, V, size=(3, 6)).astype("int32")
    tok[0, 4:] = 0  # right padding
    tok[1, :2] = 0  # left padding
    return tok


def _np(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _tail(m, e, mask):
    """The model after its embedding, run by its own layers on embedding vectors ``e``."""
    h = m.get_layer("lstm")(e, mask=mask, training=False)
    return _np(m.get_layer("head")(h))


def test_padded_token_batch_is_complete_and_each_sample_equals_itself_alone():
    m, tok = _model(), _tokens()
    a = rnnscope.attributions(m, tok, target=[2, 0, 1], n_steps=12, internal_batch_size=32)
    assert a.values.shape == (3, 6, 1) and a.settings["embedding"] == "emb"
    emb = _np(m.get_layer("emb").embeddings)[tok]
    mask = tok != 0
    picked = np.arange(3), [2, 0, 1]
    fdiff = _tail(m, emb, mask)[picked] - _tail(m, np.zeros_like(emb), mask)[picked]
    total = a.values.sum(axis=(1, 2))
    np.testing.assert_allclose(total - fdiff, a.delta, atol=2e-6)
    assert np.abs(a.delta).max() <= 1e-3 * np.abs(fdiff).max()
    assert np.abs(a.values[~mask]).max() == 0  # masked steps change nothing
    for i, target in enumerate([2, 0, 1]):
        alone = tok[i : i + 1, mask[i]]
        one = rnnscope.attributions(m, alone, target=target, n_steps=12, internal_batch_size=32)
        np.testing.assert_allclose(one.values[0, :, 0], a.values[i, mask[i], 0], atol=1e-6)
    assert all("call" not in vars(layer) for layer in m.layers)


def test_token_baseline_ids_and_the_torch_twin():
    torch = pytest.importorskip("torch")
    m, tok = _model(mask_zero=False), _tokens()
    a = rnnscope.attributions(m, tok, target=1, baseline=0, n_steps=16, internal_batch_size=32)
    f = lambda t: _np(m(t, training=False))[:, 1]
    fdiff = f(tok) - f(np.zeros_like(tok))  # baseline=0: token 0's embedding
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)) - fdiff, a.delta, atol=2e-6)
    emb = _np(m.get_layer("emb").embeddings)
    kern, rec, bias = (_np(v) for v in m.get_layer("lstm").weights)
    dk, db = (_np(v) for v in m.get_layer("head").weights)

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, D)
            self.rnn = torch.nn.LSTM(D, U, batch_first=True)
            self.head = torch.nn.Linear(U, C)

        def forward(self, t):
            return self.head(self.rnn(self.emb(t))[0][:, -1])

    twin = Twin().eval()
    with torch.no_grad():  # gates i, f, c(g), o in both; Keras kernels are (in, 4U)
        twin.emb.weight.copy_(torch.from_numpy(emb))
        twin.rnn.weight_ih_l0.copy_(torch.from_numpy(kern.T.copy()))
        twin.rnn.weight_hh_l0.copy_(torch.from_numpy(rec.T.copy()))
        twin.rnn.bias_ih_l0.copy_(torch.from_numpy(bias))
        twin.rnn.bias_hh_l0.zero_()
        twin.head.weight.copy_(torch.from_numpy(dk.T.copy()))
        twin.head.bias.copy_(torch.from_numpy(db))
    b = rnnscope.attributions(twin, tok.astype(np.int64), target=1, baseline=0, n_steps=16)
    assert np.abs(a.values - b.values).max() <= 1e-5 * np.abs(b.values).max()


def test_a_masking_layer_beside_token_inputs_is_refused():
    keras.utils.set_random_seed(0)
    tok, feats = keras.Input((4,), dtype="int32"), keras.Input((4, 2))
    h = keras.layers.Concatenate()(
        [keras.layers.Embedding(V, D)(tok), keras.layers.Masking(0.0, name="pad")(feats)]
    )
    m = keras.Model([tok, feats], keras.layers.Dense(C)(keras.layers.LSTM(U)(h)))
    x = [np.ones((2, 4), dtype="int32"), np.ones((2, 4, 2), dtype="float32")]
    with pytest.raises(rnnscope.UnsupportedError, match=r"layer 'pad'.*single float") as info:
        rnnscope.attributions(m, x)
    assert info.value.layer == "pad"
