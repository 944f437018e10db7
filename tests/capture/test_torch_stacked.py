"""Every layer inside a stacked torch ``nn.LSTM``/``GRU``/``RNN``: outputs and output gradients.

The oracle is built in the test, by hand: one single-layer module per stacked layer, loaded with
that layer's tensors (state-dict keys ``*_l{k}`` renamed ``*_l0``), chained, with
``retain_grad`` on each intermediate output. The top layer is also checked against the stacked
module's own output.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

F, B, T = 3, 2, 5


def _chain(module):
    """One single-layer module per layer of ``module``, with its tensors."""
    kw = {"batch_first": True, "bidirectional": module.bidirectional, "bias": module.bias}
    if isinstance(module, torch.nn.LSTM):
        kw["proj_size"] = module.proj_size
    if isinstance(module, torch.nn.RNN):
        kw["nonlinearity"] = module.nonlinearity
    dirs = 2 if module.bidirectional else 1
    out = []
    for k in range(module.num_layers):
        size = F if k == 0 else dirs * (module.proj_size or module.hidden_size)
        one = type(module)(size, module.hidden_size, **kw)
        state = {
            key.replace(f"_l{k}", "_l0"): v
            for key, v in module.state_dict().items()
            if key.split("_l", 1)[1].split("_")[0] == str(k)
        }
        one.load_state_dict(state)
        out.append(one)
    return out


class Head(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn
        width = (2 if rnn.bidirectional else 1) * (getattr(rnn, "proj_size", 0) or rnn.hidden_size)
        self.head = torch.nn.Linear(width, 1)

    def forward(self, x):
        out = self.rnn(x)[0]
        if isinstance(out, torch.nn.utils.rnn.PackedSequence):
            out = pad_packed_sequence(out, batch_first=True)[0]
        return self.head(out)


CASES = {
    "lstm3-bidir": lambda: torch.nn.LSTM(F, 4, num_layers=3, batch_first=True, bidirectional=True),
    "lstm2-proj": lambda: torch.nn.LSTM(F, 4, num_layers=2, batch_first=True, proj_size=2),
    "gru2-bidir": lambda: torch.nn.GRU(F, 3, num_layers=2, batch_first=True, bidirectional=True),
    "rnn2-relu": lambda: torch.nn.RNN(F, 3, num_layers=2, batch_first=True, nonlinearity="relu"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_stacked_layer_has_outputs_and_gradients_equal_to_autograd(case):
    torch.manual_seed(0)
    model = Head(CASES[case]())
    x = torch.randn(B, T, F, generator=torch.Generator().manual_seed(1))
    y = torch.randn(B, T, 1, generator=torch.Generator().manual_seed(2))
    names = [f"rnn.l{k}" for k in range(model.rnn.num_layers)]
    acts = rnnscope.activations(model, x)
    assert [n for n in acts if n.startswith("rnn")] == names  # every layer by default
    grads = rnnscope.gradients(model, x, y, layers=names, loss=torch.nn.MSELoss())
    h, wanted = x, []
    for one in _chain(model.rnn):
        h = one(h)[0]
        h.retain_grad()
        wanted.append(h)
    torch.nn.functional.mse_loss(model.head(h), y).backward()
    with torch.no_grad():
        own = model.rnn(x)[0].numpy()
    np.testing.assert_allclose(acts[names[-1]], own, atol=1e-6)
    for name, want in zip(names, wanted, strict=True):
        np.testing.assert_allclose(acts[name], want.detach().numpy(), atol=1e-6, err_msg=name)
        np.testing.assert_allclose(grads[name], want.grad.numpy(), atol=1e-7, err_msg=name)
        t = rnnscope.trace(
            model, x if name == names[0] else acts[names[names.index(name) - 1]], name
        )
        np.testing.assert_allclose(t.output(), acts[name], atol=1e-5, err_msg=name)
    assert "forward" not in model.rnn.__dict__  # the layer-by-layer pass is gone
    assert all(p.grad is None for p in model.rnn.parameters())  # rnnscope left .grad alone


def test_stacked_layers_with_packed_input_and_initial_state():
    torch.manual_seed(3)
    rnn = torch.nn.LSTM(F, 3, num_layers=2, batch_first=True, bidirectional=True)
    model = Head(rnn)
    lengths = torch.tensor([3, 5])
    x = torch.randn(B, T, F, generator=torch.Generator().manual_seed(4))
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    acts = rnnscope.activations(model, packed, ["rnn.l0", "rnn.l1"])
    h0 = torch.randn(4, B, 3, generator=torch.Generator().manual_seed(5))
    c0 = torch.randn(4, B, 3, generator=torch.Generator().manual_seed(6))
    one0, one1 = _chain(rnn)
    with torch.no_grad():
        mid = one0(packed)[0]
        want0 = pad_packed_sequence(mid, batch_first=True)[0].numpy()
        want1 = pad_packed_sequence(one1(mid)[0], batch_first=True)[0].numpy()
        own = pad_packed_sequence(rnn(packed)[0], batch_first=True)[0].numpy()
    np.testing.assert_allclose(np.ma.getdata(acts["rnn.l0"]), want0, atol=1e-6)
    np.testing.assert_allclose(np.ma.getdata(acts["rnn.l1"]), want1, atol=1e-6)
    np.testing.assert_allclose(np.ma.getdata(acts["rnn.l1"]), own, atol=1e-6)
    assert acts["rnn.l0"].mask[0, 3:].all() and not acts["rnn.l0"].mask[1].any()
    t = rnnscope.trace(model, acts["rnn.l0"], "rnn.l1")  # the masked array brings its mask
    np.testing.assert_allclose(t.output(), want1, atol=1e-5)
    assert t.mask is not None and t.mask.tolist()[0] == [True] * 3 + [False] * 2

    class WithState(torch.nn.Module):  # the initial state reaches every layer, layer by layer
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            return self.rnn(x, (h0, c0))

    got = rnnscope.activations(WithState(), x, ["rnn.l0", "rnn.l1"])
    with torch.no_grad():
        mid = one0(x, (h0[:2], c0[:2]))[0]
        np.testing.assert_allclose(got["rnn.l0"], mid.numpy(), atol=1e-6)
        np.testing.assert_allclose(got["rnn.l1"], one1(mid, (h0[2:], c0[2:]))[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(got["rnn.l1"], rnn(x, (h0, c0))[0].numpy(), atol=1e-6)
