"""Attributions of ``flax.nnx`` modules.

Oracles, all outside rnnscope: the module's own forward in eval mode (completeness of integrated
gradients, occlusion by re-evaluation, central finite differences), its Jacobian by
``jax.jacrev`` written here (each target by the chain rule, smoothgrad), and Captum on a torch
twin whose weights are copied here from Flax's raw parameters (``SimpleCell``: ``h' =
tanh(dense_i(x) + dense_h(h))``, ``dense_i`` with a bias and ``dense_h`` without; torch's RNN:
``tanh(W_ih x + b_ih + W_hh h + b_hh)``). SimpleCell, few shapes and targets: each compiles.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError

nnx = pytest.importorskip("flax.nnx")
jax = pytest.importorskip("jax")
jnp = jax.numpy

B, T, F, U, C = 2, 5, 3, 4, 3
RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


class Net(nnx.Module):
    def __init__(self, rngs, seq=False):
        self.rnn = nnx.RNN(nnx.SimpleCell(F, U, rngs=rngs))
        self.drop = nnx.Dropout(0.5, rngs=rngs)  # the module is in train mode: eval is used
        self.head = nnx.Linear(U, C, rngs=rngs)
        self.seq = seq

    def __call__(self, x):
        h = self.drop(self.rnn(x))
        return self.head(h if self.seq else h[:, -1])


class Text(nnx.Module):
    def __init__(self, rngs):
        self.emb = nnx.Embed(12, F, rngs=rngs)
        self.rnn = nnx.RNN(nnx.SimpleCell(F, U, rngs=rngs))
        self.head = nnx.Linear(U, C, rngs=rngs)

    def __call__(self, tokens):
        return self.head(self.rnn(self.emb(tokens))[:, -1])


@functools.cache
def _net(seq=False):
    """One module per kind: rnnscope keeps its compiled step per model."""
    return Net(nnx.Rngs(3), seq=seq)


def _x(seed=1):
    return np.random.default_rng(seed).normal(size=(B, T, F)).astype(np.float32)


def _pure(module, call=None):
    """The eval-mode module as jitted functions of its input: the output, and the Jacobian of
    every output value with respect to every input value."""
    ev = nnx.clone(module)
    ev.eval()
    graph, state = nnx.split(ev)

    def f(z, st):
        m = nnx.merge(graph, st)
        return call(m, z) if call else m(z)

    fwd = jax.jit(f)
    jac = jax.jit(jax.jacrev(jax.jit(f)))  # the inner jit: flax advances the RNN's rng there
    return (
        lambda z: np.asarray(fwd(jnp.asarray(z), state), dtype=np.float64),
        lambda z: np.asarray(jac(jnp.asarray(z), state), dtype=np.float64),
    )


@functools.cache
def _oracle(seq=False):
    return _pure(_net(seq))


def _grad(weights, jac):
    """The gradient of sum(weights * output): the chain rule over the Jacobian."""
    lead = list(range(weights.ndim))
    return np.tensordot(weights, jac, axes=(lead, lead))


def _onehot(index, shape=(B, C)):
    w = np.zeros(shape)
    w[(np.arange(B), *index)] = 1.0
    return w


def test_integrated_gradients_complete_within_the_delta_which_shrinks_with_n_steps():
    f = _oracle()[0]
    x = _x()
    gain = f(x)[:, 1] - f(np.zeros_like(x))[:, 1]
    small, large = [], []
    for rule in RULES:
        for n, seen in ((3, small), (24, large)):
            a = rnnscope.attributions(m := _net(), x, target=1, n_steps=n, rule=rule,
                                      internal_batch_size=16)  # fmt: skip
            mine = a.values.reshape(B, -1).sum(axis=1) - gain
            np.testing.assert_allclose(a.delta, mine, atol=2e-6)
            seen.append(np.abs(mine).max())
    assert (np.array(large) < np.array(small) / 4).all()  # 8x the steps: >= 4x smaller
    assert a.baseline is not None and not a.baseline.any() and m is _net()


def test_saliency_and_gradient_x_input_equal_central_finite_differences():
    f, x, eps = _oracle()[0], _x(), 1e-2
    steps = np.eye(T * F, dtype=np.float32).reshape(T * F, 1, T, F) * eps
    up, down = (x[None] + steps).reshape(-1, T, F), (x[None] - steps).reshape(-1, T, F)
    diff = (f(up)[:, 2] - f(down)[:, 2]).reshape(T, F, B) / (2 * eps)
    fd = diff.transpose(2, 0, 1)  # one batched forward for every perturbation
    s = rnnscope.attributions(_net(), x, target=2, method="saliency", absolute=False)
    np.testing.assert_allclose(s.values, fd, atol=2e-3)
    s_abs = rnnscope.attributions(_net(), x, target=2, method="saliency")
    np.testing.assert_allclose(s_abs.values, np.abs(s.values))
    gx = rnnscope.attributions(_net(), x, target=2, method="gradient_x_input")
    np.testing.assert_allclose(gx.values, fd * x, atol=2e-3)


def test_occlusion_equals_direct_re_evaluation():
    f, x = _oracle()[0], _x()
    a = rnnscope.attributions(_net(), x, target=0, method="occlusion", window=2, stride=2)
    full = f(x)[:, 0]
    want, count = np.zeros((B, T)), np.zeros(T)
    for s in (0, 2, 4):  # the last window is cut at the end
        xo = x.copy()
        xo[:, s : s + 2] = 0.0
        want[:, s : s + 2] += (full - f(xo)[:, 0])[:, None]
        count[s : s + 2] += 1
    np.testing.assert_allclose(a.values, np.repeat((want / count)[:, :, None], F, 2), atol=1e-5)


def test_every_target_kind_by_the_chain_rule_over_jax_s_jacobian():
    f, jac = _oracle()
    x = _x()
    out, j = f(x), jac(x)

    def sal(target, model=None, **kw):
        m = model or _net()
        return rnnscope.attributions(m, x, target=target, method="saliency", absolute=False, **kw)

    pred = out.argmax(axis=1)
    a = sal(None)
    assert a.target == {"kind": "class", "index": pred.tolist()}
    np.testing.assert_allclose(a.values, _grad(_onehot([pred]), j), atol=1e-5)
    np.testing.assert_allclose(sal([2, 0]).values, _grad(_onehot([[2, 0]]), j), atol=1e-5)
    traces = []

    def product(o):
        traces.append(1)  # runs only while jax traces
        return o[:, 0] * o[:, 1]

    w = np.zeros((B, C))
    w[:, 0], w[:, 1] = out[:, 1], out[:, 0]
    np.testing.assert_allclose(sal(product).values, _grad(w, j), atol=1e-5)
    compiled = len(traces)
    sal(product)  # the same model, target and shapes: the compiled step, no new trace
    assert compiled >= 1 and len(traces) == compiled
    y = np.array([1, 2])

    def xent(logits, labels):
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]

    soft = np.exp(out) / np.exp(out).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(sal("loss", y=y, loss=xent).values,
                               _grad(soft - _onehot([y]), j), atol=1e-5)  # fmt: skip
    with pytest.raises(InputError, match="needs loss=") as err:
        sal("loss", y=y)
    assert err.value.argument == "loss"
    jseq = _oracle(seq=True)[1](x)
    a = sal(([1, 4], 2), model=_net(seq=True))
    assert a.target == {"kind": "timestep", "timestep": [1, 4], "unit": [2, 2]}
    np.testing.assert_allclose(a.values, _grad(_onehot([[1, 4], 2], (B, T, C)), jseq), atol=1e-5)


def test_smoothgrad_is_the_mean_absolute_gradient_over_the_given_noise():
    jac, x = _oracle()[1], _x()
    noise = np.random.default_rng(4).normal(scale=0.3, size=(3, B, T, F))
    a = rnnscope.attributions(_net(), x, target=1, method="smoothgrad", noise=noise)
    one = _onehot([[1] * B])
    want = np.mean([np.abs(_grad(one, jac((x + n).astype(np.float32)))) for n in noise], axis=0)
    np.testing.assert_allclose(a.values, want, atol=1e-5)


def _leaves(m):
    """Every value of the module's state (parameters, random keys and counts) as numpy."""
    out = []
    for v in jax.tree_util.tree_leaves(nnx.state(m)):
        if jax.dtypes.issubdtype(v.dtype, jax.dtypes.prng_key):
            v = jax.random.key_data(v)
        out.append(np.array(v))
    return out


def test_the_module_is_left_as_it_was():
    m = _net()
    before = _leaves(m)
    rnnscope.attributions(m, _x(seed=9), target=1, method="smoothgrad", n_samples=2)
    after = _leaves(m)
    assert len(before) == len(after)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert m.drop.deterministic is False and type(m.rnn) is nnx.RNN


def _twin(m):
    torch = pytest.importorskip("torch")
    rnn, head = torch.nn.RNN(F, U, batch_first=True), torch.nn.Linear(U, C)
    cell = m.rnn.cell
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(np.asarray(cell.dense_i.kernel[...]).T))
        rnn.bias_ih_l0.copy_(torch.tensor(np.asarray(cell.dense_i.bias[...])))
        rnn.weight_hh_l0.copy_(torch.tensor(np.asarray(cell.dense_h.kernel[...]).T))
        rnn.bias_hh_l0.zero_()
        head.weight.copy_(torch.tensor(np.asarray(m.head.kernel[...]).T))
        head.bias.copy_(torch.tensor(np.asarray(m.head.bias[...])))

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = rnn, head

        def forward(self, v):
            return self.head(self.rnn(v)[0][:, -1])

    return torch, Twin().eval()


def test_a_torch_twin_with_the_same_weights_gives_captum_s_attributions():
    captum = pytest.importorskip("captum.attr")
    m, x = _net(), _x()
    torch, twin = _twin(m)
    xt = torch.tensor(x)
    np.testing.assert_allclose(_oracle()[0](x), twin(xt).detach().numpy(), atol=1e-5)
    for rule in ("gausslegendre", "riemann_trapezoid"):
        ours = rnnscope.attributions(m, x, target=1, n_steps=6, rule=rule, internal_batch_size=5)
        want, delta = captum.IntegratedGradients(twin).attribute(
            xt, target=1, n_steps=6, method=rule, internal_batch_size=5,
            return_convergence_delta=True,
        )  # fmt: skip
        np.testing.assert_allclose(ours.values, want.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(ours.delta, delta.detach().numpy(), atol=1e-5)
    sal = rnnscope.attributions(m, x, target=2, method="saliency")
    want = captum.Saliency(twin).attribute(xt, target=2).numpy()
    np.testing.assert_allclose(sal.values, want, atol=1e-5)
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
    emb = np.asarray(m.emb.embedding[...])[tokens]  # the Embed's table, indexed here
    f, jac = _pure(m, lambda mm, e: mm.head(mm.rnn(e)[:, -1]))
    a = rnnscope.attributions(m, tokens, target=0, n_steps=16, internal_batch_size=16)
    assert a.values.shape == (B, T, 1) and a.settings["embedding"] == "emb"
    gain = f(emb)[:, 0] - f(np.zeros_like(emb))[:, 0]
    np.testing.assert_allclose(a.values.sum(axis=(1, 2)) - gain, a.delta, atol=2e-6)
    assert np.abs(a.delta).max() < 1e-3
    pad = np.repeat(np.asarray(m.emb.embedding[...])[:1][None], B, 0).repeat(T, 1)
    b = rnnscope.attributions(m, tokens, target=0, n_steps=16, internal_batch_size=16, baseline=0)
    gain0 = f(emb)[:, 0] - f(pad)[:, 0]
    np.testing.assert_allclose(b.values.sum(axis=(1, 2)) - gain0, b.delta, atol=2e-6)
    s = rnnscope.attributions(m, tokens, target=0, method="saliency")
    want = np.abs(_grad(_onehot([[0] * B]), jac(emb))).sum(axis=2)
    np.testing.assert_allclose(s.values[..., 0], want, atol=1e-5)
    with pytest.raises(InputError, match=r"token ids must be in \[0, 12\)"):
        rnnscope.attributions(m, tokens + 5, target=0)
    with pytest.raises(InputError, match=r"no nnx\.Embed"):
        rnnscope.attributions(_net(), tokens, target=0)
