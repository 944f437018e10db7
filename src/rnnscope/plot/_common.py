"""Shared plumbing of the figures: sources, modes, grids, colour limits, non-finite values.

matplotlib is imported here and in the sibling modules only; ``import rnnscope`` never reaches
this package.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._enums import EquateAxes
from .._errors import InputError, LayerError
from .._model import RNNWeights
from .._stats import count_nonfinite

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "QUIET",
    "EquateAxes",
    "NonFinite",
    "PlotMode",
    "color_limits",
    "describe_nonfinite",
    "finite_view",
    "grid_shape",
    "hide_ticks",
    "integer_ticks",
    "new_figure",
    "nonfinite_counts",
    "offscreen",
    "rnn_record",
    "save",
    "savepaths",
]

_PYPLOT: ContextVar[bool] = ContextVar("rnnscope_pyplot", default=True)
QUIET: ContextVar[bool] = ContextVar("rnnscope_quiet", default=False)


@contextlib.contextmanager
def offscreen() -> Iterator[None]:
    """Inside: new figures are plain ``Figure`` objects unknown to pyplot (safe in threads,
    nothing to close) and nothing is printed; for reports and batch jobs."""
    tokens = _PYPLOT.set(False), QUIET.set(True)
    try:
        yield
    finally:
        _PYPLOT.reset(tokens[0])
        QUIET.reset(tokens[1])


# (direction, part, gate) -> {"nan": n, "inf": m}; only entries with a non-finite value.
NonFinite = dict[tuple[str, str, str], dict[str, int]]


class PlotMode(str, enum.Enum):
    """What an RNN figure shows."""

    WEIGHTS = "weights"
    GRADS = "grads"


def equate_axes(value: Any) -> EquateAxes:
    """The member of a public ``equate_axes``: 0, 1, 2, or a bool (True is 1)."""
    if value is True or value is False:
        return _EQUATE[int(value)]
    if value not in (0, 1, 2):
        raise InputError(f"equate_axes must be 0, 1 or 2 (or a bool); got {value!r}")
    return _EQUATE[int(value)]


_EQUATE = (EquateAxes.NONE, EquateAxes.PART, EquateAxes.ALL)


def _mode(value: Any) -> PlotMode:
    if value == "gradients":
        return PlotMode.GRADS
    try:
        return PlotMode(value)
    except ValueError as err:
        raise InputError(f"mode must be 'weights' or 'grads'; got {value!r}") from err


def rnn_record(
    source: Any,
    layer: Any,
    mode: Any,
    x: Any,
    y: Any,
    loss: Any = None,
    sample_weight: Any = None,
) -> tuple[RNNWeights, PlotMode]:
    """The record to draw: the layer's weights, or the gradient of the loss with respect to them.

    ``source`` is a live model, layer, checkpoint, path or :class:`RNNWeights`; in ``"grads"``
    mode it may also be a gradient record, or the dict :func:`rnnscope.gradients` returns.
    """
    from .._api import rnn_weights

    m = _mode(mode)
    if isinstance(source, Mapping):  # {layer name: gradient record}, as gradients() returns
        recs = {k: v for k, v in source.items() if isinstance(v, RNNWeights)}
        if not recs:
            raise LayerError("the gradient results hold no recurrent layer")
        if layer is None and len(recs) == 1:
            return next(iter(recs.values())), PlotMode.GRADS
        key = layer if isinstance(layer, str) else None
        if key not in recs:
            raise LayerError(
                f"layer {layer!r} is not among the gradient results; they hold: {', '.join(recs)}"
            )
        return recs[key], PlotMode.GRADS
    if m is PlotMode.WEIGHTS or isinstance(source, RNNWeights):
        if x is not None or y is not None:
            if m is PlotMode.WEIGHTS:
                raise InputError("x and y are used in mode='grads' only; got mode='weights'")
        return rnn_weights(source, layer), m
    if x is None or y is None:
        raise InputError(
            "mode='grads' needs the model's input x and targets y (or a gradient record)"
        )
    from .._capture import gradients

    name = rnn_weights(source, layer).name
    rec = gradients(
        source, x, y, layers=name, wrt="weights", loss=loss, sample_weight=sample_weight
    )[name]
    assert isinstance(rec, RNNWeights)
    return rec, m


def label(name: object) -> str:
    """A name from a file as matplotlib text: shown as written, never parsed as math text
    (``$`` escaped), valid UTF-8, control characters escaped, at most 120 characters."""
    from .._format import plain

    return plain(str(name)).replace("$", "\\$")


def finite_view(a: np.ndarray) -> np.ndarray:
    """``a`` as float with NaN and Inf replaced by 0 (a copy only when there are any)."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float64)
    if np.isfinite(a).all():
        return a
    return np.where(np.isfinite(a), a, 0).astype(a.dtype)


MAX_IMAGE = (1024, 2048)  # rows, columns: more than a figure shows at any usual dpi


def shrink_image(a: np.ndarray, limit: tuple[int, int] = MAX_IMAGE) -> np.ndarray:
    """``a`` (2-D) reduced to at most ``limit`` cells, each cell the value of largest magnitude
    of its block (outliers stay visible); ``a`` itself when it fits.

    matplotlib makes several float64 copies of an image's full array while drawing (1.9 GB for
    a 100 MB layer); the reduction works one block row at a time, so it allocates one block row
    plus the small result. Draw the result with ``extent`` set to ``a``'s shape so that axes,
    gate lines and ticks keep ``a``'s coordinates.
    """
    rows, cols = a.shape
    fr, fc = -(-rows // limit[0]), -(-cols // limit[1])
    if fr == 1 and fc == 1:
        return a
    nr, nc = -(-rows // fr), -(-cols // fc)
    out = np.empty((nr, nc), dtype=a.dtype)
    pad = nc * fc - cols
    for i in range(nr):
        block = a[i * fr : (i + 1) * fr]
        if pad:
            block = np.concatenate([block, np.zeros((block.shape[0], pad), a.dtype)], axis=1)
        cells = block.reshape(block.shape[0], nc, fc)
        hi, lo = cells.max(axis=(0, 2)), cells.min(axis=(0, 2))
        out[i] = np.where(np.abs(lo) > np.abs(hi), lo, hi)
    return out


def nonfinite_counts(rec: Any, directions: Sequence[str]) -> NonFinite:
    """NaN and Inf counts per (direction, part, gate) of ``rec`` (any record with ``blocks()``);
    zero counts are left out."""
    out: NonFinite = {}
    for d, p, g, a in rec.blocks():
        if isinstance(rec, RNNWeights) and d not in directions:
            continue
        nan, inf = count_nonfinite(a)
        if nan or inf:
            out[(d, p, g)] = {"nan": nan, "inf": inf}
    return out


def describe_nonfinite(counts: NonFinite) -> str:
    """``"kernel/forget: 3 NaN; bias/input: 1 Inf"``."""
    parts = []
    for (_d, p, g), c in counts.items():
        what = ", ".join(
            f"{c[k]} {k.upper() if k == 'nan' else 'Inf'}" for k in ("nan", "inf") if c[k]
        )
        parts.append(f"{p}/{g}: {what}" if g else f"{p}: {what}")
    return "; ".join(parts).replace("NAN", "NaN")


def color_limits(arrays: Sequence[np.ndarray], norm: Any, absolute: bool) -> tuple[float, float]:
    """Colour limits: ``norm`` if given, else symmetric around 0 (from 0 for absolute values)."""
    if norm is not None:
        try:
            lo, hi = (float(v) for v in norm)
        except (TypeError, ValueError) as err:
            raise InputError(f"norm must be a pair (low, high); got {norm!r}") from err
        if not lo < hi:
            raise InputError(f"norm must have low < high; got {norm!r}")
        return lo, hi
    peak = 0.0
    for a in arrays:
        if a.size:
            peak = max(peak, float(a.max()), -float(a.min()))  # |a|.max() without a copy
    peak = peak or 1.0
    return (0.0, peak) if absolute else (-peak, peak)


def grid_shape(n: int, n_rows: int | None) -> tuple[int, int]:
    """Rows and columns for ``n`` panels; by default about square, wider than tall."""
    if n < 1:
        raise InputError("nothing to draw: the data has no panels")
    if n_rows is None:
        n_rows = max(1, math.isqrt(n))
    if not isinstance(n_rows, int) or n_rows < 1:
        raise InputError(f"n_rows must be a positive integer; got {n_rows!r}")
    n_rows = min(n_rows, n)
    return n_rows, math.ceil(n / n_rows)


def new_figure(
    fig: Figure | None, figsize: tuple[float, float], dpi: float | None, constrained: bool = False
) -> Figure:
    """``fig`` cleared, or a new pyplot figure (so ``plt.show()`` and notebooks display it).

    ``constrained`` lays panels, titles and colour bars out automatically (slower; the
    benchmarked heatmap and histogram place their panels themselves).
    """
    if fig is not None:
        fig.clear()
        if constrained:
            fig.set_layout_engine("constrained")
        return fig
    layout: Any = "constrained" if constrained else None
    if not _PYPLOT.get():
        from matplotlib.figure import Figure

        return Figure(figsize=figsize, dpi=dpi, layout=layout)
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, dpi=dpi, layout=layout)


def savepaths(
    savepath: str | os.PathLike[str] | None, suffixes: Sequence[str]
) -> list[Path | None]:
    """One path per figure: ``savepath`` itself for one, ``name_<suffix>.ext`` for several."""
    if savepath is None:
        return [None] * len(suffixes)
    p = Path(savepath)
    if len(suffixes) == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{s}{p.suffix}") for s in suffixes]


def save(fig: Figure, savepath: str | os.PathLike[str] | None) -> None:
    """Write ``fig`` to ``savepath`` (format from the extension), if a path is given."""
    if savepath is None:
        return
    path = Path(savepath)
    try:
        # zlib level 3 writes the same size as the default 6 here, about 40% faster
        extra: dict[str, Any] = (
            {"pil_kwargs": {"compress_level": 3}} if path.suffix.lower() == ".png" else {}
        )
        fig.savefig(path, **extra)
    except (OSError, ValueError) as err:
        raise InputError(f"savepath: cannot write figure to '{path}': {err}") from err


def hide_ticks(ax: Axes, x: bool, y: bool) -> None:
    """Hide the tick labels (and ticks) of the axes named."""
    if not x:
        ax.tick_params(axis="x", bottom=False, labelbottom=False, top=False, labeltop=False)
    if not y:
        ax.tick_params(axis="y", left=False, labelleft=False)


def integer_ticks(ax: Axes, x: bool = True, y: bool = True) -> None:
    """Ticks at whole numbers only (rows, units, timesteps are counted, not measured)."""
    from matplotlib.ticker import MaxNLocator

    if x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if y:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
