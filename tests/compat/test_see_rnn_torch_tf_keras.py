"""The See RNN compatibility functions on torch and on tf-keras (legacy Keras 2)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

pytest.importorskip("matplotlib")
from rnnscope.compat import see_rnn


def _images(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def test_torch_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
            self.head = torch.nn.Linear(8, 1)

        def forward(self, x):
            return self.head(self.enc(x)[0][:, -1])

    net = Net()
    x, y = torch.randn(5, 6, 3), torch.randn(5, 1)
    loss = torch.nn.MSELoss()
    figs = see_rnn.rnn_heatmap(net, "enc", mode="grads", input_data=x, labels=y, loss=loss)
    assert len(figs) == 2
    expected = rnnscope.gradients(net, x, y, layers="enc.l0", wrt="weights", loss=loss)
    np.testing.assert_allclose(
        _images(figs[1])[1].images[0].get_array(),
        expected["enc.l0"].array("recurrent_kernel", direction="backward"),
        rtol=1e-6,
    )
    _fwd, bwd = see_rnn.get_rnn_weights(net, "enc")
    w = rnnscope.rnn_weights(net, "enc")
    np.testing.assert_array_equal(bwd[1], w.array("recurrent_kernel", direction="backward"))
    out_grads = see_rnn.get_gradients(net, "enc", x, y, loss=loss)
    assert out_grads.shape == (5, 6, 8)
    assert len(see_rnn.get_weights(net, "head")) == 2


def test_tf_keras_model():
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((5, 3))
    h = tf_keras.layers.GRU(4, return_sequences=True, name="gru")(inp)
    out = tf_keras.layers.Dense(1, name="head")(h)
    model = tf_keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("f4")
    y = np.zeros((4, 5, 1), "f4")
    for ours, theirs in zip(
        see_rnn.get_weights(model, "gru"), model.get_layer("gru").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)  # the (2, 3u) reset_after bias included
    fig = see_rnn.rnn_histogram(model, "gru", show_bias=False)
    assert len(fig.axes) == 6  # 2 parts x 3 gates
    grads = see_rnn.get_gradients(model, "gru", x, y, mode="weights")
    assert [g.shape for g in grads] == [w.shape for w in model.get_layer("gru").get_weights()]
    assert see_rnn.get_rnn_gradients(model, x, y, layer_name="gru").shape == (4, 5, 4)
