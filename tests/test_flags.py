"""Flag rules over hand-made statistics rows: each rule's trigger, message and once-only logic,
with the expected lines written out here."""

from __future__ import annotations

import math

from rnnscope._flags import Flag, Thresholds, change_flags, flags_for

T = Thresholds()


def _row(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": "m",
        "layer": "lstm",
        "kind": "LSTM",
        "part": "kernel",
        "gate": "input",
        "direction": "forward",
        "size": 36,
        "nan": 0,
        "inf": 0,
        "tol": 0.001,
        "frac_near_zero": 0.0,
        "abs_max": 1.0,
        "units": 6,
        "dead_units": 0,
        "matrix_spectral_norm": math.nan,
    }
    return {**base, **over}


def _lines(flags: list[Flag]) -> list[tuple[str, str, str, str]]:
    for f in flags:
        assert type(f.severity) is str  # plain strings in every output
    return [(f.severity, f.model, f.where, f.message) for f in flags]


def test_a_healthy_row_has_no_flags():
    assert flags_for([_row(), _row(part="recurrent_kernel", matrix_spectral_norm=0.5)], T) == []


def test_nonfinite_values_are_an_error_naming_both_counts():
    got = _lines(flags_for([_row(nan=15, inf=2, gate="forget", direction="backward")], T))
    assert got == [
        (
            "error",
            "m",
            "lstm / kernel / forget / backward",
            "15 NaN and 2 Inf of 36 values: training diverged here, or the file is damaged",
        )
    ]


def test_dead_units_once_per_layer_and_direction():
    rows = [
        _row(dead_units=1),
        _row(dead_units=1, gate="forget"),
        _row(dead_units=2, direction="backward"),
    ]
    got = _lines(flags_for(rows, T))
    tail = "have every incoming weight below 0.001: they output a constant and learn nothing"
    assert got == [
        ("warning", "m", "lstm", f"1 of 6 units {tail}"),
        ("warning", "m", "lstm / backward", f"2 of 6 units {tail}"),
    ]


def test_near_zero_and_large_weights_in_rule_order():
    got = _lines(flags_for([_row(frac_near_zero=0.75, abs_max=12.5, gate="", part="bias")], T))
    assert got == [
        (
            "warning",
            "m",
            "lstm / bias",
            "75% of the weights are below 0.001: pruned, over-regularised, or never trained",
        ),
        (
            "warning",
            "m",
            "lstm / bias",
            "largest |weight| 12.5 > 10: large weights saturate the gates and can make "
            "gradients explode",
        ),
    ]


def test_recurrent_norm_once_per_direction_gated_or_not():
    rk = {"part": "recurrent_kernel"}
    rows = [
        _row(**rk, matrix_spectral_norm=2.0),
        _row(**rk, gate="forget", matrix_spectral_norm=9.0),  # same matrix: not again
        _row(**rk, direction="backward", matrix_spectral_norm=0.1),
        _row(**rk, layer="rnn", kind="SimpleRNN", gate="hidden", matrix_spectral_norm=1.5),
        _row(**rk, layer="gru", kind="GRU", gate="update", matrix_spectral_norm=0.5),  # in range
        _row(**rk, layer="gru", kind="GRU", gate="reset", matrix_spectral_norm=9.0),  # seen
    ]
    got = _lines(flags_for(rows, T))
    grow = "largest singular value {} > 1: through this matrix gradients can grow from step to step"
    assert got == [
        ("note", "m", "lstm / recurrent_kernel", grow.format(2) + " (the gates usually damp this)"),
        (
            "note",
            "m",
            "lstm / recurrent_kernel / backward",
            "largest singular value 0.1 < 0.25: the recurrent path contributes little; "
            "gradients through time fade quickly",
        ),
        (
            "warning",
            "m",
            "rnn / recurrent_kernel",
            grow.format(1.5) + ", a classic cause of exploding gradients",
        ),
    ]


def _change(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": "e2",
        "layer": "lstm",
        "part": "kernel",
        "gate": "input",
        "direction": "forward",
        "present": True,
        "size": 36,
        "l2_norm_step_rel_change": 0.0,
    }
    return {**base, **over}


def test_change_flags_name_the_gate_that_moved_most_and_skip_small_blocks():
    rows = [
        _change(model="e1", l2_norm_step_rel_change=math.nan),
        _change(l2_norm_step_rel_change=0.9),
        _change(gate="forget", l2_norm_step_rel_change=2.0),
        _change(part="bias", size=4, l2_norm_step_rel_change=5.0),  # too small to count
        _change(part="bias", present=False, l2_norm_step_rel_change=5.0),
        _change(direction="backward", l2_norm_step_rel_change=-0.6),
        _change(model="e3", l2_norm_step_rel_change=0.5),  # not above the threshold
    ]
    got = _lines(change_flags(rows, T))
    assert got == [
        (
            "warning",
            "e2",
            "lstm / kernel",
            "L2 norm grew 200% since the previous model (forget gate most): weights changing "
            "fast (learning rate too high, or no weight decay)",
        ),
        (
            "warning",
            "e2",
            "lstm / kernel / backward",
            "L2 norm shrank 60% since the previous model (input gate most): weights changing "
            "fast (strong weight decay or regularisation, or a reset)",
        ),
    ]
