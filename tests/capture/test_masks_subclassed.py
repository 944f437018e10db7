"""A mask a subclassed Keras model passes inside its own ``call`` is invisible to the static
walk: ``trace`` warns when the model's ``call`` source passes ``mask=`` to a layer, and the mask
``rnnscope.masks`` captures makes the trace equal Keras's output."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rnnscope

keras = pytest.importorskip("keras")


class Padded(keras.Model):
    def __init__(self):
        super().__init__()
        self.lstm = keras.layers.LSTM(3, return_sequences=True, name="lstm")

    def call(self, x):
        real = keras.ops.any(keras.ops.not_equal(x, 0.0), axis=-1)
        return self.lstm(x, mask=real)


class Plain(keras.Model):
    def __init__(self):
        super().__init__()
        self.lstm = keras.layers.LSTM(3, return_sequences=True, name="lstm")

    def call(self, x, mask=None):
        return self.lstm(x, mask=None)


def test_a_mask_passed_inside_call_is_warned_about_and_honoured_when_given():
    keras.utils.set_random_seed(8)
    x = np.random.default_rng(9).normal(size=(2, 5, 4)).astype("float32")
    x[0, 3:] = 0.0
    model = Padded()
    out = keras.ops.convert_to_numpy(model(x))
    with pytest.warns(
        RuntimeWarning, match=r"'lstm' may receive a mask inside Padded .*Padded\.call"
    ):
        unmasked = rnnscope.trace(model, x, "lstm").output()
    assert np.abs(unmasked - out).max() > 1e-3  # what the warning is about
    m = rnnscope.masks(model, x, "lstm")["lstm"]
    np.testing.assert_array_equal(m, [[True] * 3 + [False] * 2, [True] * 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        np.testing.assert_allclose(
            rnnscope.trace(model, x, "lstm", mask=m).output(), out, atol=1e-5
        )
        rnnscope.trace(model, x, "lstm", mask=False)  # opted out: silent
        plain = Plain()
        plain(x)
        rnnscope.trace(plain, x, "lstm")  # mask=None in a call is no mask: silent
