"""What a Keras model's compiled attribution step (JAX: one per model, kept while it lives) may
hold and reuse: no call's labels, and a target function only while it is the same object.

Oracles: the model's own forward (``keras.ops``) by central differences in float64 numpy here;
``weakref`` for what stays alive.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend

keras = pytest.importorskip("keras")


def _model():
    keras.utils.set_random_seed(5)
    inp = keras.Input((4, 3))
    out = keras.layers.Dense(3)(keras.layers.SimpleRNN(3)(inp))
    m = keras.Model(inp, out)
    m.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _x():
    return np.random.default_rng(2).normal(size=(2, 4, 3)).astype(np.float32)


def test_the_labels_of_a_call_are_not_kept_by_the_cached_step():
    m, x = _model(), _x()
    y = np.array([2, 0], dtype=np.int64)
    alive = weakref.ref(y)
    rnnscope.attributions(m, x, target="loss", y=y, method="saliency")
    del y
    gc.collect()
    assert alive() is None


def _unit_gradient(m, x, unit, eps=1e-2):
    """Central differences of output ``unit``: one batched forward for every perturbation."""
    b, t, f = x.shape
    steps = np.eye(t * f, dtype=np.float32).reshape(t * f, 1, t, f) * eps
    up, down = (x[None] + steps).reshape(-1, t, f), (x[None] - steps).reshape(-1, t, f)
    out = keras.ops.convert_to_numpy(m(np.concatenate([up, down]), training=False))
    out = out[:, unit].astype(np.float64)
    half = len(up)
    return ((out[:half] - out[half:]) / (2 * eps)).reshape(t, f, b).transpose(2, 0, 1)


def test_a_new_target_function_gets_its_own_step_even_at_a_reused_address():
    m, x = _model(), _x()

    def signed(unit):  # a fresh function each time: CPython may reuse the last one's address
        return rnnscope.attributions(
            m, x, target=lambda out: out[:, unit], method="saliency", absolute=False
        ).values

    first, second = signed(0), signed(2)
    np.testing.assert_allclose(first, _unit_gradient(m, x, 0), atol=2e-3)
    np.testing.assert_allclose(second, _unit_gradient(m, x, 2), atol=2e-3)
