"""Hostile inputs to ``attributions`` on tiny Keras 3 models (every backend).

On JAX an out-of-vocabulary baseline token was silently clamped into the table (a wrong
number), on TensorFlow it was a deep ``GatherV2`` error; NaN inputs gave NaN values. Each is now
one ``InputError`` naming its argument; valid neighbours are checked against the model's own
layers.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import rnnscope
from rnnscope._errors import InputError

pytestmark = pytest.mark.keras_backend

keras = pytest.importorskip("keras")


@functools.cache
def _text():
    keras.utils.set_random_seed(0)
    inp = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(6, 3, name="emb")(inp)
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.GRU(2)(h)))


@functools.cache
def _floats():
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 1))
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(2)(inp)))


TOKENS = np.array([[1, 2, 3], [5, 4, 0]], dtype="int32")


@pytest.mark.parametrize("baseline", [6, 99, -1])
def test_token_baseline_outside_the_vocabulary_is_refused(baseline: int) -> None:
    with pytest.raises(InputError, match=r"baseline: token ids must be in \[0, 6\)") as err:
        rnnscope.attributions(_text(), TOKENS, target=0, baseline=baseline)
    assert err.value.argument == "baseline"


def test_token_baseline_is_complete_against_its_own_embedding() -> None:
    m = _text()
    a = rnnscope.attributions(m, TOKENS, target=0, baseline=5)

    def f(tokens: np.ndarray) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(m(tokens)))[:, 0].astype(np.float64)

    want = f(TOKENS) - f(np.full_like(TOKENS, 5))  # the model's own output at the baseline
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)), want, atol=1e-4)


def test_nan_input_is_refused_and_time_one_feature_one_is_complete() -> None:
    m = _floats()
    x = np.array([[[0.5]], [[-1.0]]], dtype="float64")  # batch 2, time 1, one feature, float64
    a = rnnscope.attributions(m, x, target=1)
    out = np.asarray(keras.ops.convert_to_numpy(m(x.astype("float32"))))[:, 1]
    base = np.asarray(keras.ops.convert_to_numpy(m(np.zeros((2, 1, 1), "float32"))))[:, 1]
    np.testing.assert_allclose(a.values[:, 0, 0], out - base, atol=1e-5)
    x[1, 0, 0] = np.nan
    with pytest.raises(InputError, match=r"got nan at sample 1, timestep 0, feature 0") as err:
        rnnscope.attributions(m, x, target=1)
    assert err.value.argument == "x"
