"""torch activations and gradients: central finite differences in float64, and ``.grad`` of a
plain ``backward()`` mapped through the canonical layout."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope._api import resolve

torch = pytest.importorskip("torch")

B, T, F = 3, 4, 2
EPS = 1e-6


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = torch.nn.LSTM(
            F, 3, num_layers=2, batch_first=True, bidirectional=True, proj_size=2
        )
        self.dec = torch.nn.GRU(4, 2, batch_first=True)
        self.rnn = torch.nn.RNN(2, 2, batch_first=True, nonlinearity="relu")
        self.head = torch.nn.Linear(2, 1)

    def forward(self, x):
        out, (_h, _c) = self.enc(x)  # the (output, (h, c)) tuple
        out, _ = self.dec(out)
        out, _ = self.rnn(out)
        return self.head(out[:, -1])


def _net(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    net = Net().to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, dtype=dtype) * 0.5)
    return net.eval()


def _loss_value(net, x, y, w=None):
    with torch.no_grad():
        per = ((net(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).reshape(len(y), -1).mean(1)
        return float((per if w is None else per * torch.from_numpy(w)).mean())


def test_weight_gradients_match_finite_differences_and_backward(rng):
    net = _net()
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))
    w = np.array([1.0, 0.0, 2.0])
    got = rnnscope.gradients(net, x, y, wrt="weights", loss=torch.nn.MSELoss(), sample_weight=w)
    assert all(p.grad is None for p in net.parameters())  # nothing left behind
    fd: dict[int, np.ndarray] = {}
    pick = np.random.default_rng(3)
    for p in net.parameters():
        g = np.full(tuple(p.shape), np.nan)
        for i in pick.choice(p.numel(), size=min(5, p.numel()), replace=False):
            idx = np.unravel_index(i, tuple(p.shape))
            vals = []
            for sign in (1, -1):
                with torch.no_grad():
                    p[idx] += sign * EPS
                vals.append(_loss_value(net, x, y, w))
                with torch.no_grad():
                    p[idx] -= sign * EPS
            g[idx] = (vals[0] - vals[1]) / (2 * EPS)
        fd[id(p)] = g
    # .grad of a plain backward() with the same weighted loss
    per = ((net(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).reshape(B, -1).mean(1)
    (per * torch.from_numpy(w)).mean().backward()
    for ref in resolve(net).refs:
        want_fd = ref.build(lambda v: fd[id(v)])
        want_bw = ref.build(lambda v: v.grad.detach().numpy().copy())
        ours = got[ref.info.name]
        if isinstance(ours, rnnscope.RNNWeights):
            for d, part, gate, block in want_fd.items():
                mine = ours.array(part, gate or None, d)
                mask = ~np.isnan(block)
                np.testing.assert_allclose(
                    mine[mask],
                    block[mask],
                    rtol=1e-5,
                    atol=1e-9,
                    err_msg=f"{ref.info.name} {d} {part} {gate}",
                )
                np.testing.assert_allclose(
                    mine, want_bw.array(part, gate or None, d), rtol=1e-10, atol=1e-12
                )
        else:
            for name, block in want_fd.items():
                mask = ~np.isnan(block)
                np.testing.assert_allclose(
                    ours.array(name)[mask], block[mask], rtol=1e-5, atol=1e-9
                )
    net.zero_grad(set_to_none=True)


def test_output_gradients_match_finite_differences(rng):
    net = _net(1)
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))
    got = rnnscope.gradients(net, x, y, loss=torch.nn.MSELoss())
    assert set(got) == {"enc.l1", "dec.l0", "rnn.l0", "head"}  # enc.l0: no visible output
    assert got["enc.l1"].shape == (B, T, 4) and got["head"].shape == (B, 1)
    modules = {"enc.l1": net.enc, "dec.l0": net.dec, "rnn.l0": net.rnn, "head": net.head}
    for name, module in modules.items():
        for idx in [(0,) * got[name].ndim, tuple(s - 1 for s in got[name].shape)]:
            vals = []
            for sign in (1, -1):

                def bump(m, a, out, sign=sign, idx=idx):
                    first = out[0] if isinstance(out, tuple) else out
                    e = torch.zeros_like(first)
                    e[idx] = sign * EPS
                    return (first + e, *out[1:]) if isinstance(out, tuple) else first + e

                handle = module.register_forward_hook(bump)
                try:
                    vals.append(_loss_value(net, x, y))
                finally:
                    handle.remove()
            fd = (vals[0] - vals[1]) / (2 * EPS)
            np.testing.assert_allclose(
                got[name][idx], fd, rtol=1e-5, atol=1e-10, err_msg=f"{name} {idx}"
            )


def test_modes_hooks_and_outputs_restored(rng):
    net = _net(2, torch.float32)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    y = rng.normal(size=(B, 1)).astype(np.float32)
    net.train()
    net.dec.eval()  # a mixed state must come back exactly
    flags = {n: m.training for n, m in net.named_modules()}
    with torch.no_grad():
        before = net(torch.from_numpy(x)).numpy()
    acts = rnnscope.activations(net, x)
    np.testing.assert_allclose(acts["head"], before, rtol=1e-6)
    t = rnnscope.trace(net, x, layer="enc.l0")
    t1 = rnnscope.trace(net, t.output(), layer="enc.l1")
    np.testing.assert_allclose(acts["enc.l1"], t1.output(), atol=1e-5)
    rnnscope.gradients(net, x, y, loss=torch.nn.MSELoss(), training=False)
    rnnscope.gradients(net, x, y, wrt="weights", loss=torch.nn.MSELoss(), training=True)
    assert {n: m.training for n, m in net.named_modules()} == flags
    assert all(not m._forward_hooks for m in net.modules())
    assert all(p.grad is None for p in net.parameters())
    with torch.no_grad():
        np.testing.assert_array_equal(net(torch.from_numpy(x)).numpy(), before)


def test_torch_errors(rng):
    net = _net(3, torch.float32)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    y = np.zeros((B, 1), np.float32)
    with pytest.raises(rnnscope.InputError, match="need loss="):
        rnnscope.gradients(net, x, y)
    with pytest.raises(rnnscope.LayerError, match=r"lower layer of a stacked LSTM.*\(l1\)"):
        rnnscope.activations(net, x, layers="enc.l0")
    with pytest.raises(rnnscope.InputError, match="per-sample loss"):
        rnnscope.gradients(
            net, x, y, loss=lambda p, t: ((p - t) ** 2).mean(), sample_weight=np.ones(B)
        )
    g = rnnscope.gradients(net, x, y, wrt="weights", loss=torch.nn.MSELoss(), layers=["enc.l0"])
    assert g["enc.l0"].array("projection", direction="backward").shape == (3, 2)
