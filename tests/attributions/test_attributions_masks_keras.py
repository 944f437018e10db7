"""Keras 3 padded float inputs (every backend): a ``Masking`` layer's mask held fixed.

Oracles from the framework: completeness of integrated gradients per sample against the model's
own LSTM and Dense layers called by this test on the input and on the baseline with the mask
the test writes down; occlusion against those layers re-run on each sample alone, unpadded, with
a window replaced by zeros; and every method on the padded batch against the same model on each
sample alone (right and left padding), with the padded steps exactly 0.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend

keras = pytest.importorskip("keras")

T, F, U, C = 6, 3, 4, 3
TARGETS = [2, 0, 1]


@functools.cache
def _model(sequential=False):
    keras.utils.set_random_seed(0)
    layers = [
        keras.layers.Masking(0.0, name="pad"),
        keras.layers.LSTM(U, name="lstm"),
        keras.layers.Dense(C, name="head"),
    ]
    if sequential:
        m = keras.Sequential([keras.Input((None, F)), *layers])
    else:
        inp = keras.Input((None, F))
        m = keras.Model(inp, layers[2](layers[1](layers[0](inp))))
    rng = np.random.default_rng(0)
    for v in m.trainable_variables:
        v.assign(rng.normal(scale=0.6, size=v.shape).astype("float32"))
    return m


def _mask():
    m = np.ones((3, T), dtype=bool)
    m[0, 4:] = False  # right padding
    m[1, :2] = False  # left padding
    return m


def _x(mask):
    x = np.random.default_rng(1).normal(size=(3, T, F)).astype("float32")
    return np.where(mask[:, :, None], x, 0.0).astype("float32")


def _tail(m, x, mask):
    """The model after Masking, run by its own layers with the mask given by this test."""
    h = m.get_layer("lstm")(x, mask=mask, training=False)
    return np.asarray(keras.ops.convert_to_numpy(m.get_layer("head")(h)))


@pytest.mark.parametrize("sequential", [False, True])
def test_integrated_gradients_complete_per_sample_and_each_equals_itself_alone(sequential):
    m, mask = _model(sequential), _mask()
    x = _x(mask)
    a = rnnscope.attributions(m, x, target=TARGETS, n_steps=12)
    np.testing.assert_array_equal(a.mask, mask)  # Masking's own rule, on the real input
    assert np.all(a.values[~mask] == 0)
    picked = np.arange(3), TARGETS
    fdiff = _tail(m, x, mask)[picked] - _tail(m, np.zeros_like(x), mask)[picked]
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)) - fdiff, a.delta, atol=2e-6)
    assert np.abs(a.delta).max() <= 1e-3 * np.abs(fdiff).max()
    for i, target in enumerate(TARGETS[: 0 if sequential else 2]):  # right, left padding
        alone = x[i : i + 1, mask[i]]
        one = rnnscope.attributions(m, alone, target=target, n_steps=12)
        np.testing.assert_allclose(one.values[0], a.values[i, mask[i]], atol=1e-6)
        f1 = _tail(m, alone, None)[0, target] - _tail(m, np.zeros_like(alone), None)[0, target]
        np.testing.assert_allclose(one.values.sum() - f1, one.delta[0], atol=2e-6)
    assert all("call" not in vars(layer) for layer in m.layers)


def test_saliency_and_smoothgrad_on_the_padded_batch_equal_each_sample_alone():
    m, mask = _model(), _mask()
    x = _x(mask)
    noise = np.random.default_rng(2).normal(scale=0.3, size=(2, 3, T, F))
    # (occlusion: against the model's own layers below; integrated gradients: above)
    for i, method, kw in [(1, "saliency", {}), (0, "smoothgrad", {"noise": noise})]:
        a = rnnscope.attributions(m, x, target=TARGETS, method=method, **kw)
        assert np.all(a.values[~mask] == 0), method
        if method == "smoothgrad":
            kw = {"noise": noise[:, i : i + 1][:, :, mask[i]]}
        one = rnnscope.attributions(
            m, x[i : i + 1, mask[i]], target=TARGETS[i], method=method, **kw
        )
        np.testing.assert_allclose(one.values[0], a.values[i, mask[i]], atol=1e-6, err_msg=method)


def test_occlusion_against_re_running_each_sample_alone():
    m, mask = _model(), _mask()
    x = _x(mask)
    a = rnnscope.attributions(m, x, target=TARGETS, method="occlusion", window=1)
    for i, target in enumerate(TARGETS[:2]):
        alone = x[i : i + 1, mask[i]]
        full = _tail(m, alone, None)[0, target]
        for k, t in enumerate(np.flatnonzero(mask[i])):
            hole = alone.copy()
            hole[0, k] = 0.0
            want = full - _tail(m, hole, None)[0, target]
            np.testing.assert_allclose(a.values[i, t], want, atol=2e-6)


def test_a_given_mask_replaces_the_one_masking_computes():
    m = _model()
    x = np.random.default_rng(3).normal(size=(2, T, F)).astype("float32")  # no zero steps
    given = np.ones((2, T), dtype=bool)
    given[0, 3:] = False
    given[1, [0, 2]] = False  # holes
    a = rnnscope.attributions(m, x, target=1, mask=given, n_steps=12)
    np.testing.assert_array_equal(a.mask, given)
    assert np.all(a.values[~given] == 0)
    fdiff = _tail(m, x, given)[:, 1] - _tail(m, np.zeros_like(x), given)[:, 1]
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)) - fdiff, a.delta, atol=2e-6)
    b = rnnscope.attributions(m, x, target=1, lengths=[3, 6], n_steps=12)
    np.testing.assert_array_equal(b.mask[0], given[0])
    np.testing.assert_allclose(b.values[0], a.values[0], atol=1e-7)


def test_masks_that_cannot_be_held_are_refused():
    keras.utils.set_random_seed(0)
    inp = keras.Input((T, F))
    plain = keras.Model(inp, keras.layers.Dense(C)(keras.layers.LSTM(U)(inp)))
    x = _x(_mask())
    with pytest.raises(rnnscope.UnsupportedError, match="no Masking layer") as err:
        rnnscope.attributions(plain, x, lengths=[4, 6, 6])
    assert err.value.argument == "mask"

    class Own(keras.Model):
        def __init__(self):
            super().__init__()
            self.lstm = keras.layers.LSTM(U)
            self.pad = keras.layers.Masking(0.0)

        def call(self, x):
            return self.lstm(self.pad(x), mask=keras.ops.any(x != 0, axis=-1))

    own = Own()
    own(x)
    with pytest.raises(rnnscope.UnsupportedError, match=r"Own\.call passes mask="):
        rnnscope.attributions(own, x, target=0)


def test_a_subclassed_model_calling_masking_is_held_too():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.pad, self.lstm = keras.layers.Masking(0.0), keras.layers.LSTM(U)
            self.head = keras.layers.Dense(C)

        def call(self, x, training=None):  # (JAX: stateless_call passes training)
            return self.head(self.lstm(self.pad(x)))

    keras.utils.set_random_seed(0)
    mask = _mask()
    x = _x(mask)
    m = Sub()
    m(x)
    a = rnnscope.attributions(m, x, target=1, n_steps=12)
    np.testing.assert_array_equal(a.mask, mask)
    f = lambda v: np.asarray(keras.ops.convert_to_numpy(m.head(m.lstm(v, mask=mask))))[:, 1]
    fdiff = f(x) - f(np.zeros_like(x))
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)) - fdiff, a.delta, atol=2e-6)
    assert np.abs(a.delta).max() <= 1e-3 * np.abs(fdiff).max()
