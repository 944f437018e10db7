"""Full weight names as the Keras framework objects give them (and See RNN's ``get_weights``
keys them): Keras 3's variable path, tf-keras's variable name."""

from __future__ import annotations

import pytest

from rnnscope._frameworks import KERAS, TF_KERAS
from tests.conftest import has


@pytest.mark.skipif(not has("keras"), reason="keras is not installed")
def test_keras_names_are_paths():
    import keras

    from rnnscope.compat.see_rnn import get_weights

    model = keras.Sequential([keras.Input((4, 2)), keras.layers.LSTM(3, name="enc")])
    variables = model.layers[0].weights
    paths = [v.path for v in variables]
    ends = ["enc/lstm_cell/kernel", "enc/lstm_cell/recurrent_kernel", "enc/lstm_cell/bias"]
    assert all(p.endswith(e) for p, e in zip(paths, ends, strict=True)), paths
    assert [KERAS.weight_name(v) for v in variables] == paths
    assert list(get_weights(model, "enc", as_dict=True)) == paths


@pytest.mark.skipif(not has("tf_keras"), reason="tf_keras is not installed")
def test_tf_keras_names_are_variable_names():
    import tf_keras

    from rnnscope.compat.see_rnn import get_weights

    model = tf_keras.Sequential([tf_keras.Input((4, 2)), tf_keras.layers.LSTM(3, name="enc")])
    names = [v.name for v in model.layers[0].weights]
    assert names[0] == "enc/lstm_cell/kernel:0"
    assert [TF_KERAS.weight_name(v) for v in model.layers[0].weights] == names
    assert list(get_weights(model, "enc", as_dict=True)) == names
