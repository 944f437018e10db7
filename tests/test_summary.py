"""summary(): per-gate statistics, NaN and Inf counts, and the printed table."""

from __future__ import annotations

import io

import numpy as np

import rnnscope
from rnnscope import LayerWeights, RNNWeights


def test_rows_per_gate_with_nan_and_inf_counts(rng):
    k = rng.normal(size=(2, 8)).astype(np.float32)
    k[0, 2] = np.nan  # gate "forget" of a 2-unit LSTM (columns 2:4)
    k[1, 7] = np.inf  # gate "output"
    w = RNNWeights.from_arrays("lstm", "LSTM", {"kernel": k, "recurrent_kernel": np.ones((2, 8))})
    s = rnnscope.summary(w, quiet=True)
    rows = {(r.part, r.gate): r for r in s.rows}
    assert len(s.rows) == 8
    assert rows[("kernel", "forget")].nans == 1 and rows[("kernel", "forget")].infs == 0
    assert rows[("kernel", "output")].infs == 1
    assert rows[("kernel", "input")].nans == 0
    block = k[:, 0:2]
    assert np.isclose(rows[("kernel", "input")].mean, block.mean())
    assert np.isclose(rows[("kernel", "input")].std, block.std())
    finite = k[:, 2:4][np.isfinite(k[:, 2:4])]
    assert np.isclose(rows[("kernel", "forget")].max, finite.max())
    assert rows[("recurrent_kernel", "cell")].min == 1.0 and rows[("kernel", "cell")].size == 4


def test_prints_a_table_and_records(rng):
    w = RNNWeights.from_arrays(
        "gru", "GRU", {"kernel": np.zeros((3, 6)), "recurrent_kernel": np.zeros((2, 6))}
    )
    buf = io.StringIO()
    s = rnnscope.summary(w, file=buf)
    text = buf.getvalue()
    assert "layer" in text and "update" in text and "reset" in text and "new" in text
    assert "1 layer, 30 parameters" in text
    assert s.records()[0]["gate"] == "update"
    d = rnnscope.summary(
        LayerWeights("dense", "Dense", {"kernel": np.full((2, 2), np.nan)}), quiet=True
    )
    assert d.rows[0].nans == 4 and np.isnan(d.rows[0].mean)
