"""Masked (padded) steps in figures: drawn hatched, left out of colour limits, lines, counts."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import RNNWeights, plot

pytest.importorskip("matplotlib")
GID = "masked-steps"


def _hatched(ax) -> list:
    return [p for p in ax.patches if p.get_gid() == GID and p.get_hatch()]


def _trace(rng):
    def parts():
        return {
            "kernel": rng.normal(size=(3, 12)).astype(np.float32),
            "recurrent_kernel": rng.normal(size=(4, 12)).astype(np.float32),
            "bias": rng.normal(size=12).astype(np.float32),
        }

    w = RNNWeights.from_arrays("gru", "GRU", parts(), parts(), reset_after=False)
    x = rng.normal(size=(2, 6, 3)).astype(np.float32)
    return rnnscope.trace(w, x, lengths=[4, 6])


def test_trace_plot_hatches_masked_steps_and_masks_their_cells(rng):
    t = _trace(rng)
    fig = plot.trace_plot(t, ["update", "h"], sample=0)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4  # two quantities x two directions
    for ax in panels:
        assert len(_hatched(ax)) == 1
        shown = ax.images[0].get_array()
        assert np.ma.getmaskarray(shown)[:, 4:].all() and not np.ma.getmaskarray(shown)[:, :4].any()
    full = plot.trace_plot(t, ["h"], sample=1)  # sample 1 has no padding: nothing hatched
    assert not any(_hatched(ax) for ax in full.axes)


def test_features_2d_leaves_masked_values_out_of_the_colour_limits(rng):
    data = rng.normal(size=(2, 5, 3))
    mask = np.zeros_like(data, bool)
    mask[0, 3:] = True
    data[mask] = 1e6  # would set the limits if it were counted
    fig = plot.features_2d(np.ma.MaskedArray(data, mask))
    peak = np.abs(data[~mask]).max()
    ax = next(a for a in fig.axes if a.images)
    assert ax.images[0].get_clim() == pytest.approx((-peak, peak))
    assert len(_hatched(ax)) == 1
    np.testing.assert_array_equal(np.ma.getmaskarray(ax.images[0].get_array()), mask[0].T)
    assert not any(t.get_gid() == "nonfinite-note" for a in fig.axes for t in a.texts)


def test_features_1d_gaps_and_spans_and_hist_counts(rng):
    data = rng.normal(size=(2, 6, 2))
    mask = np.zeros_like(data, bool)
    mask[1, :2] = True  # left padding
    fig = plot.features_1d(np.ma.MaskedArray(data, mask))
    ax0, ax1 = fig.axes[:2]
    assert not _hatched(ax0) and len(_hatched(ax1)) == 1
    span = _hatched(ax1)[0]
    assert (span.get_x(), span.get_width()) == pytest.approx((-0.5, 2.0))
    for line, ch in zip(ax1.get_lines()[:2], range(2), strict=True):
        y = line.get_ydata()
        assert np.isnan(y[:2]).all()
        np.testing.assert_allclose(y[2:], data[1, 2:, ch])
    data[mask] = 50.0
    hist = plot.features_hist(np.ma.MaskedArray(data, mask), bins=10)
    counts = [p.get_data()[0].sum() for ax in hist.axes for p in ax.patches]
    assert counts == [12, 8]  # masked values counted nowhere
    assert max(p.get_data()[1].max() for ax in hist.axes for p in ax.patches) < 50
