"""``blocks()`` yields ``(direction, part, gate, array)`` in one order for every record kind:
weights and gradients of a real torch and a real Keras bidirectional LSTM, and whole weights of
other layers. The expected order and the expected arrays are written out here from each
framework's documented layout (torch ``weight_ih_l0`` rows in gate order i, f, g, o, ``_reverse``
for the backward direction; Keras kernels ``(inputs, 4 * units)`` with columns i, f, c, o)."""

from __future__ import annotations

import numpy as np

import rnnscope
from tests.conftest import requires_keras, requires_torch

GATES = ("input", "forget", "cell", "output")
U, F, T, B = 3, 2, 5, 4


def _order(parts: tuple[str, ...]) -> list[tuple[str, str, str]]:
    return [(d, p, g) for d in ("forward", "backward") for p in parts for g in GATES]


def _labels(rec) -> list[tuple[str, str, str]]:
    return [(d, p, g) for d, p, g, _ in rec.blocks()]


@requires_torch
def test_torch_weights_and_gradients_share_one_order_and_the_raw_blocks():
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(F, U, batch_first=True, bidirectional=True)
            self.head = torch.nn.Linear(2 * U, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    net = Net().double()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((B, T, F)), rng.standard_normal((B, 1))
    w = rnnscope.rnn_weights(net, "lstm")
    g = rnnscope.gradients(net, x, y, layers="lstm", wrt="weights", loss=torch.nn.MSELoss())[
        "lstm.l0"
    ]
    want = _order(("kernel", "recurrent_kernel", "bias", "recurrent_bias"))
    assert _labels(w) == want and _labels(g) == want

    torch.nn.MSELoss()(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    raw = {"kernel": "weight_ih_l0", "recurrent_kernel": "weight_hh_l0"}
    raw |= {"bias": "bias_ih_l0", "recurrent_bias": "bias_hh_l0"}
    for rec, grad in ((w, False), (g, True)):
        for d, p, gate, a in rec.blocks():
            param = getattr(net.lstm, raw[p] + ("_reverse" if d == "backward" else ""))
            t = (param.grad if grad else param).detach().numpy()
            k = GATES.index(gate)
            block = t[k * U : (k + 1) * U]
            np.testing.assert_allclose(a, block.T if block.ndim == 2 else block, rtol=1e-12)


@requires_keras
def test_keras_weights_and_gradients_share_one_order_and_the_raw_blocks():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.Bidirectional(keras.layers.LSTM(U), name="bilstm"),
            keras.layers.Dense(1, name="dense"),
        ]
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, F)).astype("float32")
    y = rng.standard_normal((B, 1)).astype("float32")
    w = rnnscope.rnn_weights(model, "bilstm")
    grads = rnnscope.gradients(model, x, y, layers=["bilstm", "dense"], wrt="weights", loss="mse")
    want = _order(("kernel", "recurrent_kernel", "bias"))
    assert _labels(w) == want and _labels(grads["bilstm"]) == want
    layer = model.get_layer("bilstm")
    for d, p, gate, a in w.blocks():
        cell = (layer.forward_layer if d == "forward" else layer.backward_layer).cell
        t = keras.ops.convert_to_numpy(getattr(cell, p))
        k = GATES.index(gate)
        np.testing.assert_array_equal(a, t[..., k * U : (k + 1) * U])
    # a Dense layer's record: each weight one block, no direction or gate, in the source's order
    dense = grads["dense"]
    assert [(d, p, gate) for d, p, gate, _ in dense.blocks()] == [
        ("", "kernel", ""),
        ("", "bias", ""),
    ]
    assert [a.shape for *_, a in dense.blocks()] == [(2 * U, 1), (1,)]
