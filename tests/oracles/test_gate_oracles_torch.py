"""Every gate of torch's LSTM, GRU and RNN (both directions, stacked, projected) against a numpy
oracle built from torch's raw ``weight_ih``/``weight_hh``/``bias_*``/``weight_hr`` tensors sliced
by torch's documented row blocks (``tests/oracles/raw.py``), itself checked against torch's
output and, step by step, against ``nn.LSTMCell``/``nn.GRUCell``/``nn.RNNCell``."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.oracles import raw

torch = pytest.importorskip("torch")

B, T, F, H = 2, 5, 3, 4
TOL = 1e-10


def _module(kind: str, seed: int, **options):
    torch.manual_seed(seed)
    m = getattr(torch.nn, kind)(F, H, batch_first=True, **options).double().eval()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.from_numpy(rng.normal(scale=0.6, size=tuple(p.shape))))
    return m


def _raw(m, k: int, reverse: bool) -> dict[str, np.ndarray]:
    suffix = f"_l{k}" + ("_reverse" if reverse else "")
    out = {}
    for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
        t = getattr(m, key + suffix, None)
        if t is not None:
            out[key] = t.detach().numpy().copy()
    return out


def _oracle(m, kind: str, k: int, x: np.ndarray) -> dict[str, raw.Gates]:
    """{direction: gates} of stacked layer ``k``, time in input order."""

    def run(xs: np.ndarray, reverse: bool) -> raw.Gates:
        w = _raw(m, k, reverse)
        if kind == "LSTM":
            return raw.torch_lstm(xs, **w)
        if kind == "GRU":
            return raw.torch_gru(xs, **w)
        return raw.torch_rnn(xs, **w, nonlinearity=m.nonlinearity)

    out = {"forward": run(x, False)}
    if m.bidirectional:
        out["backward"] = raw.flip(run(x[:, ::-1], True))
    return out


CASES = [
    ("LSTM", {"bidirectional": True}),
    ("LSTM", {"bidirectional": True, "proj_size": 2}),
    ("LSTM", {"num_layers": 2, "bias": False}),
    ("GRU", {"bidirectional": True}),
    ("GRU", {"num_layers": 2}),
    ("RNN", {"bidirectional": True}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}),
]


@pytest.mark.parametrize(("kind", "options"), CASES, ids=[f"{k}-{o}" for k, o in CASES])
def test_every_gate_of_every_layer_and_direction(kind, options, rng):
    m = _module(kind, 7, **options)
    x = rng.normal(size=(B, T, F))
    layer_in = x
    for k in range(m.num_layers):
        want = _oracle(m, kind, k, layer_in)
        t = rnnscope.trace(m, layer_in, layer=f"l{k}")
        assert set(t.directions) == set(want)
        for d, gates in want.items():
            assert set(t.names) == set(gates), (t.names, sorted(gates))
            for name, value in gates.items():
                np.testing.assert_allclose(
                    t.get(name, d), value, rtol=0, atol=TOL, err_msg=f"l{k} {d} {name}"
                )
        layer_in = np.concatenate([want[d]["h"] for d in ("forward", "backward") if d in want], -1)
    with torch.no_grad():
        out = m(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(layer_in, out, atol=TOL)  # the oracle is torch's own layer


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_cells_step_by_step_agree_with_the_oracle_and_the_trace(kind, rng):
    m = _module(kind, 11)
    x = rng.normal(size=(B, T, F))
    cell = getattr(torch.nn, f"{kind}Cell")(F, H).double()
    with torch.no_grad():
        for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, key).copy_(getattr(m, f"{key}_l0"))
    want = _oracle(m, kind, 0, x)["forward"]
    t = rnnscope.trace(m, x)
    h = torch.zeros(B, H, dtype=torch.float64)
    c = torch.zeros(B, H, dtype=torch.float64)
    with torch.no_grad():
        for s in range(T):
            xt = torch.from_numpy(x[:, s])
            if kind == "LSTM":
                h, c = cell(xt, (h, c))
                np.testing.assert_allclose(want["c"][:, s], c.numpy(), atol=TOL)
                np.testing.assert_allclose(t.get("c")[:, s], c.numpy(), atol=TOL)
            else:
                h = cell(xt, h)
            np.testing.assert_allclose(want["h"][:, s], h.numpy(), atol=TOL, err_msg=f"step {s}")
            np.testing.assert_allclose(t.get("h")[:, s], h.numpy(), atol=TOL)


def test_gru_gates_are_not_interchangeable(rng):
    """The reset and update gates differ by far more than the tolerance (a swap is visible)."""
    m = _module("GRU", 3)
    want = _oracle(m, "GRU", 0, rng.normal(size=(B, T, F)))["forward"]
    assert np.abs(want["reset"] - want["update"]).max() > 0.1
