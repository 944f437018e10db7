"""A heatmap of a layer wider than a figure shows draws a reduced image (memory bounded by the
layer, not by matplotlib's copies), keeping the layer's coordinates and its outliers."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

pytest.importorskip("matplotlib")
safetensors_np = pytest.importorskip("safetensors.numpy")


def test_wide_layer_is_reduced_and_keeps_outliers(tmp_path):
    from rnnscope.plot import rnn_heatmap

    h, n_in = 700, 5  # torch GRU: 3h = 2100 columns once transposed, over the 2048 limit
    rng = np.random.default_rng(0)
    w_hh = rng.uniform(-1, 1, (3 * h, h)).astype("f4")
    w_hh[1235, 321] = -50.0  # an odd column in any gate order: subsampling by 2 would drop it
    p = tmp_path / "gru.safetensors"
    safetensors_np.save_file(
        {
            "gru.weight_ih_l0": rng.uniform(-1, 1, (3 * h, n_in)).astype("f4"),
            "gru.weight_hh_l0": w_hh,
            "gru.bias_ih_l0": np.zeros(3 * h, "f4"),
            "gru.bias_hh_l0": np.zeros(3 * h, "f4"),
        },
        str(p),
    )
    fig = rnn_heatmap(p, 0)
    recurrent = fig.axes[1].images[0]
    shown = np.asarray(recurrent.get_array())
    assert shown.shape[1] <= 2048 and shown.shape[1] < 3 * h
    assert recurrent.get_extent() == [-0.5, 3 * h - 0.5, h - 0.5, -0.5]
    assert shown.min() == -50.0  # the outlier survives the reduction
    small = rnn_heatmap(rnnscope.rnn_weights(p, 0), show_bias=False)
    assert small.axes[0].images[0].get_array().shape == (n_in, 3 * h // 2)
