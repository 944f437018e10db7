"""The records of the health flags: :class:`Flag` (one finding), :class:`BlockRow` (the fields
of a statistics row the rules read), their order (:func:`by_severity`) and the columns of the
flags table."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._enums import Direction, Severity
from ._format import as_float

__all__ = ["FLAG_COLUMNS", "BlockRow", "Flag", "by_severity"]


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
    shape: str = ""
    saturated_units: float = math.nan
    n_gates: int = 1
    gate_sigmas: tuple[tuple[str, float], ...] = ()  # every gate block's largest singular value

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
            frac_near_zero=as_float(r["frac_near_zero"]),
            abs_max=as_float(r["abs_max"]),
            units=as_float(r.get("units")),
            dead_units=as_float(r.get("dead_units")),
            matrix_spectral_norm=as_float(r.get("matrix_spectral_norm")),
            shape=str(r.get("shape") or ""),
            saturated_units=as_float(r.get("saturated_units")),
        )

    @property
    def where(self) -> str:
        """``layer / part [/ gate] [/ direction]`` (the forward direction left out)."""
        return _where(self.layer, self.part, self.gate, self.direction)

    @property
    def layer_where(self) -> str:
        """``layer [/ direction]`` (the forward direction left out)."""
        return self.layer + (
            f" / {self.direction}" if self.direction not in ("", Direction.FORWARD) else ""
        )

    def flag(
        self,
        severity: Severity,
        message: str,
        where: str | None = None,
        value: float = math.nan,
        hint: str = "",
    ) -> list[Flag]:
        """One flag of this row's model, at :attr:`where` unless told."""
        at = self.where if where is None else where
        return [Flag(severity, self.model, at, message, value=value, hint=hint)]


def _where(layer: str, part: str, gate: str, direction: str) -> str:
    bits = [layer, part]
    if gate:
        bits.append(gate)
    if direction and direction != Direction.FORWARD:
        bits.append(direction)
    return " / ".join(str(b) for b in bits)


_RANK = {s.value: i for i, s in enumerate(Severity)}


def by_severity(flags: list[Flag]) -> list[Flag]:
    """``flags`` most serious first (error, warning, note); the order within a severity kept.

    Example:
        >>> fs = [Flag("note", "m", "a", "x"), Flag("error", "m", "b", "y")]
        >>> [f.severity for f in by_severity(fs)]
        ['error', 'note']
    """
    return sorted(flags, key=lambda f: _RANK[f.severity])


FLAG_COLUMNS = ["severity", "model", "where", "rule", "value", "message", "hint"]
"""The columns of the frame of :func:`rnnscope.flags`."""
