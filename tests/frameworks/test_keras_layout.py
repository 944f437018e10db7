"""The Keras framework's layout conversion back from the canonical record: a Keras layer's own
stored arrays for Keras records, and torch's raw tensors sliced by torch's documented layout for
torch records."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope._frameworks import KERAS
from tests.conftest import has


@pytest.mark.skipif(not has("keras"), reason="keras is not installed")
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_keras_records_go_back_to_the_stored_arrays(kind):
    import keras

    layer = getattr(keras.layers, kind)(3, name="rnn")
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.Bidirectional(layer)])
    stored = [np.asarray(keras.ops.convert_to_numpy(v)) for v in model.layers[0].weights]
    back = KERAS.from_canonical(rnnscope.rnn_weights(model))
    assert len(back) == len(stored) == 6
    for got, want in zip(back, stored, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
def test_torch_gru_goes_to_the_keras_layout():
    import torch

    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 2)
    kernel, rec, bias = KERAS.from_canonical(rnnscope.rnn_weights(gru))
    w = {n: p.detach().numpy() for n, p in gru.named_parameters()}
    r, z, n = slice(0, 2), slice(2, 4), slice(4, 6)  # torch's GRU rows: reset, update, new
    for got, t in ((kernel, w["weight_ih_l0"]), (rec, w["weight_hh_l0"])):
        np.testing.assert_array_equal(got, np.hstack([t[z].T, t[r].T, t[n].T]))
    for row, t in ((0, w["bias_ih_l0"]), (1, w["bias_hh_l0"])):
        np.testing.assert_array_equal(bias[row], np.concatenate([t[z], t[r], t[n]]))
