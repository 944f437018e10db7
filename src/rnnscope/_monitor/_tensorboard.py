"""The monitor's optional TensorBoard writer: per-gate scalars, and weight and gradient
histograms, in TensorBoard's event format (the tensorboard package, imported here only)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ._rows import Row

__all__ = ["TensorBoard"]

SCALARS = ("weight_norm", "grad_norm", "update_ratio", "abs_max")


class TensorBoard:
    """Per-gate scalars, and weight and gradient histograms, in TensorBoard's event format."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.writer = EventFileWriter(str(logdir))

    def _event(self, step: int, values: list[Any]) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.writer.add_event(
            Event(wall_time=time.time(), step=step, summary=Summary(value=values))
        )

    def write(
        self, rows: list[Row], arrays: dict[tuple[str, str, str, str, str], np.ndarray]
    ) -> None:
        """One event per step: the rows' scalars, and histograms of ``arrays`` keyed by
        ``(kind, *row.key)``."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        by_step: dict[int, list[Any]] = {}
        for r in rows:
            tag = "/".join(x for x in r.key if x)
            for k in SCALARS:
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
        sum_squares=float(np.einsum("i,i", f, f)),  # no BLAS threads: see _rows.norm
        bucket_limit=edges[1:].tolist(),
        bucket=counts.astype(float).tolist(),
    )
