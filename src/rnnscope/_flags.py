"""Health flags: one line per finding, each with a severity and a short explanation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Flag", "Thresholds", "change_flags", "flags_for"]

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
    """One finding: ``severity`` is ``"error"``, ``"warning"`` or ``"note"``."""

    severity: str
    model: str
    where: str
    message: str


def _where(r: dict[str, Any]) -> str:
    bits = [r["layer"], r["part"]]
    if r.get("gate"):
        bits.append(r["gate"])
    if r.get("direction") and r["direction"] != "forward":
        bits.append(r["direction"])
    return " / ".join(str(b) for b in bits)


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def flags_for(rows: list[dict[str, Any]], t: Thresholds) -> list[Flag]:
    """Flags of one model's statistics rows."""
    out: list[Flag] = []
    seen_dead: set[tuple[str, str]] = set()
    seen_rk: set[tuple[str, str]] = set()
    for r in rows:
        m, w = r["model"], _where(r)
        if r["nan"] or r["inf"]:
            out.append(
                Flag(
                    "error",
                    m,
                    w,
                    f"{r['nan']} NaN and {r['inf']} Inf of {r['size']} "
                    "values: training diverged here, or the file is damaged",
                )
            )
        dead = _num(r.get("dead_units"))
        key = (r["layer"], r["direction"])
        if dead > 0 and key not in seen_dead:
            seen_dead.add(key)
            where = r["layer"] + (
                f" / {r['direction']}" if r["direction"] not in ("", "forward") else ""
            )
            out.append(
                Flag(
                    "warning",
                    m,
                    where,
                    f"{int(dead)} of {int(_num(r['units']))} units "
                    f"have every incoming weight below {r['tol']:g}: they output a "
                    "constant and learn nothing",
                )
            )
        if _num(r["frac_near_zero"]) > t.near_zero_fraction:
            out.append(
                Flag(
                    "warning",
                    m,
                    w,
                    f"{_num(r['frac_near_zero']):.0%} of the weights "
                    f"are below {r['tol']:g}: pruned, over-regularised, or never "
                    "trained",
                )
            )
        if _num(r["abs_max"]) > t.abs_max:
            out.append(
                Flag(
                    "warning",
                    m,
                    w,
                    f"largest |weight| {_num(r['abs_max']):.3g} > "
                    f"{t.abs_max:g}: large weights saturate the gates and can make "
                    "gradients explode",
                )
            )
        sigma = _num(r.get("matrix_spectral_norm"))
        if r["part"] == "recurrent_kernel" and not math.isnan(sigma) and key not in seen_rk:
            seen_rk.add(key)
            where = f"{r['layer']} / recurrent_kernel" + (
                f" / {r['direction']}" if r["direction"] != "forward" else ""
            )
            gated = "LSTM" in r["kind"] or "GRU" in r["kind"]
            if sigma > t.recurrent_high:
                out.append(
                    Flag(
                        "note" if gated else "warning",
                        m,
                        where,
                        f"largest singular value {sigma:.3g} > {t.recurrent_high:g}: "
                        "through this matrix gradients can grow from step to step"
                        + (
                            " (the gates usually damp this)"
                            if gated
                            else ", a classic cause of exploding gradients"
                        ),
                    )
                )
            elif sigma < t.recurrent_low:
                out.append(
                    Flag(
                        "note",
                        m,
                        where,
                        f"largest singular value {sigma:.3g} < {t.recurrent_low:g}: "
                        "the recurrent path contributes little; gradients through time "
                        "fade quickly",
                    )
                )
    return out


def change_flags(rows: list[dict[str, Any]], t: Thresholds) -> list[Flag]:
    """Flags of a comparison: parts whose L2 norm moved fast since the previous model.

    One flag per (model, layer, part, direction), naming the gate that moved most.
    """
    worst: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in rows:
        step = _num(r.get("l2_norm_step_rel_change"))
        if not r.get("present") or math.isnan(step) or abs(step) <= t.growth:
            continue
        if _num(r.get("size")) < _MIN_MOVING:  # a lone bias moves by large ratios for nothing
            continue
        key = (r["model"], r["layer"], r["part"], r["direction"])
        if key not in worst or abs(step) > abs(_num(worst[key]["l2_norm_step_rel_change"])):
            worst[key] = r
    order = {m: i for i, m in enumerate(dict.fromkeys(r["model"] for r in rows))}
    out = []
    for (model, layer, part, direction), r in sorted(worst.items(), key=lambda kv: order[kv[0][0]]):
        step = _num(r["l2_norm_step_rel_change"])
        gate = f" ({r['gate']} gate most)" if r.get("gate") else ""
        where = " / ".join(
            [layer, part] + ([direction] if direction not in ("", "forward") else [])
        )
        verb = "grew" if step > 0 else "shrank"
        why = (
            "learning rate too high, or no weight decay"
            if step > 0
            else "strong weight decay or regularisation, or a reset"
        )
        out.append(
            Flag(
                "warning",
                model,
                where,
                f"L2 norm {verb} {abs(step):.0%} since the previous model{gate}: "
                f"weights changing fast ({why})",
            )
        )
    return out
