"""The interactive explorer: one self-contained HTML page of a layer's trace (Bokeh, no server).

The page holds every recorded signal of the trace (``h``, ``c``, each gate; each direction) for
every sample, packed as base64 arrays, one block per signal and sample, decoded in the page on
first use. Bokeh draws; the page's own script only picks numbers out of those arrays and hands
them to Bokeh's data sources (``templates/explore.js``).
"""

from __future__ import annotations

import base64
import html
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import InputError, require
from ._trace import Trace, to_numpy

__all__ = ["Explorer", "explore", "explorer_section", "pack_array"]

# float32 (exact) while it fits, then 16-bit and 8-bit steps between each array's min and max
_ENCODINGS = (("f32", "<f4", 4), ("u16", "<u2", 2), ("u8", "u1", 1))
_B64 = 4 / 3  # base64 grows bytes by a third
MAX_MATCHES = 200
PAGE_ROWS = 25  # rows of the match list shown at a time (the rest a page away)
MAX_LINES = 40  # unit lines drawn (each of selected and others) when a layer has more units
# points drawn by all unit lines together; beyond, min and max per bucket of steps (see README)
MAX_POINTS = 12_000
# heatmap columns drawn; beyond, each column is the mean of a bucket of steps (hover stays exact)
MAX_COLUMNS = 512


@dataclass(frozen=True)
class Explorer:
    """An explorer page written to ``path``; shown inline in Jupyter.

    Attributes:
        path: the HTML file.
        signals: the signals in the page, as ``(name, direction)``.
        encoding: how values are stored: ``"f32"`` (exact), ``"u16"`` or ``"u8"`` (steps of
            1/65535 or 1/255 of each signal's range).
        left_out: signals of the trace left out to keep the page within ``max_mb``.
    """

    path: Path
    signals: tuple[tuple[str, str], ...]
    encoding: str
    left_out: tuple[tuple[str, str], ...] = ()

    def _repr_html_(self) -> str:
        page = self.path.read_text(encoding="utf-8")
        return (
            '<iframe style="width:100%;height:960px;border:0" sandbox="allow-scripts" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
        )


def pack_array(a: np.ndarray, encoding: str) -> dict[str, Any]:
    """``a`` as base64 little-endian bytes, one text per sample, and how the page decodes them.

    A value is ``lo + step * stored``, with one ``lo`` and ``step`` for the whole array; for
    ``"f32"`` ``lo`` is 0 and ``step`` 1. ``b64[i]`` holds ``a[i]`` (row-major), so the page
    decodes only the samples it shows.

    Example:
        >>> pack_array(np.array([0.0, 1.0]), "u8")["step"]
        0.00392156862745098
    """
    a = np.asarray(a, np.float64)
    finite = a[np.isfinite(a)]
    vmin = float(finite.min()) if finite.size else 0.0
    vmax = float(finite.max()) if finite.size else 0.0
    dtype = {name: dt for name, dt, _ in _ENCODINGS}[encoding]
    if encoding == "f32":
        lo, step, stored = 0.0, 1.0, a.astype("<f4")
    else:
        levels = np.iinfo(np.dtype(dtype)).max
        lo, step = vmin, (vmax - vmin) / levels if vmax > vmin else 1.0
        stored = np.rint((np.nan_to_num(a, nan=vmin) - lo) / step).clip(0, levels).astype(dtype)
    return {
        "enc": encoding,
        "lo": lo,
        "step": step,
        "min": vmin,
        "max": vmax,
        "shape": list(a.shape),
        "b64": [
            base64.b64encode(np.ascontiguousarray(row).tobytes()).decode("ascii") for row in stored
        ],
    }


def _order(trace: Trace, signals: Sequence[str] | None) -> list[tuple[str, str]]:
    """The signals to show, most wanted first: h, c, then the gates in the cell's order."""
    names = list(trace.names)
    if signals is not None:
        unknown = [s for s in signals if s not in names]
        if unknown or not signals:
            raise InputError(
                f"signals: expected some of {', '.join(names)} (the {trace.cell} trace of "
                f"'{trace.layer}'); got {list(signals)!r}",
                layer=trace.layer,
                argument="signals",
            )
        names = [n for n in names if n in signals]
    names.sort(key=lambda n: (n != "h", n != "c"))
    return [(n, d) for n in names for d in trace.directions]


def _fit(
    trace: Trace, wanted: list[tuple[str, str]], extra: int, max_mb: float
) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """The finest encoding that fits every wanted signal in ``max_mb``, else 8-bit and fewer."""
    sizes = [trace.time_major[key].size for key in wanted]
    budget = max_mb * 1e6 / _B64
    for name, _, nbytes in _ENCODINGS:
        if (sum(sizes) + extra) * nbytes <= budget:
            return name, wanted, []
    kept: list[tuple[str, str]] = []
    total = extra
    for key, size in zip(wanted, sizes, strict=True):
        if total + size <= budget:
            kept.append(key)
            total += size
        else:
            break
    if not kept:
        need = (sizes[0] + extra) * _B64 / 1e6
        raise InputError(
            f"max_mb={max_mb:g}: even the first signal {wanted[0][0]!r} ({wanted[0][1]}) needs "
            f"{need:.1f} MB at 8 bits per value; give fewer samples or timesteps, or a larger "
            "max_mb",
            layer=trace.layer,
            argument="max_mb",
        )
    return "u8", kept, wanted[len(kept) :]


def _tokens(tokens: Any, batch: int, time: int) -> list[list[str]] | None:
    if tokens is None:
        return None
    rows = [tokens] if tokens and isinstance(tokens[0], str) and batch == 1 else list(tokens)
    if len(rows) != batch:
        raise InputError(
            f"tokens: expected one sequence of tokens per sample ({batch}); got {len(rows)}",
            argument="tokens",
        )
    out = []
    for i, row in enumerate(rows):
        row = [str(t) for t in row]
        if len(row) != time:
            raise InputError(
                f"tokens: sample {i} has {len(row)} tokens; expected one per timestep ({time})",
                argument="tokens",
            )
        out.append(row)
    return out


def _labels(labels: Any, batch: int) -> list[str]:
    if labels is None:
        return [f"sample {i}" for i in range(batch)]
    labels = [str(v) for v in labels]
    if len(labels) != batch:
        raise InputError(
            f"labels: expected one label per sample ({batch}); got {len(labels)}",
            argument="labels",
        )
    return [f"{i}: {v}" for i, v in enumerate(labels)]


def _meta(
    trace: Trace,
    keys: list[tuple[str, str]],
    encoding: str,
    x: np.ndarray,
    tokens: list[list[str]] | None,
    labels: list[str],
) -> dict[str, Any]:
    signals = {}
    for name, direction in keys:
        signals[f"{name}|{direction}"] = pack_array(trace.get(name, direction), encoding)
    shape = trace.time_major[keys[0]].shape
    return {
        "layer": trace.layer,
        "cell": trace.cell,
        "samples": shape[1],
        "time": shape[0],
        "labels": labels,
        "signals": signals,
        "tokens": tokens,
        "features": None if tokens is not None else pack_array(x, encoding),
        "max_matches": MAX_MATCHES,
        "page_rows": PAGE_ROWS,
        "max_lines": MAX_LINES,
        "max_points": MAX_POINTS,
        "max_columns": MAX_COLUMNS,
    }


def explore(
    model_or_file: Any,
    x: Any,
    layer: Any = None,
    labels: Sequence[Any] | None = None,
    tokens: Sequence[Sequence[Any]] | None = None,
    out: str | os.PathLike[str] = "explore.html",
    *,
    signals: Sequence[str] | None = None,
    threshold: float = 0.5,
    max_mb: float = 64.0,
    title: str | None = None,
) -> Explorer:
    """Write an interactive explorer of one recurrent layer's trace as ONE self-contained HTML file.

    Views (pick the sample, direction and signal): unit lines over time, a units x time heatmap
    and the input underneath (tokens as text, or features as a heatmap). Brush a time range on
    the lines (or move the range slider) and set a threshold: the units above it at every step
    of the range are selected and counted, and the places in every sample where they are all on
    together are listed, best match first; click one to jump there.

    Args:
        model_or_file: a model, layer, checkpoint path, :class:`RNNWeights` or a
            :class:`Trace` already made from ``x``.
        x: the layer's input, ``(batch, time, features)``.
        layer: as in :func:`rnnscope.rnn_weights`.
        labels: one label per sample, shown in the sample menu.
        tokens: one token per timestep per sample, ``(batch, time)``, shown under the plots
            instead of the input features.
        out: the HTML file to write.
        signals: the signals to include (default: all the trace records).
        threshold: the threshold the page starts with.
        max_mb: file-size budget for the data in the page: values are stored as float32 while
            they fit, then as 16-bit and 8-bit steps, then signals are left out (h and c kept
            first) with a warning.
        title: the page title.

    Example:
        >>> import numpy as np, torch, rnnscope
        >>> x = np.random.default_rng(0).normal(size=(4, 30, 3)).astype("float32")
        >>> rnnscope.explore(torch.nn.LSTM(3, 8), x, out="lstm.html").encoding
        'f32'
    """
    require("bokeh", "explore", "rnnscope.explore")
    from ._api import trace as run

    xa = to_numpy(x)
    t = model_or_file if isinstance(model_or_file, Trace) else run(model_or_file, xa, layer)
    some = t.time_major[(t.names[0], t.directions[0])]
    time, batch = some.shape[:2]
    if xa.ndim != 3 or xa.shape[:2] != (batch, time):
        raise InputError(
            f"x: expected (batch, time, features) with batch {batch} and {time} timesteps "
            f"(the trace's); got shape {xa.shape}",
            layer=t.layer,
            argument="x",
        )
    toks = _tokens(tokens, batch, time)
    names = _labels(labels, batch)
    wanted = _order(t, signals)
    extra = 0 if toks is not None else xa.size
    encoding, keys, left = _fit(t, wanted, extra, max_mb)
    if left:
        warnings.warn(
            f"explore: the page keeps {', '.join(f'{n} ({d})' for n, d in keys)} at 8 bits per "
            f"value to stay within max_mb={max_mb:g}; left out: "
            f"{', '.join(f'{n} ({d})' for n, d in left)} (pass signals= or a larger max_mb)",
            RuntimeWarning,
            stacklevel=2,
        )
    meta = _meta(t, keys, encoding, xa, toks, names)
    from ._explore_page import build_page

    page = build_page(meta, keys, threshold, title or f"rnnscope explorer: {t.layer}")
    path = Path(out)
    if not path.parent.is_dir():
        raise InputError(f"out: folder '{path.parent}' does not exist", argument="out")
    path.write_text(page, encoding="utf-8")
    return Explorer(path, tuple(keys), encoding, tuple(left))


def explorer_section(
    explorer_path: str | os.PathLike[str], report_path: str | os.PathLike[str]
) -> str:
    """An HTML fragment for the report that links to an explorer page written beside it.

    The hook the report calls when inputs are given: the link is relative to the report's
    folder, so both files can be moved together.

    Example:
        >>> explorer_section("out/explore.html", "out/report.html")[:28]
        '<section class="explorer"><h'
    """
    rel = os.path.relpath(Path(explorer_path).resolve(), Path(report_path).resolve().parent)
    href = html.escape(Path(rel).as_posix(), quote=True)
    return (
        '<section class="explorer"><h2>Explorer</h2><p>Hidden states and gates over time, '
        f'interactive: <a href="{href}">{html.escape(Path(rel).name)}</a> '
        "(select units by a time range and a threshold, find where they are on together).</p>"
        "</section>"
    )
