"""torch adapter: layouts proven against torch's own forward pass, and by hand."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.conftest import ATOL
from tests.handcalc import output_by_hand

torch = pytest.importorskip("torch")

CASES = [
    ("LSTM", {}),
    ("LSTM", {"proj_size": 3}),
    ("LSTM", {"bias": False}),
    ("GRU", {}),
    ("GRU", {"bias": False}),
    ("RNN", {"nonlinearity": "tanh"}),
    ("RNN", {"nonlinearity": "relu"}),
]


def _randomise(module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.4)


def _make(kind: str, kwargs: dict, *, num_layers=2, bidirectional=True, batch_first=True):
    torch.manual_seed(0)
    m = getattr(torch.nn, kind)(
        4, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, **kwargs
    )
    _randomise(m)
    return m.eval()


@pytest.mark.parametrize("kind,kwargs", CASES, ids=[f"{k}-{v}" for k, v in CASES])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_stacked_trace_equals_torch_and_hand(kind, kwargs, bidirectional, rng):
    m = _make(kind, kwargs, bidirectional=bidirectional)
    x = rng.normal(size=(3, 7, 4)).astype(np.float32)
    with torch.no_grad():
        want, _ = m(torch.from_numpy(x))
    want = want.numpy()
    names = [i.name for i in rnnscope.layers(m)]
    assert names == ["l0", "l1"]
    t0 = rnnscope.trace(m, x, layer=0)
    t1 = rnnscope.trace(m, t0.output(), layer="l1")
    np.testing.assert_allclose(t1.output(), want, atol=ATOL)
    # The second computation: by hand, gate by gate, from array() blocks.
    w0, w1 = rnnscope.rnn_weights(m, 0), rnnscope.rnn_weights(m, 1)
    by_hand = output_by_hand(w1, output_by_hand(w0, x))
    np.testing.assert_allclose(by_hand, want, atol=ATOL)
    assert w1.input_dim == (2 if bidirectional else 1) * (kwargs.get("proj_size") or 5)


def test_seq_first_layout_is_transposed_by_caller(rng):
    m = _make("LSTM", {}, num_layers=1, bidirectional=False, batch_first=False)
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    with torch.no_grad():
        want, (_, c_n) = m(torch.from_numpy(x).transpose(0, 1))
    t = rnnscope.trace(m, x)
    np.testing.assert_allclose(t.output(), want.transpose(0, 1).numpy(), atol=ATOL)
    np.testing.assert_allclose(t.get("c")[:, -1], c_n[0].numpy(), atol=ATOL)


def test_canonical_blocks_match_torch_rows():
    m = _make("GRU", {}, num_layers=1, bidirectional=True)
    w = rnnscope.rnn_weights(m)
    u = 5
    w_ih = m.weight_ih_l0_reverse.detach().numpy()  # rows: reset, update, new
    np.testing.assert_array_equal(w.array("kernel", "reset", "backward"), w_ih[:u].T)
    np.testing.assert_array_equal(w.array("kernel", "update", "backward"), w_ih[u : 2 * u].T)
    np.testing.assert_array_equal(w.array("kernel", "new", "backward"), w_ih[2 * u :].T)
    b_hh = m.bias_hh_l0.detach().numpy()
    np.testing.assert_array_equal(w.array("recurrent_bias", "update"), b_hh[u : 2 * u])
    assert w.parts == ("kernel", "recurrent_kernel", "bias", "recurrent_bias")
    assert w.reset_after is True and w.gates == ("update", "reset", "new")


def test_settings_and_parts():
    m = _make("LSTM", {"proj_size": 3}, num_layers=2, bidirectional=True)
    w = rnnscope.rnn_weights(m, layer=1)
    assert (w.cell, w.units, w.input_dim, w.proj_size, w.hidden) == ("LSTM", 5, 6, 3, 3)
    assert w.directions == ("forward", "backward")
    assert w.parts == ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "projection")
    np.testing.assert_array_equal(
        w.array("recurrent_kernel"), m.weight_hh_l1.detach().numpy().T
    )  # (proj 3, 4 * 5): LSTM rows i, f, g, o are already the canonical order
    assert w.array("projection", direction="backward").shape == (5, 3)
    np.testing.assert_array_equal(
        w.array("projection", direction="backward"), m.weight_hr_l1_reverse.detach().numpy().T
    )
    relu = rnnscope.rnn_weights(_make("RNN", {"nonlinearity": "relu"}), 0)
    assert (relu.cell, relu.activation, relu.gates) == ("SimpleRNN", "relu", ("hidden",))
    nobias = rnnscope.rnn_weights(_make("GRU", {"bias": False}), 0)
    assert nobias.parts == ("kernel", "recurrent_kernel")


def test_arrays_never_alias_the_model():
    m = _make("LSTM", {}, num_layers=1, bidirectional=False)
    before = m.weight_ih_l0.detach().clone()
    w = rnnscope.rnn_weights(m)
    a = w.array("kernel")
    a[:] = 99.0
    w.array("kernel", gate="forget")[:] = 7.0
    assert torch.equal(m.weight_ih_l0.detach(), before)
    assert not np.any(w.array("kernel") == 99.0)
    with torch.no_grad():
        m.weight_ih_l0.zero_()
    assert np.any(w.array("kernel") != 0.0)  # a record is a snapshot
    with pytest.raises(ValueError):
        w.arrays[("kernel", "forward")][0, 0] = 1.0  # stored arrays are read-only


class _Seq2Seq(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.encoder = torch.nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.decoder = torch.nn.GRU(12, 5, batch_first=True)
        self.cell = torch.nn.LSTMCell(5, 3)
        self.head = torch.nn.Linear(5, 2)

    def forward(self, tokens):
        out, _ = self.encoder(self.embed(tokens))
        out, _ = self.decoder(out)
        return self.head(out)


def test_container_names_selection_and_errors(rng):
    model = _Seq2Seq()
    _randomise(model)
    infos = rnnscope.layers(model)
    assert [(i.name, i.kind, i.recurrent) for i in infos] == [
        ("embed", "Embedding", False),
        ("encoder.l0", "LSTM", True),
        ("encoder.l1", "LSTM", True),
        ("decoder.l0", "GRU", True),
        ("cell", "LSTMCell", True),
        ("head", "Linear", False),
    ]
    assert infos[1].shapes["weight_ih_l0_reverse"] == (24, 4)
    assert rnnscope.rnn_weights(model, "decoder").cell == "GRU"  # unique substring
    assert rnnscope.rnn_weights(model, "encoder.l1").input_dim == 12
    assert rnnscope.rnn_weights(model, 3).name == "decoder.l0"
    head = rnnscope.weights(model, "head")
    assert isinstance(head, rnnscope.LayerWeights) and head.names == ("weight", "bias")
    np.testing.assert_array_equal(head.array("weight"), model.head.weight.detach().numpy())
    with pytest.raises(rnnscope.LayerError, match=r"ambiguous.*encoder\.l0.*encoder\.l1"):
        rnnscope.rnn_weights(model, "encoder")
    with pytest.raises(rnnscope.LayerError, match=r"'lstm_2' not found.*embed \(Embedding\)"):
        rnnscope.rnn_weights(model, "lstm_2")
    with pytest.raises(rnnscope.LayerError, match=r"'head' .* Linear, not a recurrent layer"):
        rnnscope.rnn_weights(model, "head")
    with pytest.raises(rnnscope.LayerError, match=r"has 4 recurrent layers"):
        rnnscope.rnn_weights(model)
    with pytest.raises(rnnscope.LayerError, match="index 6 is out of range"):
        rnnscope.rnn_weights(model, 6)
    with pytest.raises(rnnscope.UnsupportedError, match="cannot read weights from an object"):
        rnnscope.rnn_weights(object())


def test_single_step_cells_match_torch(rng):
    torch.manual_seed(1)
    for cls in (torch.nn.LSTMCell, torch.nn.GRUCell, torch.nn.RNNCell):
        cell = cls(4, 3)
        _randomise(cell, seed=3)
        x = rng.normal(size=(2, 5, 4)).astype(np.float32)
        state = None
        outs = []
        with torch.no_grad():
            for t in range(5):
                state = cell(torch.from_numpy(x[:, t]), state)
                outs.append((state[0] if isinstance(state, tuple) else state).numpy())
        got = rnnscope.trace(cell, x).output()
        np.testing.assert_allclose(got, np.stack(outs, 1), atol=ATOL, err_msg=cls.__name__)


def test_initial_state_and_tensor_input(rng):
    m = _make("LSTM", {}, num_layers=1, bidirectional=True)
    x = torch.from_numpy(rng.normal(size=(2, 4, 4)).astype(np.float32))
    h0 = torch.from_numpy(rng.normal(size=(2, 2, 5)).astype(np.float32))
    c0 = torch.from_numpy(rng.normal(size=(2, 2, 5)).astype(np.float32))
    with torch.no_grad():
        want, _ = m(x, (h0, c0))
    init = {"forward": [h0[0], c0[0]], "backward": [h0[1], c0[1]]}
    got = rnnscope.trace(m, x, initial_state=init).output()
    np.testing.assert_allclose(got, want.numpy(), atol=ATOL)
    flat = [h0[0], c0[0], h0[1], c0[1]]
    np.testing.assert_allclose(rnnscope.trace(m, x, initial_state=flat).output(), got, atol=1e-7)
    with pytest.raises(rnnscope.InputError, match=r"expected 4 arrays"):
        rnnscope.trace(m, x, initial_state=[h0[0]])
    with pytest.raises(rnnscope.InputError, match=r"expected shape \(batch, time, 4\)"):
        rnnscope.trace(m, np.zeros((2, 4, 3), np.float32))
