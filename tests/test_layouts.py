"""Layout conversions on their own, on synthetic arrays whose values name their origin."""

from __future__ import annotations

import numpy as np

from rnnscope._layouts import canonical_from_cudnn, canonical_from_keras, canonical_from_torch


def test_torch_gru_blocks_are_reordered_and_transposed():
    u, n_in = 2, 3
    # rows: reset block = 1xx, update block = 2xx, new block = 3xx
    w_ih = np.concatenate([100 * (k + 1) + np.arange(u * n_in).reshape(u, n_in) for k in range(3)])
    out = canonical_from_torch("GRU", w_ih, w_ih.copy(), np.arange(6.0), np.arange(6.0) + 10)
    k = out["kernel"]
    assert k.shape == (n_in, 3 * u)
    assert np.all(k[:, :u] // 100 == 2) and np.all(k[:, u : 2 * u] // 100 == 1)
    assert np.all(k[:, 2 * u :] // 100 == 3)
    np.testing.assert_array_equal(out["bias"], [2, 3, 0, 1, 4, 5])
    np.testing.assert_array_equal(out["recurrent_bias"], [12, 13, 10, 11, 14, 15])


def test_torch_lstm_is_a_transposed_view_and_projection():
    w = np.arange(24.0).reshape(8, 3)
    w.setflags(write=False)
    out = canonical_from_torch("LSTM", w, np.zeros((8, 2)), weight_hr=np.ones((1, 2)))
    assert np.shares_memory(out["kernel"], w)  # no copy for the LSTM's unchanged gate order
    assert out["projection"].shape == (2, 1)


def test_keras_gru_two_row_bias_and_cudnn_block_layout():
    out = canonical_from_keras(
        "GRU", np.zeros((3, 6)), np.zeros((2, 6)), np.arange(12.0).reshape(2, 6)
    )
    np.testing.assert_array_equal(out["recurrent_bias"], np.arange(6.0, 12.0))
    k = np.arange(6.0).reshape(2, 3)  # one gate block (in=2, units=3) as tf-keras documents
    cud = canonical_from_cudnn("LSTM", np.tile(k, 4), np.zeros((3, 12)), np.zeros(24))
    np.testing.assert_array_equal(cud["kernel"][:, :3], [[0, 2, 4], [1, 3, 5]])
