"""Gradients with respect to weights, mapped to gates: torch's own ``.grad`` of every
``weight_ih``/``weight_hh``/``bias_*``/``weight_hr`` (bidirectional and stacked layers included),
sliced by hand by torch's row blocks (LSTM ``i, f, g, o``; GRU ``r, z, n``), against
``rnnscope.gradients(..., wrt="weights")``. The weighted loss is torch's own
``MSELoss(reduction="none")`` with sample weights that do not sum to the batch size."""

from __future__ import annotations

import re

import numpy as np
import pytest

import rnnscope
from tests.oracles import raw

torch = pytest.importorskip("torch")

B, T, F = 3, 4, 2
WEIGHTS = np.array([0.5, 0.0, 2.25])  # sums to 2.75, not to the batch size 3


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = torch.nn.LSTM(
            F, 3, num_layers=2, batch_first=True, bidirectional=True, proj_size=2
        )
        self.dec = torch.nn.GRU(4, 3, batch_first=True, bidirectional=True)
        self.rnn = torch.nn.RNN(6, 2, batch_first=True)
        self.head = torch.nn.Linear(2, 1)

    def forward(self, x):
        out = self.rnn(self.dec(self.enc(x)[0])[0])[0]
        return self.head(out[:, -1])


def _net():
    torch.manual_seed(0)
    net = Net().double()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.from_numpy(rng.normal(scale=0.5, size=tuple(p.shape))))
    return net.eval()


def _expected(net, x, y, weights=None):
    """``.grad`` of torch's own weighted loss: sum_i w_i * mean_j (y - y_hat)^2 / batch."""
    per = torch.nn.MSELoss(reduction="none")(net(torch.from_numpy(x)), torch.from_numpy(y))
    per = per.reshape(len(y), -1).mean(dim=1)
    loss = per.mean() if weights is None else (per * torch.from_numpy(weights)).sum() / len(y)
    net.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    return grads


def _check_against_raw(net, got, grads) -> int:
    """Compare every gate block of ``got`` with the hand-sliced raw gradients; count blocks."""
    checked = 0
    modules = {"enc": "LSTM", "dec": "GRU", "rnn": "RNN"}
    for module, kind in modules.items():
        mod = getattr(net, module)
        for k in range(mod.num_layers):
            rec = got[f"{module}.l{k}"]
            for reverse, d in ((False, "forward"), (True, "backward")):
                suffix = f"_l{k}" + ("_reverse" if reverse else "")
                tensors = {
                    m[1]: g
                    for n, g in grads.items()
                    if (m := re.fullmatch(rf"{module}\.(\w+?){suffix}", n))
                }
                if not tensors:
                    continue
                for (part, gate), block in raw.torch_raw_blocks(kind, tensors).items():
                    ours = rec.array(part, gate or None, d)
                    np.testing.assert_allclose(
                        ours,
                        block,
                        rtol=1e-10,
                        atol=1e-13,
                        err_msg=f"{module}.l{k} {d} {part} {gate}",
                    )
                    checked += 1
    np.testing.assert_allclose(got["head"].array("weight"), grads["head.weight"], rtol=1e-10)
    np.testing.assert_allclose(got["head"].array("bias"), grads["head.bias"], rtol=1e-10)
    return checked


def test_weighted_gradients_equal_torch_grad_sliced_by_hand(rng):
    net = _net()
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))
    assert WEIGHTS.sum() != B
    got = rnnscope.gradients(
        net, x, y, wrt="weights", loss=torch.nn.MSELoss(), sample_weight=WEIGHTS
    )
    grads = _expected(net, x, y, WEIGHTS)
    # enc: 2 layers x 2 directions x (4 parts x 4 gates + projection); dec: 2 x 4 x 3; rnn: 4
    assert _check_against_raw(net, got, grads) == 4 * 17 + 24 + 4


def test_unweighted_gradients_and_the_weighting_convention(rng):
    net = _net()
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))
    got = rnnscope.gradients(net, x, y, wrt="weights", loss=torch.nn.MSELoss())
    grads = _expected(net, x, y)
    _check_against_raw(net, got, grads)
    # The weighted loss divides by the batch size, not by the sum of the weights: with weights
    # (0.5, 0, 2.25) the gradient is exactly the sum of per-sample gradients times w_i / B.
    weighted = rnnscope.gradients(
        net, x, y, wrt="weights", loss=torch.nn.MSELoss(), sample_weight=WEIGHTS
    )
    total = 0.0
    for i in np.flatnonzero(WEIGHTS):
        gi = _expected(net, x[i : i + 1], y[i : i + 1])
        total = total + WEIGHTS[i] / B * gi["dec.weight_hh_l0_reverse"]
    r, z, n = np.split(total, 3, axis=0)  # torch rows: reset, update, new
    for gate, block in (("reset", r), ("update", z), ("new", n)):
        np.testing.assert_allclose(
            weighted["dec.l0"].array("recurrent_kernel", gate, "backward"), block.T, rtol=1e-9
        )
