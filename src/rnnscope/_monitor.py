"""The training monitor's framework-neutral core: per-gate rows, SQLite and TensorBoard writers.

A framework front end (``rnnscope.keras.Monitor``, ``rnnscope.torch.Monitor``) hands over, at
each recorded step, the weight records and (when it has them) the gradient records of the
watched layers, built by the same adapters as everything else. This module turns them into rows
per (step, layer, part, gate, direction), holds them until the next step's weights give the
update ratio, and writes them: SQLite (one transaction per flush, written by a background thread
that survives locked, damaged and vanished databases: :mod:`rnnscope._monitor_db`) and,
optionally, TensorBoard event files. Training never waits for the database.

SQLite schema (``rnnscope.history`` reads it):

- ``runs(run_id, started, framework, model, every, tol, meta)``
- ``stats(run_id, step, epoch, layer, part, gate, direction, weight_norm, mean, std, abs_max,
  frac_near_zero, nan, inf, grad_norm, grad_nan, grad_inf, update_ratio)``
- ``timestep_grads(run_id, step, layer, timestep, grad_norm)``
- ``events(run_id, step, kind, where_, message)``
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._adapters import LayerRef
from ._api import LayerKey, resolve, select
from ._model import LayerWeights, RNNWeights
from ._monitor_db import SCHEMA, STAT_COLUMNS, Store

__all__ = ["SCHEMA", "Recorder", "Row", "blocks", "chosen_refs"]

STAT_FIELDS = STAT_COLUMNS
Record = RNNWeights | LayerWeights


def blocks(rec: Record) -> Iterator[tuple[str, str, str, np.ndarray]]:
    """``(part, gate, direction, block)`` of a record: gates of recurrent parts, whole weights
    of other layers."""
    if isinstance(rec, RNNWeights):
        for d, p, g, a in rec.items():
            yield p, g, d, a
    else:
        for name, a in rec.items():
            yield name, "", "", a


def _norm(a: np.ndarray) -> float:
    f = a.astype(np.float64, copy=False).ravel()
    return float(np.sqrt(np.dot(f, f)))


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
    def key(self) -> tuple[str, str, str, str]:
        return (self.layer, self.part, self.gate, self.direction)


def _weight_stats(a: np.ndarray, tol: float) -> dict[str, Any]:
    finite = np.isfinite(a)
    nan = int(np.isnan(a).sum())
    inf = int((~finite).sum()) - nan
    f = a[finite] if (nan or inf) else a
    f = f.astype(np.float64, copy=False)
    if f.size == 0:
        return {
            "weight_norm": None,
            "mean": None,
            "std": None,
            "abs_max": None,
            "frac_near_zero": None,
            "nan": nan,
            "inf": inf,
        }
    return {
        "weight_norm": _norm(f),
        "mean": float(f.mean()),
        "std": float(f.std()),
        "abs_max": float(np.abs(f).max()),
        "frac_near_zero": float(np.count_nonzero(np.abs(f) < tol) / a.size),
        "nan": nan,
        "inf": inf,
    }


def rows_for(
    step: int, epoch: int, weights: list[Record], grads: list[Record] | None, tol: float
) -> list[Row]:
    """Rows of one step: weight statistics, and gradient norms where gradients are given."""
    grad_blocks: dict[tuple[str, str, str, str], np.ndarray] = {}
    for g in grads or []:
        for p, gate, d, a in blocks(g):
            grad_blocks[(g.name, p, gate, d)] = a
    rows = []
    for rec in weights:
        for p, gate, d, a in blocks(rec):
            row = Row(step, epoch, rec.name, p, gate, d, _weight_stats(a, tol))
            ga = grad_blocks.get(row.key)
            if ga is not None:
                finite = np.isfinite(ga)
                gnan = int(np.isnan(ga).sum())
                row.values.update(
                    grad_norm=_norm(ga[finite]) if finite.any() else None,
                    grad_nan=gnan,
                    grad_inf=int((~finite).sum()) - gnan,
                )
            rows.append(row)
    return rows


class _TensorBoard:
    """Per-gate scalars, and weight and gradient histograms, in TensorBoard's event format."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.writer = EventFileWriter(str(logdir))

    def _event(self, step: int, values: list[Any]) -> None:
        import time

        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.writer.add_event(
            Event(wall_time=time.time(), step=step, summary=Summary(value=values))
        )

    def write(
        self, rows: list[Row], arrays: dict[tuple[str, str, str, str, str], np.ndarray]
    ) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        by_step: dict[int, list[Any]] = {}
        for r in rows:
            tag = "/".join(x for x in r.key if x)
            for k in ("weight_norm", "grad_norm", "update_ratio", "abs_max"):
                v = r.values.get(k)
                if v is not None:
                    by_step.setdefault(r.step, []).append(
                        Summary.Value(tag=f"{tag}/{k}", simple_value=float(v))
                    )
            for kind in ("weights", "gradients"):
                a = arrays.get((kind, *r.key))
                if a is not None:
                    by_step.setdefault(r.step, []).append(
                        Summary.Value(tag=f"{tag}/{kind}", histo=_histogram(a))
                    )
        for step, values in by_step.items():
            self._event(step, values)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _histogram(a: np.ndarray) -> Any:
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    f = a[np.isfinite(a)].astype(np.float64).ravel()
    if f.size == 0:
        return HistogramProto()
    counts, edges = np.histogram(f, bins=30)
    return HistogramProto(
        min=float(f.min()),
        max=float(f.max()),
        num=float(f.size),
        sum=float(f.sum()),
        sum_squares=float(np.dot(f, f)),
        bucket_limit=edges[1:].tolist(),
        bucket=counts.astype(float).tolist(),
    )


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
        self.pending: tuple[list[Row], list[Record]] | None = None
        self.timesteps: list[tuple[int, str, int, float]] = []
        self.events: list[tuple[int, str, str, str]] = []
        self.flagged: set[str] = set()
        self.db: Store | None = None
        self.tb: _TensorBoard | None = None
        self._arrays: dict[tuple[str, str, str, str, str], np.ndarray] = {}
        if not enabled:
            return
        self.db = Store(Path(path), meta)
        if tensorboard is not None:
            try:
                Path(tensorboard).mkdir(parents=True, exist_ok=True)
                self.tb = _TensorBoard(Path(tensorboard))
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
        self.pending = (rows, weights)
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
        rows, before = self.pending
        old = {(r.name, p, g, d): a for r in before for p, g, d, a in blocks(r)}
        for rec in weights:
            for p, g, d, a in blocks(rec):
                prev = old.get((rec.name, p, g, d))
                if prev is None or prev.shape != a.shape:
                    continue
                base = _norm(prev)
                if base > 0 and np.isfinite(base):
                    delta = _norm(a.astype(np.float64) - prev)
                    for r in rows:
                        if r.key == (rec.name, p, g, d):
                            r.values["update_ratio"] = delta / base
        self.flush()

    def timestep_grads(self, step: int, layer: str, norms: np.ndarray) -> None:
        """Per-timestep gradient norms of a layer's output, written with the next flush."""
        if self.enabled:
            self.timesteps += [(step, layer, int(t), float(v)) for t, v in enumerate(norms)]

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
        rows = self.pending[0] if self.pending is not None else []
        self.pending = None
        if not (rows or self.timesteps or self.events):
            return
        if self.db is not None:
            self.db.submit(
                (
                    [
                        (r.step, r.epoch, *r.key, *(r.values.get(k) for k in STAT_FIELDS))
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


def chosen_refs(model: Any, layers: LayerKey | Sequence[LayerKey]) -> list[LayerRef]:
    """The watched layers: the given ones, or every layer with weights."""
    src = resolve(model)
    if layers is None:
        return [r for r in src.refs if r.build is not None]
    keys = [layers] if isinstance(layers, (str, int)) else list(layers)
    return [select(src.refs, k, src.name, recurrent=False) for k in keys]
