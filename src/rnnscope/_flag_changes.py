"""Flags of a comparison: parts whose L2 norm moved fast since the previous model, judged per
the run's shortest gap between checkpoints (:func:`change_flags`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from ._enums import Direction, Severity
from ._flag_limits import Thresholds
from ._flag_records import Flag
from ._format import as_float

__all__ = ["ChangeRow", "change_flags", "growth_flag", "moving_fast"]

_MIN_MOVING = 8  # blocks smaller than this are not flagged for moving fast


@dataclass(frozen=True)
class ChangeRow:
    """The fields of one ``compare`` record that :func:`change_flags` reads.

    ``change`` is the L2 norm's relative change since the previous model; ``gap`` how many
    steps (or epochs) back that model is, and ``unit`` the run's shortest gap between two
    checkpoints (both NaN where the models carry no step numbers).
    """

    model: str
    layer: str
    part: str
    gate: str
    direction: str
    present: bool
    size: float
    change: float  # l2_norm_step_rel_change
    gap: float = math.nan
    unit: float = math.nan

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
            size=as_float(r.get("size")),
            change=as_float(r.get("l2_norm_step_rel_change")),
        )

    @property
    def rate(self) -> float:
        """The change per :attr:`unit` of steps: ``(1 + change) ** (unit / gap) - 1`` (the
        growth factor spread evenly over the gap), so a checkpoint 8 epochs after the one
        before is judged by its change per epoch when the run also saves every epoch. Without
        step numbers, the change itself."""
        if not (self.gap > 0 and self.unit > 0) or self.gap == self.unit:
            return self.change
        return float((1.0 + self.change) ** (self.unit / self.gap) - 1.0)


def moving_fast(r: ChangeRow, t: Thresholds) -> bool:
    """The block's L2 norm moved by more than ``t.growth`` per :attr:`ChangeRow.unit` of steps
    since the previous model (blocks under ``_MIN_MOVING`` values left out: a lone bias moves
    by large ratios for nothing)."""
    if not r.present or math.isnan(r.change) or abs(r.rate) <= t.growth:
        return False
    return not r.size < _MIN_MOVING


def growth_flag(r: ChangeRow) -> Flag:
    """The flag of the block that moved most in its part."""
    gate = f" ({r.gate} gate most)" if r.gate else ""
    where = " / ".join(
        [r.layer, r.part] + ([r.direction] if r.direction not in ("", Direction.FORWARD) else [])
    )
    verb = "grew" if r.change > 0 else "shrank"
    why = (
        "learning rate too high, or no weight decay"
        if r.change > 0
        else "strong weight decay or regularisation, or a reset"
    )
    spread = (
        f", {abs(r.rate):.0%} per {r.unit:g} steps (the run's shortest gap) over the "
        f"{r.gap:g} steps since it"
        if r.rate != r.change
        else ""
    )
    return Flag(
        Severity.WARNING,
        r.model,
        where,
        f"L2 norm {verb} {abs(r.change):.0%} since the previous model{spread}{gate}: "
        f"weights changing fast ({why})",
        rule="growth",
        value=r.rate,
        hint="rnnscope compare --csv: l2_norm_step_rel_change per checkpoint shows when it "
        "started; set it beside the loss curve, and try a lower learning rate or a schedule",
    )


def _gaps(
    rows: list[dict[str, Any]], known: Mapping[str, Any] | None = None
) -> tuple[dict[str, float], float]:
    """Each model's distance in steps from the model before it (in row order), and the run's
    shortest positive gap (NaN where the models carry no step: a ``step`` column, or
    ``known``, model -> step)."""
    steps: dict[str, float] = {}
    for raw in rows:
        model = str(raw["model"])
        got = raw.get("step") if known is None else known.get(model)
        steps.setdefault(model, as_float(got))
    order = list(steps)
    gaps = {m: steps[m] - steps[p] for p, m in pairwise(order)}
    positive = [g for g in gaps.values() if g > 0]
    return gaps, min(positive) if positive else math.nan


def change_flags(
    rows: list[dict[str, Any]], t: Thresholds, steps: Mapping[str, Any] | None = None
) -> list[Flag]:
    """Flags of a comparison: parts whose L2 norm moved fast since the previous model, per
    the run's shortest gap between checkpoints (:attr:`ChangeRow.rate`; the models' steps
    from the rows' ``step`` column, or ``steps``, model -> step).

    One flag per (model, layer, part, direction), naming the gate that moved most.
    """
    gaps, unit = _gaps(rows, steps)
    worst: dict[tuple[str, str, str, str], ChangeRow] = {}
    for raw in rows:
        r = ChangeRow.of(raw)
        r = replace(r, gap=gaps.get(r.model, math.nan), unit=unit)
        if not moving_fast(r, t):
            continue
        key = (r.model, r.layer, r.part, r.direction)
        if key not in worst or abs(r.rate) > abs(worst[key].rate):
            worst[key] = r
    order = {m: i for i, m in enumerate(dict.fromkeys(r["model"] for r in rows))}
    ranked = sorted(worst.items(), key=lambda kv: order[kv[0][0]])
    return [growth_flag(r) for _, r in ranked]
