"""torch padded float inputs: ``lengths=``/``mask=``/a ``PackedSequence`` held fixed.

The oracle is Captum on each sample alone, unpadded (its forward packs the one sample at its
own length): every method on a padded batch must give each sample's values at its real steps
and exactly 0 at its padded ones, for a model that takes a ``PackedSequence``, one whose
``forward`` takes ``lengths``, and one that takes a ``mask`` (left padding).
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
rnn_utils = pytest.importorskip("torch.nn.utils.rnn")

F, H, C, T = 3, 4, 3, 6
LENGTHS = np.array([4, 6, 2])
TARGETS = [2, 0, 1]


class Packed(torch.nn.Module):
    """Takes a PackedSequence; classifies from the last real step's state."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(F, H, batch_first=True)
        self.head = torch.nn.Linear(H, C)

    def forward(self, packed):
        _, h = self.rnn(packed)
        return self.head(h[-1])


class WithLengths(torch.nn.Module):
    def __init__(self, inner: Packed) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x, lengths):
        return self.inner(
            rnn_utils.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        )


class WithMask(torch.nn.Module):
    """Takes any mask: each sample's real steps are gathered to the front, then packed."""

    def __init__(self, inner: Packed) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x, mask):
        seqs = [x[i][mask[i]] for i in range(len(x))]
        lengths = torch.tensor([len(s) for s in seqs])
        padded = rnn_utils.pad_sequence(seqs, batch_first=True)
        return self.inner(
            rnn_utils.pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
        )


def _model():
    torch.manual_seed(0)
    return Packed().double().eval()


def _x(mask):
    x = np.random.default_rng(1).normal(size=(3, T, F))
    return np.where(mask[:, :, None], x, 0.0)


def _right():
    return np.arange(T)[None, :] < LENGTHS[:, None]


def _alone(m, n):
    """Captum's forward for one sample of ``n`` real steps, alone, unpadded."""

    def f(xi):
        lengths = torch.full((len(xi),), n, dtype=torch.int64)
        return m(rnn_utils.pack_padded_sequence(xi, lengths, batch_first=True))

    return f


def close(got, want):
    scale = np.abs(want).max()
    assert scale > 0
    assert np.abs(got - want).max() <= 1e-5 * scale, np.abs(got - want).max() / scale


def _captum(m, xi, n, target, method):
    f, t = _alone(m, n), torch.from_numpy(xi[None])
    if method == "saliency":
        return captum_attr.Saliency(f).attribute(t, target=target).numpy()[0], None
    if method == "gradient_x_input":
        return captum_attr.InputXGradient(f).attribute(t, target=target).detach().numpy()[0], None
    if method == "occlusion":
        got = captum_attr.Occlusion(f).attribute(
            t, sliding_window_shapes=(2, F), strides=(1, F), baselines=0.0, target=target
        )
        return got.numpy()[0], None
    got, delta = captum_attr.IntegratedGradients(f).attribute(
        t, baselines=0.0, target=target, n_steps=16, return_convergence_delta=True
    )
    return got.detach().numpy()[0], delta.detach().numpy()[0]


@pytest.mark.parametrize(
    "method", ["saliency", "gradient_x_input", "integrated_gradients", "occlusion"]
)
def test_each_padded_sample_equals_captum_on_the_sample_alone(method):
    m, mask = _model(), _right()
    x = _x(mask)
    kw = {"n_steps": 16} if method == "integrated_gradients" else {}
    if method == "occlusion":
        kw = {"window": 2, "stride": 1}
    a = rnnscope.attributions(m, x, target=TARGETS, method=method, lengths=LENGTHS, **kw)
    np.testing.assert_array_equal(a.mask, mask)
    assert np.all(a.values[~mask] == 0)  # exactly 0 at padded steps
    for i, n in enumerate(LENGTHS):
        want, delta = _captum(m, x[i, :n], int(n), TARGETS[i], method)
        close(a.values[i, :n], want)
        if delta is not None:  # completeness per sample, as Captum measures it alone
            np.testing.assert_allclose(a.delta[i], delta, atol=1e-9)
            f = _alone(m, int(n))
            with torch.no_grad():
                fx = f(torch.from_numpy(x[i : i + 1, :n]))[0, TARGETS[i]].item()
                f0 = f(torch.zeros(1, int(n), F, dtype=torch.float64))[0, TARGETS[i]].item()
            np.testing.assert_allclose(a.values[i].sum() - (fx - f0), a.delta[i], atol=1e-9)
    np.testing.assert_allclose(a.per_timestep.sum(axis=1), a.values.sum(axis=(1, 2)))


def test_smoothgrad_with_the_same_noise_per_sample():
    m, mask = _model(), _right()
    x = _x(mask)
    noise = np.zeros((4, 3, T, F))
    wants = []
    for i, n in enumerate(LENGTHS):
        torch.manual_seed(10 + i)
        wants.append(
            captum_attr.NoiseTunnel(captum_attr.Saliency(_alone(m, int(n))))
            .attribute(
                torch.from_numpy(x[i : i + 1, :n]),
                nt_type="smoothgrad",
                nt_samples=4,
                stdevs=0.5,
                target=TARGETS[i],
            )
            .numpy()[0]
        )
        torch.manual_seed(10 + i)  # Captum's draw for one sample
        noise[:, i, :n] = torch.normal(0, torch.tensor(0.5).repeat((4, int(n), F))).numpy()
    a = rnnscope.attributions(
        m, x, target=TARGETS, method="smoothgrad", noise=noise, lengths=LENGTHS
    )
    for i, n in enumerate(LENGTHS):
        close(a.values[i, :n], wants[i])
    assert np.all(a.values[~mask] == 0)


def test_packed_sequence_lengths_and_mask_models_agree():
    m, mask = _model(), _right()
    x = _x(mask)
    a = rnnscope.attributions(m, x, target=TARGETS, lengths=LENGTHS, n_steps=8)
    packed = rnn_utils.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(LENGTHS), batch_first=True, enforce_sorted=False
    )
    b = rnnscope.attributions(m, packed, target=TARGETS, n_steps=8)
    np.testing.assert_array_equal(b.mask, mask)
    np.testing.assert_allclose(b.values, a.values, atol=1e-12)
    c = rnnscope.attributions(WithLengths(m), x, target=TARGETS, mask=mask, n_steps=8)
    np.testing.assert_allclose(c.values, a.values, atol=1e-12)
    assert all(not mod.training for mod in m.modules())


def test_left_padding_through_a_mask_taking_model_equals_captum_alone():
    m = _model()
    mask = np.zeros((3, T), dtype=bool)
    for i, n in enumerate(LENGTHS):
        mask[i, T - n :] = True  # left padding
    x = _x(mask)
    a = rnnscope.attributions(WithMask(m), x, target=TARGETS, mask=mask, n_steps=16)
    assert np.all(a.values[~mask] == 0)
    for i, n in enumerate(LENGTHS):
        want, delta = _captum(m, x[i, T - n :], int(n), TARGETS[i], "integrated_gradients")
        close(a.values[i, T - n :], want)
        np.testing.assert_allclose(a.delta[i], delta, atol=1e-9)


def test_bad_masks_are_refused_with_the_argument_named():
    m, mask = _model(), _right()
    x = _x(mask)
    left = mask[:, ::-1].copy()
    with pytest.raises(InputError, match="right padding only; sample 0") as err:
        rnnscope.attributions(m, x, mask=left)
    assert err.value.argument == "mask"
    with pytest.raises(InputError, match="not both"):
        rnnscope.attributions(m, x, mask=mask, lengths=LENGTHS)
    with pytest.raises(InputError, match=r"within 1\.\.6"):
        rnnscope.attributions(m, x, lengths=[4, 7, 2])
    with pytest.raises(InputError, match=r"expected \(3, 6\) booleans"):
        rnnscope.attributions(m, x, mask=mask[:, :5])
    packed = rnn_utils.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(LENGTHS), batch_first=True, enforce_sorted=False
    )
    with pytest.raises(InputError, match="carries its own lengths"):
        rnnscope.attributions(m, packed, lengths=LENGTHS)
