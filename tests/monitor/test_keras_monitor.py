"""rnnscope.keras.Monitor on every Keras backend, and Keras weight penalties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rnnscope
from tests.oracles import autodiff

pytestmark = pytest.mark.keras_backend
keras = pytest.importorskip("keras")
pytest.importorskip("pandas")
from rnnscope.keras import Monitor, weight_loss, weight_penalties  # noqa: E402

U = 4


def _model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(
                U,
                return_sequences=True,
                name="lstm",
                kernel_regularizer=keras.regularizers.L2(0.01),
            ),
            keras.layers.GRU(
                3, name="gru", recurrent_regularizer=keras.regularizers.L1L2(0.001, 0.002)
            ),
            keras.layers.Dense(1, name="head", bias_regularizer=keras.regularizers.L1(0.1)),
        ]
    )
    m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return m


def _data(n=32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6, 3)).astype("f4"), rng.normal(size=(n, 1)).astype("f4")


class Snapshot(keras.callbacks.Callback):
    """The LSTM's recurrent kernel after every batch, as Keras holds it."""

    def __init__(self):
        super().__init__()
        self.kernels, self.weights_at = [], []

    def on_train_batch_end(self, batch, logs=None):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        k = keras.ops.convert_to_numpy(self.model.get_layer("lstm").cell.recurrent_kernel)
        self.kernels.append(np.array(k))
        self.weights_at.append([np.array(w) for w in self.model.get_weights()])


def test_records_keras_weights_update_ratios_and_gradients(tmp_path):
    model, (x, y) = _model(), _data()
    db = tmp_path / "run.db"
    held = (x[:8], y[:8])
    snap = Snapshot()
    mon = Monitor(db, every=2, data=held, timestep_layers="lstm")
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[mon, snap], verbose=0, shuffle=False)
    h = rnnscope.history(db)
    assert sorted(set(h["step"])) == [0, 2, 4, 6, 7]  # every 2nd step, and the last
    assert set(h[h.step == 6]["epoch"]) == {1}
    rk = h[(h.layer == "lstm") & (h.part == "recurrent_kernel") & (h.gate == "forget")]
    rk = rk.set_index("step")
    for step in (0, 2, 4):
        k = snap.kernels[step][:, U : 2 * U]  # Keras order i, f, c, o
        after = snap.kernels[step + 1][:, U : 2 * U]
        assert rk.loc[step, "weight_norm"] == pytest.approx(np.linalg.norm(k), rel=1e-5)
        assert rk.loc[step, "update_ratio"] == pytest.approx(
            np.linalg.norm(after - k) / np.linalg.norm(k), rel=1e-3
        )
    if keras.backend.backend() == "jax":  # the held batch, at the weights after batch 6
        model.set_weights(snap.weights_at[6])
        batch = held
    else:  # the training batch itself (epoch 1, batch 2), at the weights it was taken at
        model.set_weights(snap.weights_at[5])
        batch = (x[16:24], y[16:24])
    # Keras's own gradient of the batch's mse (the penalties do not reach the LSTM's recurrent
    # kernel), sliced by hand: columns i, f, c, o.
    bx, by = (keras.ops.convert_to_tensor(a) for a in batch)
    grads = autodiff.keras_grads(
        keras, model, lambda pred: keras.ops.mean(keras.ops.square(by - pred)), bx
    )
    rk_grad = grads[id(model.get_layer("lstm").cell.recurrent_kernel)]
    expected = np.linalg.norm(rk_grad[:, U : 2 * U])
    assert rk.loc[6, "grad_norm"] == pytest.approx(expected, rel=1e-4)
    assert not {"apply", "apply_gradients"} & set(vars(model.optimizer))  # the tap is gone
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # and training without it works
    ts = rnnscope.history(db, "timestep_grads")
    assert sorted(set(ts["step"])) == [0, 2, 4, 6, 7] and set(ts["timestep"]) == set(range(6))
    assert rnnscope.history(db, "runs").iloc[0]["framework"].startswith("keras")


class Poison(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            cell = self.model.get_layer("lstm").cell
            k = np.array(keras.ops.convert_to_numpy(cell.kernel))
            k[0, 0] = np.nan
            cell.kernel.assign(k)


def test_first_nan_loss_is_recorded_at_its_step(tmp_path):
    model, (x, y) = _model(), _data()
    db = tmp_path / "run.db"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[Poison(), Monitor(db, every=100)],
        )
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("first non-finite loss at step 2" in m for m in said)
    assert any("first non-finite weights at step 2" in m for m in said)
    events = rnnscope.history(db, "events")
    assert events.iloc[0]["kind"] == "loss" and events.iloc[0]["step"] == 2
    h = rnnscope.history(db)
    assert sorted(set(h["step"])) == [0, 2, 3]  # step 0, the NaN's step, the last step
    assert h[(h.step == 2) & (h.layer == "lstm") & (h.part == "kernel")]["nan"].sum() >= 1


def test_weight_penalties_add_up_to_the_regularisation_loss():
    model, (x, _) = _model(), _data()
    model(x[:2])  # a forward pass fills model.losses
    found = {(p["layer"], p["weight"]): p for p in weight_penalties(model)}
    assert set(found) == {("lstm", "kernel"), ("gru", "recurrent_kernel"), ("head", "bias")}
    assert found[("gru", "recurrent_kernel")]["l1"] == pytest.approx(0.001)
    assert found[("gru", "recurrent_kernel")]["l2"] == pytest.approx(0.002)
    k = keras.ops.convert_to_numpy(model.get_layer("lstm").cell.kernel)
    assert found[("lstm", "kernel")]["penalty"] == pytest.approx(0.01 * (k**2).sum(), rel=1e-5)
    total = sum(float(keras.ops.convert_to_numpy(v)) for v in model.losses)
    assert weight_loss(model) == pytest.approx(total, rel=1e-5)
    from rnnscope.compat import see_rnn

    assert see_rnn.weight_loss(model) == pytest.approx(total, rel=1e-5)
    found = see_rnn.get_weight_penalties(model)  # See RNN's {weight name: (l1, l2)}
    paths = [
        model.get_layer("lstm").cell.kernel.path,  # e.g. 'sequential/lstm/lstm_cell/kernel'
        model.get_layer("gru").cell.recurrent_kernel.path,
        model.get_layer("head").bias.path,
    ]
    assert list(found) == paths
    assert np.allclose([found[k] for k in found], [(0, 0.01), (0.001, 0.002), (0.1, 0)])
