"""rnnscope.tf_keras.Monitor: the same monitor on legacy tf-keras models."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

tf_keras = pytest.importorskip("tf_keras")
pytest.importorskip("pandas")
from rnnscope.tf_keras import Monitor, weight_loss  # noqa: E402

U = 4


class Snapshot(tf_keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights_at = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights_at.append([np.array(w) for w in self.model.get_weights()])


def test_tf_keras_monitor_records_training_gradients(tmp_path):
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(
        [
            tf_keras.Input((6, 3)),
            tf_keras.layers.LSTM(U, name="lstm", kernel_regularizer=tf_keras.regularizers.L2(0.01)),
            tf_keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile(optimizer=tf_keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 6, 3)).astype("f4"), rng.normal(size=(32, 1)).astype("f4")
    db, snap = tmp_path / "run.db", Snapshot()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[Monitor(db, every=2), snap],
    )
    h = rnnscope.history(db)
    assert sorted(set(h["step"])) == [0, 2, 3]  # every 2nd step, and the last
    rk = h[(h.layer == "lstm") & (h.part == "recurrent_kernel") & (h.gate == "forget")]
    rk = rk.set_index("step")
    kernel = snap.weights_at[2][1][:, U : 2 * U]  # tf-keras LSTM: kernel, recurrent, bias
    assert rk.loc[2, "weight_norm"] == pytest.approx(np.linalg.norm(kernel), rel=1e-5)
    model.set_weights(snap.weights_at[1])  # batch 2's gradient, at the weights it met
    import tensorflow as tf

    with tf.GradientTape() as tape:  # tf-keras's own gradient of the batch's loss
        pred = model(x[16:24], training=True)
        loss = tf.reduce_mean(tf.square(y[16:24] - pred)) + tf.add_n(model.losses)
    rk_var = model.get_layer("lstm").cell.recurrent_kernel
    expected = np.linalg.norm(tape.gradient(loss, rk_var).numpy()[:, U : 2 * U])  # i, f, c, o
    assert rk.loc[2, "grad_norm"] == pytest.approx(expected, rel=1e-4)
    assert "apply_gradients" not in vars(model.optimizer)
    assert rnnscope.history(db, "runs").iloc[0]["framework"].startswith("tf_keras")
    model(x[:2])
    assert weight_loss(model) == pytest.approx(float(sum(model.losses)), rel=1e-5)
    from rnnscope.compat import see_rnn

    assert see_rnn.weight_loss(model) == pytest.approx(weight_loss(model))
