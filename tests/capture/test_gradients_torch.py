"""torch activations and gradients: central finite differences in float64, and ``.grad`` of a
plain ``backward()``, both cut into gates by hand by torch's documented row blocks (never by
rnnscope's layout code)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import rnnscope
from tests.oracles import raw

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


def _by_hand(net, per_param: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per-parameter arrays (named as in ``named_parameters``) cut into gate blocks by torch's
    documented layout, written out in ``tests/oracles/raw.py``: {layer: {(dir, part, gate): a}}."""
    out: dict[str, dict] = {}
    for module, kind in (("enc", "LSTM"), ("dec", "GRU"), ("rnn", "RNN")):
        for k in range(getattr(net, module).num_layers):
            for suffix, d in ((f"_l{k}", "forward"), (f"_l{k}_reverse", "backward")):
                tensors = {
                    m[1]: a
                    for n, a in per_param.items()
                    if (m := re.fullmatch(rf"{module}\.(\w+?){suffix}", n))
                }
                for (part, gate), block in raw.torch_raw_blocks(kind, tensors).items():
                    out.setdefault(f"{module}.l{k}", {})[(d, part, gate)] = block
    out["head"] = {("", "weight", ""): per_param["head.weight"]}
    out["head"][("", "bias", "")] = per_param["head.bias"]
    return out


def _ours(rec, d, part, gate):
    if isinstance(rec, rnnscope.RNNWeights):
        return rec.array(part, gate or None, d)
    return rec.array(part)


def test_weight_gradients_match_finite_differences_and_backward(rng):
    net = _net()
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))
    w = np.array([1.0, 0.0, 1.5])  # not summing to the batch size
    got = rnnscope.gradients(net, x, y, wrt="weights", loss=torch.nn.MSELoss(), sample_weight=w)
    assert all(p.grad is None for p in net.parameters())  # nothing left behind
    fd: dict[str, np.ndarray] = {}
    pick = np.random.default_rng(3)
    for name, p in net.named_parameters():
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
        fd[name] = g
    # .grad of a plain backward() with the same weighted loss
    per = ((net(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).reshape(B, -1).mean(1)
    (per * torch.from_numpy(w)).mean().backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in net.named_parameters()}
    want_fd, want_bw = _by_hand(net, fd), _by_hand(net, grads)
    assert set(want_fd) == set(got) == {"enc.l0", "enc.l1", "dec.l0", "rnn.l0", "head"}
    checked = 0
    for layer, blocks in want_fd.items():
        for (d, part, gate), block in blocks.items():
            mine = _ours(got[layer], d, part, gate)
            mask = ~np.isnan(block)
            np.testing.assert_allclose(
                mine[mask], block[mask], rtol=1e-5, atol=1e-9, err_msg=f"{layer} {d} {part} {gate}"
            )
            np.testing.assert_allclose(
                mine, want_bw[layer][(d, part, gate)], rtol=1e-10, atol=1e-12
            )
            checked += int(mask.sum())
    assert checked >= 5 * 20  # five sampled entries of every parameter, spread over the blocks
    net.zero_grad(set_to_none=True)


def test_output_gradients_match_finite_differences(rng):
    net = _net(1)
    x, y = rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))
    got = rnnscope.gradients(net, x, y, loss=torch.nn.MSELoss())
    # enc.l0 (a lower stacked layer) too: tests/capture/test_torch_stacked.py checks it
    assert set(got) == {"enc.l0", "enc.l1", "dec.l0", "rnn.l0", "head"}
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
    assert rnnscope.activations(net, x, layers="enc.l0")["enc.l0"].shape == (B, T, 4)
    with pytest.raises(rnnscope.InputError, match="per-sample loss"):
        rnnscope.gradients(
            net, x, y, loss=lambda p, t: ((p - t) ** 2).mean(), sample_weight=np.ones(B)
        )
    g = rnnscope.gradients(net, x, y, wrt="weights", loss=torch.nn.MSELoss(), layers=["enc.l0"])
    torch.nn.MSELoss()(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    want = net.enc.weight_hr_l0_reverse.grad.numpy().T  # (hidden 3, proj 2)
    np.testing.assert_allclose(
        g["enc.l0"].array("projection", direction="backward"), want, rtol=1e-5, atol=1e-8
    )
    net.zero_grad(set_to_none=True)
