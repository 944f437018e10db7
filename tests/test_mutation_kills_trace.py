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


def test_initial_state_is_used_in_the_trace_dtype_and_bad_ones_are_named(rng):
    w = _weights(rng, "GRU")
    w32 = RNNWeights.from_parts(
        "rnn", "GRU", {k: a.astype(np.float32) for k, a in w.arrays.items()}
    )
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    h0 = rng.normal(size=(2, 3))
    from64 = rnnscope.trace(w32, x, initial_state=h0).get("h")
    from32 = rnnscope.trace(w32, x, initial_state=h0.astype(np.float32)).get("h")
    assert from64.dtype == np.float32
    np.testing.assert_array_equal(from64, from32)  # cast first, then computed in float32
    with pytest.raises(rnnscope.InputError) as err:
        rnnscope.trace(w, x, initial_state=np.zeros((1, 3)))
    assert str(err.value) == (
        "initial_state for layer 'rnn' (forward): expected shape (2, 3), got (1, 3)"
    )
    with pytest.raises(rnnscope.InputError) as err:
        rnnscope.trace(w, x, initial_state={"forward": [[[1.0, 2.0], [3.0]]]})  # ragged
    assert str(err.value) == "initial_state: expected an array or tensor, got list"


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_float32_weights_trace_in_float32_whatever_the_input(rng, cell):
    w = _weights(rng, cell)
    w32 = RNNWeights.from_parts("rnn", cell, {k: a.astype(np.float32) for k, a in w.arrays.items()})
    x = rng.normal(size=(2, 3, 4))  # float64 input, cast to the weights' float32
    t = rnnscope.trace(w32, x)
    assert {t.get(n).dtype for n in t.names} == {np.dtype(np.float32)}
    np.testing.assert_allclose(t.get("h"), direction_by_hand(w, x), atol=2e-5)
    w16 = RNNWeights.from_parts("rnn", cell, {k: a.astype(np.float16) for k, a in w.arrays.items()})
    assert rnnscope.trace(w16, x).get("h").dtype == np.float32  # at least float32


def test_lstm_with_hard_sigmoid_gates_by_hand(rng):
    w = _weights(rng, "LSTM")
    hard = RNNWeights.from_parts("rnn", "LSTM", w.arrays, recurrent_activation="hard_sigmoid")
    x = rng.normal(size=(2, 4, 4))
    np.testing.assert_allclose(
        rnnscope.trace(hard, x).get("h"), direction_by_hand(hard, x), atol=1e-12
    )


def test_custom_activation_functions_of_a_record(rng):
    w = _weights(rng, "GRU")
    cube = lambda v: v**3 / 10
    soft = lambda v: v / (1 + np.abs(v))
    custom = RNNWeights.from_parts(
        "rnn",
        "GRU",
        w.arrays,
        activation="cube",
        recurrent_activation="soft",
        activation_fns={"cube": cube, "soft": soft},
    )
    x = rng.normal(size=(2, 3, 4))
    h = np.zeros((2, 3))
    for s in range(3):
        pre = {
            g: (
                x[:, s] @ w.array("kernel", g) + w.array("bias", g),
                h @ w.array("recurrent_kernel", g) + w.array("recurrent_bias", g),
            )
            for g in ("update", "reset", "new")
        }
        z, r = soft(sum(pre["update"])), soft(sum(pre["reset"]))
        h = z * h + (1 - z) * cube(pre["new"][0] + r * pre["new"][1])
    np.testing.assert_allclose(rnnscope.trace(custom, x).get("h")[:, -1], h, atol=1e-12)
    bad = RNNWeights.from_parts("rnn", "GRU", w.arrays, recurrent_activation="bogus")
    with pytest.raises(rnnscope.UnsupportedError, match=r"^layer 'rnn': activation 'bogus' has"):
        rnnscope.trace(bad, x)


def test_inputs_of_every_accepted_kind_and_bad_ones(rng):
    torch = pytest.importorskip("torch")
    w = _weights(rng, "SimpleRNN")
    x = rng.normal(size=(2, 3, 4))
    want = direction_by_hand(w, x)
    for given in (x.tolist(), torch.tensor(x, requires_grad=True)):
        np.testing.assert_allclose(rnnscope.trace(w, given).get("h"), want, atol=1e-12)
    bf16 = torch.tensor(x).to(torch.bfloat16)
    assert _trace_to_numpy(bf16).dtype == np.float32
    np.testing.assert_array_equal(_trace_to_numpy(bf16), bf16.float().numpy())
    assert _trace_to_numpy(torch.tensor(x)).dtype == np.float64  # other dtypes are kept
    np.testing.assert_allclose(rnnscope.trace(w, x[:, :1]).get("h"), want[:, :1], atol=1e-12)
    cases = [
        ("ab", "x for layer 'rnn': expected an array, got str"),
        ([[[1.0, 2.0], [3.0]]], "x: expected an array or tensor, got list"),
        (np.zeros((2, 0, 4)), "x for layer 'rnn' has no timesteps (shape (2, 0, 4))"),
        (np.zeros((2, 0)), "x for layer 'rnn': expected shape (batch, time, 4), got (2, 0)"),
        (np.zeros((2, 3, 0)), "x for layer 'rnn': expected shape (batch, time, 4), got (2, 3, 0)"),
    ]
    for given, message in cases:
        with pytest.raises(rnnscope.InputError) as err:
            rnnscope.trace(w, given)
        assert str(err.value) == message


def _trace_to_numpy(t):
    from rnnscope._trace import to_numpy

    return to_numpy(t)


def test_keras_bias_layout_errors():
    from rnnscope._layouts import canonical_from_keras

    for cell, bias in (("LSTM", np.zeros((2, 8))), ("GRU", np.zeros((3, 6)))):
        width = bias.shape[1]
        with pytest.raises(rnnscope.UnsupportedError) as err:
            canonical_from_keras(cell, np.zeros((1, width)), np.zeros((2, width)), bias)
        assert str(err.value) == (
            "layer '': a 2-D bias is only expected for a GRU with reset_after=True "
            f"(shape (2, 3*units)); got {cell} bias of shape {bias.shape}"
        )
