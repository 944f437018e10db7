"""Traces without any framework: recorded gates obey the cell equations they come from."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import RNNWeights
from tests.conftest import sigmoid
from tests.handcalc import output_by_hand


def _weights(rng, cell, n=4, units=3, bidir=False, **settings):
    g = len(rnnscope.GATES[cell])

    def parts():
        p = {
            "kernel": rng.normal(size=(n, g * units)).astype(np.float32),
            "recurrent_kernel": rng.normal(size=(units, g * units)).astype(np.float32),
            "bias": rng.normal(size=g * units).astype(np.float32),
        }
        if cell == "GRU" and settings.get("reset_after", True):
            p["recurrent_bias"] = rng.normal(size=g * units).astype(np.float32)
        return p

    return RNNWeights.from_arrays("rnn", cell, parts(), parts() if bidir else None, **settings)


def test_lstm_records_obey_the_cell_equations(rng):
    w = _weights(rng, "LSTM", bidir=True)
    x = rng.normal(size=(2, 5, 4)).astype(np.float32)
    t = rnnscope.trace(w, x)
    assert t.names == ("input", "forget", "cell", "output", "c", "h")
    for d in w.directions:
        i, f, g, o, c, h = (t.get(n, d) for n in t.names)
        assert i.shape == (2, 5, 3) and i.dtype == np.float32
        assert np.all((i > 0) & (i < 1)) and np.all(np.abs(g) < 1)
        np.testing.assert_allclose(h, o * np.tanh(c), atol=1e-6)
        step = range(1, 5) if d == "forward" else range(3, -1, -1)
        prev = (lambda s: s - 1) if d == "forward" else (lambda s: s + 1)
        for s in step:
            np.testing.assert_allclose(
                c[:, s], f[:, s] * c[:, prev(s)] + i[:, s] * g[:, s], atol=1e-5
            )
        first = 0 if d == "forward" else 4
        pre_i = x[:, first] @ w.array("kernel", "input", d) + w.array("bias", "input", d)
        np.testing.assert_allclose(i[:, first], sigmoid(pre_i), atol=1e-6)
    np.testing.assert_allclose(t.output(), output_by_hand(w, x), atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_and_simple_rnn_match_hand(rng, reset_after):
    w = _weights(rng, "GRU", reset_after=reset_after)
    x = rng.normal(size=(3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(rnnscope.trace(w, x).output(), output_by_hand(w, x), atol=1e-5)
    s = _weights(rng, "SimpleRNN", bidir=True, activation="relu")
    np.testing.assert_allclose(rnnscope.trace(s, x).output(), output_by_hand(s, x), atol=1e-5)


def test_float64_weights_trace_in_float64(rng):
    w = RNNWeights.from_arrays(
        "r",
        "SimpleRNN",
        {"kernel": rng.normal(size=(2, 3)), "recurrent_kernel": rng.normal(size=(3, 3))},
    )
    t = rnnscope.trace(w, rng.normal(size=(1, 3, 2)))
    assert t.get("h").dtype == np.float64


def test_output_merge_modes_and_errors(rng):
    w = _weights(rng, "LSTM", bidir=True)
    t = rnnscope.trace(w, rng.normal(size=(2, 5, 4)))
    f, b = t.get("h"), t.get("h", "backward")
    np.testing.assert_array_equal(t.output("sum"), f + b)
    np.testing.assert_array_equal(
        t.output("concat", sequences=False), np.concatenate([f[:, -1], b[:, 0]], -1)
    )
    assert isinstance(t.output(None), list)
    with pytest.raises(rnnscope.LayerError, match="has no 'update'"):
        t.get("update")
    with pytest.raises(rnnscope.LayerError, match="merge_mode must be one of"):
        t.output("max")
    with pytest.raises(
        rnnscope.InputError, match=r"expected shape \(batch, time, 4\), got \(5, 4\)"
    ):
        rnnscope.trace(w, np.zeros((5, 4)))


def test_unsupported_activation_from_a_record(rng):
    w = _weights(rng, "SimpleRNN", activation="my_act")
    with pytest.raises(rnnscope.UnsupportedError, match="layer 'rnn': activation 'my_act'"):
        rnnscope.trace(w, np.zeros((1, 2, 4), np.float32))
