"""Health flags: one line per finding, each with a severity and a short explanation.

Each rule is one small function over a typed row (:class:`BlockRow` for one model's statistics,
:class:`ChangeRow` for a comparison): row in, flags out. Rules listed in :data:`RULES` with
``once=True`` fire for the first row of a (layer, direction) they apply to only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ._enums import Direction, Severity

__all__ = ["RULES", "BlockRow", "ChangeRow", "Flag", "Thresholds", "change_flags", "flags_for"]

_MIN_MOVING = 8  # blocks smaller than this are not flagged for moving fast


@dataclass(frozen=True)
class Thresholds:
    """When a statistic becomes a flag (defaults suit float32 models of ordinary scale).

    Attributes:
        near_zero_fraction: flag a block whose share of ``|w| < tol`` exceeds this.
        abs_max: flag weights larger than this in magnitude.
        recurrent_high: flag a recurrent kernel whose largest singular value exceeds this.
        recurrent_low: note a recurrent kernel whose largest singular value is below this.
        growth: flag a part whose L2 norm changed by more than this fraction since the
            previous model (comparisons only).
    """

    near_zero_fraction: float = 0.5
    abs_max: float = 10.0
    recurrent_high: float = 1.0
    recurrent_low: float = 0.25
    growth: float = 0.5


@dataclass(frozen=True)
class Flag:
    """One finding: ``severity`` is ``"error"``, ``"warning"`` or ``"note"`` (a
    :class:`~rnnscope._enums.Severity` given is kept as its plain string).

    ``rule`` names the finding (the rule that raised it, e.g. ``"recurrent_norm"``), so flags of
    many models can be grouped by (rule, where); ``value`` is the number the rule judged (NaN
    where there is none); ``hint`` says what to look at next.
    """

    severity: str
    model: str
    where: str
    message: str
    rule: str = ""
    value: float = math.nan
    hint: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity).value)


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


@dataclass(frozen=True)
class BlockRow:
    """The fields of one statistics row (a ``stats`` record) that the flag rules read.

    Counts and ``tol`` are kept as given (they are printed as they are); the other numbers
    are floats, NaN where the row has none.
    """

    model: str
    layer: str
    kind: str
    part: str
    gate: str
    direction: str
    size: Any
    nan: Any
    inf: Any
    tol: Any
    frac_near_zero: float
    abs_max: float
    units: float
    dead_units: float
    matrix_spectral_norm: float

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> BlockRow:
        """The typed row of a ``stats`` record."""
        return cls(
            model=r["model"],
            layer=r["layer"],
            kind=r.get("kind", ""),
            part=r["part"],
            gate=r.get("gate") or "",
            direction=r["direction"],
            size=r["size"],
            nan=r["nan"],
            inf=r["inf"],
            tol=r.get("tol"),
            frac_near_zero=_num(r["frac_near_zero"]),
            abs_max=_num(r["abs_max"]),
            units=_num(r.get("units")),
            dead_units=_num(r.get("dead_units")),
            matrix_spectral_norm=_num(r.get("matrix_spectral_norm")),
        )

    @property
    def where(self) -> str:
        """``layer / part [/ gate] [/ direction]`` (the forward direction left out)."""
        return _where(self.layer, self.part, self.gate, self.direction)

    def flag(
        self, severity: Severity, message: str, where: str | None = None, value: float = math.nan
    ) -> list[Flag]:
        """One flag of this row's model, at :attr:`where` unless told."""
        at = self.where if where is None else where
        return [Flag(severity, self.model, at, message, value=value)]


def _where(layer: str, part: str, gate: str, direction: str) -> str:
    bits = [layer, part]
    if gate:
        bits.append(gate)
    if direction and direction != Direction.FORWARD:
        bits.append(direction)
    return " / ".join(str(b) for b in bits)


Rule = Callable[[BlockRow, Thresholds], "list[Flag] | None"]
"""A flag rule: the flags of one row, or None where the rule does not apply to it."""


def nonfinite_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """NaN or Inf anywhere in the block."""
    if not (r.nan or r.inf):
        return None
    return r.flag(
        Severity.ERROR,
        f"{r.nan} NaN and {r.inf} Inf of {r.size} "
        "values: training diverged here, or the file is damaged",
        value=float(r.nan) + float(r.inf),
    )


def dead_units_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Units whose incoming weights are all near zero (once per layer and direction)."""
    if not r.dead_units > 0:
        return None
    where = r.layer + (f" / {r.direction}" if r.direction not in ("", Direction.FORWARD) else "")
    return r.flag(
        Severity.WARNING,
        f"{int(r.dead_units)} of {int(r.units)} units "
        f"have every incoming weight below {r.tol:g}: they output a "
        "constant and learn nothing",
        where,
        r.dead_units,
    )


def near_zero_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Too large a share of near-zero weights."""
    if not r.frac_near_zero > t.near_zero_fraction:
        return None
    return r.flag(
        Severity.WARNING,
        f"{r.frac_near_zero:.0%} of the weights "
        f"are below {r.tol:g}: pruned, over-regularised, or never "
        "trained",
        value=r.frac_near_zero,
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
    )


def recurrent_norm_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """The recurrent kernel's largest singular value out of range (once per layer and
    direction: the row of its first gate carries the whole matrix's value)."""
    sigma = r.matrix_spectral_norm
    if r.part != "recurrent_kernel" or math.isnan(sigma):
        return None
    where = f"{r.layer} / recurrent_kernel" + (
        f" / {r.direction}" if r.direction != Direction.FORWARD else ""
    )
    gated = "LSTM" in r.kind or "GRU" in r.kind
    if sigma > t.recurrent_high:
        return r.flag(
            Severity.NOTE if gated else Severity.WARNING,
            f"largest singular value {sigma:.3g} > {t.recurrent_high:g}: "
            "through this matrix gradients can grow from step to step"
            + (
                " (the gates usually damp this)"
                if gated
                else ", a classic cause of exploding gradients"
            ),
            where,
            sigma,
        )
    if sigma < t.recurrent_low:
        return r.flag(
            Severity.NOTE,
            f"largest singular value {sigma:.3g} < {t.recurrent_low:g}: "
            "the recurrent path contributes little; gradients through time "
            "fade quickly",
            where,
            sigma,
        )
    return []


RULES: tuple[tuple[Rule, bool], ...] = (
    (nonfinite_rule, False),
    (dead_units_rule, True),
    (near_zero_rule, False),
    (large_weights_rule, False),
    (recurrent_norm_rule, True),
)
"""The rules of :func:`flags_for` in order, each with ``once`` (first applying row of a
(layer, direction) only)."""


def flags_for(rows: list[dict[str, Any]], t: Thresholds) -> list[Flag]:
    """Flags of one model's statistics rows."""
    out: list[Flag] = []
    seen: set[tuple[int, str, str]] = set()
    for raw in rows:
        r = BlockRow.of(raw)
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
            out.extend(f if f.rule else replace(f, rule=name) for f in found)
    return out


@dataclass(frozen=True)
class ChangeRow:
    """The fields of one ``compare`` record that :func:`change_flags` reads."""

    model: str
    layer: str
    part: str
    gate: str
    direction: str
    present: bool
    size: float
    step: float  # l2_norm_step_rel_change

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> ChangeRow:
        """The typed row of a ``compare`` record."""
        return cls(
            model=r["model"],
            layer=r["layer"],
            part=r["part"],
            gate=r.get("gate") or "",
            direction=r["direction"],
            present=bool(r.get("present")),
            size=_num(r.get("size")),
            step=_num(r.get("l2_norm_step_rel_change")),
        )


def moving_fast(r: ChangeRow, t: Thresholds) -> bool:
    """The block's L2 norm moved by more than ``t.growth`` since the previous model (blocks
    under ``_MIN_MOVING`` values left out: a lone bias moves by large ratios for nothing)."""
    if not r.present or math.isnan(r.step) or abs(r.step) <= t.growth:
        return False
    return not r.size < _MIN_MOVING


def growth_flag(r: ChangeRow) -> Flag:
    """The flag of the block that moved most in its part."""
    gate = f" ({r.gate} gate most)" if r.gate else ""
    where = " / ".join(
        [r.layer, r.part] + ([r.direction] if r.direction not in ("", Direction.FORWARD) else [])
    )
    verb = "grew" if r.step > 0 else "shrank"
    why = (
        "learning rate too high, or no weight decay"
        if r.step > 0
        else "strong weight decay or regularisation, or a reset"
    )
    return Flag(
        Severity.WARNING,
        r.model,
        where,
        f"L2 norm {verb} {abs(r.step):.0%} since the previous model{gate}: "
        f"weights changing fast ({why})",
        rule="growth",
        value=r.step,
    )


def change_flags(rows: list[dict[str, Any]], t: Thresholds) -> list[Flag]:
    """Flags of a comparison: parts whose L2 norm moved fast since the previous model.

    One flag per (model, layer, part, direction), naming the gate that moved most.
    """
    worst: dict[tuple[str, str, str, str], ChangeRow] = {}
    for raw in rows:
        r = ChangeRow.of(raw)
        if not moving_fast(r, t):
            continue
        key = (r.model, r.layer, r.part, r.direction)
        if key not in worst or abs(r.step) > abs(worst[key].step):
            worst[key] = r
    order = {m: i for i, m in enumerate(dict.fromkeys(r["model"] for r in rows))}
    ranked = sorted(worst.items(), key=lambda kv: order[kv[0][0]])
    return [growth_flag(r) for _, r in ranked]
