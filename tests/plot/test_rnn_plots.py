"""rnn_heatmap and rnn_histogram: panels, gate separators, colour limits, NaN markers, data."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError, LayerError, RNNWeights

pytest.importorskip("matplotlib")
from rnnscope import plot


def _lstm(rng, units=5, inputs=3, bidirectional=False, dtype="f4") -> RNNWeights:
    arrays = {}
    for d in ("forward", "backward") if bidirectional else ("forward",):
        arrays[("kernel", d)] = rng.normal(size=(inputs, 4 * units)).astype(dtype)
        arrays[("recurrent_kernel", d)] = rng.normal(size=(units, 4 * units)).astype(dtype)
        arrays[("bias", d)] = rng.normal(size=4 * units).astype(dtype)
    return RNNWeights.from_parts("lstm", "LSTM", arrays)


def _images(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def _gate_lines(ax):
    return [ln for ln in ax.get_lines() if ln.get_gid() == "gate-line"]


def test_heatmap_panels_separators_labels_and_data(rng):
    w = _lstm(rng)
    fig = plot.rnn_heatmap(w)
    panels = _images(fig)
    assert len(panels) == 3  # kernel, recurrent kernel, biases
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == 1
    for ax in panels:
        xs = sorted(ln.get_xdata()[0] for ln in _gate_lines(ax))
        assert xs == [k * 5 - 0.5 for k in (1, 2, 3)]  # at the gate boundaries
        ticks = ax.get_xticks()
        assert list(ticks) == [2.0, 7.0, 12.0, 17.0]  # gate centres
        assert ax.xaxis.get_major_formatter().format_ticks(ticks) == list(w.gates)
    for ax in (panels[0], panels[-1]):  # gate names shown above the top panel and below the last
        assert [t.get_text() for t in ax.get_xticklabels()] == list(w.gates)
    np.testing.assert_array_equal(panels[0].images[0].get_array(), w.array("kernel"))
    np.testing.assert_array_equal(panels[1].images[0].get_array(), w.array("recurrent_kernel"))
    np.testing.assert_array_equal(panels[2].images[0].get_array()[0], w.array("bias"))
    peak = max(np.abs(a).max() for _, _, _, a in w.items())
    for ax in panels:  # one colour scale, symmetric around 0
        assert ax.images[0].get_clim() == pytest.approx((-peak, peak))
    assert "lstm" in fig._suptitle.get_text() and "weights" in fig._suptitle.get_text()
    assert fig.nonfinite == {}
    assert not [c for ax in panels for c in ax.collections if c.get_gid() == "nonfinite-marker"]


def test_heatmap_options(rng):
    w = _lstm(rng)
    fig = plot.rnn_heatmap(w, norm=(-0.8, 0.8), show_bias=False, gate_lines=False)
    panels = _images(fig)
    assert len(panels) == 2
    assert all(ax.images[0].get_clim() == (-0.8, 0.8) for ax in panels)
    assert not any(_gate_lines(ax) for ax in panels)
    fig = plot.rnn_heatmap(w, absolute_value=True, cmap=None)
    img = _images(fig)[1].images[0]
    np.testing.assert_array_equal(img.get_array(), np.abs(w.array("recurrent_kernel")))
    assert img.get_clim()[0] == 0
    assert {ln.get_color() for ln in _gate_lines(_images(fig)[0])} == {"white"}  # on dark 0
    assert {ln.get_color() for ln in _gate_lines(_images(plot.rnn_heatmap(w))[0])} == {"black"}


def test_heatmap_one_figure_per_direction_and_savepaths(rng, tmp_path):
    w = _lstm(rng, bidirectional=True)
    figs = plot.rnn_heatmap(w, savepath=tmp_path / "heat.png")
    assert isinstance(figs, list) and len(figs) == 2
    assert "backward" in figs[1]._suptitle.get_text()
    np.testing.assert_array_equal(
        _images(figs[1])[0].images[0].get_array(), w.array("kernel", direction="backward")
    )
    for d in ("forward", "backward"):
        assert (tmp_path / f"heat_{d}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = plot.rnn_heatmap(w, direction="backward", savepath=tmp_path / "b.svg")
    assert not isinstance(one, list)
    assert (tmp_path / "b.svg").read_text().lstrip().startswith("<?xml")


def test_heatmap_nan_and_inf_counted_marked_and_drawn_as_zero(rng, capsys):
    arrays = dict(_lstm(rng, bidirectional=True).arrays)
    k = arrays[("kernel", "backward")].copy()
    k[0, 5] = k[2, 6] = np.nan  # forget gate (columns 5..9)
    k[1, 0] = np.inf  # input gate
    arrays[("kernel", "backward")] = k
    b = arrays[("bias", "forward")].copy()
    b[19] = -np.inf  # output gate
    arrays[("bias", "forward")] = b
    w = RNNWeights.from_parts("lstm", "LSTM", arrays)
    fwd, bwd = plot.rnn_heatmap(w)
    assert bwd.nonfinite == {
        ("backward", "kernel", "input"): {"nan": 0, "inf": 1},
        ("backward", "kernel", "forget"): {"nan": 2, "inf": 0},
    }
    assert fwd.nonfinite == {("forward", "bias", "output"): {"nan": 0, "inf": 1}}
    out = capsys.readouterr().out
    assert "kernel/forget: 2 NaN" in out and "bias/output: 1 Inf" in out
    kernel_ax = _images(bwd)[0]
    marks = [c for c in kernel_ax.collections if c.get_gid() == "nonfinite-marker"]
    assert len(marks) == 1
    assert sorted(map(tuple, marks[0].get_offsets().tolist())) == [(0, 1), (5, 0), (6, 2)]
    drawn = kernel_ax.images[0].get_array()
    assert drawn[0, 5] == drawn[2, 6] == drawn[1, 0] == 0
    notes = [t for ax in bwd.axes for t in ax.texts if t.get_gid() == "nonfinite-note"]
    assert len(notes) == 1 and "2 NaN, 1 Inf" in notes[0].get_text()
    # the recurrent kernel panel has none
    assert not [c for c in _images(bwd)[1].collections if c.get_gid() == "nonfinite-marker"]


def test_heatmap_gru_two_biases_and_torch_projection():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 4)
    fig = plot.rnn_heatmap(gru)
    biases = _images(fig)[2]
    assert [t.get_text() for t in biases.get_yticklabels()] == ["bias", "recurrent bias"]
    w = rnnscope.rnn_weights(gru)
    np.testing.assert_array_equal(biases.images[0].get_array()[1], w.array("recurrent_bias"))
    proj = torch.nn.LSTM(3, 6, proj_size=2)
    fig = plot.rnn_heatmap(proj)
    panels = _images(fig)
    assert len(panels) == 4
    # the projection is weight_hr.T (6, 2); the recurrent kernel weight_hh.T (proj, 4u), torch's
    # i, f, g, o rows being the canonical input, forget, cell, output columns
    np.testing.assert_array_equal(
        panels[3].images[0].get_array(), proj.weight_hr_l0.detach().numpy().T
    )
    assert not _gate_lines(panels[3])
    np.testing.assert_array_equal(
        panels[1].images[0].get_array(), proj.weight_hh_l0.detach().numpy().T
    )


def test_histogram_grid_and_counts(rng):
    w = _lstm(rng, units=6)
    fig = plot.rnn_histogram(w, show_bias=False, equate_axes=0, bins=20)
    assert len(fig.axes) == 8  # 2 parts x 4 gates
    for ax, (_d, _p, _g, block) in zip(
        fig.axes, [i for i in w.items() if i[1] != "bias"], strict=True
    ):
        (stairs,) = ax.patches
        assert stairs.get_data().values.sum() == block.size
        assert len(stairs.get_data().edges) == 21
    assert [ax.get_title() for ax in fig.axes[:4]] == list(w.gates)
    fig = plot.rnn_histogram(w, bins=20)
    assert len(fig.axes) == 12


def _xlims(fig):
    return [ax.get_xlim() for ax in fig.axes]


def test_histogram_equate_axes_modes(rng):
    w = _lstm(rng, units=6)
    lims = _xlims(plot.rnn_histogram(w, equate_axes=0))
    assert len(set(lims[:4])) == 4  # independent
    lims = _xlims(plot.rnn_histogram(w, equate_axes=1))
    assert len(set(lims[:4])) == 1 and len(set(lims[4:8])) == 1 and lims[0] != lims[4]
    fig = plot.rnn_histogram(w, equate_axes=2)
    assert len(set(_xlims(fig))) == 1
    assert len({ax.get_ylim() for ax in fig.axes}) == 1
    assert _xlims(plot.rnn_histogram(w, equate_axes=True)) == lims_1(w)
    with pytest.raises(InputError, match="equate_axes"):
        plot.rnn_histogram(w, equate_axes=3)


def lims_1(w):
    return _xlims(plot.rnn_histogram(w, equate_axes=1))


def test_histogram_nan_notes_only_where_nans_are(rng):
    arrays = dict(_lstm(rng).arrays)
    rk = arrays[("recurrent_kernel", "forward")].copy()
    rk[3, 12] = np.nan  # cell gate (columns 10..14)
    arrays[("recurrent_kernel", "forward")] = rk
    w = RNNWeights.from_parts("lstm", "LSTM", arrays)
    fig = plot.rnn_histogram(w, equate_axes=2)
    noted = [
        (i, ax.texts[0].get_text())
        for i, ax in enumerate(fig.axes)
        if any(t.get_gid() == "nonfinite-note" for t in ax.texts)
    ]
    assert noted == [(4 + 2, "1 NaN\n0 Inf")]  # row 1 (recurrent kernel), column 2 (cell)
    assert fig.nonfinite == {("forward", "recurrent_kernel", "cell"): {"nan": 1, "inf": 0}}
    assert fig.axes[6].patches[0].get_data().values.sum() == 24  # 25 values, the NaN left out
    assert not any(
        t.get_gid() == "nonfinite-note" for t in plot.rnn_histogram(_lstm(rng)).axes[0].texts
    )


def test_grads_mode_draws_the_weight_gradients():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3)
    y = torch.randn(2, 5, 4)

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(3, 4, batch_first=True)

        def forward(self, x):
            return self.gru(x)[0]

    model = Head()
    loss = torch.nn.MSELoss()
    expected = rnnscope.gradients(model, x, y, layers="gru", wrt="weights", loss=loss)["gru.l0"]
    fig = plot.rnn_heatmap(model, "gru", mode="grads", x=x, y=y, loss=loss)
    assert "gradients" in fig._suptitle.get_text()
    np.testing.assert_allclose(
        _images(fig)[1].images[0].get_array(), expected.array("recurrent_kernel"), rtol=1e-6
    )
    grads = rnnscope.gradients(model, x, y, wrt="weights", loss=loss)
    fig = plot.rnn_histogram(grads, mode="grads")
    assert "gradients" in fig._suptitle.get_text()


def test_plot_errors_name_the_argument(rng):
    w = _lstm(rng)
    with pytest.raises(InputError, match="mode must be"):
        plot.rnn_heatmap(w, mode="activations")
    with pytest.raises(InputError, match="norm must"):
        plot.rnn_heatmap(w, norm=(1, -1))
    with pytest.raises(InputError, match="norm must be a pair"):
        plot.rnn_heatmap(w, norm=3)
    with pytest.raises(LayerError, match="direction must be one of forward") as err:
        plot.rnn_heatmap(w, direction="backward")
    assert (err.value.layer, err.value.argument) == (w.name, "direction")
    with pytest.raises(InputError, match="bins") as err:
        plot.rnn_histogram(w, bins=0)
    assert (err.value.layer, err.value.argument) == (w.name, "bins")
    with pytest.raises(InputError, match="2 figure") as err:
        plot.rnn_heatmap(_lstm(rng, bidirectional=True), fig=[None])
    assert err.value.argument == "fig"
    with pytest.raises(InputError, match="savepath"):
        plot.rnn_heatmap(w, savepath="/nonexistent-dir/x.png")
    torch = pytest.importorskip("torch")
    with pytest.raises(InputError, match="needs the model's input x and targets y"):
        plot.rnn_heatmap(torch.nn.LSTM(2, 3), mode="grads")
