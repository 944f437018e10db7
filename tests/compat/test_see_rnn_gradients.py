"""``get_gradients``, ``get_outputs`` and ``mode='grads'`` against the frameworks' own gradients.

See RNN's gradient functions need TF1 graph mode or private Keras training internals that no
longer exist, so the oracle is each framework's autodiff run here in the test
(``tf.GradientTape``, ``torch.autograd``, ``jax.grad``) on a multi-input model whose middle
layers (``Concatenate``, ``Activation``) have no weights; expected arrays are sliced by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_tf_keras, requires_torch

from ._artists import assert_density_histogram

pytest.importorskip("matplotlib")
from rnnscope.compat import see_rnn

B, T, F = 3, 4, 2


def _data():
    rng = np.random.default_rng(7)
    x1 = rng.normal(size=(B, T, F)).astype("f4")
    x2 = rng.normal(size=(B, T, F)).astype("f4")
    y = rng.normal(size=(B, 2)).astype("f4")
    return [x1, x2], y


def _build(k):
    """Two inputs -> LSTM / GRU -> Concatenate -> Activation -> Dense, compiled with mse."""
    L = k.layers
    a, b = L.Input((T, F), name="a"), L.Input((T, F), name="b")
    h1 = L.LSTM(3, name="lstm")(a)
    h2 = L.GRU(2, name="gru")(b)
    c = L.Concatenate(name="concat")([h1, h2])
    act = L.Activation("tanh", name="act")(c)
    out = L.Dense(2, name="dense")(act)
    m = k.Model([a, b], out)
    m.compile(optimizer="sgd", loss="mse")
    return m


def _tf_oracle(m, xs, y):
    """Gradients of the mse w.r.t. the Concatenate and Activation outputs and the weights."""
    import tensorflow as tf

    with tf.GradientTape(persistent=True) as tape:
        h1 = m.get_layer("lstm")(xs[0])
        h2 = m.get_layer("gru")(xs[1])
        c = tf.concat([h1, h2], axis=-1)
        tape.watch(c)
        act = tf.tanh(c)
        tape.watch(act)
        out = m.get_layer("dense")(act)
        loss = tf.reduce_mean(tf.square(out - y))
    ws = m.get_layer("lstm").trainable_weights + m.get_layer("dense").trainable_weights
    gw = tape.gradient(loss, ws)
    return {
        "concat": tape.gradient(loss, c).numpy(),
        "act": tape.gradient(loss, act).numpy(),
        "weights": [g.numpy() for g in gw],
        "outputs": {"concat": c.numpy(), "act": act.numpy()},
    }


def _check(m, oracle, xs, y, atol=1e-6):
    g = see_rnn.get_gradients(m, ["concat", "act"], xs, y)
    np.testing.assert_allclose(g[0], oracle["concat"], atol=atol)
    np.testing.assert_allclose(g[1], oracle["act"], atol=atol)
    one = see_rnn.get_gradients(m, "act", xs, y)  # one layer asked for: one array
    np.testing.assert_allclose(one, oracle["act"], atol=atol)
    gw = see_rnn.get_gradients(m, ["lstm", "dense"], xs, y, mode="weights")
    assert len(gw) == 5  # kernel, recurrent kernel, bias, dense kernel, dense bias: flat
    for a, b in zip(gw, oracle["weights"], strict=True):
        np.testing.assert_allclose(a, b, atol=atol)
    by_name = see_rnn.get_gradients(m, "dense", xs, y, mode="weights", as_dict=True)
    assert len(by_name) == 2 and all("dense" in k for k in by_name)
    np.testing.assert_allclose(next(iter(by_name.values())), oracle["weights"][3], atol=atol)
    lstm = m.get_layer("lstm")
    via_params = see_rnn.get_gradients(m, None, xs, y, params=lstm.trainable_weights[1:2])
    np.testing.assert_allclose(via_params, oracle["weights"][1], atol=atol)
    outs = see_rnn.get_outputs(m, ["concat", "act"], xs, as_dict=True)
    np.testing.assert_allclose(outs["concat"], oracle["outputs"]["concat"], atol=atol)
    np.testing.assert_allclose(outs["act"], oracle["outputs"]["act"], atol=atol)
    with pytest.raises(Exception, match="mode"):
        see_rnn.get_gradients(m, "act", xs, y, mode="output")
    # rnn_heatmap(mode='grads') draws the LSTM's kernel gradient as it is laid out
    figs, axes = see_rnn.rnn_heatmap(m, "lstm", mode="grads", input_data=xs, labels=y, norm=None)
    drawn = np.asarray(figs[0].axes[0].images[0].get_array())
    np.testing.assert_allclose(drawn, oracle["weights"][0], atol=atol)
    bias = np.asarray(axes[0][1, 0].images[0].get_array())
    np.testing.assert_allclose(bias, oracle["weights"][2][None], atol=atol)
    # and the histogram's forget-gate panel counts the recurrent kernel's forget block
    figs, axes = see_rnn.rnn_histogram(m, "lstm", mode="grads", input_data=xs, labels=y, bins=5)
    block = oracle["weights"][1][:, 3:6].ravel()
    assert_density_histogram(axes[0][1, 1], block)


@requires_tf_keras
def test_tf_keras_gradients_match_gradient_tape():
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    m = _build(tf_keras)
    xs, y = _data()
    _check(m, _tf_oracle(m, xs, y), xs, y)


@pytest.mark.keras_backend
def test_keras_gradients_match_the_backends_autodiff():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    m = _build(keras)
    xs, y = _data()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        oracle = _tf_oracle(m, xs, y)
    elif backend == "jax":
        oracle = _jax_oracle(keras, m, xs, y)
    else:
        oracle = _torch_keras_oracle(keras, m, xs, y)
    _check(m, oracle, xs, y, atol=1e-5)


def _jax_oracle(keras, m, xs, y):
    import jax
    import jax.numpy as jnp

    lstm, gru, dense = (m.get_layer(n) for n in ("lstm", "gru", "dense"))
    c0 = jnp.concatenate([lstm(xs[0]), gru(xs[1])], axis=-1)

    def from_c(c):
        return jnp.mean((dense(jnp.tanh(c)) - y) ** 2)

    def from_act(a):
        return jnp.mean((dense(a) - y) ** 2)

    tv = [v.value for v in m.trainable_variables]
    ntv = [v.value for v in m.non_trainable_variables]

    def from_weights(tv):
        pred, _ = m.stateless_call(tv, ntv, xs)
        return jnp.mean((pred - y) ** 2)

    gw = jax.grad(from_weights)(tv)
    want = [id(v) for v in (*lstm.trainable_weights, *dense.trainable_weights)]
    pos = {id(v): i for i, v in enumerate(m.trainable_variables)}
    return {
        "concat": np.asarray(jax.grad(from_c)(c0)),
        "act": np.asarray(jax.grad(from_act)(jnp.tanh(c0))),
        "weights": [np.asarray(gw[pos[i]]) for i in want],
        "outputs": {"concat": np.asarray(c0), "act": np.asarray(jnp.tanh(c0))},
    }


def _torch_keras_oracle(keras, m, xs, y):
    import torch

    lstm, gru, dense = (m.get_layer(n) for n in ("lstm", "gru", "dense"))

    def forward():
        c = torch.cat([lstm(xs[0]), gru(xs[1])], dim=-1)
        act = torch.tanh(c)
        return c, act, torch.mean((dense(act) - torch.as_tensor(y)) ** 2)

    ws = [v.value for v in (*lstm.trainable_weights, *dense.trainable_weights)]
    gw = torch.autograd.grad(forward()[2], ws)
    c, act, loss = forward()  # a second pass: its .grad fields hold only this backward
    c.retain_grad()
    act.retain_grad()
    loss.backward()
    return {
        "concat": c.grad.detach().cpu().numpy(),
        "act": act.grad.detach().cpu().numpy(),
        "weights": [g.detach().cpu().numpy() for g in gw],
        "outputs": {"concat": c.detach().cpu().numpy(), "act": act.detach().cpu().numpy()},
    }


@requires_torch
def test_torch_gradients_match_autograd():
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(F, 3, batch_first=True)
            self.act = torch.nn.Tanh()
            self.head = torch.nn.Linear(3, 2)

        def forward(self, x):
            seq, _ = self.lstm(x)
            return self.head(self.act(seq[:, -1]))

    net = Net()
    xs, y = _data()
    x, yt = torch.as_tensor(xs[0]), torch.as_tensor(y)
    mse = torch.nn.MSELoss()
    seen = {}
    hook = net.lstm.register_forward_hook(lambda mod, i, o: seen.update(seq=o[0]))
    try:
        out = net(x)
        seen["seq"].retain_grad()
        mse(out, yt).backward()
    finally:
        hook.remove()
    g = see_rnn.get_gradients(net, "lstm", xs[0], y, loss=mse)
    np.testing.assert_allclose(g, seen["seq"].grad.numpy(), atol=1e-6)
    gw = see_rnn.get_gradients(net, "lstm", xs[0], y, loss=mse, mode="weights", as_dict=True)
    assert list(gw) == [n for n, _ in net.lstm.named_parameters(prefix="lstm")]
    for n, p in net.lstm.named_parameters(prefix="lstm"):
        np.testing.assert_allclose(gw[n], p.grad.numpy(), atol=1e-6)
    outs = see_rnn.get_outputs(net, "lstm", xs[0])
    np.testing.assert_allclose(outs, seen["seq"].detach().numpy(), atol=1e-6)
    # rnn_heatmap(mode='grads'): the kernel panel is weight_ih's gradient transposed (Keras
    # layout, torch's i, f, g, o gate order), the bias row the two bias gradients.
    _figs, axes = see_rnn.rnn_heatmap(
        net, "lstm", mode="grads", input_data=xs[0], labels=y, loss=mse, norm=None
    )
    kernel = np.asarray(axes[0][0, 0].images[0].get_array())
    np.testing.assert_allclose(kernel, net.lstm.weight_ih_l0.grad.numpy().T, atol=1e-6)
    bias = np.asarray(axes[0][1, 0].images[0].get_array())
    want = np.stack([net.lstm.bias_ih_l0.grad.numpy(), net.lstm.bias_hh_l0.grad.numpy()])
    np.testing.assert_allclose(bias, want, atol=1e-6)


@requires_tf_keras
def test_multi_output_model_sums_the_compiled_losses():
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    L = tf_keras.layers
    x_in = L.Input((T, F))
    h = L.LSTM(3, name="lstm")(x_in)
    o1, o2 = L.Dense(1, name="o1")(h), L.Dense(2, name="o2")(h)
    m = tf_keras.Model(x_in, [o1, o2])
    m.compile(optimizer="sgd", loss=["mse", "mse"])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, T, F)).astype("f4")
    y1, y2 = rng.normal(size=(B, 1)).astype("f4"), rng.normal(size=(B, 2)).astype("f4")
    with tf.GradientTape() as tape:
        hv = m.get_layer("lstm")(x)
        tape.watch(hv)
        p1, p2 = m.get_layer("o1")(hv), m.get_layer("o2")(hv)
        loss = tf.reduce_mean(tf.square(p1 - y1)) + tf.reduce_mean(tf.square(p2 - y2))
    want = tape.gradient(loss, hv).numpy()
    got = see_rnn.get_gradients(m, "lstm", x, [y1, y2])
    np.testing.assert_allclose(got, want, atol=1e-6)
    outs = see_rnn.get_outputs(m, ["o1", "o2"], x)
    np.testing.assert_allclose(outs[0], p1.numpy(), atol=1e-6)
    np.testing.assert_allclose(outs[1], p2.numpy(), atol=1e-6)
