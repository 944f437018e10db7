"""Gate attributions of torch models against a hand-written oracle.

The oracle (``gate_oracle.py``) runs the layers from the module's raw parameters, holds the
chosen layer's gates as leaf tensors and sums integrated gradients with torch autograd; the
model's own forward gives ``F(G)``.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.attributions import gate_oracle as oracle

torch = pytest.importorskip("torch")

B, T, F, U, C = 2, 5, 3, 4, 3


class Stack(torch.nn.Module):
    """An ``nn.LSTM``/``nn.GRU`` stack and a head on the last step (``batch_first`` or not)."""

    def __init__(self, cell, layers, bidirectional, batch_first=True, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.batch_first = batch_first
        self.rnn = getattr(torch.nn, cell)(
            F, U, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first
        )
        self.head = torch.nn.Linear(U * (2 if bidirectional else 1), C)
        with torch.no_grad():
            for p in self.parameters():
                p.normal_(0.0, 0.7)

    def forward(self, x):
        seq = self.rnn(x if self.batch_first else x.transpose(0, 1))[0]
        seq = seq if self.batch_first else seq.transpose(0, 1)
        return self.head(seq[:, -1])


def _x(seed=1):
    return np.random.default_rng(seed).normal(size=(B, T, F)).astype(np.float32)


def _layers(m):
    """Per layer, per direction, the raw parameters in torch's layout."""
    rnn = m.rnn
    out = []
    for k in range(rnn.num_layers):
        dirs = []
        for sfx in ["", "_reverse"][: 2 if rnn.bidirectional else 1]:
            names = [f"{w}_l{k}{sfx}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            dirs.append(oracle.layer_params(*[getattr(rnn, n).detach() for n in names]))
        out.append(dirs)
    return out


def _oracle(m, x, cell, chosen, unit, n_steps, base=None):
    """Attributions ``(b, dir, T, gate, U)``, F(G), F(G0) and G, by hand."""
    layers = _layers(m)
    w = oracle._t(m.head.weight.detach())
    bias = oracle._t(m.head.bias.detach())
    _, g = oracle.forward(x, layers, cell, chosen)
    if base is None:
        neutral = [0.5, 0.5, 0.0, 0.5] if cell == "LSTM" else [0.5, 0.5]
        base = torch.tensor(neutral, dtype=torch.float64).reshape(-1, 1).expand(g.shape)
    else:
        base = oracle._t(base)

    def f(gates):
        seq, _ = oracle.forward(x, layers, cell, chosen, gates)
        return (seq[:, -1] @ w.T + bias)[np.arange(len(x)), unit]

    return (*oracle.integrated_gradients(f, g, base, n_steps), g.numpy())


def _both(a):
    return np.stack([a.values[d] for d in a.directions], axis=1)


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize(
    ("cell", "layers", "chosen", "batch_first"),
    [("LSTM", 2, 0, True), ("GRU", 2, 1, False)],
)
def test_bidirectional_stack_equals_the_hand_written_oracle(cell, layers, chosen, batch_first):
    m, x = Stack(cell, layers, True, batch_first).eval(), _x()
    unit = np.array([1, 2])
    a = rnnscope.gate_attributions(m, x, layer=f"rnn.l{chosen}", target=unit, n_steps=20)
    want, f_g, f_g0, g = _oracle(m, x, cell, chosen, unit, 20)
    assert a.directions == ("forward", "backward")
    assert a.gates == (
        ("input", "forget", "cell", "output") if cell == "LSTM" else ("update", "reset")
    )
    _close(_both(a), want)
    np.testing.assert_allclose(np.stack([a.gate_values[d] for d in a.directions], 1), g, atol=1e-6)
    np.testing.assert_allclose(a.baseline_output, f_g0, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # F at the real gates is the model's own output
        real = m(torch.from_numpy(x)).numpy()[np.arange(B), unit]
    np.testing.assert_allclose(a.output, real, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f_g, real, rtol=1e-5, atol=1e-6)


def test_completeness_within_the_delta_which_shrinks_with_n_steps():
    m, x = Stack("GRU", 1, False).eval(), _x(2)
    deltas = []
    for n in (2, 8, 32):
        a = rnnscope.gate_attributions(m, x, target=0, n_steps=n, rule="riemann_right")
        total = sum(v.reshape(B, -1).sum(axis=1) for v in a.values.values())
        np.testing.assert_allclose(total - (a.output - a.baseline_output), a.delta, atol=1e-6)
        deltas.append(np.abs(a.delta).max())
    assert deltas[0] > deltas[1] > deltas[2]
    a = rnnscope.gate_attributions(m, x, target=0, n_steps=32)
    assert np.abs(a.delta).max() < 1e-4
    np.testing.assert_allclose(a.per_gate.sum(axis=1), a.output - a.baseline_output, atol=1e-4)
    twice = rnnscope.gate_attributions(m, x, target=lambda out: 2 * out[:, 0], n_steps=32)
    assert twice.target["kind"] == "callable"
    for d in a.directions:  # a callable target: F is linear in the output here
        np.testing.assert_allclose(twice.values[d], 2 * a.values[d], rtol=1e-5, atol=1e-7)


def test_input_baseline_and_default_target_match_the_oracle_and_leave_no_state():
    m, x = Stack("LSTM", 1, False), _x(3)
    m.train()
    a = rnnscope.gate_attributions(m, x, baseline="input", n_steps=16)
    assert m.training and m.rnn.training and m.head.training
    assert not m.rnn._forward_hooks and not m.rnn._forward_pre_hooks
    assert all(p.grad is None for p in m.parameters())
    with torch.no_grad():
        pred = m.eval()(torch.from_numpy(x)).numpy().argmax(axis=1)
    assert a.target == {"kind": "class", "index": pred.tolist()}
    _, zero_gates = oracle.forward(np.zeros_like(x), _layers(m), "LSTM", 0)
    want, _, _, _ = _oracle(m, x, "LSTM", 0, pred, 16, base=zero_gates.numpy())
    _close(_both(a), want)
    assert a.baseline_kind == "input"
    assert a.per_timestep.shape == (B, T) and a.get("forget").shape == (B, T, U)


def test_bad_input_is_refused_with_the_argument_named():
    m, x = Stack("LSTM", 1, False).eval(), _x()
    with pytest.raises(rnnscope.InputError, match="baseline") as err:
        rnnscope.gate_attributions(m, x, baseline=np.zeros((B, T, 3, U)))
    assert err.value.argument == "baseline"
    with pytest.raises(rnnscope.InputError, match="baseline must be one of"):
        rnnscope.gate_attributions(m, x, baseline="zeros")
    with pytest.raises(rnnscope.InputError, match="float array") as err:
        rnnscope.gate_attributions(m, x[0])
    assert err.value.argument == "x"
    with pytest.raises(rnnscope.LayerError, match="no_such"):
        rnnscope.gate_attributions(m, x, layer="no_such")
    a = rnnscope.gate_attributions(m, x, n_steps=4)
    with pytest.raises(rnnscope.InputError, match="gate must be one of") as err:
        a.get("update")
    assert err.value.argument == "gate"

    class Simple(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(F, U, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0][:, -1]

    with pytest.raises(rnnscope.UnsupportedError, match="expected an LSTM or GRU"):
        rnnscope.gate_attributions(Simple(), x)


def test_initial_states_and_packed_sequences_are_refused_by_name():
    class Primed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(F, U, batch_first=True)

        def forward(self, x):
            return self.rnn(x, torch.ones(1, len(x), U))[0][:, -1]

    class Packed(Primed):
        def forward(self, x):
            lengths = torch.full((len(x),), x.shape[1])
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
            return self.rnn(packed)[1][0]

    x = _x()
    with pytest.raises(rnnscope.UnsupportedError, match="initial state") as err:
        rnnscope.gate_attributions(Primed(), x, n_steps=2)
    assert err.value.argument == "layer"
    with pytest.raises(rnnscope.UnsupportedError, match="packed sequences are not supported"):
        rnnscope.gate_attributions(Packed(), x, n_steps=2)
