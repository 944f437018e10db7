"""Health flags: one line per finding, each with a severity, a short explanation and what to
look at next.

Each rule is one small function over a typed row (:class:`BlockRow` for one model's statistics,
:class:`ChangeRow` for a comparison): row in, flags out. Rules listed in :data:`RULES` with
``once=True`` fire for the first row of a (layer, direction) they apply to only. Before the rules,
each layer is checked against the standard initialisations (:mod:`rnnscope._inits`): a layer
that still holds its initial values gets one note ("untrained (matches ...)") instead of its
flags, and a model whose every layer does gets one note in all. Flags come out most serious
first (error, warning, note), in row order within a severity.

The rules live here; the thresholds and size-aware references in :mod:`rnnscope._flag_limits`,
the records (:class:`Flag`, :class:`BlockRow`) in :mod:`rnnscope._flag_records`, a comparison's
flags in :mod:`rnnscope._flag_changes`. Every name stays importable from this module.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ._enums import Direction, Severity
from ._flag_changes import ChangeRow, change_flags
from ._flag_limits import (
    SLOPES,
    Thresholds,
    gate_reference,
    gate_weighted,
    recurrent_bound,
    recurrent_reference,
)
from ._flag_records import FLAG_COLUMNS, BlockRow, Flag, by_severity
from ._format import as_float
from ._inits import LayerInit, layer_init

__all__ = [
    "FLAG_COLUMNS",
    "RULES",
    "SLOPES",
    "BlockRow",
    "ChangeRow",
    "Flag",
    "Thresholds",
    "by_severity",
    "change_flags",
    "flags_for",
    "gate_reference",
    "gate_weighted",
    "recurrent_bound",
    "recurrent_reference",
]

_GATED = ("LSTM", "GRU")


Rule = Callable[[BlockRow, Thresholds], "list[Flag] | None"]
"""A flag rule: the flags of one row, or None where the rule does not apply to it."""


def _plot(r: BlockRow, kind: str) -> str:
    """The command that draws this row's layer: the model's own name (a file's, as the folder
    lists it) and the layer's, quoted for a POSIX shell."""
    model, layer = shlex.quote(str(r.model)), shlex.quote(str(r.layer))
    return f"rnnscope plot {model} --layer {layer} --kind {kind}"


def nonfinite_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """NaN or Inf anywhere in the block."""
    if not (r.nan or r.inf):
        return None
    return r.flag(
        Severity.ERROR,
        f"{r.nan} NaN and {r.inf} Inf of {r.size} "
        "values: training diverged here, or the file is damaged",
        value=float(r.nan) + float(r.inf),
        hint="find the first checkpoint with NaN/Inf (rnnscope compare on the run's "
        "checkpoints, columns nan and inf) and lower the learning rate or clip gradients "
        "from there; rnnscope.keras.Monitor / rnnscope.torch.Monitor record the step it happens",
    )


def dead_units_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Units whose incoming weights are all near zero (once per layer and direction)."""
    if not r.dead_units > 0:
        return None
    return r.flag(
        Severity.WARNING,
        f"{int(r.dead_units)} of {int(r.units)} units "
        f"have every incoming weight below {r.tol:g}: they output a "
        "constant and learn nothing",
        r.layer_where,
        r.dead_units,
        f"{_plot(r, 'heatmap')}: the dead units are empty columns in every gate; check pruning "
        "masks and weight decay",
    )


def saturated_units_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Units with a gate pinned by its bias whatever the state and input (once per layer and
    direction; :func:`rnnscope._stats.saturated_units`)."""
    if not r.saturated_units > 0:
        return None
    return r.flag(
        Severity.WARNING,
        f"{int(r.saturated_units)} of {int(r.units)} units have a gate pinned at 0 or 1 by its "
        "bias, whatever the state and a standardised input: no gradient passes that gate",
        r.layer_where,
        r.saturated_units,
        f"{_plot(r, 'trace')}: the pinned gate stays flat; rnnscope stats shows the bias "
        "(|w| max); check the input scale and the learning rate",
    )


def near_zero_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Too large a share of near-zero weights: a warning in a weight matrix, a note in a bias
    (zero is where biases start)."""
    if not r.frac_near_zero > t.near_zero_fraction:
        return None
    bias = "bias" in r.part
    what = "bias values" if bias else "weights"
    return r.flag(
        Severity.NOTE if bias else Severity.WARNING,
        f"{r.frac_near_zero:.0%} of the {what} are below {r.tol:g}: "
        + ("never updated, or regularised to 0" if bias else "pruned, zeroed or over-regularised"),
        value=r.frac_near_zero,
        hint=f"{_plot(r, 'histogram')}: a spike at 0 means pruned or zeroed values; compare "
        "with an earlier checkpoint (rnnscope compare, column frac_near_zero)",
    )


def large_weights_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Weights larger than ``t.abs_max`` in magnitude."""
    if not r.abs_max > t.abs_max:
        return None
    return r.flag(
        Severity.WARNING,
        f"largest |weight| {r.abs_max:.3g} > "
        f"{t.abs_max:g}: large weights saturate the gates and can make "
        "gradients explode",
        value=r.abs_max,
        hint=f"{_plot(r, 'histogram')} shows how many are large; {_plot(r, 'trace')} shows "
        "saturated gates; lower the learning rate or add weight decay or gradient clipping",
    )


def _matrix_dims(r: BlockRow) -> tuple[int, int] | None:
    dims = [int(d) for d in r.shape.split("x") if d.isdigit()]
    if len(dims) != 2 or math.isnan(r.units):
        return None
    return dims[0], int(r.units) * r.n_gates


def recurrent_norm_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """The recurrent kernel's largest singular value out of range (once per layer and
    direction: the row of its first gate carries the whole matrix's value), judged against
    :func:`recurrent_reference` of its size; a gated cell's warning by its gate-weighted bound
    (:func:`gate_weighted` over :func:`gate_reference`)."""
    sigma = r.matrix_spectral_norm
    dims = _matrix_dims(r)
    if r.part != "recurrent_kernel" or math.isnan(sigma) or dims is None:
        return None
    where = f"{r.layer} / recurrent_kernel" + (
        f" / {r.direction}" if r.direction not in ("", Direction.FORWARD) else ""
    )
    ref = recurrent_reference(*dims, int(r.units))
    high = recurrent_bound(r.kind, *dims, int(r.units), t)
    shape = f"{dims[0]}x{dims[1]}"
    hint = (
        f"{_plot(r, 'trace')}: watch whether the state grows or saturates; "
        "rnnscope.gradients shows whether gradients grow through time"
    )
    gated = any(g in r.kind for g in _GATED)
    if gated and len(r.gate_sigmas) > 1:
        sigmas = dict(r.gate_sigmas)
        j = gate_weighted(sigmas)
        j_ref = gate_reference(*dims, int(r.units), list(sigmas))
        if j > t.gated_high * j_ref:
            return r.flag(
                Severity.WARNING,
                f"gate-weighted recurrent bound {j:.3g} > {t.gated_high * j_ref:.3g} "
                f"({t.gated_high:g} x the {j_ref:.3g} a standard initialisation of this {shape} "
                "matrix gives; each gate's largest singular value times its slope, 1/4 for "
                f"sigmoid gates; the whole matrix's is {sigma:.3g}): even through the gates, "
                "gradients can grow from step to step, a classic cause of exploding gradients",
                where,
                sigma,  # the finding's value stays sigma max, note or warning (one trend)
                hint,
            )
    if sigma > high:
        return r.flag(
            Severity.NOTE if gated else Severity.WARNING,
            f"largest singular value {sigma:.3g} > {high:.3g} ({t.recurrent_high:g} x the "
            f"{ref:.3g} a standard initialisation of this {shape} matrix gives): through this "
            "matrix gradients can grow from step to step"
            + (
                " (the gates usually damp this)"
                if gated
                else ", a classic cause of exploding gradients"
            ),
            where,
            sigma,
            hint,
        )
    if sigma < t.recurrent_low:
        return r.flag(
            Severity.NOTE,
            f"largest singular value {sigma:.3g} < {t.recurrent_low:g}: "
            "the recurrent path contributes little; gradients through time "
            "fade quickly",
            where,
            sigma,
            hint,
        )
    return []


RULES: tuple[tuple[Rule, bool], ...] = (
    (nonfinite_rule, False),
    (dead_units_rule, True),
    (saturated_units_rule, True),
    (near_zero_rule, False),
    (large_weights_rule, False),
    (recurrent_norm_rule, True),
)
"""The rules of :func:`flags_for` in order, each with ``once`` (first applying row of a
(layer, direction) only)."""


def _untrained(rows: list[dict[str, Any]], t: Thresholds) -> tuple[list[Flag], set[str]]:
    """The notes of layers (or the whole model) still at an initialisation, and those layers."""
    layers: dict[str, list[dict[str, Any]]] = {}
    for raw in rows:
        layers.setdefault(str(raw["layer"]), []).append(raw)
    found = {name: layer_init(rs, t.init_z, t.orthogonal_tol) for name, rs in layers.items()}
    # a few values, or zero biases, prove nothing alone (rnnscope._inits): when every layer
    # matches, the model's evidence counts; otherwise each layer's own
    inits = {name: m for name, m in found.items() if m is not None}
    if len(inits) == len(layers):
        whole = LayerInit(
            "",
            "",
            any(m.exact for m in inits.values()),
            sum(m.uniform_values for m in inits.values()),
        )
        if not whole.counts(t.init_z):
            inits = {}
    else:
        inits = {name: m for name, m in inits.items() if m.counts(t.init_z)}
    matched = {name: (m.family, m.description) for name, m in inits.items()}
    if not matched:
        return [], set()
    model = str(rows[0]["model"])
    hint = (
        "check that training ran and that the trained weights were saved (a checkpoint "
        "written before the first step, or a model rebuilt instead of loaded); rnnscope "
        "compare against a later checkpoint shows what moved"
    )
    if len(matched) == len(layers) and len(layers) > 1:
        families = {family for family, _ in matched.values()}
        family = families.pop() if len(families) == 1 else "mixed initialisers"
        detail = "; ".join(f"{name}: {desc}" for name, (_, desc) in matched.items())
        note = Flag(
            Severity.NOTE,
            model,
            "all layers",
            f"untrained (matches {family}): every layer still holds its initial values ({detail})",
            rule="untrained",
            value=float(len(matched)),
            hint=hint,
        )
        return [note], set(matched)
    notes = [
        Flag(
            Severity.NOTE,
            model,
            name,
            f"untrained (matches {family}): {desc}",
            rule="untrained",
            value=1.0,
            hint=hint,
        )
        for name, (family, desc) in matched.items()
    ]
    return notes, set(matched)


def flags_for(rows: list[dict[str, Any]], t: Thresholds) -> list[Flag]:
    """Flags of one model's statistics rows, most serious first.

    A layer that still matches a standard initialisation gets one "untrained" note instead
    of its warnings and notes (errors are kept); a model whose every layer does gets one.
    """
    if not rows:
        return []
    out, untrained = _untrained(rows, t)
    gates: dict[tuple[str, str], list[tuple[str, float]]] = {}  # each recurrent kernel's gates
    for raw in rows:
        if raw["part"] == "recurrent_kernel":
            at = (str(raw["layer"]), str(raw["direction"]))
            sigma = as_float(raw.get("spectral_norm"))
            gates.setdefault(at, []).append((str(raw.get("gate") or ""), sigma))
    seen: set[tuple[int, str, str]] = set()
    for raw in rows:
        r = BlockRow.of(raw)
        blocks = tuple(gates.get((r.layer, r.direction), ()))
        r = replace(r, n_gates=max(len(blocks), 1), gate_sigmas=blocks)
        for i, (rule, once) in enumerate(RULES):
            key = (i, r.layer, r.direction)
            if once and key in seen:
                continue
            found = rule(r, t)
            if found is None:
                continue
            if once:
                seen.add(key)
            name = rule.__name__.removesuffix("_rule")
            out.extend(
                f if f.rule else replace(f, rule=name)
                for f in found
                if r.layer not in untrained or f.severity == Severity.ERROR
            )
    return by_severity(out)
