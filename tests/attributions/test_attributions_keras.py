"""Keras 3 attributions on whichever backend KERAS_BACKEND selects (the suite runs all three).

Oracles: the model's own outputs (completeness of integrated gradients, occlusion by direct
re-evaluation, saliency by central finite differences of the model's forward), and a torch model
given the same weights, sliced by the two frameworks' documented layouts in this test, whose
attributions must be the same.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend

keras = pytest.importorskip("keras")

B, T, F, U, C = 3, 5, 3, 4, 3


@functools.cache
def _model(seed=0, sequences=False):
    """One model per (seed, kind) for the whole module: JAX compiles once per model."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((T, F), name="signal")
    h = keras.layers.LSTM(U, name="lstm", return_sequences=sequences)(inp)
    out = keras.layers.Dense(C, name="head")(h)
    m = keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    for v in m.trainable_variables:
        v.assign(rng.normal(scale=0.6, size=v.shape).astype("float32"))
    return m


def _x(seed=1, shape=(B, T, F)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _f(m, x, unit):
    return np.asarray(keras.ops.convert_to_numpy(m(x, training=False)))[..., unit]


def test_integrated_gradients_complete_within_the_delta_which_shrinks_with_n_steps():
    m, x = _model(), _x()
    base = np.full_like(x, 0.25)
    fx, fb = _f(m, x, 1), _f(m, base, 1)
    deltas = []
    for n in (2, 8, 32):
        a = rnnscope.attributions(
            m, x, target=1, baseline=base, n_steps=n, rule="riemann_right", internal_batch_size=16
        )
        total = a.values.reshape(B, -1).sum(axis=1)
        np.testing.assert_allclose(total - (fx - fb), a.delta, atol=2e-5)
        deltas.append(np.abs(a.delta).max())
    assert deltas[0] > deltas[1] > deltas[2]
    a = rnnscope.attributions(m, x, target=1, baseline=base, n_steps=16, internal_batch_size=16)
    assert np.abs(a.delta).max() <= 1e-4 * np.abs(fx - fb).max()
    np.testing.assert_allclose(a.values.reshape(B, -1).sum(axis=1), fx - fb, rtol=1e-3)


def test_saliency_equals_central_finite_differences_of_the_forward():
    m, x = _model(), _x()
    a = rnnscope.attributions(m, x, target=[0, 2, 1], method="saliency", absolute=False)
    eps = 3e-3
    rows, signs = [], []
    for i in range(T):
        for j in range(F):
            for s in (1, -1):
                xp = x.copy()
                xp[:, i, j] += s * eps
                rows.append(xp)
                signs.append(s)
    out = np.asarray(keras.ops.convert_to_numpy(m(np.concatenate(rows), training=False)))
    picked = out.reshape(len(rows), B, C)[:, np.arange(B), [0, 2, 1]]  # (rows, B)
    fd = (picked[0::2] - picked[1::2]) / (2 * eps)  # (T*F, B)
    want = fd.T.reshape(B, T, F)
    assert np.abs(a.values - want).max() <= 1e-2 * np.abs(want).max()
    g = rnnscope.attributions(m, x, target=[0, 2, 1], method="gradient_x_input")
    np.testing.assert_allclose(g.values, a.values * x, rtol=1e-6, atol=1e-8)


def test_occlusion_equals_direct_re_evaluation():
    m, x = _model(), _x()
    a = rnnscope.attributions(m, x, target=0, method="occlusion", window=2, stride=2, baseline=-0.5)
    full = _f(m, x, 0)
    total, count = np.zeros((B, T)), np.zeros(T)
    for s in (0, 2, 4):  # windows [0, 2), [2, 4), [4, 5): the last cut at the end
        xo = x.copy()
        xo[:, s : s + 2] = -0.5
        total[:, s : s + 2] += (full - _f(m, xo, 0))[:, None]
        count[s : s + 2] += 1
    want = np.repeat((total / count)[:, :, None], F, axis=2)
    np.testing.assert_allclose(a.values, want, rtol=1e-5, atol=1e-6)


def test_default_target_and_sequence_output_targets():
    m, x = _model(), _x()
    a = rnnscope.attributions(m, x, method="saliency")
    assert a.target == {"kind": "class", "index": _f(m, x, slice(None)).argmax(axis=1).tolist()}
    seq = _model(sequences=True)
    out = np.asarray(keras.ops.convert_to_numpy(seq(x, training=False)))
    a = rnnscope.attributions(seq, x, n_steps=8)  # default: the argmax at the last timestep
    assert a.target == {
        "kind": "timestep",
        "timestep": [T - 1] * B,
        "unit": out[:, -1].argmax(axis=1).tolist(),
    }
    a = rnnscope.attributions(seq, x, target=(1, 2), method="saliency", absolute=False)
    assert np.abs(a.values[:, 2:]).max() == 0  # timestep 1 cannot depend on later inputs
    assert np.abs(a.values[:, :2]).max() > 0


def test_loss_target_is_the_per_sample_compiled_loss():
    m, x = _model(seed=3), _x()
    m.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    y = np.array([2, 0, 1])
    a = rnnscope.attributions(m, x, target="loss", y=y, method="occlusion")
    per = keras.losses.sparse_categorical_crossentropy

    def loss_of(v):
        logits = m(v, training=False)
        return np.asarray(keras.ops.convert_to_numpy(per(y, logits, from_logits=True)))

    xo = x.copy()
    xo[:, 3] = 0.0
    np.testing.assert_allclose(a.values[:, 3, 0], loss_of(x) - loss_of(xo), rtol=1e-5, atol=1e-6)


def test_no_state_left_behind():
    m, x = _model(), _x()
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in m.variables]
    rnnscope.attributions(m, x, target=0, method="smoothgrad", n_samples=2)
    after = [np.array(keras.ops.convert_to_numpy(v)) for v in m.variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert all("call" not in layer.__dict__ for layer in m.layers)


def test_masking_in_a_multi_input_model_is_refused_with_the_layer_named():
    keras.utils.set_random_seed(0)
    a, b = keras.Input((T, F), name="a"), keras.Input((T, F), name="b")
    h = keras.layers.Masking(0.0, name="pad")(a)
    h = keras.layers.Concatenate()([keras.layers.LSTM(U)(h), keras.layers.LSTM(U)(b)])
    m = keras.Model([a, b], keras.layers.Dense(C)(h))
    with pytest.raises(rnnscope.UnsupportedError, match=r"layer 'pad'.*single float") as info:
        rnnscope.attributions(m, [_x(), _x()])
    assert info.value.layer == "pad"


def test_keras_and_torch_with_the_same_weights_give_the_same_attributions():
    torch = pytest.importorskip("torch")
    m, x = _model(), _x()
    kern, rec, bias = (
        np.asarray(keras.ops.convert_to_numpy(v)) for v in m.get_layer("lstm").weights
    )
    dk, db = (np.asarray(keras.ops.convert_to_numpy(v)) for v in m.get_layer("head").weights)

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(F, U, batch_first=True)
            self.head = torch.nn.Linear(U, C)

        def forward(self, v):
            return self.head(self.rnn(v)[0][:, -1])

    twin = Twin().eval()
    with torch.no_grad():  # both order gates i, f, c(g), o; Keras kernels are (in, 4U)
        twin.rnn.weight_ih_l0.copy_(torch.from_numpy(kern.T.copy()))
        twin.rnn.weight_hh_l0.copy_(torch.from_numpy(rec.T.copy()))
        twin.rnn.bias_ih_l0.copy_(torch.from_numpy(bias))
        twin.rnn.bias_hh_l0.zero_()
        twin.head.weight.copy_(torch.from_numpy(dk.T.copy()))
        twin.head.bias.copy_(torch.from_numpy(db))
    for method in ("integrated_gradients", "saliency", "occlusion"):
        kw = {"target": [2, 1, 0], "method": method, "n_steps": 10, "internal_batch_size": 16}
        a, b = rnnscope.attributions(m, x, **kw), rnnscope.attributions(twin, x, **kw)
        assert np.abs(a.values - b.values).max() <= 1e-5 * np.abs(b.values).max(), method


def test_multi_input_keras_model_gives_one_record_per_named_input():
    keras.utils.set_random_seed(0)
    a_in, b_in = keras.Input((T, F), name="wave"), keras.Input((4, 2), name="aux")
    h = keras.layers.Concatenate()([keras.layers.LSTM(3)(a_in), keras.layers.GRU(2)(b_in)])
    m = keras.Model([a_in, b_in], keras.layers.Dense(C)(h))
    xa, xb = _x(), _x(seed=2, shape=(B, 4, 2))
    got = rnnscope.attributions(m, [xa, xb], target=1, n_steps=16, internal_batch_size=16)
    assert [g.input for g in got] == ["wave", "aux"]
    out = lambda va, vb: np.asarray(keras.ops.convert_to_numpy(m([va, vb], training=False)))[:, 1]
    total = got[0].values.reshape(B, -1).sum(1) + got[1].values.reshape(B, -1).sum(1)
    fdiff = out(xa, xb) - out(np.zeros_like(xa), np.zeros_like(xb))
    np.testing.assert_allclose(total - fdiff, got[0].delta, atol=2e-5)
    assert np.abs(got[0].delta).max() <= 1e-3 * np.abs(fdiff).max()
