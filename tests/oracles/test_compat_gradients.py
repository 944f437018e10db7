"""``rnnscope.compat.see_rnn`` gradients in value: weight gradients in ``layer.get_weights()``
order and output gradients, against the framework's own autodiff (Keras 3 on its backend,
tf-keras's ``GradientTape``, torch's ``autograd``). The compat tests in ``tests/compat`` check
shapes and drawings; these check the numbers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracles import autodiff

pytest.importorskip("matplotlib")
from rnnscope.compat import see_rnn

B, T, F = 4, 5, 3


def _keras_model(k):
    k.utils.set_random_seed(0)
    inp = k.Input((T, F))
    h = k.layers.LSTM(4, return_sequences=True, name="lstm")(inp)
    h = k.layers.GRU(3, return_sequences=True, name="gru")(h)
    model = k.Model(inp, k.layers.Dense(1, name="head")(h))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(B, T, F)).astype("f4"), rng.normal(size=(B, T, 1)).astype("f4")


@pytest.mark.keras_backend
def test_keras_gradients_are_the_backends():
    keras = pytest.importorskip("keras")
    model, (x, y) = _keras_model(keras), _data()
    ty = keras.ops.convert_to_tensor(y)

    def mse(pred):
        return keras.ops.mean(keras.ops.square(ty - pred))

    grads = autodiff.keras_grads(keras, model, mse, x)
    for name in ("lstm", "gru"):
        ours = see_rnn.get_gradients(model, name, x, y, mode="weights")
        theirs = [grads[id(v)] for v in model.get_layer(name).weights]
        assert len(ours) == len(theirs) == 3
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-7, err_msg=name)
    gru = model.get_layer("gru")
    front = keras.Model(model.input, gru.output)
    back = keras.Model(gru.output, model.output)
    h = np.asarray(keras.ops.convert_to_numpy(front(x)))
    want = autodiff.keras_grad_of_input(keras, lambda t: mse(back(t)), h)
    got = see_rnn.get_rnn_gradients(model, x, y, layer_name="gru")
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-7)
    assert np.abs(want).max() > 1e-3


def test_tf_keras_gradients_are_tape_gradients():
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    model, (x, y) = _keras_model(tf_keras), _data()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(y - model(x)))
    grads = tape.gradient(loss, model.trainable_variables)
    by_id = {id(v): g.numpy() for v, g in zip(model.trainable_variables, grads, strict=True)}
    gru = model.get_layer("gru")
    ours = see_rnn.get_gradients(model, "gru", x, y, mode="weights")
    theirs = [by_id[id(v)] for v in gru.weights]  # kernel, recurrent kernel, (2, 3u) bias
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-7)
    front = tf_keras.Model(model.input, gru.output)
    back = tf_keras.Model(gru.output, model.output)
    h = tf.constant(front(x))
    with tf.GradientTape() as tape:
        tape.watch(h)
        loss = tf.reduce_mean(tf.square(y - back(h)))
    want = tape.gradient(loss, h).numpy()
    np.testing.assert_allclose(
        see_rnn.get_rnn_gradients(model, x, y, layer_name="gru"), want, rtol=2e-4, atol=2e-7
    )


def test_torch_output_gradients_are_autograd():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    enc, head = torch.nn.LSTM(F, 4, batch_first=True, bidirectional=True), torch.nn.Linear(8, 1)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.head = enc, head

        def forward(self, x):
            return self.head(self.enc(x)[0][:, -1])

    net = Net()
    x, y = torch.randn(B, T, F), torch.randn(B, 1)
    out = enc(x)[0].detach().requires_grad_(True)
    (want,) = torch.autograd.grad(torch.nn.functional.mse_loss(head(out[:, -1]), y), [out])
    got = see_rnn.get_gradients(net, "enc", x, y, loss=torch.nn.MSELoss())
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-8)
    assert np.abs(want.numpy()[:, -1]).max() > 1e-3 and not want.numpy()[:, :-1].any()
