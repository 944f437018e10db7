"""plot.attributions: bars, heatmap and tokens hold the record's numbers, by hand."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError
from rnnscope._attributions import Attribution

pytest.importorskip("matplotlib")


def _record(seed=0, shape=(2, 7, 3)):
    values = np.random.default_rng(seed).normal(size=shape)
    return Attribution(values, "integrated_gradients", {"kind": "class"}, None, None, "signal")


def test_heatmap_and_bars_show_the_values_of_the_chosen_sample():
    a = _record()
    fig = rnnscope.plot.attributions(a, sample=1, feature_names=["a", "$b$", "c"])
    top, heat = fig.axes[0], fig.axes[1]
    heights = [p.get_height() for p in top.patches]
    np.testing.assert_allclose(heights, a.values[1].sum(axis=1))
    reds = [p.get_facecolor()[0] > p.get_facecolor()[2] for p in top.patches]
    assert reds == list(a.values[1].sum(axis=1) >= 0)
    image = heat.get_images()[0]
    np.testing.assert_allclose(np.asarray(image.get_array()), a.values[1].T)
    lo, hi = image.get_clim()
    assert lo == -hi == -np.abs(a.values[1]).max()
    assert [t.get_text() for t in heat.get_yticklabels()] == ["a", "\\$b\\$", "c"]
    assert len(fig.axes) == 3  # bars, heatmap, colour bar


def test_tokens_are_coloured_by_their_timestep():
    a = _record(shape=(1, 4, 2))
    words = ["not", "$bad$", "at", "all"]
    fig = rnnscope.plot.attributions(a, tokens=words)
    ax = fig.axes[1]
    assert [t.get_text() for t in ax.texts] == ["not", "\\$bad\\$", "at", "all"]
    per = a.values[0].sum(axis=1)
    lim = np.abs(per).max()
    import matplotlib as mpl

    want = [mpl.colormaps["RdBu_r"]((v + lim) / (2 * lim)) for v in per]
    got = [p.get_facecolor() for p in ax.patches]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_bad_arguments_are_named(tmp_path):
    a = _record()
    with pytest.raises(InputError, match="tokens: expected one per timestep \\(7\\); got 2"):
        rnnscope.plot.attributions(a, tokens=["a", "b"])
    with pytest.raises(InputError, match=r"sample: .*batch of 2; got 5"):
        rnnscope.plot.attributions(a, sample=5)
    with pytest.raises(InputError, match="one record per input"):
        rnnscope.plot.attributions([a, a])
    out = tmp_path / "a.png"
    rnnscope.plot.attributions(a, savepath=out)
    assert out.read_bytes()[:4] == b"\x89PNG"
