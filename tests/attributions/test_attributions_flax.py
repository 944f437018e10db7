"""Attributions of ``flax.nnx`` modules.

Oracles, all outside rnnscope: the module's own forward in eval mode (completeness of integrated
gradients, occlusion by re-evaluation, central finite differences), ``nnx.grad`` written here
(targets, smoothgrad), and Captum on a torch twin whose weights are copied here from Flax's raw
parameters (``OptimizedLSTMCell``: ``dense_i`` without bias and ``dense_h`` with it, blocks
i, f, g, o; torch's LSTM: ``weight_ih``/``weight_hh`` rows i, f, g, o).
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError

nnx = pytest.importorskip("flax.nnx")
jax = pytest.importorskip("jax")
jnp = jax.numpy

B, T, F, U, C = 2, 5, 3, 4, 3


class Net(nnx.Module):
    def __init__(self, rngs, seq=False):
        self.rnn = nnx.RNN(nnx.OptimizedLSTMCell(F, U, rngs=rngs))
        self.drop = nnx.Dropout(0.5, rngs=rngs)  # the model is in train mode: eval is used
        self.head = nnx.Linear(U, C, rngs=rngs)
        self.seq = seq

    def __call__(self, x):
        h = self.drop(self.rnn(x))
        return self.head(h if self.seq else h[:, -1])


class Text(nnx.Module):
    def __init__(self, rngs):
        self.emb = nnx.Embed(12, F, rngs=rngs)
        self.rnn = nnx.RNN(nnx.GRUCell(F, U, rngs=rngs))
        self.head = nnx.Linear(U, C, rngs=rngs)

    def __call__(self, tokens):
        return self.head(self.rnn(self.emb(tokens))[:, -1])


_MODELS: dict = {}


def _net(seq=False):
    if seq not in _MODELS:  # one per kind: the compiled step is kept per model
        _MODELS[seq] = Net(nnx.Rngs(3), seq=seq)
    return _MODELS[seq]


def _x(seed=1):
    return np.random.default_rng(seed).normal(size=(B, T, F)).astype(np.float32)


def _f(model, x):
    ev = nnx.clone(model)
    ev.eval()
    return np.asarray(ev(jnp.asarray(x)), dtype=np.float64)


def _grad(model, x, scalar):
    ev = nnx.clone(model)
    ev.eval()
    g = nnx.grad(lambda z, m: scalar(m(z)), argnums=0)(jnp.asarray(x), ev)
    return np.asarray(g, dtype=np.float64)


def test_integrated_gradients_complete_within_the_delta_which_shrinks_with_n_steps():
    m, x = _net(), _x()
    gain = _f(m, x)[:, 1] - _f(m, np.zeros_like(x))[:, 1]
    deltas = []
    for rule in (
        "gausslegendre",
        "riemann_left",
        "riemann_right",
        "riemann_middle",
        "riemann_trapezoid",
    ):
        for n in (3, 24):
            a = rnnscope.attributions(m, x, target=1, n_steps=n, rule=rule, internal_batch_size=7)
            mine = a.values.reshape(B, -1).sum(axis=1) - gain
            np.testing.assert_allclose(a.delta, mine, atol=2e-6)
            deltas.append(np.abs(mine).max())
    small, large = np.array(deltas[0::2]), np.array(deltas[1::2])
    assert (large < small).all() and large.max() < 0.02


def test_saliency_and_gradient_x_input_equal_central_finite_differences():
    m, x, eps = _net(), _x(), 1e-2
    steps = np.eye(T * F, dtype=np.float32).reshape(T * F, 1, T, F) * eps
    up, down = (x[None] + steps).reshape(-1, T, F), (x[None] - steps).reshape(-1, T, F)
    diff = (_f(m, up)[:, 2] - _f(m, down)[:, 2]).reshape(T, F, B) / (2 * eps)
    fd = diff.transpose(2, 0, 1)  # one batched forward for every perturbation
    s = rnnscope.attributions(m, x, target=2, method="saliency", absolute=False)
    np.testing.assert_allclose(s.values, fd, atol=2e-3)
    s_abs = rnnscope.attributions(m, x, target=2, method="saliency")
    np.testing.assert_allclose(s_abs.values, np.abs(s.values))
    gx = rnnscope.attributions(m, x, target=2, method="gradient_x_input")
    np.testing.assert_allclose(gx.values, fd * x, atol=2e-3)


def test_occlusion_equals_direct_re_evaluation():
    m, x = _net(), _x()
    a = rnnscope.attributions(m, x, target=0, method="occlusion", window=2, stride=2)
    full = _f(m, x)[:, 0]
    want, count = np.zeros((B, T)), np.zeros(T)
    for s in (0, 2, 4):  # the last window is cut at the end
        xo = x.copy()
        xo[:, s : s + 2] = 0.0
        want[:, s : s + 2] += (full - _f(m, xo)[:, 0])[:, None]
        count[s : s + 2] += 1
    np.testing.assert_allclose(a.values, np.repeat((want / count)[:, :, None], F, 2), atol=1e-5)


def test_every_target_kind_against_nnx_grad():
    m, x = _net(), _x()
    out = _f(m, x)

    def sal(target, **kw):
        return rnnscope.attributions(m, x, target=target, method="saliency", absolute=False, **kw)

    pred = out.argmax(axis=1)
    a = sal(None)
    assert a.target == {"kind": "class", "index": pred.tolist()}
    np.testing.assert_allclose(
        a.values, _grad(m, x, lambda o: o[jnp.arange(B), pred].sum()), atol=1e-5
    )
    np.testing.assert_allclose(
        sal([2, 0]).values, _grad(m, x, lambda o: o[0, 2] + o[1, 0]), atol=1e-5
    )
    np.testing.assert_allclose(
        sal(lambda o: o[:, 0] * o[:, 1]).values,
        _grad(m, x, lambda o: (o[:, 0] * o[:, 1]).sum()),
        atol=1e-5,
    )
    y = np.array([1, 2])

    def xent(pred, labels):
        return -jnp.take_along_axis(jax.nn.log_softmax(pred), labels[:, None], axis=1)[:, 0]

    np.testing.assert_allclose(
        sal("loss", y=y, loss=xent).values,
        _grad(m, x, lambda o: xent(o, jnp.asarray(y)).sum()),
        atol=1e-5,
    )
    with pytest.raises(InputError, match="needs loss=") as err:
        sal("loss", y=y)
    assert err.value.argument == "loss"
    seq = _net(seq=True)
    a = rnnscope.attributions(seq, x, target=([1, 4], 2), method="saliency", absolute=False)
    np.testing.assert_allclose(
        a.values, _grad(seq, x, lambda o: o[0, 1, 2] + o[1, 4, 2]), atol=1e-5
    )


def test_smoothgrad_is_the_mean_absolute_gradient_over_the_given_noise():
    m, x = _net(), _x()
    noise = np.random.default_rng(4).normal(scale=0.3, size=(3, B, T, F))
    a = rnnscope.attributions(m, x, target=1, method="smoothgrad", noise=noise)
    want = np.mean(
        [np.abs(_grad(m, (x + n).astype(np.float32), lambda o: o[:, 1].sum())) for n in noise],
        axis=0,
    )
    np.testing.assert_allclose(a.values, want, atol=1e-5)


def _leaves(m):
    """Every value of the module's state (parameters, random keys and counts) as numpy."""
    out = []
    for v in jax.tree_util.tree_leaves(nnx.state(m)):
        if jax.dtypes.issubdtype(v.dtype, jax.dtypes.prng_key):
            v = jax.random.key_data(v)
        out.append(np.array(v))
    return out


def test_the_module_is_left_as_it_was_and_the_step_compiles_once_per_model():
    m, x = Net(nnx.Rngs(8)), _x()
    before = _leaves(m)
    traces = []

    def unit1(o):
        traces.append(1)  # runs only while jax traces
        return o[:, 1]

    rnnscope.attributions(m, x, target=unit1, method="smoothgrad", n_samples=2)
    first = len(traces)
    rnnscope.attributions(m, _x(seed=9), target=unit1, method="smoothgrad", n_samples=2)
    assert first >= 1 and len(traces) == first  # same model, target and shapes: no retrace
    after = _leaves(m)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert m.drop.deterministic is False and type(m.rnn).__name__ == "RNN"


def _twin(m):
    torch = pytest.importorskip("torch")
    lstm, head = torch.nn.LSTM(F, U, batch_first=True), torch.nn.Linear(U, C)
    cell = m.rnn.cell
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(np.asarray(cell.dense_i.kernel[...]).T))
        lstm.weight_hh_l0.copy_(torch.tensor(np.asarray(cell.dense_h.kernel[...]).T))
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.copy_(torch.tensor(np.asarray(cell.dense_h.bias[...])))
        head.weight.copy_(torch.tensor(np.asarray(m.head.kernel[...]).T))
        head.bias.copy_(torch.tensor(np.asarray(m.head.bias[...])))

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = lstm, head

        def forward(self, v):
            return self.head(self.lstm(v)[0][:, -1])

    return torch, Twin().eval()


def test_a_torch_twin_with_the_same_weights_gives_captum_s_attributions():
    captum = pytest.importorskip("captum.attr")
    m, x = _net(), _x()
    torch, twin = _twin(m)
    xt = torch.tensor(x)
    np.testing.assert_allclose(_f(m, x), twin(xt).detach().numpy(), atol=1e-5)
    for rule in ("gausslegendre", "riemann_trapezoid"):
        ours = rnnscope.attributions(m, x, target=1, n_steps=12, rule=rule, internal_batch_size=5)
        ig = captum.IntegratedGradients(twin)
        want, delta = ig.attribute(
            xt,
            target=1,
            n_steps=12,
            method=rule,
            internal_batch_size=5,
            return_convergence_delta=True,
        )
        np.testing.assert_allclose(ours.values, want.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(ours.delta, delta.detach().numpy(), atol=1e-5)
    sal = rnnscope.attributions(m, x, target=2, method="saliency")
    np.testing.assert_allclose(
        sal.values, captum.Saliency(twin).attribute(xt, target=2).numpy(), atol=1e-5
    )
    gx = rnnscope.attributions(m, x, target=2, method="gradient_x_input")
    want = captum.InputXGradient(twin).attribute(xt, target=2).detach().numpy()
    np.testing.assert_allclose(gx.values, want, atol=1e-5)
    occ = rnnscope.attributions(m, x, target=0, method="occlusion", window=2, stride=1)
    want = captum.Occlusion(twin).attribute(
        xt, sliding_window_shapes=(2, F), strides=(1, F), target=0
    )
    np.testing.assert_allclose(occ.values, want.detach().numpy(), atol=1e-5)


def test_token_ids_are_attributed_at_the_embed_output():
    m = Text(nnx.Rngs(2))
    tokens = np.array([[3, 7, 1, 0, 5], [9, 2, 2, 11, 4]])
    emb = np.asarray(m.emb(jnp.asarray(tokens)), dtype=np.float32)

    def f(e):
        return np.asarray(m.head(m.rnn(jnp.asarray(e))[:, -1]), dtype=np.float64)[:, 0]

    a = rnnscope.attributions(m, tokens, target=0, n_steps=16)
    assert a.values.shape == (B, T, 1) and a.settings["embedding"] == "emb"
    gain = f(emb) - f(np.zeros_like(emb))
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)) - gain, a.delta, atol=2e-6)
    assert np.abs(a.delta).max() < 1e-3
    pad = np.asarray(m.emb(jnp.zeros_like(jnp.asarray(tokens))), dtype=np.float32)
    b = rnnscope.attributions(m, tokens, target=0, n_steps=16, baseline=0)
    np.testing.assert_allclose(b.values.sum(axis=(1, 2)) - (f(emb) - f(pad)), b.delta, atol=2e-6)
    s = rnnscope.attributions(m, tokens, target=0, method="saliency")
    g = nnx.grad(lambda e, mm: mm.head(mm.rnn(e)[:, -1])[:, 0].sum(), argnums=0)
    want = np.abs(np.asarray(g(jnp.asarray(emb), nnx.clone(m)))).sum(axis=2)
    np.testing.assert_allclose(s.values[..., 0], want, atol=1e-5)
    with pytest.raises(InputError, match=r"token ids must be in \[0, 12\)"):
        rnnscope.attributions(m, tokens + 5, target=0)
    with pytest.raises(InputError, match=r"no nnx\.Embed"):
        rnnscope.attributions(_net(), tokens, target=0)
