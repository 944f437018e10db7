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


def test_near_zero_and_large_weights_warnings_before_the_bias_note():
    # reason for the change: zero is where biases start, so a mostly-zero bias is a note now,
    # and every output lists flags most serious first
    got = _lines(flags_for([_row(frac_near_zero=0.75, abs_max=12.5, gate="", part="bias")], T))
    assert got == [
        (
            "warning",
            "m",
            "lstm / bias",
            "largest |weight| 12.5 > 10: large weights saturate the gates and can make "
            "gradients explode",
        ),
        (
            "note",
            "m",
            "lstm / bias",
            "75% of the bias values are below 0.001: never updated, or regularised to 0",
        ),
    ]
    kernel = _lines(flags_for([_row(frac_near_zero=0.75)], T))
    assert kernel == [
        (
            "warning",
            "m",
            "lstm / kernel / input",
            "75% of the weights are below 0.001: pruned, zeroed or over-regularised",
        )
    ]


def _sigma_ref(m: int, n: int, units: int) -> float:
    """Largest expected singular value of an m x n recurrent kernel under the standard inits,
    written out here: orthogonal 1, Glorot-uniform and torch's uniform(+-1/sqrt(units))."""
    glorot = (2 / (m + n)) ** 0.5 * (m**0.5 + n**0.5)
    torch_std = (1 / (3 * units)) ** 0.5 * (m**0.5 + n**0.5)
    return max(1.0, glorot, torch_std)


def _gate_ref(m: int, units: int, gates: int) -> float:
    """The gate-weighted bound of a standard initialisation, written out: each m x units
    block's largest expected singular value (Glorot over the whole m x gates*units kernel,
    torch's uniform, orthogonal 1) times the gate's slope (1/4 sigmoid, 1 the candidate)."""
    n = gates * units
    glorot = (2 / (m + n)) ** 0.5 * (m**0.5 + units**0.5)
    torch_std = (1 / (3 * units)) ** 0.5 * (m**0.5 + units**0.5)
    return max(1.0, glorot, torch_std) * ((gates - 1) / 4 + 1)


def test_recurrent_norm_once_per_direction_gated_or_not():
    # reason for the change: the bound is 2 x what a standard initialisation gives a matrix of
    # this shape (chosen on the tuning corpus, checked on the held-out one); a gated cell gets a
    # note there, and a warning from its gate-weighted bound (each gate's sigma x its slope)
    lstm_ref = _sigma_ref(6, 24, 6)  # 6 units, 4 gates
    rnn_ref = _sigma_ref(6, 6, 6)
    j_ref = _gate_ref(6, 6, 4)
    assert round(lstm_ref, 3) == 1.897 and round(rnn_ref, 12) == 2.0 and round(j_ref, 3) == 2.214
    rk = {"part": "recurrent_kernel", "shape": "6x6"}
    gates = ["input", "forget", "cell", "output"]
    huge = {"layer": "huge", "matrix_spectral_norm": 13.0, "spectral_norm": 12.0}
    rows = [
        *(_row(**rk, gate=g, matrix_spectral_norm=3.7, spectral_norm=2.0) for g in gates),
        _row(**rk, direction="backward", matrix_spectral_norm=0.1),
        _row(**rk, layer="big", matrix_spectral_norm=4.05),  # one gate only: n = 6
        *(_row(**rk, **huge, gate=g) for g in gates),
        _row(**rk, layer="rnn", kind="SimpleRNN", gate="hidden", matrix_spectral_norm=4.1),
        _row(**rk, layer="rnn2", kind="SimpleRNN", gate="hidden", matrix_spectral_norm=3.9),
    ]
    got = _lines(flags_for(rows, T))
    grow = "through this matrix gradients can grow from step to step"
    j = 12.0 * (3 / 4 + 1)  # 21 > 8 x 2.214
    assert got == [
        (
            "warning",
            "m",
            "huge / recurrent_kernel",
            f"gate-weighted recurrent bound {j:.3g} > {8 * j_ref:.3g} (8 x the {j_ref:.3g} a "
            "standard initialisation of this 6x24 matrix gives; each gate's largest singular "
            "value times its slope, 1/4 for sigmoid gates; the whole matrix's is 13): even "
            "through the gates, gradients can grow from step to step, a classic cause of "
            "exploding gradients",
        ),
        (
            "warning",
            "m",
            "rnn / recurrent_kernel",
            f"largest singular value 4.1 > 4 (2 x the 2 a standard initialisation of this "
            f"6x6 matrix gives): {grow}, a classic cause of exploding gradients",
        ),
        (
            "note",
            "m",
            "lstm / recurrent_kernel / backward",
            "largest singular value 0.1 < 0.25: the recurrent path contributes little; "
            "gradients through time fade quickly",
        ),
        (
            "note",
            "m",
            "big / recurrent_kernel",
            f"largest singular value 4.05 > 4 (2 x the 2 a standard initialisation of this "
            f"6x6 matrix gives): {grow} (the gates usually damp this)",
        ),
    ]
    huge_flag = next(f for f in flags_for(rows, T) if f.where == "huge / recurrent_kernel")
    assert huge_flag.value == 13.0  # sigma max, as the notes: one unit per finding's trend


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
