"""The monitor's rows: one per (step, layer, part, gate, direction), with its block's
statistics, computed from the weight and gradient records the front ends hand over."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._columns import MONITOR_ROW
from .._model import LayerWeights, RNNWeights
from .._stats import block_stats

__all__ = ["Record", "Row", "blocks", "norm", "rows_for"]

Record = RNNWeights | LayerWeights
Key = tuple[str, str, str, str]  # (layer, part, gate, direction)


def blocks(rec: Record) -> Iterator[tuple[str, str, str, np.ndarray]]:
    """``(part, gate, direction, block)`` of a record: gates of recurrent parts, whole weights
    of other layers (gate and direction ``""``)."""
    for d, p, g, a in rec.blocks():
        yield p, g, d, a


def keyed(recs: list[Record]) -> dict[Key, np.ndarray]:
    """The blocks of ``recs`` by (layer, part, gate, direction)."""
    return {(r.name, p, g, d): a for r in recs for p, g, d, a in blocks(r)}


def norm(a: np.ndarray) -> float:
    """The L2 norm of all of ``a``, accumulated in float64.

    ``einsum``, not ``dot``: numpy's BLAS runs a dot product of more than ~10,000 elements on
    its own threads, which then spin for tens of milliseconds after it returns, taking cores
    from the training the monitor runs inside (bench/bench_monitor.py)."""
    f = a.astype(np.float64, copy=False).ravel()
    return float(np.sqrt(np.einsum("i,i", f, f)))


@dataclass
class Row:
    """One block at one step."""

    step: int
    epoch: int
    layer: str
    part: str
    gate: str
    direction: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.layer, self.part, self.gate, self.direction)


def _value(v: Any) -> Any:
    """A statistic as the database holds it: None where there is no value (no finite element)."""
    return None if isinstance(v, float) and math.isnan(v) else v


def _weight_stats(a: np.ndarray, tol: float) -> dict[str, Any]:
    s = block_stats(a, tol)
    return {column: _value(getattr(s, name)) for name, column in MONITOR_ROW.items()}


def _grad_stats(ga: np.ndarray) -> dict[str, Any]:
    s = block_stats(ga)
    return {"grad_norm": _value(s.l2_norm), "grad_nan": s.nan, "grad_inf": s.inf}


def rows_for(
    step: int, epoch: int, weights: list[Record], grads: list[Record] | None, tol: float
) -> list[Row]:
    """Rows of one step: weight statistics, and gradient norms where gradients are given."""
    grad_blocks = keyed(grads or [])
    rows = []
    for rec in weights:
        for p, gate, d, a in blocks(rec):
            row = Row(step, epoch, rec.name, p, gate, d, _weight_stats(a, tol))
            ga = grad_blocks.get(row.key)
            if ga is not None:
                row.values.update(_grad_stats(ga))
            rows.append(row)
    return rows
