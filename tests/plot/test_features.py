"""features_0d/1d/2d/hist and trace_plot: panel counts, data drawn, norm, reflect_half."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError, LayerError

pytest.importorskip("matplotlib")
from rnnscope import plot


def _panels(fig):
    return [
        ax for ax in fig.axes if ax.get_visible() and ax.axison and ax.get_label() != "<colorbar>"
    ]


@pytest.fixture
def data(rng):
    return rng.normal(size=(5, 7, 4)).astype("f4")  # samples, timesteps, channels


def test_features_2d_draws_each_sample_channels_by_time(data):
    fig = plot.features_2d(data, n_rows=2, norm=(-0.5, 0.5))
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 5
    assert sum(1 for ax in fig.axes if not ax.axison) == 1  # 2x3 grid, one left empty
    for i, ax in enumerate(panels):
        np.testing.assert_array_equal(ax.images[0].get_array(), data[i].T)
        assert ax.images[0].get_clim() == (-0.5, 0.5)
        assert ax.get_title() == f"sample {i}"
    fig = plot.features_2d(data[0], timesteps_xaxis=False, max_timesteps=3, annotations=None)
    (ax,) = [ax for ax in fig.axes if ax.images]
    np.testing.assert_array_equal(ax.images[0].get_array(), data[0, :3])
    assert ax.get_title() == ""


def test_reflect_half_flips_the_backward_half_in_time(data):
    fig = plot.features_2d(data, reflect_half=True, timesteps_xaxis=False)
    panels = [ax for ax in fig.axes if ax.images]
    for i, ax in enumerate(panels):
        drawn = np.asarray(ax.images[0].get_array())  # (time, channels)
        np.testing.assert_array_equal(drawn[:, :2], data[i, :, :2])  # forward half unchanged
        np.testing.assert_array_equal(drawn[:, 2:], data[i, ::-1, 2:])  # backward half reversed
    fig = plot.features_1d(data, reflect_half=True)
    np.testing.assert_array_equal(_panels(fig)[0].get_lines()[3].get_ydata(), data[0, ::-1, 3])
    with pytest.raises(InputError, match="even number of channels"):
        plot.features_2d(data[:, :, :3], reflect_half=True)


def test_ticks_titles_and_colorbar(data):
    fig = plot.features_2d(data, show_xy_ticks=(0, 0), show_title=False, colorbar=False)
    assert fig._suptitle is None
    assert not any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    for ax in [ax for ax in fig.axes if ax.images]:
        assert not any(t.get_visible() and t.get_text() for t in ax.get_xticklabels())
        assert not any(t.get_visible() and t.get_text() for t in ax.get_yticklabels())
    fig = plot.features_2d(data, label="gradient")
    assert "Gradient per sample" in fig._suptitle.get_text()
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == 1


def test_features_1d_per_sample_and_per_channel(data):
    fig = plot.features_1d(data, n_rows=1, channel_names=list("abcd"))
    panels = _panels(fig)
    assert len(panels) == 5
    lines = panels[2].get_lines()[:4]  # one per channel (then the zero line)
    for c, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_ydata(), data[2, :, c])
    assert [t.get_text() for t in panels[0].get_legend().get_texts()] == list("abcd")
    fig = plot.features_1d(data, per="channel", max_timesteps=4)
    panels = _panels(fig)
    assert len(panels) == 4 and panels[1].get_title() == "channel 1"
    np.testing.assert_array_equal(panels[1].get_lines()[3].get_ydata(), data[3, :4, 1])
    with pytest.raises(InputError, match="per must be"):
        plot.features_1d(data, per="unit")


def test_features_0d_and_hist(data):
    last = data[:, -1]  # (samples, channels), a return_sequences=False output
    fig = plot.features_0d(last)
    (ax,) = fig.axes
    assert len(ax.collections) == 5
    np.testing.assert_array_equal(ax.collections[2].get_offsets()[:, 1], last[2])
    import matplotlib.pyplot as plt

    outer, (left, right) = plt.subplots(1, 2)
    assert plot.features_0d(last, ax=right, title="last step") is outer
    assert len(right.collections) == 5 and not left.collections
    assert right.get_title() == "last step" and outer._suptitle is None
    fig = plot.features_hist(data, n_rows=1, bins=10)
    panels = _panels(fig)
    assert len(panels) == 5
    edges = {tuple(ax.patches[0].get_data().edges) for ax in panels}
    assert len(edges) == 1  # shared x: the same bins everywhere
    assert all(ax.patches[0].get_data().values.sum() == 28 for ax in panels)


def test_features_nan_note_and_bad_input(data):
    d = data.copy()
    d[1, 2, 3] = np.nan
    fig = plot.features_2d(d)
    noted = [ax for ax in fig.axes if any(t.get_gid() == "nonfinite-note" for t in ax.texts)]
    assert len(noted) == 1 and noted[0].get_title() == "sample 1"
    with pytest.raises(InputError, match="expected a 2D or 3D array; got shape"):
        plot.features_2d(np.zeros(3))
    with pytest.raises(InputError, match="annotations: 5 panels"):
        plot.features_2d(data, annotations=["a"])
    with pytest.raises(InputError, match="n_rows"):
        plot.features_2d(data, n_rows=0)
    with pytest.raises(InputError, match="empty"):
        plot.features_hist(np.zeros((0, 3)))


def _gru_trace(rng, bidirectional=True):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 4, batch_first=True, bidirectional=bidirectional)
    return rnnscope.trace(gru, rng.normal(size=(2, 6, 3)).astype("f4"))


def test_trace_plot_rows_columns_and_data(rng):
    t = _gru_trace(rng)
    fig = plot.trace_plot(t, sample=1)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6  # (update, reset, h) x (forward, backward)
    for ax, (name, d) in zip(
        panels,
        [(n, d) for n in ("update", "reset", "h") for d in ("forward", "backward")],
        strict=True,
    ):
        np.testing.assert_allclose(ax.images[0].get_array(), t.get(name, d)[1].T)
    assert panels[0].images[0].get_clim() == (0.0, 1.0)  # gates: a fixed 0-1 scale
    lo, hi = panels[4].images[0].get_clim()
    assert lo == -hi  # states: symmetric
    assert [panels[0].get_title(), panels[1].get_title()] == ["forward", "backward"]
    fig = plot.trace_plot(t, ["new"], units=[0, 2], directions=["backward"])
    (ax,) = [ax for ax in fig.axes if ax.images]
    np.testing.assert_allclose(ax.images[0].get_array(), t.get("new", "backward")[0][:, [0, 2]].T)


def test_trace_plot_errors(rng):
    t = _gru_trace(rng, bidirectional=False)
    with pytest.raises(LayerError, match="has no 'forget'"):
        plot.trace_plot(t, ["forget"])
    with pytest.raises(InputError, match="sample"):
        plot.trace_plot(t, sample=5)
    with pytest.raises(InputError, match="units"):
        plot.trace_plot(t, units=[9])
    with pytest.raises(InputError, match=r"expected a rnnscope\.Trace"):
        plot.trace_plot(np.zeros((2, 3, 4)))
