"""Hostile inputs to ``attributions`` and ``gate_attributions`` on tiny torch models.

Each bad input gets one ``InputError`` naming its argument (never NaN values, a deep framework
traceback or a silently different number). Where a valid neighbour of the bad input still works,
its values are checked against Captum or the model's own embedding weights.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope._errors import InputError

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")


class _BatchNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(3, 3, batch_first=True)
        self.head = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


class _TimeMajor(torch.nn.Module):
    """A model that takes (time, batch, features) and returns (batch, classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(3, 3)
        self.head = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][-1])


class _Text(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(6, 3)
        self.rnn = torch.nn.GRU(3, 3, batch_first=True)
        self.head = torch.nn.Linear(3, 2)

    def forward(self, tokens):
        return self.head(self.rnn(self.emb(tokens))[0][:, -1])


def _model(cls: type = _BatchNet):
    torch.manual_seed(0)
    return cls().eval()


def _x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused_naming_the_place(bad: float) -> None:
    x = _x()
    x[1, 2, 0] = bad
    with pytest.raises(InputError, match=r"sample 1, timestep 2, feature 0") as err:
        rnnscope.attributions(_model(), x, target=0)
    assert err.value.argument == "x"
    with pytest.raises(InputError, match=r"expected finite values") as err:
        rnnscope.gate_attributions(_model(), x, layer="rnn", target=0)
    assert err.value.argument == "x"


def test_non_finite_baselines_are_refused() -> None:
    base = np.zeros((4, 3))
    base[0, 0] = np.nan
    with pytest.raises(InputError, match="baseline of input 'input': expected finite") as err:
        rnnscope.attributions(_model(), _x(), target=0, baseline=base)
    assert err.value.argument == "baseline"
    gates = np.full((4, 3), 0.5)
    gates[1, 1] = np.inf
    with pytest.raises(InputError, match="expected finite gate values") as err:
        rnnscope.gate_attributions(_model(), _x(), layer="rnn", target=0, baseline=gates)
    assert err.value.argument == "baseline"


@pytest.mark.parametrize("shape", [(0, 4, 3), (2, 0, 3)])
def test_empty_batch_or_time_is_refused(shape: tuple[int, ...]) -> None:
    x = np.zeros(shape, dtype="float32")
    with pytest.raises(InputError, match=r"at least one sample and one timestep") as err:
        rnnscope.attributions(_model(), x, target=0)
    assert err.value.argument == "x"
    with pytest.raises(InputError, match=r"at least one sample and one timestep"):
        rnnscope.gate_attributions(_model(), x, layer="rnn", target=0)


def test_empty_token_batch_is_refused() -> None:
    with pytest.raises(InputError, match=r"at least one sample and one timestep") as err:
        rnnscope.attributions(_model(_Text), np.zeros((2, 0), dtype="int64"), target=0)
    assert err.value.argument == "x"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"internal_batch_size": 0}, "internal_batch_size"),
        ({"internal_batch_size": -3}, "internal_batch_size"),
        ({"internal_batch_size": 2.5}, "internal_batch_size"),
        ({"method": "smoothgrad", "stdev": -1.0}, "stdev"),
        ({"method": "smoothgrad", "stdev": float("nan")}, "stdev"),
        ({"method": "smoothgrad", "stdev": "1"}, "stdev"),
    ],
)
def test_bad_options_are_refused_naming_them(kwargs: dict, argument: str) -> None:
    with pytest.raises(InputError, match=argument) as err:
        rnnscope.attributions(_model(), _x(), target=0, **kwargs)
    assert err.value.argument == argument


def test_internal_batch_size_one_equals_captum() -> None:
    model, x = _model(), _x()
    a = rnnscope.attributions(model, x, target=1, n_steps=8, internal_batch_size=1)
    want = captum_attr.IntegratedGradients(model).attribute(
        torch.from_numpy(x), target=1, n_steps=8
    )
    np.testing.assert_allclose(a.values, want.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_time_major_model_is_refused_naming_the_target() -> None:
    # x is read by this time-major model as (time=2, batch=4): its output has 4 rows, not 2
    with pytest.raises(InputError, match=r"first axis is not the 2 samples") as err:
        rnnscope.attributions(_model(_TimeMajor), _x(), target=1)
    assert err.value.argument == "target"


@pytest.mark.parametrize("baseline", [6, -1, np.array([[0, 1, 2, 7]])])
def test_token_baseline_outside_the_vocabulary_is_refused(baseline: object) -> None:
    tokens = np.array([[1, 2, 3, 4], [5, 4, 3, 2]])
    with pytest.raises(InputError, match=r"baseline: token ids must be in \[0, 6\)") as err:
        rnnscope.attributions(_model(_Text), tokens, target=0, baseline=baseline)
    assert err.value.argument == "baseline"


def test_token_baseline_in_the_vocabulary_is_its_embedding() -> None:
    model = _model(_Text)
    tokens = np.array([[1, 2, 3, 4], [5, 4, 3, 2]])
    a = rnnscope.attributions(model, tokens, target=0, baseline=5)
    row = model.emb.weight[5].detach().numpy()  # the embedding of token 5, read from torch
    b = rnnscope.attributions(model, tokens, target=0, baseline=np.broadcast_to(row, (2, 4, 3)))
    np.testing.assert_allclose(a.values, b.values, rtol=1e-6, atol=1e-8)
    lig = captum_attr.LayerIntegratedGradients(model, model.emb)
    tok = torch.from_numpy(tokens)
    want = lig.attribute(tok, baselines=torch.full_like(tok, 5), target=0, n_steps=50)
    np.testing.assert_allclose(
        a.values[..., 0], want.sum(-1).detach().numpy(), rtol=1e-5, atol=1e-6
    )
