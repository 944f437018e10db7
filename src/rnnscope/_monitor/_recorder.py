"""The monitor's recorder: turns each recorded step's weight and gradient records into rows,
holds them until the next step's weights give the update ratio, and hands them to the writers:
SQLite (:mod:`._store`, a background thread training never waits for) and, optionally,
TensorBoard (:mod:`._tensorboard`). Non-finite values are flagged once per kind.
"""

from __future__ import annotations

import sqlite3
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._rows import Key, Record, Row, blocks, keyed, norm, rows_for
from ._schema import STAT_COLUMNS
from ._store import Store
from ._tensorboard import TensorBoard

__all__ = ["Pending", "Recorder"]


@dataclass
class Pending:
    """A recorded step's rows, waiting for the next step's weights (the update ratio)."""

    rows: list[Row]
    weights: dict[Key, np.ndarray]  # the step's blocks, by key
    by_key: dict[Key, list[Row]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for r in self.rows:
            self.by_key.setdefault(r.key, []).append(r)


class Recorder:
    """Turns records into rows, fills in update ratios one step later, and writes.

    Args:
        path: the SQLite database (created, or appended to as a new run).
        meta: framework, model name, every, tol, anything else worth keeping.
        tensorboard: a folder for TensorBoard event files, or None.
        enabled: False on non-chief processes (distributed training): nothing is written.
    """

    def __init__(
        self, path: Any, meta: dict[str, Any], tensorboard: Any = None, enabled: bool = True
    ) -> None:
        self.tol = float(meta.get("tol", 1e-3))
        self.enabled = enabled
        self.pending: Pending | None = None
        self.timesteps: list[tuple[int, str, int, float]] = []
        self.events: list[tuple[int, str, str, str]] = []
        self.flagged: set[str] = set()
        self.db: Store | None = None
        self.tb: TensorBoard | None = None
        self._arrays: dict[tuple[str, str, str, str, str], np.ndarray] = {}
        if not enabled:
            return
        self.db = Store(Path(path), meta)
        if tensorboard is not None:
            try:
                Path(tensorboard).mkdir(parents=True, exist_ok=True)
                self.tb = TensorBoard(Path(tensorboard))
            except (ImportError, OSError) as err:
                self._fail(
                    "tensorboard",
                    f"cannot write TensorBoard files to '{tensorboard}': "
                    f"{err} (pip install tensorboard)",
                )

    @property
    def run_id(self) -> int | None:
        return self.db.run_id if self.db is not None else None

    def _fail(self, what: str, message: str) -> None:
        if what == "database":
            self.db = None
        else:
            self.tb = None
        warnings.warn(
            f"rnnscope monitor: {message}; training goes on without it",
            RuntimeWarning,
            stacklevel=4,
        )

    def record(
        self, step: int, epoch: int, weights: list[Record], grads: list[Record] | None
    ) -> list[Row]:
        """Rows of this step; written once the next step's weights give the update ratio."""
        if not self.enabled:
            return []
        rows = rows_for(step, epoch, weights, grads, self.tol)
        self._flag_nonfinite(step, rows)
        self.flush()
        self.pending = Pending(rows, keyed(weights))
        if self.tb is not None:  # histograms of the weights and gradients of this step
            self._arrays = {
                (kind, rec.name, p, g, d): a
                for kind, recs in (("weights", weights), ("gradients", grads or []))
                for rec in recs
                for p, g, d, a in blocks(rec)
            }
        return rows

    def update(self, weights: list[Record]) -> None:
        """The weights one update after the pending step: fills its update ratios, writes."""
        if self.pending is None:
            return
        pending = self.pending
        for rec in weights:
            for p, g, d, a in blocks(rec):
                key = (rec.name, p, g, d)
                prev = pending.weights.get(key)
                if prev is None or prev.shape != a.shape:
                    continue
                base = norm(prev)
                if base > 0 and np.isfinite(base):
                    ratio = norm(a.astype(np.float64) - prev) / base
                    for r in pending.by_key.get(key, ()):
                        r.values["update_ratio"] = ratio
        self.flush()

    def timestep_grads(self, step: int, layer: str, norms: np.ndarray) -> None:
        """Per-timestep gradient norms of a layer's output, written with the next flush; a
        masked entry (a timestep with no real step) is not written."""
        if self.enabled:
            gone = np.ma.getmaskarray(norms)
            values = np.ma.getdata(norms)
            self.timesteps += [
                (step, layer, int(t), float(v))
                for t, (v, skip) in enumerate(zip(values, gone, strict=True))
                if not skip
            ]

    def _flag_nonfinite(self, step: int, rows: list[Row]) -> None:
        """One event (and one warning) per kind, at the first step it has non-finite values."""
        for kind, fields in (("weights", ("nan", "inf")), ("gradients", ("grad_nan", "grad_inf"))):
            if kind in self.flagged:
                continue
            hit = [(r, sum(r.values.get(f) or 0 for f in fields)) for r in rows]
            hit = [(r, n) for r, n in hit if n]
            if not hit:
                continue
            self.flagged.add(kind)
            where = ["/".join(x for x in r.key if x) for r, _ in hit]
            listed = ", ".join(f"{w} ({n})" for w, (_, n) in zip(where, hit, strict=True))
            msg = (
                f"first non-finite {kind} at step {step}: NaN/Inf in {len(hit)} block(s): {listed}"
            )
            self.events.append((step, f"nonfinite_{kind}", where[0], msg))
            warnings.warn(f"rnnscope monitor: {msg}", RuntimeWarning, stacklevel=4)

    def note(self, step: int, kind: str, where: str, message: str) -> None:
        """An event row (e.g. a non-finite loss), once per kind."""
        if self.enabled and kind not in self.flagged:
            self.flagged.add(kind)
            self.events.append((step, kind, where, message))
            warnings.warn(f"rnnscope monitor: {message}", RuntimeWarning, stacklevel=4)

    def flush(self) -> None:
        """Write the pending rows (update ratio filled in, or left empty) and queued rows."""
        rows = self.pending.rows if self.pending is not None else []
        self.pending = None
        if not (rows or self.timesteps or self.events):
            return
        if self.db is not None:
            self.db.submit(
                (
                    [
                        (r.step, r.epoch, *r.key, *(r.values.get(k) for k in STAT_COLUMNS))
                        for r in rows
                    ],
                    list(self.timesteps),
                    list(self.events),
                )
            )
        if self.tb is not None and rows:
            try:
                self.tb.write(rows, self._arrays)
            except (OSError, ValueError) as err:
                self._fail("tensorboard", f"writing TensorBoard files failed: {err}")
        self.timesteps, self.events = [], []

    def close(self) -> None:
        """Flush and close the writers."""
        if not self.enabled:
            return
        self.flush()
        for w in (self.db, self.tb):
            if w is not None:
                try:
                    w.close()
                except (sqlite3.Error, OSError):
                    pass
        self.db = self.tb = None
