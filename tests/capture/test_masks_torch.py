"""torch packed sequences and padded batches: torch's own semantics first (checked with torch
alone: a packed sample's output equals the module run on that sample's real steps, the reverse
direction reads them in reverse, padding comes back as zeros), then rnnscope against torch for
``pack_padded_sequence`` with ``enforce_sorted`` True and False, and ``lengths=``."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

ATOL = 1e-5
F = 3


def _batch(lengths):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(len(lengths), max(lengths), F, generator=g)
    for i, n in enumerate(lengths):
        x[i, n:] = 0.0
    return x


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_torch_packed_semantics_and_trace(kind):
    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(F, 3, batch_first=True, bidirectional=True)
    lengths = [5, 2, 4]  # not sorted: enforce_sorted=False
    x = _batch(lengths)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, state = module(packed)
        h_n = state[0] if kind == "LSTM" else state
        padded, got_lengths = pad_packed_sequence(out, batch_first=True)
        for i, n in enumerate(lengths):  # torch alone: each sample as if it were alone
            alone, _ = module(x[i : i + 1, :n])
            np.testing.assert_allclose(padded[i, :n].numpy(), alone[0].numpy(), atol=ATOL)
            assert (padded[i, n:] == 0).all()
    assert got_lengths.tolist() == lengths
    t = rnnscope.trace(module, packed)
    np.testing.assert_allclose(t.output(), padded.numpy(), atol=ATOL)
    # the final states: forward after each sample's last real step, backward after step 0
    fwd, bwd = t.output(merge_mode=None, sequences=False)
    np.testing.assert_allclose(fwd, h_n[0].numpy(), atol=ATOL)
    np.testing.assert_allclose(bwd, h_n[1].numpy(), atol=ATOL)
    same = rnnscope.trace(module, x.numpy(), lengths=lengths)  # padded batch + lengths=
    np.testing.assert_allclose(same.output(), padded.numpy(), atol=ATOL)
    h = t.get("h", "backward")
    assert isinstance(h, np.ma.MaskedArray) and h.mask[1, 2:].all() and not h.mask[1, :2].any()


def test_enforce_sorted_true_and_unsorted_give_the_same_trace():
    torch.manual_seed(1)
    module = torch.nn.LSTM(F, 2, batch_first=True)
    lengths = [4, 3, 1]
    x = _batch(lengths)
    a = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=True)
    order = [2, 0, 1]
    b = pack_padded_sequence(
        x[order], torch.tensor(lengths)[order], batch_first=True, enforce_sorted=False
    )
    ta, tb = rnnscope.trace(module, a), rnnscope.trace(module, b)
    np.testing.assert_allclose(tb.output(), ta.output()[order], atol=1e-6)
    with torch.no_grad():
        want, _ = pad_packed_sequence(module(b)[0], batch_first=True)
    np.testing.assert_allclose(tb.output(), want.numpy(), atol=ATOL)
    with pytest.raises(rnnscope.InputError, match="carries its own lengths"):
        rnnscope.trace(module, a, lengths=lengths)


class Tagger(torch.nn.Module):
    """A model that reads packed sequences, as real ones do: pack, run, unpack, project."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(F, 3, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(6, 1)

    def forward(self, packed):
        out, _ = self.rnn(packed)
        padded, _ = pad_packed_sequence(out, batch_first=True)
        return self.head(padded)


def test_activations_and_gradients_of_packed_outputs():
    torch.manual_seed(2)
    model = Tagger()
    lengths = [3, 5]
    x = _batch(lengths)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    y = torch.randn(2, 5, 1, generator=torch.Generator().manual_seed(9))
    mask = np.arange(5)[None] < np.array(lengths)[:, None]
    np.testing.assert_array_equal(rnnscope.masks(model, packed, "rnn.l0")["rnn.l0"], mask)
    acts = rnnscope.activations(model, packed, "rnn.l0")["rnn.l0"]
    out, _ = model.rnn(packed)
    padded, _ = pad_packed_sequence(out, batch_first=True)
    padded.retain_grad()
    torch.nn.functional.mse_loss(model.head(padded), y).backward()
    assert isinstance(acts, np.ma.MaskedArray)
    np.testing.assert_array_equal(acts.mask, np.repeat(~mask[:, :, None], 6, 2))
    np.testing.assert_allclose(np.ma.getdata(acts), padded.detach().numpy(), atol=1e-6)
    g = rnnscope.gradients(model, packed, y, "rnn.l0", loss=torch.nn.MSELoss())["rnn.l0"]
    assert isinstance(g, np.ma.MaskedArray)
    real = mask[:, :, None].repeat(6, 2)
    np.testing.assert_allclose(np.ma.getdata(g)[real], padded.grad.numpy()[real], atol=1e-7)
    assert (np.ma.getdata(g)[~real] == 0).all()  # padding is not the RNN's output: no gradient


def test_left_padding_given_as_mask_equals_each_sample_alone():
    torch.manual_seed(6)
    module = torch.nn.GRU(F, 3, batch_first=True, bidirectional=True)
    lengths = [6, 3, 1]
    x = _batch([6, 6, 6])
    mask = np.arange(6)[None] >= 6 - np.array(lengths)[:, None]  # real steps at the end
    t = rnnscope.trace(module, x.numpy(), mask=mask)
    out = t.output()
    with torch.no_grad():
        for i, n in enumerate(lengths):
            alone, _ = module(x[i : i + 1, 6 - n :])
            np.testing.assert_allclose(out[i, 6 - n :], alone[0].numpy(), atol=ATOL)
            assert (out[i, : 6 - n] == 0).all()
    h = np.ma.getdata(t.get("h", "backward"))  # carried: backward state after step 6 - n
    np.testing.assert_allclose(h[1, :3], np.repeat(h[1, 3:4], 3, 0))
