"""torch attributions equal Captum's on the same model, inputs, target and settings.

Captum is the oracle: ``Saliency``, ``InputXGradient``, ``IntegratedGradients`` (every rule,
baselines, internal batching, convergence delta), ``NoiseTunnel`` (the same noise, drawn as
Captum draws it) and ``Occlusion`` over windows of whole timesteps. Targets Captum has no name for
(a callable, the loss) are given to Captum as a forward function computing them by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

B, T, F, C = 4, 6, 3, 3


class Classifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(F, 5, batch_first=True)
        self.head = torch.nn.Linear(5, C)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class Tagger(torch.nn.Module):
    """A sequence output (batch, time, C), through a GRU."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(F, 4, batch_first=True)
        self.head = torch.nn.Linear(4, C)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.LSTM(F, 3, batch_first=True)
        self.b = torch.nn.GRU(2, 3, batch_first=True)
        self.head = torch.nn.Linear(6, C)

    def forward(self, xa, xb):
        return self.head(torch.cat([self.a(xa)[0][:, -1], self.b(xb)[0][:, -1]], dim=1))


def _model(cls, seed=0):
    torch.manual_seed(seed)
    return cls().eval()


def _x(seed=1, shape=(B, T, F)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def close(got, want):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape
    scale = np.abs(want).max()
    assert scale > 0
    assert np.abs(got - want).max() <= 1e-5 * scale, np.abs(got - want).max() / scale


@pytest.mark.parametrize("absolute", [True, False])
def test_saliency_and_gradient_x_input_equal_captum(absolute):
    m, x = _model(Classifier), _x()
    xt = torch.from_numpy(x)
    got = rnnscope.attributions(m, x, target=2, method="saliency", absolute=absolute)
    close(got.values, captum_attr.Saliency(m).attribute(xt, target=2, abs=absolute))
    got = rnnscope.attributions(m, x, target=[0, 1, 2, 1], method="gradient_x_input")
    close(got.values, captum_attr.InputXGradient(m).attribute(xt, target=[0, 1, 2, 1]))
    assert got.target == {"kind": "unit", "index": [0, 1, 2, 1]}


@pytest.mark.parametrize(
    "rule",
    ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"],
)
def test_integrated_gradients_equal_captum_for_every_rule(rule):
    m, x = _model(Classifier), _x()
    base = _x(seed=7) * 0.3
    got = rnnscope.attributions(
        m, x, target=1, baseline=base, n_steps=9, rule=rule, internal_batch_size=5
    )
    want, delta = captum_attr.IntegratedGradients(m).attribute(
        torch.from_numpy(x),
        baselines=torch.from_numpy(base),
        target=1,
        n_steps=9,
        method=rule,
        internal_batch_size=5,
        return_convergence_delta=True,
    )
    close(got.values, want)
    np.testing.assert_allclose(got.delta, delta.detach().numpy(), atol=1e-5)
    assert got.settings == {"n_steps": 9, "rule": rule}
    np.testing.assert_array_equal(got.baseline, base)


def test_default_target_is_the_predicted_class_and_ig_defaults_match_captum():
    m, x = _model(Classifier), _x()
    with torch.no_grad():
        predicted = m(torch.from_numpy(x)).argmax(dim=1)
    got = rnnscope.attributions(m, x)
    assert got.target == {"kind": "class", "index": predicted.tolist()}
    want = captum_attr.IntegratedGradients(m).attribute(torch.from_numpy(x), target=predicted)
    close(got.values, want)
    # the summaries, by hand from the values
    v = want.detach().numpy()
    close(got.per_timestep, v.sum(axis=2))
    close(got.per_timestep_abs, np.abs(v).sum(axis=2))
    close(got.per_feature, v.sum(axis=1))


def test_smoothgrad_equals_noise_tunnel_with_the_same_noise():
    m, x = _model(Classifier), _x()
    torch.manual_seed(3)
    want = captum_attr.NoiseTunnel(captum_attr.Saliency(m)).attribute(
        torch.from_numpy(x), nt_type="smoothgrad", nt_samples=4, stdevs=0.5, target=0
    )
    torch.manual_seed(3)  # the draw Captum makes: one normal per (sample, copy), copy-minor
    noise = torch.normal(0, torch.tensor(0.5).repeat((B * 4, T, F)))
    noise = noise.numpy().reshape(B, 4, T, F).transpose(1, 0, 2, 3)
    got = rnnscope.attributions(m, x, target=0, method="smoothgrad", noise=noise)
    close(got.values, want)
    assert got.settings["n_samples"] == 4
    # a drawn noise is reproducible by seed, and differs between seeds
    a = rnnscope.attributions(m, x, target=0, method="smoothgrad", seed=5, stdev=0.5)
    b = rnnscope.attributions(m, x, target=0, method="smoothgrad", seed=5, stdev=0.5)
    c = rnnscope.attributions(m, x, target=0, method="smoothgrad", seed=6, stdev=0.5)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)


@pytest.mark.parametrize(
    ("window", "stride", "base"), [(1, 1, 0.0), (2, 1, 0.5), (3, 3, -1.0), (4, 3, 0.2)]
)
def test_occlusion_over_timesteps_equals_captum(window, stride, base):
    m, x = _model(Classifier), _x()
    got = rnnscope.attributions(
        m, x, target=2, method="occlusion", window=window, stride=stride, baseline=base
    )
    want = captum_attr.Occlusion(m).attribute(
        torch.from_numpy(x),
        sliding_window_shapes=(window, F),
        strides=(stride, F),
        baselines=base,
        target=2,
    )
    close(got.values, want)


def test_sequence_output_target_timestep_and_unit_equal_captum():
    m, x = _model(Tagger), _x()
    xt = torch.from_numpy(x)
    got = rnnscope.attributions(m, x, target=(2, 1), method="saliency")
    close(got.values, captum_attr.Saliency(m).attribute(xt, target=(2, 1)))
    per = [(0, 2), (5, 0), (3, 1), (-1, 1)]
    got = rnnscope.attributions(m, x, target=([t for t, _ in per], [k for _, k in per]), n_steps=8)
    want = captum_attr.IntegratedGradients(m).attribute(
        xt, target=[(t % T, k) for t, k in per], n_steps=8
    )
    close(got.values, want)
    assert got.target["timestep"] == [0, 5, 3, 5]


def test_callable_and_loss_targets_equal_captum_on_the_same_function():
    m, x = _model(Classifier), _x()
    y = np.array([0, 2, 1, 1])
    xt = torch.from_numpy(x)

    def margin(out):
        return out[:, 0] - out[:, 1]

    got = rnnscope.attributions(m, x, target=margin, n_steps=10)
    want = captum_attr.IntegratedGradients(lambda v: margin(m(v))).attribute(xt, n_steps=10)
    close(got.values, want)

    ce = torch.nn.CrossEntropyLoss()
    got = rnnscope.attributions(m, x, target="loss", y=y, loss=ce, method="saliency")
    assert ce.reduction == "mean"  # restored
    per_sample = torch.nn.CrossEntropyLoss(reduction="none")
    want = captum_attr.Saliency(lambda v: per_sample(m(v), torch.from_numpy(y))).attribute(xt)
    close(got.values, want)


def test_multi_input_gives_one_record_per_input_and_a_shared_delta():
    m = _model(TwoInputs)
    xa, xb = _x(), _x(seed=2, shape=(B, 4, 2))
    got = rnnscope.attributions(m, [xa, xb], target=1, n_steps=12)
    want, delta = captum_attr.IntegratedGradients(m).attribute(
        (torch.from_numpy(xa), torch.from_numpy(xb)),
        target=1,
        n_steps=12,
        return_convergence_delta=True,
    )
    assert [a.input for a in got] == ["input_0", "input_1"]
    close(got[0].values, want[0])
    close(got[1].values, want[1])
    np.testing.assert_allclose(got[0].delta, delta.detach().numpy(), atol=1e-5)


def test_no_state_left_behind():
    m, x = _model(Classifier), _x()
    m.train()
    m.rnn.eval()
    params = [p.detach().clone() for p in m.parameters()]
    rnnscope.attributions(m, x, target=0)
    assert m.training and not m.rnn.training and m.head.training
    assert all(p.grad is None for p in m.parameters())
    assert all(torch.equal(a, b) for a, b in zip(params, m.parameters(), strict=True))
    assert not m._forward_hooks and not m.rnn._forward_hooks


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"method": "lime"}, ["method", "integrated_gradients", "'lime'"]),
        ({"target": 3}, ["target", "out of range", "3"]),
        ({"target": [0, 1]}, ["target", "4 ints", "[0, 1]"]),
        ({"target": (1, 0)}, ["(timestep, unit)", "sequence output"]),
        ({"target": "loss"}, ["y="]),
        ({"n_steps": 1}, ["n_steps", ">= 2"]),
        ({"rule": "simpson"}, ["rule", "riemann_left", "'simpson'"]),
        ({"baseline": np.zeros((2, 2))}, ["baseline", "(4, 6, 3)", "(2, 2)"]),
        ({"method": "occlusion", "window": 7}, ["window", "6 timesteps", "7"]),
        ({"method": "occlusion", "stride": 0}, ["stride", ">= 1"]),
    ],
)
def test_bad_arguments_are_named(kwargs, words):
    m, x = _model(Classifier), _x()
    with pytest.raises(InputError) as info:
        rnnscope.attributions(m, x, **kwargs)
    for w in words:
        assert w in str(info.value)


def test_bad_inputs_are_named():
    m = _model(Classifier)
    with pytest.raises(InputError, match=r"input 'input'.*\(batch, time, features\).*\(4, 6\)"):
        rnnscope.attributions(m, np.zeros((4, 6), np.float32))
    with pytest.raises(InputError, match="integer token inputs"):
        rnnscope.attributions(m, np.zeros((4, 6, 3), np.int64))
    with pytest.raises(rnnscope.UnsupportedError, match=r"tf-keras, torch or flax\.nnx model"):
        rnnscope.attributions("model.keras", _x())
