"""The data model on its own: shapes are checked, gates are named, arrays are copies."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import RNNWeights


def _lstm(rng, units=3, n_in=2, bidir=False):
    def parts():
        return {
            "kernel": rng.normal(size=(n_in, 4 * units)),
            "recurrent_kernel": rng.normal(size=(units, 4 * units)),
            "bias": rng.normal(size=4 * units),
        }

    return RNNWeights.from_arrays("lstm", "LSTM", parts(), parts() if bidir else None)


def test_gate_blocks_are_column_slices(rng):
    w = _lstm(rng, bidir=True)
    k = w.array("kernel", direction="backward")
    for j, g in enumerate(w.gates):
        np.testing.assert_array_equal(w.array("kernel", g, "backward"), k[:, 3 * j : 3 * j + 3])
    assert w.array("bias", "output").shape == (3,)
    assert w.n_params() == 2 * (2 * 12 + 3 * 12 + 12)


def test_wrong_shape_is_refused_with_names(rng):
    with pytest.raises(
        rnnscope.UnsupportedError,
        match=r"layer 'g' \(GRU, units=2\): recurrent_kernel \(forward\) should have "
        r"shape \(2, 6\), got \(3, 6\)",
    ):
        RNNWeights.from_arrays(
            "g", "GRU", {"kernel": np.zeros((4, 6)), "recurrent_kernel": np.zeros((3, 6))}
        )
    with pytest.raises(rnnscope.UnsupportedError, match="cell must be one of"):
        RNNWeights.from_arrays("x", "Mamba", {"kernel": np.zeros((4, 6))})


def test_errors_name_what_exists(rng):
    w = _lstm(rng)
    with pytest.raises(
        rnnscope.LayerError, match=r"gate must be one of input, forget, cell, output"
    ):
        w.array("kernel", gate="update")
    with pytest.raises(
        rnnscope.LayerError, match=r"no part 'projection'.*kernel, recurrent_kernel"
    ):
        w.array("projection")
    with pytest.raises(
        rnnscope.LayerError, match=r"direction must be one of forward; got 'backward'"
    ):
        w.array("kernel", direction="backward")


def test_records_are_immutable_and_pass_through(rng):
    w = _lstm(rng)
    src = w.array("kernel")
    src[:] = 0
    assert np.any(w.array("kernel") != 0)
    with pytest.raises(AttributeError):
        w.units = 5  # type: ignore[misc]
    assert rnnscope.rnn_weights(w) is w
    assert [i.name for i in rnnscope.layers(w)] == ["lstm"]
    generic = rnnscope.LayerWeights("dense", "Dense", {"kernel": np.ones((2, 2))})
    with pytest.raises(rnnscope.LayerError, match=r"no recurrent layers.*dense \(Dense\)"):
        rnnscope.rnn_weights(generic)
    with pytest.raises(rnnscope.LayerError, match="Dense, not a recurrent layer"):
        rnnscope.rnn_weights(generic, "dense")
    with pytest.raises(rnnscope.LayerError, match=r"has no weight 'bias'; it has: kernel"):
        generic.array("bias")


def test_writeable_inputs_are_copied_read_only_ones_adopted(rng):
    k, r = np.zeros((2, 8)), np.zeros((2, 8))
    w = RNNWeights.from_arrays("lstm", "LSTM", {"kernel": k, "recurrent_kernel": r})
    k[:] = 5.0  # the caller still owns and changes its array
    assert not np.any(w.array("kernel") == 5.0)
    assert k.flags.writeable  # and it was not made read-only behind its back
    frozen = np.ones((2, 8))
    frozen.setflags(write=False)
    w2 = RNNWeights.from_arrays("lstm", "LSTM", {"kernel": frozen, "recurrent_kernel": r})
    assert w2.arrays[("kernel", "forward")] is frozen  # adopted without a copy
    for _, _, _, block in w2.items():
        assert not block.flags.writeable  # items() gives read-only views
