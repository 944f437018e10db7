"""plot.gate_attributions: the bars and every gate's heatmap hold the record's numbers."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError
from rnnscope._attributions_gates import GateAttribution

pytest.importorskip("matplotlib")

B, T, U = 2, 6, 3


def _record(seed=0):
    rng = np.random.default_rng(seed)
    vals = {d: rng.normal(size=(B, T, 4, U)) for d in ("forward", "backward")}
    zeros = {d: np.zeros_like(v) for d, v in vals.items()}
    return GateAttribution(
        values=vals,
        gates=("input", "forget", "cell", "output"),
        layer="$rnn$",
        cell="LSTM",
        gate_values=zeros,
        baseline=zeros,
        baseline_kind="neutral",
        target={"kind": "class", "index": [0, 1]},
        delta=np.zeros(B),
        output=np.zeros(B),
        baseline_output=np.zeros(B),
    )


def test_bars_and_heatmaps_show_the_chosen_sample_on_one_scale_centred_at_zero():
    a = _record()
    fig = rnnscope.plot.gate_attributions(a, sample=1)
    assert len(fig.axes) == 1 + 8 + 1  # bars, (direction, gate) heatmaps, colour bar
    bars = fig.axes[0]
    heights = [p.get_height() for p in bars.patches]
    want = a.values["forward"][1].sum(axis=(1, 2)) + a.values["backward"][1].sum(axis=(1, 2))
    np.testing.assert_allclose(heights, want)
    top = max(np.abs(v[1]).max() for v in a.values.values())
    for k, ax in enumerate(fig.axes[1:9]):
        d, g = ("forward", "backward")[k // 4], k % 4
        image = ax.get_images()[0]
        np.testing.assert_allclose(np.asarray(image.get_array()), a.values[d][1, :, g].T)
        assert image.get_clim() == pytest.approx((-top, top))
        assert ax.get_ylabel() == f"{a.gates[g]}\n{d}"
        units = a.values[d].shape[-1]  # rows are units: the first and last one named
        assert [t.get_text() for t in ax.get_yticklabels()] == ["u0", f"u{units - 1}"]
        assert list(ax.get_yticks()) == [0, units - 1]
    # a layer name is data: its dollars escaped, never mathtext
    assert bars.get_title() == "gate attributions · \\$rnn\\$ (LSTM) · sample 1"


def test_one_direction_and_bad_arguments():
    a = _record(1)
    fig = rnnscope.plot.gate_attributions(a, sample=0, direction="backward")
    assert len(fig.axes) == 1 + 4 + 1
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, a.values["backward"][0].sum(axis=(1, 2)))
    assert fig.axes[1].get_ylabel() == "input"
    with pytest.raises(InputError, match="direction must be one of") as err:
        rnnscope.plot.gate_attributions(a, direction="left")
    assert err.value.argument == "direction"
    with pytest.raises(InputError, match="below the batch of 2"):
        rnnscope.plot.gate_attributions(a, sample=2)
    with pytest.raises(InputError, match="GateAttribution"):
        rnnscope.plot.gate_attributions(np.zeros((2, 3)))
