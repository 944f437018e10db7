"""Every call of See RNN's README and example scripts (``sandbox.py``), as written there (old
keyword names included), through the compat layer on Keras 3 (each backend), tf-keras and
torch; each result is checked against the framework's own numbers.

One model per framework holds a plain LSTM, a Bidirectional LSTM and a last LSTM: the whole
sequence of calls runs on the plain layer, and on the Bidirectional layer every call whose
path differs with two directions (outputs, gradients, both-direction figures and limits). The
figure drawing itself does not depend on the layer, so the sandbox's 400-bin histograms are
drawn once per framework, not once per layer kind."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_tf_keras, requires_torch

from ._artists import assert_density_histogram

pytest.importorskip("matplotlib")
from rnnscope.compat.see_rnn import (
    features_0D,
    features_1D,
    features_2D,
    get_gradients,
    get_outputs,
    get_rnn_weights,
    rnn_heatmap,
    rnn_histogram,
)

B, T, U = 4, 10, 3


def _images(fig):
    return [np.asarray(im.get_array()) for ax in fig.axes for im in ax.images]


def _keras_model(k):
    """See RNN's README models in one: a plain and a Bidirectional stacked recurrent layer, the
    last layer returning one step."""
    L = k.layers
    ipt = L.Input((T, 2 * U))
    x = L.LSTM(U, activation="tanh", return_sequences=True)(ipt)
    x = L.Bidirectional(L.LSTM(U, return_sequences=True))(x)
    out = L.LSTM(U, activation="tanh", return_sequences=False)(x)
    model = k.Model(ipt, out)
    model.compile(k.optimizers.Adam(4e-3), "mse")
    return model


def _data():
    rng = np.random.default_rng(11)
    return rng.normal(size=(B, T, 2 * U)).astype("f4"), rng.uniform(-1, 1, (B, U)).astype("f4")


def _run_readme_and_sandbox(model, x, y, rnn_id, bidir_id, out_fn, weights_fn, grads_kw):
    """The calls; ``out_fn(_id)`` and ``weights_fn(_id)`` are the framework's own."""
    grads_all = get_gradients(model, rnn_id[0], x, y, **grads_kw)  # return_sequences=True
    grads_last = get_gradients(model, rnn_id[1], x, y, **grads_kw)  # return_sequences=False
    outs = get_outputs(model, rnn_id[0], x)
    width = outs.shape[-1]  # U, or 2U for a Bidirectional first layer
    if grads_last.ndim == 3:  # torch: the module's output is the sequence; forward() took [:, -1]
        assert not grads_last[:, :-1].any()
        grads_last = grads_last[:, -1]
    assert grads_all.shape == (B, T, width) and grads_last.shape == (B, U)
    np.testing.assert_allclose(outs, out_fn(rnn_id[0]), atol=1e-5)
    assert np.abs(grads_all).sum() > 0

    fig, axes = features_1D(outs[:1], share_xy=False)
    np.testing.assert_allclose(axes.flat[0].lines[0].get_ydata(), outs[0, :, 0])
    fig, axes = features_1D(outs[:1], share_xy=True, y_zero=True)
    assert list(axes.flat[0].lines[0].get_ydata()) == [0, 0]  # the y=0 line comes first
    fig, axes = features_1D(grads_all[:1], n_rows=2)
    fig, axes = features_1D(grads_all, n_rows=2)
    assert axes.size == width and len(axes.flat[1].lines) == B
    np.testing.assert_allclose(axes.flat[1].lines[2].get_ydata(), grads_all[2, :, 1])
    fig, axes = features_2D(grads_all, n_rows=4, norm=(-0.01, 0.01))
    np.testing.assert_allclose(_images(fig)[3], grads_all[3])
    fig, axes = features_1D(grads_all[0, :, :])
    fig, axes = features_2D(grads_all[:, :, 0], norm=(-0.0001, 0.0001))
    np.testing.assert_allclose(_images(fig)[0], grads_all[:, :, 0])
    fig, axes = features_2D(grads_all[0], norm=(-0.0001, 0.0001), reflect_half=True)
    fig, ax = features_0D(grads_last)
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], grads_last.ravel())
    fig, axes = features_2D(
        grads_all, n_rows=8, norm=(-0.0001, 0.0001), xy_ticks=[0, 0], title_mode=False
    )
    assert fig._suptitle is None and len(axes.flat[0].get_xticks()) == 0
    fig, axes = features_1D(grads_all, n_rows=2, xy_ticks=[1, 1])
    fig, axes = features_2D(grads_all, n_rows=8, xy_ticks=[1, 1], norm=(-0.01, 0.01))

    _close()
    figs, axes = rnn_histogram(model, rnn_id[0], equate_axes=False, bias=False)
    figs, axes = rnn_histogram(model, rnn_id[0], equate_axes=True, bias=False)
    assert len(figs[0].axes) == 4 * 2
    assert len({ax.get_xlim() for ax in figs[0].axes}) == 1  # one scale over the whole grid
    kernel = weights_fn(rnn_id[0])[0]
    assert_density_histogram(axes[0][1, 0], kernel[:, U : 2 * U])  # the forget gate's kernel
    figs, axes = rnn_heatmap(model, rnn_id[0])
    np.testing.assert_allclose(_images(figs[0])[0], kernel)
    # norm='auto': symmetric at the largest kernel / recurrent kernel magnitude (all directions)
    kernels = [w for w in weights_fn(rnn_id[0]) if w.ndim == 2]
    top = max(np.abs(w).max() for w in kernels)
    assert figs[0].axes[0].images[0].get_clim() == pytest.approx((-top, top))
    _close()
    _bidirectional_calls(model, x, y, bidir_id, out_fn, weights_fn, grads_kw)
    figs, axes = rnn_heatmap(
        model,
        rnn_id[0],
        mode="grads",
        input_data=x,
        labels=y,
        cmap=None,
        absolute_value=True,
        **_heat_kw(grads_kw),
    )
    assert (_images(figs[0])[0] >= 0).all() and figs[0].axes[0].images[0].cmap.name == "bone"

    _close()
    # sandbox.py
    fig, axes = features_1D(outs[:1], n_rows=8, show_borders=False)
    fig, axes = features_2D(outs, n_rows=8, norm=(-1, 1))
    figs, axes = rnn_histogram(model, rnn_id[0], mode="weights", bins=400)
    assert_density_histogram(axes[0][3, 1], weights_fn(rnn_id[0])[1][:, 3 * U :])  # output gate
    figs, axes = rnn_heatmap(model, rnn_id[0], mode="weights", norm="auto")
    fig, axes = features_1D(grads_all[0], show_borders=False, n_rows=8, title_mode="grads")
    assert fig._suptitle.get_text().startswith("(Gradients vs. Timesteps)")
    fig, axes = features_2D(grads_all, norm=(-1e-4, 1e-4), n_rows=8, title_mode="grads")
    kws = dict(_id=rnn_id[0], input_data=x, labels=y, **_heat_kw(grads_kw))
    figs, axes = rnn_histogram(model, mode="grads", bins=400, **kws)
    figs, axes = rnn_heatmap(model, mode="grads", cmap=None, absolute_value=True, **kws)
    data = get_rnn_weights(model, rnn_id[0])
    figs, axes = rnn_histogram(model, rnn_id[0], data=data)
    figs, axes = rnn_heatmap(model, rnn_id[0], data=data)
    np.testing.assert_allclose(_images(figs[0])[0], data[0])


def _bidirectional_calls(model, x, y, _id, out_fn, weights_fn, grads_kw):
    """The README's calls whose path differs on a layer with two directions."""
    outs = get_outputs(model, _id, x)
    np.testing.assert_allclose(outs, out_fn(_id), atol=1e-5)
    grads = get_gradients(model, _id, x, y, **grads_kw)
    assert grads.shape == (B, T, 2 * U) and np.abs(grads[..., U:]).sum() > 0
    fig, axes = features_1D(grads, n_rows=2)
    assert axes.size == 2 * U and len(axes.flat[U].lines) == B
    np.testing.assert_allclose(axes.flat[U].lines[2].get_ydata(), grads[2, :, U])  # backward
    fig, axes = features_2D(grads, n_rows=4, norm=(-0.01, 0.01))
    np.testing.assert_allclose(_images(fig)[3], grads[3])

    figs, axes = rnn_histogram(model, _id, equate_axes=True, bias=False)
    assert len(figs) == 2 and [len(f.axes) for f in figs] == [4 * 2, 4 * 2]
    assert len({ax.get_xlim() for ax in figs[0].axes}) == 1  # one scale over the whole grid
    forward = weights_fn(_id)[0]
    assert_density_histogram(axes[0][1, 0], forward[:, U : 2 * U])  # the forget gate's kernel
    figs, axes = rnn_histogram(model, _id, equate_axes=2)
    assert len(figs) == 2 and figs[1]._suptitle.get_text() == "BACKWARD LAYER"
    figs, axes = rnn_heatmap(model, _id)
    kernels = [w for w in weights_fn(_id) if w.ndim == 2]  # forward kernel, recurrent; backward
    np.testing.assert_allclose(_images(figs[0])[0], kernels[0])
    np.testing.assert_allclose(_images(figs[1])[0], kernels[2])
    # norm='auto': symmetric at the largest kernel / recurrent kernel magnitude (all directions)
    top = max(np.abs(w).max() for w in kernels)
    assert figs[0].axes[0].images[0].get_clim() == pytest.approx((-top, top))
    figs, axes = rnn_heatmap(model, _id, norm=(-0.8, 0.8))
    assert figs[0].axes[0].images[0].get_clim() == (-0.8, 0.8)
    figs, axes = rnn_heatmap(
        model,
        _id,
        mode="grads",
        input_data=x,
        labels=y,
        cmap=None,
        absolute_value=True,
        **_heat_kw(grads_kw),
    )
    assert len(figs) == 2 and all((_images(f)[0] >= 0).all() for f in figs)


def _close():
    import matplotlib.pyplot as plt

    plt.close("all")


def _heat_kw(grads_kw):
    return {"loss": grads_kw["loss"]} if "loss" in grads_kw else {}


def _keras_checks(k):
    k.utils.set_random_seed(1)
    model = _keras_model(k)
    x, y = _data()
    model.train_on_batch(x, y)

    def layer(_id):
        return model.layers[_id] if isinstance(_id, int) else model.get_layer(_id)

    def out_fn(_id):
        return np.asarray(k.Model(model.inputs, layer(_id).output).predict(x, verbose=0))

    def weights_fn(_id):  # forward kernel first; a Bidirectional's backward arrays follow
        return layer(_id).get_weights()

    _run_readme_and_sandbox(model, x, y, (1, 3), model.layers[2].name, out_fn, weights_fn, {})


@pytest.mark.keras_backend
def test_readme_and_sandbox_calls_on_keras():
    keras = pytest.importorskip("keras")
    _keras_checks(keras)


@requires_tf_keras
def test_readme_and_sandbox_calls_on_tf_keras():
    import tf_keras

    _keras_checks(tf_keras)


@requires_torch
def test_readme_and_sandbox_calls_on_torch():
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(2 * U, U, batch_first=True)
            self.bidir = torch.nn.LSTM(U, U, batch_first=True, bidirectional=True)
            self.last = torch.nn.LSTM(2 * U, U, batch_first=True)

        def forward(self, x):
            h, _ = self.lstm(x)
            h2, _ = self.bidir(h)
            return self.last(h2)[0][:, -1]

    net = Net()
    x, y = _data()

    def out_fn(name):  # the module's own output sequence
        with torch.no_grad():
            h = net.lstm(torch.as_tensor(x))[0]
            return (net.bidir(h)[0] if name == "bidir" else h).numpy()

    def weights_fn(name):  # Keras layout, by hand: kernel = weight_ih.T, per direction
        m = getattr(net, name)
        ends = ["_l0", "_l0_reverse"] if m.bidirectional else ["_l0"]
        return [
            getattr(m, f"weight_{k}{e}").detach().numpy().T for e in ends for k in "ih hh".split()
        ]

    _run_readme_and_sandbox(
        net, x, y, ("lstm", "last"), "bidir", out_fn, weights_fn, {"loss": torch.nn.MSELoss()}
    )
