"""``rnnscope.summary``: a per-layer, per-gate table of shapes, counts and statistics."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ._api import LayerKey, resolve, select
from ._columns import SUMMARY_ROW
from ._format import plain
from ._model import LayerWeights, RNNWeights
from ._stats import block_stats

__all__ = ["Summary", "SummaryRow", "summary"]


@dataclass(frozen=True)
class SummaryRow:
    """Statistics of one block: a gate of a part of a direction, or a whole generic weight.

    ``mean``/``std``/``min``/``max`` are over the finite values (NaN when there are none).
    """

    layer: str
    kind: str
    direction: str
    part: str
    gate: str
    shape: tuple[int, ...]
    size: int
    mean: float
    std: float
    min: float
    max: float
    nans: int
    infs: int


def _rows(rec: RNNWeights | LayerWeights) -> Iterator[SummaryRow]:
    kind = rec.kind
    if isinstance(rec, RNNWeights):
        kind = kind if rec.cell in kind else f"{kind}({rec.cell})"  # e.g. Bidirectional(GRU)
    for d, p, g, a in rec.blocks():
        s = block_stats(a)
        named = {field: getattr(s, row) for row, field in SUMMARY_ROW.items()}
        yield SummaryRow(rec.name, kind, d, p, g, tuple(a.shape), s.size, **named)


@dataclass(frozen=True)
class Summary:
    """The rows of :func:`summary`, printable as a table (``str(summary)``)."""

    source: str
    rows: tuple[SummaryRow, ...]
    notes: tuple[str, ...] = ()

    def records(self) -> list[dict[str, Any]]:
        """The rows as dictionaries, ready for ``pandas.DataFrame(...)`` or JSON."""
        from dataclasses import asdict

        return [asdict(r) for r in self.rows]

    def __str__(self) -> str:
        head: tuple[str, ...] = (
            "layer",
            "kind",
            "dir",
            "part",
            "gate",
            "shape",
            "params",
            "mean",
            "std",
            "min",
            "max",
            "nan",
            "inf",
        )
        body: list[tuple[str, ...]] = [
            (
                plain(r.layer),
                r.kind,
                {"forward": "fwd", "backward": "bwd"}.get(r.direction, ""),
                r.part,
                r.gate,
                "x".join(map(str, r.shape)),
                str(r.size),
                f"{r.mean:.4g}",
                f"{r.std:.4g}",
                f"{r.min:.4g}",
                f"{r.max:.4g}",
                str(r.nans),
                str(r.infs),
            )
            for r in self.rows
        ]
        if not any(r.direction == "backward" for r in self.rows):  # no direction column needed
            head = (*head[:2], *head[3:])
            body = [(*b[:2], *b[3:]) for b in body]
        widths = [
            max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
        ]
        numeric = set(range(len(head) - 7, len(head)))

        def fmt(cells: tuple[str, ...]) -> str:
            return "  ".join(
                c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        lines = [
            f"Summary of {plain(self.source, None)}",
            fmt(head),
            fmt(tuple("-" * w for w in widths)),
        ]
        previous = None
        for r, b in zip(self.rows, body, strict=True):
            same = previous is not None and previous == r.layer
            lines.append(fmt(("", "", *b[2:]) if same else b))  # layer and kind once
            previous = r.layer
        total = sum(r.size for r in self.rows)
        n = len({r.layer for r in self.rows})
        lines.append(f"{n} layer{'s' if n != 1 else ''}, {total:,} parameters")
        lines.extend(f"note: {plain(n, None)}" for n in self.notes)
        return "\n".join(lines)


def summary(
    obj: Any, layer: LayerKey = None, *, file: IO[str] | None = None, quiet: bool = False
) -> Summary:
    """Print and return per-layer, per-gate statistics of every layer with weights.

    Args:
        obj: a model, layer, checkpoint path or record.
        layer: one layer (as in :func:`rnnscope.rnn_weights`), or None for all layers.
        file: where to print (default stdout).
        quiet: return the data without printing.

    Example:
        >>> import torch, rnnscope
        >>> s = rnnscope.summary(torch.nn.GRU(3, 4), quiet=True)
        >>> [(r.part, r.gate) for r in s.rows][:3]
        [('kernel', 'update'), ('kernel', 'reset'), ('kernel', 'new')]
    """
    src = resolve(obj)
    refs = src.refs
    if layer is not None:
        refs = [select(refs, layer, src.name, recurrent=False)]
    rows = tuple(row for ref in refs for row in _rows(ref.extract()))
    result = Summary(src.name, rows, src.notes)
    if not quiet:
        print(result, file=file or sys.stdout)
    return result
