"""flax.nnx activations and gradients, against autodiff written here: ``nnx.grad`` of the loss
with respect to the raw parameters (sliced by hand from flax's Linear layers), and with respect
to a layer's output by running the rest of the model as a function of that output."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError, LayerError

nnx = pytest.importorskip("flax.nnx")
jax = pytest.importorskip("jax")
jnp = jax.numpy

B, T, F, H = 3, 3, 3, 4
TOL = 1e-5


def built(make: object, rng: np.random.Generator) -> object:
    """A module built abstractly (no initialiser compiles), its parameters set from numpy."""
    module = nnx.eval_shape(make)
    for _, v in nnx.iter_graph(module):
        if isinstance(v, nnx.Param):
            v.set_value(jnp.asarray(rng.normal(scale=0.5, size=v.shape).astype(np.float32)))
    return module


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        rng = np.random.default_rng(0)
        self.bi = nnx.Bidirectional(
            nnx.RNN(built(lambda: nnx.OptimizedLSTMCell(F, H, rngs=nnx.Rngs(0)), rng)),
            nnx.RNN(built(lambda: nnx.OptimizedLSTMCell(F, H, rngs=nnx.Rngs(0)), rng)),
        )
        self.gru = nnx.RNN(built(lambda: nnx.GRUCell(2 * H, H, rngs=nnx.Rngs(0)), rng))
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.head = built(lambda: nnx.Linear(H, 1, rngs=nnx.Rngs(0)), rng)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.drop(self.gru(self.bi(x))))


def mse(p: jax.Array, t: jax.Array) -> jax.Array:
    return ((p - t) ** 2).mean()


@pytest.fixture(scope="module")
def setup() -> tuple[Net, np.ndarray, np.ndarray]:
    net = Net(nnx.Rngs(0))
    net.eval()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, F)).astype(np.float32)
    y = rng.normal(size=(B, T, 1)).astype(np.float32)
    return net, x, y


def test_weight_gradients_equal_jax_grad(setup: tuple) -> None:
    net, x, y = setup
    before = np.asarray(net.gru.cell.dense_i.kernel[...]).copy()
    g = rnnscope.gradients(net, x, y, wrt="weights", loss=mse)
    expected = nnx.grad(lambda m: mse(m(jnp.asarray(x)), jnp.asarray(y)))(nnx.clone(net))
    gru = expected["gru"]["cell"]
    dz = np.asarray(gru["dense_i"]["kernel"][...])[:, H : 2 * H]  # flax blocks r, z, n
    np.testing.assert_allclose(g["gru"].array("kernel", gate="update"), dz, atol=TOL)
    dbn = np.asarray(gru["dense_i"]["bias"][...])[2 * H :]
    np.testing.assert_allclose(g["gru"].array("bias", gate="new"), dbn, atol=TOL)
    back = expected["bi"]["backward_rnn"]["cell"]
    dhf = np.asarray(back["dense_h"]["kernel"][...])[:, H : 2 * H]  # i, f, g, o
    np.testing.assert_allclose(
        g["bi"].array("recurrent_kernel", "forget", "backward"), dhf, atol=TOL
    )
    np.testing.assert_allclose(
        g["head"].array("kernel"), np.asarray(expected["head"]["kernel"][...]), atol=TOL
    )
    # nothing reached the model: weights and mode unchanged
    np.testing.assert_array_equal(np.asarray(net.gru.cell.dense_i.kernel[...]), before)
    assert net.drop.deterministic is True


def test_output_gradients_equal_jax_grad(setup: tuple) -> None:
    net, x, y = setup
    g = rnnscope.gradients(net, x, y, layers=["bi", "gru"], loss=mse)
    h_bi = net.bi(jnp.asarray(x))
    d_bi = nnx.grad(lambda m, h: mse(m.head(m.gru(h)), jnp.asarray(y)), argnums=1)(net, h_bi)
    h_gru = net.gru(h_bi)
    d_gru = nnx.grad(lambda m, h: mse(m.head(h), jnp.asarray(y)), argnums=1)(net, h_gru)
    np.testing.assert_allclose(g["bi"], np.asarray(d_bi), atol=TOL)
    np.testing.assert_allclose(g["gru"], np.asarray(d_gru), atol=TOL)
    acts = rnnscope.activations(net, x, "gru")
    np.testing.assert_allclose(acts["gru"], np.asarray(h_gru), atol=TOL)


class Head(nnx.Module):
    """No recurrence (nothing to compile for long): loss, sample weights and modes."""

    def __init__(self) -> None:
        self.dense = built(lambda: nnx.Linear(F, 1, rngs=nnx.Rngs(0)), np.random.default_rng(2))
        self.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(1))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.dense(self.drop(x))


def test_sample_weight_and_training_mode(setup: tuple) -> None:
    _, x, y = setup
    net = Head()
    net.eval()
    sw = np.array([1.0, 0.0, 3.0], np.float32)  # sum != batch

    def per_sample(p: jax.Array, t: jax.Array) -> jax.Array:
        return ((p - t) ** 2).mean(axis=(1, 2))

    g = rnnscope.gradients(net, x, y, "dense", wrt="weights", loss=per_sample, sample_weight=sw)

    def weighted(k: jax.Array) -> jax.Array:
        p = jnp.asarray(x) @ k + net.dense.bias[...]
        return (per_sample(p, jnp.asarray(y)) * sw).sum() / B

    expected = jax.grad(weighted)(net.dense.kernel[...])
    np.testing.assert_allclose(g["dense"].array("kernel"), np.asarray(expected), atol=TOL)
    # training=True turns dropout on in the clone only
    a = rnnscope.activations(net, x, "dense", training=True)["dense"]
    assert not np.allclose(a, np.asarray(net.dense(jnp.asarray(x))), atol=1e-3)
    np.testing.assert_allclose(
        rnnscope.activations(net, x, "dense")["dense"], np.asarray(net(jnp.asarray(x))), atol=TOL
    )
    assert net.drop.deterministic is True
    with pytest.raises(InputError, match="gradients of a flax model need loss="):
        rnnscope.gradients(net, x, y, "dense")
    with pytest.raises(InputError, match=r"expected a scalar"):
        rnnscope.gradients(net, x, y, "dense", loss=lambda p, t: (p - t) ** 2)
    with pytest.raises(InputError, match=r"sample_weight needs a per-sample loss"):
        rnnscope.gradients(net, x, y, "dense", loss=mse, sample_weight=sw)


def test_bare_cell_output_refused(setup: tuple) -> None:
    _, x, _ = setup
    cell = nnx.eval_shape(lambda: nnx.GRUCell(F, H, rngs=nnx.Rngs(0)))
    with pytest.raises(LayerError, match=r"bare GRUCell.*wrap it in nnx\.RNN"):
        rnnscope.activations(cell, x, "cell")
    assert rnnscope.activations(cell, x) == {}  # left out by default, as Keras's stacked cells
    assert rnnscope.masks(cell, x) == {"cell": None}
