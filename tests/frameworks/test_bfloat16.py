"""bfloat16 torch tensors, which numpy lacks, are widened to float32 (exactly) on every path that
turns a torch tensor into numpy: weights, activations, gradients, trace input, See RNN's
weights, and the framework object itself. The expected values are torch's own, widened by torch."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope._frameworks import TORCH

torch = pytest.importorskip("torch")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4)).to(torch.bfloat16)


def _exact(a: np.ndarray, t) -> None:
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, t.detach().float().numpy())


def test_the_framework_object_widens():
    t = torch.tensor([1.0, 1 / 3, -2.5e-3], dtype=torch.bfloat16)
    _exact(TORCH.to_numpy(t), t)


def test_weights_are_widened():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4).to(torch.bfloat16)
    w = rnnscope.rnn_weights(lstm)
    # torch's LSTM layout: weight_ih stacks the i, f, g, o blocks of 4 rows each
    _exact(w.array("kernel", "forget"), lstm.weight_ih_l0[4:8].T)
    _exact(w.array("recurrent_bias", "output"), lstm.bias_hh_l0[12:16])


def test_activations_are_widened():
    model = _model()
    x = torch.randn(2, 3).to(torch.bfloat16)
    acts = rnnscope.activations(model, x)
    _exact(acts["0"], model(x))


def test_gradients_are_widened():
    model = _model()
    x, y = torch.randn(2, 3).to(torch.bfloat16), torch.randn(2, 4).to(torch.bfloat16)
    loss = torch.nn.MSELoss()
    out = rnnscope.gradients(model, x, y, wrt="weights", loss=loss)
    expected = torch.autograd.grad(loss(model(x), y), [model[0].weight])[0]
    _exact(out["0"].weights["weight"], expected)
    outputs = rnnscope.gradients(model, x, y, loss=loss)
    pred = model(x)
    _exact(outputs["0"], torch.autograd.grad(loss(pred, y), [pred])[0])


def test_trace_input_is_widened():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    w = rnnscope.rnn_weights(lstm)
    x = torch.randn(2, 5, 3).to(torch.bfloat16)
    from_tensor = rnnscope.trace(w, x).get("h")
    from_numpy = rnnscope.trace(w, x.float().numpy()).get("h")
    np.testing.assert_array_equal(from_tensor, from_numpy)


def test_see_rnn_weights_are_widened():
    from rnnscope.compat.see_rnn import get_weights

    model = _model()
    _exact(get_weights(model, "0/weight"), model[0].weight)
