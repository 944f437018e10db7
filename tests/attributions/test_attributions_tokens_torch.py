"""torch token inputs: attributions at an ``nn.Embedding``'s output equal Captum's
``LayerIntegratedGradients`` (summed over the embedding dimension), also for a model that packs
its padded batch by the lengths it reads from the tokens, where each sample alone must give the
same values at its real steps and the padded steps none."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
rnn_utils = pytest.importorskip("torch.nn.utils.rnn")

V, D, H, C = 12, 4, 5, 3


class Text(torch.nn.Module):
    def __init__(self, padding_idx=None, packed=False) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(V, D, padding_idx=padding_idx)
        self.rnn = torch.nn.LSTM(D, H, batch_first=True)
        self.head = torch.nn.Linear(H, C)
        self.packed = packed

    def forward(self, tokens):
        e = self.emb(tokens)
        if not self.packed:
            return self.head(self.rnn(e)[0][:, -1])
        lengths = (tokens != 0).sum(dim=1).cpu()  # right padding with token 0
        packed = rnn_utils.pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.head(h[-1])


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return Text(**kw).eval()


def _tokens(seed=1, shape=(3, 6)):
    return np.random.default_rng(seed).integers(1, V, size=shape)


def _captum(m, tokens, base_token, **kw):
    lig = captum_attr.LayerIntegratedGradients(m, m.emb)
    t = torch.from_numpy(tokens)
    got, delta = lig.attribute(
        t, baselines=torch.full_like(t, base_token), return_convergence_delta=True, **kw
    )
    return got.sum(dim=-1).detach().numpy(), delta.detach().numpy()


def close(got, want):
    scale = np.abs(want).max()
    assert scale > 0
    assert np.abs(got - want).max() <= 1e-5 * scale, np.abs(got - want).max() / scale


def test_token_integrated_gradients_equal_captum_layer_integrated_gradients():
    m, tok = _model(), _tokens()
    a = rnnscope.attributions(m, tok, target=[0, 2, 1], baseline=3, n_steps=20)
    want, delta = _captum(m, tok, 3, target=[0, 2, 1], n_steps=20)
    assert a.values.shape == (3, 6, 1)
    assert a.settings["embedding"] == "emb"
    close(a.values[..., 0], want)
    np.testing.assert_allclose(a.delta, delta, atol=1e-6)
    # the default baseline is zeros in embedding space: the embedding of a padding_idx row
    m = _model(padding_idx=0)
    a = rnnscope.attributions(m, tok, target=1, n_steps=16, rule="riemann_trapezoid")
    close(a.values[..., 0], _captum(m, tok, 0, target=1, n_steps=16, method="riemann_trapezoid")[0])
    assert np.abs(a.baseline).max() == 0
    assert not m.emb._forward_hooks  # the injection hook is gone


def test_packed_padded_batch_gives_each_sample_its_own_attributions_and_none_when_padded():
    m, tok = _model(seed=2, packed=True), _tokens(seed=3, shape=(3, 7))
    lengths = [7, 4, 2]
    for i, n in enumerate(lengths):
        tok[i, n:] = 0
    # baseline: token 5's embedding (Captum embeds baseline tokens by running the model on
    # them, which cannot pack an all-padding batch)
    a = rnnscope.attributions(m, tok, target=2, n_steps=24, baseline=5)
    want, _ = _captum(m, tok, 5, target=2, n_steps=24)
    padded = tok == 0
    assert np.abs(a.values[..., 0][padded]).max() == 0
    for i, n in enumerate(lengths):  # the framework on each sample alone, unpadded
        alone, _ = _captum(_model(seed=2), tok[i : i + 1, :n], 5, target=2, n_steps=24)
        close(a.values[i, :n, 0], alone[0])
        close(a.values[i, :n, 0], want[i, :n])


def test_token_saliency_and_occlusion_at_the_embedding():
    m, tok = _model(), _tokens()
    s = rnnscope.attributions(m, tok, target=1, method="saliency", absolute=False)
    e = m.emb(torch.from_numpy(tok)).detach().requires_grad_()
    m.emb.register_forward_hook(lambda *_: e)
    try:
        g = torch.autograd.grad(m(torch.from_numpy(tok))[:, 1].sum(), e)[0]
    finally:
        m.emb._forward_hooks.clear()
    close(s.values[..., 0], g.sum(dim=-1).numpy())
    o = rnnscope.attributions(m, tok, target=1, method="occlusion", baseline=0)
    with torch.no_grad():
        full = m(torch.from_numpy(tok))[:, 1].numpy()
        for t in range(tok.shape[1]):
            cut = tok.copy()
            cut[:, t] = 0
            np.testing.assert_allclose(
                o.values[:, t, 0], full - m(torch.from_numpy(cut))[:, 1].numpy(), atol=1e-6
            )


def test_bad_token_inputs_are_named():
    m = _model()
    with pytest.raises(InputError, match=r"\[0, 12\) for Embedding 'emb'; got 1\.\.12"):
        rnnscope.attributions(m, np.array([[1, 12]]))
    with pytest.raises(InputError, match=r"\(batch, time\); got shape \(2, 1, 3\)"):
        rnnscope.attributions(m, np.ones((2, 1, 3), dtype=np.int64))
    with pytest.raises(InputError, match=r"no Embedding layer named 'words'; the model has: emb"):
        rnnscope.attributions(m, _tokens(), embedding="words")
    with pytest.raises(InputError, match="has no Embedding layer"):
        rnnscope.attributions(torch.nn.Linear(3, 2), np.ones((2, 3), dtype=np.int64))
