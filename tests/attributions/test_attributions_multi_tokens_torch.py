"""torch multi-input models with token inputs: one record per input, tokens at their own
``nn.Embedding``'s output, equal to Captum's ``LayerIntegratedGradients`` over several layers
(the float input through an identity layer), and complete across inputs."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError, UnsupportedError

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

B, T = 3, 6


class Two(torch.nn.Module):
    """Words and tags (two token inputs, own embeddings) and float features."""

    def __init__(self, shared=False) -> None:
        super().__init__()
        self.words = torch.nn.Embedding(12, 4)
        self.tags = torch.nn.Embedding(5, 4) if not shared else self.words
        self.feat = torch.nn.Identity()
        self.rnn = torch.nn.GRU(4 + 4 + 2, 5, batch_first=True)
        self.head = torch.nn.Linear(5, 3)

    def forward(self, w, t, f):
        h = torch.cat([self.words(w), self.tags(t), self.feat(f)], dim=-1)
        return self.head(self.rnn(h)[0][:, -1])


def _model(**kw):
    torch.manual_seed(0)
    return Two(**kw).double().eval()


def _inputs():
    rng = np.random.default_rng(0)
    return rng.integers(1, 5, (B, T)), rng.integers(0, 5, (B, T)), rng.normal(size=(B, T, 2))


def close(got, want):
    scale = np.abs(want).max()
    assert scale > 0
    assert np.abs(got - want).max() <= 1e-5 * scale, np.abs(got - want).max() / scale


def test_equal_to_captum_layer_integrated_gradients_over_several_layers():
    m, (w, t, f) = _model(), _inputs()
    recs = rnnscope.attributions(m, [w, t, f], target=[0, 2, 1], baseline=[0, 0, 0.0], n_steps=20)
    assert [r.input for r in recs] == ["input_0", "input_1", "input_2"]
    assert [r.values.shape for r in recs] == [(B, T, 1), (B, T, 1), (B, T, 2)]
    assert [r.settings.get("embedding") for r in recs] == ["words", "tags", None]
    lig = captum_attr.LayerIntegratedGradients(m, [m.words, m.tags, m.feat])
    ins = tuple(torch.from_numpy(a) for a in (w, t, f))
    want, delta = lig.attribute(
        ins,
        baselines=tuple(torch.zeros_like(a) for a in ins),
        target=torch.tensor([0, 2, 1]),
        n_steps=20,
        return_convergence_delta=True,
    )
    close(recs[0].values[..., 0], want[0].sum(-1).detach().numpy())
    close(recs[1].values[..., 0], want[1].sum(-1).detach().numpy())
    close(recs[2].values, want[2].detach().numpy())
    np.testing.assert_allclose(recs[0].delta, delta.detach().numpy(), atol=1e-9)
    # completeness across inputs, against the model itself on x and on the baseline
    with torch.no_grad():
        fx = m(*ins)[np.arange(B), [0, 2, 1]].numpy()
        f0 = m(*(torch.zeros_like(a) for a in ins))[np.arange(B), [0, 2, 1]].numpy()
    total = sum(r.values.sum(axis=(1, 2)) for r in recs)
    np.testing.assert_allclose(total - (fx - f0), recs[0].delta, atol=1e-12)
    assert np.abs(recs[0].delta).max() < 1e-4 * np.abs(fx - f0).max()


def test_two_token_inputs_by_dict_and_explicit_names():
    m, (w, t, f) = _model(), _inputs()
    a = rnnscope.attributions(m, [w, t, f], target=1, method="saliency")
    b = rnnscope.attributions(
        m, [w, t, f], target=1, method="saliency", embedding=["words", "tags", None]
    )
    for ra, rb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ra.values, rb.values)
    with pytest.raises(InputError, match="no layer named for token input"):
        rnnscope.attributions(m, [w, t, f], embedding=["words", None, None])


def test_a_shared_embedding_and_a_wrong_mapping_are_refused():
    m, (w, t, f) = _model(shared=True), _inputs()
    with pytest.raises(UnsupportedError, match="'words' is called 2 times"):
        rnnscope.attributions(m, [w, t, f], target=0)
    m2 = _model()
    with pytest.raises(InputError, match="one layer name \\(or None\\) per input \\(3\\)"):
        rnnscope.attributions(m2, [w, t, f], embedding=["words", "tags"])
    with pytest.raises(InputError, match=r"token ids must be in \[0, 5\)"):
        rnnscope.attributions(m2, [w, t + 5, f], embedding={"input_0": "words", "input_1": "tags"})
    with pytest.raises(InputError, match=r"failed on the token inputs.*'tags': 5"):
        rnnscope.attributions(m2, [w, t + 5, f])
