"""The See RNN calls from the issue, verbatim, on Keras 3 (every backend): they run and draw
their layouts, and the numbers they return are rnnscope's checked ones."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend
keras = pytest.importorskip("keras")
pytest.importorskip("matplotlib")
from rnnscope.compat.see_rnn import (  # noqa: E402
    detect_nans,
    features_0D,
    features_1D,
    features_2D,
    features_hist,
    get_gradients,
    get_outputs,
    get_rnn_gradients,
    get_rnn_weights,
    get_weights,
    rnn_heatmap,
    rnn_histogram,
    rnn_summary,
    show_features_0D,
    show_features_1D,
    show_features_2D,
    weights_norm,
)

B, T, F = 6, 5, 3


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((T, F))
    h = keras.layers.LSTM(4, return_sequences=True, name="lstm")(inp)
    h = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True), name="bidir")(h)
    h = keras.layers.GRU(5, return_sequences=True, name="gru")(h)
    last = keras.layers.SimpleRNN(2, name="last")(h)  # return_sequences=False
    out = keras.layers.Dense(1, name="head")(last)
    m = keras.Model(inp, out)
    m.compile(optimizer="sgd", loss="mse")
    return m


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(B, T, F)).astype("f4"), rng.normal(size=(B, 1)).astype("f4")


def _images(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def test_the_issue_calls_draw_their_layouts(model, xy):
    x, y = xy
    fig = rnn_histogram(model, "lstm", equate_axes=False, show_bias=False)
    assert len(fig.axes) == 8  # 2 parts x 4 gates
    assert len({ax.get_xlim() for ax in fig.axes}) == 8
    fig = rnn_histogram(model, "lstm", equate_axes=True, show_bias=False)
    assert len({ax.get_xlim() for ax in fig.axes}) == 2  # shared within each part
    fig = rnn_heatmap(model, "lstm")
    assert len(_images(fig)) == 3
    figs = rnn_histogram(model, "bidir", equate_axes=2)
    assert len(figs) == 2 and all(len(f.axes) == 12 for f in figs)  # 3 parts x 4 gates each
    assert len({ax.get_xlim() for f in figs for ax in f.axes}) == 2  # shared within a figure
    figs = rnn_heatmap(model, "bidir", norm=(-0.8, 0.8))
    assert all(ax.images[0].get_clim() == (-0.8, 0.8) for f in figs for ax in _images(f))
    fig = rnn_heatmap(
        model, "gru", mode="grads", input_data=x, labels=y, cmap=None, absolute_value=True
    )
    expected = rnnscope.gradients(model, x, y, layers="gru", wrt="weights")["gru"]
    np.testing.assert_allclose(
        _images(fig)[0].images[0].get_array(),
        np.abs(expected.array("kernel")),
        rtol=1e-5,
        atol=1e-7,
    )


def test_the_answer_calls(model, xy):
    x, y = xy
    grads = get_rnn_gradients(model, x, y, layer_idx=2)  # model.layers[2] is 'bidir'
    assert grads.shape == (B, T, 6)
    np.testing.assert_allclose(
        grads, rnnscope.gradients(model, x, y, layers="bidir")["bidir"], rtol=1e-6
    )
    fig = show_features_1D(grads[0], n_rows=2)
    assert len([ax for ax in fig.axes if ax.axison]) == 6  # one panel per channel
    fig = show_features_1D(grads, n_rows=2)
    assert len(fig.axes[0].get_lines()) == B + 1  # a line per sample, and the zero line
    fig = show_features_2D(grads, n_rows=4, norm=(-0.01, 0.01))
    assert len(_images(fig)) == B
    assert all(ax.images[0].get_clim() == (-0.01, 0.01) for ax in _images(fig))
    fig = show_features_2D(grads[0], norm=(-0.0001, 0.0001), reflect_half=True)
    drawn = np.asarray(_images(fig)[0].images[0].get_array())  # channels x time
    np.testing.assert_array_equal(drawn[3:], grads[0, ::-1, 3:].T)
    last = get_rnn_gradients(model, x, y, layer_name="last")
    assert last.shape == (B, 2)
    fig = show_features_0D(last)
    assert len(fig.axes[0].collections) == B
    fig = show_features_2D(
        grads, n_rows=8, norm=(-0.0001, 0.0001), show_xy_ticks=[0, 0], show_title=False
    )
    assert fig._suptitle is None and len(_images(fig)) == B


def test_see_rnn_data_functions(model, xy):
    x, y = xy
    assert [w.shape for w in get_weights(model, "gru")] == [
        w.shape for w in model.get_layer("gru").get_weights()
    ]
    for ours, theirs in zip(
        get_weights(model, "bidir"), model.get_layer("bidir").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)
    k, rk, _b = get_rnn_weights(model, "lstm")
    np.testing.assert_array_equal(k, model.get_layer("lstm").get_weights()[0])
    gates = get_rnn_weights(model, "lstm", concat_gates=False)
    assert len(gates) == 3 and len(gates[0]) == 4
    np.testing.assert_array_equal(gates[1][1], rk[:, 4:8])  # recurrent kernel, forget gate
    fwd, bwd = get_rnn_weights(model, "bidir")
    assert fwd[0].shape == bwd[0].shape == (4, 12)
    outs = get_outputs(model, ["lstm", "head"], x)
    assert [o.shape for o in outs] == [(B, T, 4), (B, 1)]
    gw = get_gradients(model, "gru", x, y, mode="weights")
    assert [g.shape for g in gw] == [w.shape for w in model.get_layer("gru").get_weights()]
    assert get_gradients(model, 1, x, y).shape == (B, T, 4)  # model.layers[1] is 'lstm'
    assert set(get_gradients(model, ["lstm", "gru"], x, y, as_dict=True)) == {"lstm", "gru"}


def test_weights_norm_tracks_over_calls(model):
    stats = weights_norm(model, "lstm")
    kernel = model.get_layer("lstm").get_weights()[0]
    norms = np.sqrt((kernel**2).sum(axis=-1))
    assert stats["lstm"][0] == pytest.approx([norms.max(), norms.mean()], rel=1e-6)
    track: dict = {}
    weights_norm(model, ["lstm", "gru"], track)
    weights_norm(model, ["lstm", "gru"], track)
    assert set(track) == {"lstm", "gru"}
    assert len(track["gru"]) == 3 and len(track["gru"][0]) == 2  # 3 weights, 2 calls


def test_detect_nans_summary_and_features():
    assert detect_nans(np.ones(4)) is None
    assert detect_nans(np.array([np.nan, 1, np.inf, 2.0])) == "NaN: 25%, Inf: 25%"
    assert detect_nans(np.array([np.nan, 1.0]), include_inf=False) == "NaN: 50%"
    data = np.random.default_rng(0).normal(size=(3, 4, 2))
    assert len([ax for ax in features_1D(data).axes if ax.axison]) == 2
    assert len(_images(features_2D(data, n_rows=1))) == 3
    assert len(features_0D(data[:, 0]).axes[0].collections) == 3
    assert len([ax for ax in features_hist(data).axes if ax.patches]) == 3


def test_summary_of_a_layer(model, capsys):
    s = rnn_summary(model.get_layer("gru"))
    assert {r.gate for r in s.rows} == {"update", "reset", "new"}
    assert "update" in capsys.readouterr().out


def test_unknown_keywords_name_themselves_and_the_accepted_ones(model):
    with pytest.raises(TypeError, match=r"'bogus'.*accepts: model, _id, .*equate_axes"):
        rnn_histogram(model, "lstm", bogus=1)
    with pytest.raises(TypeError, match=r"'normalize'.*accepts: .*norm"):
        rnn_heatmap(model, "lstm", normalize=True)
    with pytest.raises(TypeError, match="'layer'"):
        get_rnn_gradients(model, None, None, layer=1)
    with pytest.raises(TypeError, match="'colour'"):
        show_features_2D(np.zeros((2, 3, 4)), colour="red")
