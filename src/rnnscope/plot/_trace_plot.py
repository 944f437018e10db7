"""Gate activations and states over time, from a :class:`rnnscope.Trace`.

Masked (padded) steps of a masked trace are drawn hatched grey and left out of the colour scale.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError, LayerError
from .._trace import Trace
from ._common import integer_ticks, label, new_figure, save
from ._features import masked_image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["trace_plot"]

_DEFAULT = {
    "LSTM": ("input", "forget", "output", "c"),
    "GRU": ("update", "reset", "h"),
    "SimpleRNN": ("h",),
}
_NAMES = {
    "input": "input gate",
    "forget": "forget gate",
    "cell": "cell candidate",
    "output": "output gate",
    "update": "update gate",
    "reset": "reset gate",
    "new": "new (candidate) state",
    "c": "cell state c",
    "h": "hidden state h",
}


def _units(units: Any, size: int, name: str) -> np.ndarray:
    if units is None:
        return np.arange(size)
    idx = np.arange(size)[units] if isinstance(units, slice) else np.asarray(units, dtype=int)
    if idx.size == 0 or idx.min() < -size or idx.max() >= size:
        raise InputError(f"units: '{name}' has {size} units; got {units!r}")
    return idx


def _flat(a: np.ndarray) -> np.ndarray:
    """``(time, size)``: a ConvLSTM's output positions and filters flattened row-major (the
    filter fastest), so row ``position * filters + filter``."""
    return a if a.ndim == 2 else a.reshape(a.shape[0], -1)


def trace_plot(
    trace: Trace,
    names: Sequence[str] | None = None,
    *,
    sample: int = 0,
    units: Any = None,
    directions: Sequence[str] | None = None,
    cmap_gates: Any = "viridis",
    cmap_states: Any = "bwr",
    show_title: bool = True,
    title: str | None = None,
    dpi: float | None = None,
    fig: Figure | None = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Figure:
    """Gate activations and states of one sample over time: units (rows) x timesteps.

    One row per quantity (by default the LSTM's input, forget and output gates and cell state;
    the GRU's update and reset gates and hidden state), one column per direction, time in input
    order for both directions. Quantities within [0, 1] (gates after a sigmoid) share a fixed
    0-1 colour scale; the others a scale symmetric around 0. Masked steps of a masked trace
    are drawn hatched grey and left out of the scales. A ConvLSTM trace draws each output
    position's filters as rows (row ``position * filters + filter``, positions row-major).

    Args:
        trace: from :func:`rnnscope.trace`.
        names: quantities to draw, any of ``trace.names``.
        sample: which sample of the batch.
        units: a slice or list of unit indices to draw (default all).
        directions: a subset of ``trace.directions``.
        cmap_gates, cmap_states: colormaps for [0, 1] quantities and for signed ones.
        show_title, title, dpi, fig, savepath: as in :func:`features_2d`.

    Example:
        >>> t = rnnscope.trace(model, x, layer="lstm")
        >>> fig = rnnscope.plot.trace_plot(t, ["forget", "c"], sample=3)
    """
    if not isinstance(trace, Trace):
        raise InputError(f"trace: expected a rnnscope.Trace; got {type(trace).__name__}")
    names = tuple(names) if names is not None else _DEFAULT.get(trace.cell, _DEFAULT["LSTM"])
    for n in names:
        if n not in trace.names:
            raise LayerError(
                f"trace of '{trace.layer}' ({trace.cell}) has no {n!r}; "
                f"it has: {', '.join(trace.names)}"
            )
    dirs = tuple(directions) if directions is not None else trace.directions
    batch = trace.get(names[0], dirs[0]).shape[0]
    if not -batch <= sample < batch:
        raise InputError(f"sample: the trace holds {batch} samples; got {sample}")
    panels = {  # (time, size); a ConvLSTM's (time, *space, filters) as (time, positions x filters)
        (n, d): _flat(trace.get(n, d)[sample]) for n in names for d in dirs
    }
    hidden = None if trace.mask is None else ~trace.mask[sample]  # (time,)
    fig = new_figure(fig, (4.2 * len(dirs) + 1.6, 1.9 * len(names) + 1.0), dpi, constrained=True)
    axes = fig.subplots(len(names), len(dirs), squeeze=False, sharex=True)
    for i, n in enumerate(names):
        block = np.stack([np.ma.getdata(panels[(n, d)]) for d in dirs])
        if hidden is not None:  # masked steps: out of the colour scale
            block = block[:, ~hidden]
        finite = block[np.isfinite(block)]
        gate_like = finite.size > 0 and finite.min() >= 0 and finite.max() <= 1
        if gate_like:
            lo, hi, cmap = 0.0, 1.0, cmap_gates
        else:
            peak = float(np.abs(finite).max()) if finite.size else 1.0
            lo, hi, cmap = -(peak or 1.0), peak or 1.0, cmap_states
        image = None
        for j, d in enumerate(dirs):
            ax = axes[i, j]
            a = np.ma.getdata(panels[(n, d)])
            idx = _units(units, a.shape[1], n)
            values = np.nan_to_num(a[:, idx].T)
            mask = None if hidden is None else np.broadcast_to(hidden, values.shape)
            values, cm = masked_image(ax, values, mask, cmap)
            image = ax.imshow(
                values,
                aspect="auto",
                interpolation="nearest",
                cmap=cm,
                vmin=lo,
                vmax=hi,
            )
            integer_ticks(ax)
            if i == 0 and len(dirs) > 1:
                ax.set_title(d, fontsize=10, fontweight="bold")
            if j == 0:
                ax.set_ylabel(f"{_NAMES.get(n, n)}\nunit", fontsize=9)
            if i == len(names) - 1:
                ax.set_xlabel("timestep (input order)", fontsize=9)
        assert image is not None
        fig.colorbar(image, ax=list(axes[i]), fraction=0.04, pad=0.02)
    if show_title:
        fig.suptitle(
            title
            or f"Gate trace of layer '{label(trace.layer)}' ({trace.cell}), "
            f"sample {sample}: units x timesteps",
            fontsize=12,
        )
    save(fig, savepath)
    return fig
