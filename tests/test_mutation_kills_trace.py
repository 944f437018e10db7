"""Traces and layout conversions checked where the mutation run found them unchecked: merge
modes, initial states in each accepted form, the read-only contract, and the exact messages.

Expected values are computed here by hand, one gate at a time from ``RNNWeights.array`` or from
raw arrays, never through rnnscope's cells."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest

import rnnscope
from rnnscope import RNNWeights
from rnnscope._layouts import canonical_from_cudnn, canonical_from_torch
from tests.conftest import sigmoid
from tests.handcalc import direction_by_hand


def _weights(rng, cell, units=3, n_in=4, bidir=False):
    g = len(rnnscope.GATES[cell])

    def parts():
        p = {
            "kernel": rng.normal(size=(n_in, g * units)),
            "recurrent_kernel": rng.normal(size=(units, g * units)),
            "bias": rng.normal(size=g * units),
        }
        if cell == "GRU":
            p["recurrent_bias"] = rng.normal(size=g * units)
        return p

    return RNNWeights.from_arrays("rnn", cell, parts(), parts() if bidir else None)


def test_mul_and_ave_merge_modes_by_hand(rng):
    w = _weights(rng, "LSTM", bidir=True)
    x = rng.normal(size=(2, 5, 4))
    f, b = direction_by_hand(w, x, "forward"), direction_by_hand(w, x, "backward")
    t = rnnscope.trace(w, x)
    np.testing.assert_allclose(t.output("mul"), f * b, atol=1e-12)
    np.testing.assert_allclose(t.output("ave"), (f + b) / 2, atol=1e-12)
    last = t.output("ave", sequences=False)
    np.testing.assert_allclose(last, (f[:, -1] + b[:, 0]) / 2, atol=1e-12)


def _gru_step(w, x0, h0):
    """One reset-after GRU step from gate blocks (Keras/torch equations)."""

    def pre(gate):
        return (
            x0 @ w.array("kernel", gate) + w.array("bias", gate),
            h0 @ w.array("recurrent_kernel", gate) + w.array("recurrent_bias", gate),
        )

    z, r = (sigmoid(sum(pre(g))) for g in ("update", "reset"))
    xn, hn = pre("new")
    return z * h0 + (1 - z) * np.tanh(xn + r * hn)


def test_initial_state_in_every_accepted_form(rng):
    w = _weights(rng, "GRU")
    x = rng.normal(size=(3, 2, 4))
    h0 = rng.normal(size=(3, 3))
    want = _gru_step(w, x[:, 0], h0)
    for form in (h0, [h0], (h0,), {"forward": h0}, {"forward": [h0]}):
        got = rnnscope.trace(w, x, initial_state=form).get("h")[:, 0]
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=type(form).__name__)
    zero = rnnscope.trace(w, x).get("h")[:, 0]
    np.testing.assert_allclose(zero, _gru_step(w, x[:, 0], np.zeros((3, 3))), atol=1e-12)
    bi = _weights(rng, "GRU", bidir=True)
    t = rnnscope.trace(bi, x[:1], initial_state={"backward": h0[:1]})  # forward from zeros
    np.testing.assert_allclose(t.get("h"), direction_by_hand(bi, x[:1]), atol=1e-12)


def test_initial_state_errors(rng):
    lstm, gru = _weights(rng, "LSTM"), _weights(rng, "GRU")
    x = np.zeros((1, 2, 4))
    h = np.zeros((1, 3))
    cases = [
        (
            lstm,
            {"forward": h},
            "initial_state['forward'] for layer 'rnn' (LSTM): expected 2 array(s) (h, c), got 1",
        ),
        (
            gru,
            {"forward": [h, h]},
            "initial_state['forward'] for layer 'rnn' (GRU): expected 1 array(s) (h), got 2",
        ),
        (
            gru,
            {"back": h},
            "initial_state for layer 'rnn': unknown direction(s) ['back']; "
            "expected keys among ['forward']",
        ),
    ]
    for w, state, message in cases:
        with pytest.raises(rnnscope.InputError) as err:
            rnnscope.trace(w, x, initial_state=state)
        assert str(err.value) == message


def test_trace_records_are_read_only_and_errors_exact(rng):
    w = _weights(rng, "LSTM", bidir=True)
    t = rnnscope.trace(w, rng.normal(size=(1, 2, 4)))
    assert isinstance(t.time_major, MappingProxyType)
    with pytest.raises(TypeError):
        t.time_major[("h", "forward")] = None
    with pytest.raises(rnnscope.LayerError) as err:
        t.get("h", "sideways")
    assert str(err.value) == (
        "trace of 'rnn': direction must be one of forward, backward; got 'sideways'"
    )
    with pytest.raises(rnnscope.LayerError) as err:
        t.get("update")
    assert str(err.value) == (
        "trace of 'rnn' (LSTM) has no 'update'; it has: input, forget, cell, output, c, h"
    )


def test_reordered_torch_blocks_are_fresh_read_only_arrays():
    w = np.arange(18.0).reshape(6, 3)  # GRU, 2 units: rows (reset, update, new)
    out = canonical_from_torch("GRU", w, w, np.arange(6.0), np.arange(6.0))
    for part in ("bias", "recurrent_bias"):
        assert not out[part].flags.writeable
    np.testing.assert_array_equal(out["bias"], [2, 3, 0, 1, 4, 5])
    same = canonical_from_torch("LSTM", np.ones((4, 2)), np.ones((4, 1)), np.zeros(4))
    assert same["bias"].flags.writeable  # LSTM keeps torch's order: the caller's own array


@pytest.mark.parametrize(
    ("cell", "kernel", "bias"),
    [
        ("SimpleRNN", (2, 3), (6,)),  # CuDNN has no SimpleRNN
        ("LSTM", (2, 10), (20,)),  # 10 columns are no whole number of 4 gate blocks
        ("LSTM", (8,), (16,)),  # 1-D kernel
        ("GRU", (2, 6), (6,)),  # bias not twice the width
    ],
)
def test_cudnn_shape_errors(cell, kernel, bias):
    with pytest.raises(rnnscope.UnsupportedError) as err:
        canonical_from_cudnn(cell, np.zeros(kernel), np.zeros((3, 12)), np.zeros(bias))
    assert str(err.value) == (
        f"layer '': a CuDNN{cell} layer needs a 2-D kernel of width 4*units (LSTM) or 3*units "
        f"(GRU) and a bias of twice that width; got kernel {kernel}, bias {bias}"
    )
