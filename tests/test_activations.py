"""Every numpy activation equals the framework's own function of the same name."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope._activations import get_activation

X = np.linspace(-7, 7, 301, dtype=np.float32)


@pytest.mark.keras_backend
@pytest.mark.parametrize("name", [n for n in rnnscope.ACTIVATIONS if n != "hard_sigmoid_keras2"])
def test_matches_keras3(name):
    keras = pytest.importorskip("keras")
    want = keras.ops.convert_to_numpy(keras.activations.get(name)(keras.ops.convert_to_tensor(X)))
    np.testing.assert_allclose(get_activation(name)(X), want, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["hard_sigmoid", "sigmoid", "tanh", "relu", "linear", "elu"])
def test_matches_tf_keras(name):
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    ours = "hard_sigmoid_keras2" if name == "hard_sigmoid" else name
    want = np.asarray(tf_keras.activations.get(name)(tf.constant(X)))
    np.testing.assert_allclose(get_activation(ours)(X), want, atol=2e-6, rtol=1e-5)


def test_sigmoid_does_not_overflow():
    with np.errstate(all="raise"):
        out = get_activation("sigmoid")(np.array([-1e4, 0.0, 1e4], np.float32))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


def test_unknown_activation_names_layer_and_choices():
    with pytest.raises(rnnscope.UnsupportedError, match=r"layer 'enc': activation 'wobble'.*tanh"):
        get_activation("wobble", layer="enc")
