"""See RNN's histogram figures: ``features_hist``, ``features_hist_v2`` and ``hist_clipped``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from ..._errors import InputError
from ._common import clipnums, grid_shape, options
from ._features import _TIGHT, _borders, _finish, _grid_kw, _labels, _pair, _plt, _ticks

__all__ = ["features_hist", "features_hist_v2", "hist_clipped"]

_PAD = {
    "min": {"fontsize": 12, "xy": (0.03, 0.1), "xycoords": "axes fraction"},
    "max": {"fontsize": 12, "xy": (0.93, 0.1), "xycoords": "axes fraction"},
}


def _style_hist(
    ax: Any, kw: Any, o: dict[str, Any], xlims: Any, center_zero: bool, pad_xticks: bool
) -> None:
    if not o["show_borders"]:
        ax.set_frame_on(False)
    _ticks(ax, _pair(o["show_xy_ticks"]))
    if center_zero:
        top = max(np.abs(ax.get_xlim()))
        ax.set_xlim(-top, top)
    elif xlims is not None:
        ax.set_xlim(*xlims)
    if pad_xticks:
        low, high = clipnums([float(v) for v in ax.get_xlim()])
        ax.annotate(low, **kw["pad_xticks"]["min"])
        ax.annotate(high, **kw["pad_xticks"]["max"])


def _hist_axes(plt: Any, rows: int, cols: int, kw: Any) -> Any:
    fig, axes = plt.subplots(rows, cols, squeeze=False, **kw["subplot"])
    return fig, axes


_HIST_OPTS = {
    "w": 1,
    "h": 1,
    "show_borders": True,
    "show_xy_ticks": (1, 1),
    "title": None,
    "borderwidth": None,
    "savepath": None,
}


def features_hist(
    data: Any,
    n_rows: Any = "vertical",
    bins: int = 100,
    xlims: Any = None,
    tight: bool = True,
    center_zero: bool = False,
    share_xy: Any = ("col", 1),
    pad_xticks: bool | None = None,
    annotations: Any = "auto",
    configs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """One histogram per entry of ``data``'s first axis, in a grid.

    Args:
        data: ``(panels, ...)``; each ``data[i]`` is flattened into one histogram.
        n_rows: ``'vertical'`` (one column), an int, or None (near-square).
        bins: bins per histogram.
        xlims: ``(xmin, xmax)`` for every panel.
        tight: no padding between panels (``configs['tight']``).
        center_zero: symmetric x limits about 0 (wins over ``xlims``).
        share_xy: ``(sharex, sharey)`` or one value for both.
        pad_xticks: write each panel's x limits inside it; None: when ``tight`` and x is not
            shared.
        annotations: ``'auto'`` (panel numbers), a list of labels, or None.
        configs: kwargs per element: ``'plot'`` (to :func:`hist_clipped`, with
            ``peaks_to_clip``), ``'subplot'``, ``'title'``, ``'tight'``, ``'annot'``,
            ``'pad_xticks'`` (``{'min': ..., 'max': ...}``), ``'save'``.
        **kwargs: ``w``, ``h``, ``show_borders``, ``show_xy_ticks``, ``title`` (text or None),
            ``borderwidth``, ``savepath``.

    Returns:
        ``(fig, axes)`` with ``axes`` 2D.

    Example:
        >>> fig, axes = features_hist(np.random.randn(3, 100), bins=20)
    """
    o = options("features_hist", kwargs, dict(_HIST_OPTS))
    o["tight"] = tight
    kw = _grid_kw(
        configs,
        "features_hist",
        o,
        share_xy,
        {
            "annot": {
                "weight": "bold",
                "fontsize": 14,
                "xy": (0.02, 0.7),
                "xycoords": "axes fraction",
                "color": "g",
            },
            "pad_xticks": _PAD,
        },
    )
    kw["plot"] = {"peaks_to_clip": 0, **kw["plot"]}
    if pad_xticks is None:
        pad_xticks = bool(tight and not kw["subplot"]["sharex"])
    n = len(data)
    rows, cols = (n, 1) if n_rows == "vertical" else grid_shape(n_rows, n)
    labels = _labels(annotations, n)
    plt = _plt()
    fig, axes = _hist_axes(plt, rows, cols, kw)
    if o["title"] is not None:
        fig.suptitle(o["title"], **kw["title"])
    for i, ax in enumerate(axes.flat):
        hist_clipped(data[i], ax=ax, bins=bins, **kw["plot"])
        _ticks(ax, _pair(o["show_xy_ticks"]))
        if i < len(labels):
            ax.annotate(labels[i], **kw["annot"])
        _style_hist(ax, kw, {**o, "show_xy_ticks": (1, 1)}, xlims, center_zero, pad_xticks)
    if tight:
        fig.subplots_adjust(**kw["tight"])
    if o["borderwidth"] is not None:
        _borders(axes, o["borderwidth"])
    _finish(fig, o["savepath"], kw["save"])
    return fig, axes


def features_hist_v2(
    data: Any,
    colnames: Any = None,
    bins: int = 100,
    xlims: Any = None,
    ylim: Any = None,
    center_zero: bool = False,
    tight: bool = True,
    share_xy: Any = ("col", 1),
    pad_xticks: bool | None = None,
    side_annot: str | None = None,
    configs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """A grid of panels each holding several histograms: ``data[row][col]`` is a list of
    arrays, each drawn as one histogram in that panel.

    Args:
        data: ``(rows, cols, subdata...)`` nested lists or an array; every row has as many
            columns.
        colnames: titles over the top row's panels.
        bins, xlims, center_zero, tight, share_xy, pad_xticks: as in :func:`features_hist`.
        ylim: upper y limit (applied to the last panel, as See RNN does).
        side_annot: text written right of the last column, followed by the row number.
        configs: as in :func:`features_hist`, plus ``'colnames'`` and ``'side_annot'``.
        **kwargs: ``w``, ``h``, ``show_borders``, ``show_xy_ticks``, ``title``,
            ``borderwidth``, ``savepath``.

    Returns:
        ``(fig, axes)`` with ``axes`` 2D.

    Example:
        >>> fig, axes = features_hist_v2([[[np.ones(5), np.zeros(5)]]])
    """
    o = options("features_hist_v2", kwargs, dict(_HIST_OPTS))
    kw = _grid_kw(
        configs,
        "features_hist_v2",
        o,
        share_xy,
        {
            "colnames": {"weight": "bold", "fontsize": 14},
            "side_annot": {
                "weight": "bold",
                "fontsize": 14,
                "xy": (1.02, 0.5),
                "xycoords": "axes fraction",
            },
            "pad_xticks": _PAD,
        },
        title={"weight": "bold", "fontsize": 15, "y": 1.06},
        tight={**_TIGHT, "wspace": 0.05, "hspace": 0.05},
    )
    kw["plot"] = {"peaks_to_clip": 0, **kw["plot"]}
    if pad_xticks is None:
        pad_xticks = bool(tight and not kw["subplot"]["sharex"])
    rows, cols = len(data), len(data[0])
    if any(len(r) != cols for r in data):
        raise InputError(f"features_hist_v2: every row of data must have {cols} columns")
    plt = _plt()
    fig, axes = _hist_axes(plt, rows, cols, kw)
    if o["title"] is not None:
        fig.suptitle(o["title"], **kw["title"])
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            for sub in data[r][c]:
                hist_clipped(sub, ax=ax, bins=bins, **kw["plot"])
            if r == 0 and colnames is not None:
                ax.set_title(f"{colnames[c]}", **kw["colnames"])
            if side_annot is not None and c == cols - 1:
                ax.annotate(f"{side_annot}{r}", **kw["side_annot"])
            _style_hist(ax, kw, o, xlims, center_zero, pad_xticks)
    if ylim is not None:
        axes[-1, -1].set_ylim(0, ylim)
    if tight:
        fig.subplots_adjust(**kw["tight"])
    if o["borderwidth"] is not None:
        _borders(axes, o["borderwidth"])
    _finish(fig, o["savepath"], kw["save"])
    return fig, axes


_NO_ANNOT: Mapping[str, Any] = MappingProxyType({})


def hist_clipped(
    data: Any, peaks_to_clip: int = 1, ax: Any = None, annot_kw: Any = _NO_ANNOT, **kw: Any
) -> None:
    """A histogram whose y range stops at the highest bar left after its ``peaks_to_clip``
    tallest ones; those are written as ``(bin start, count)`` in a corner.

    Args:
        data: any array; it is flattened.
        peaks_to_clip: 0 for a plain histogram; 2 scales y to the third-highest bar.
        ax: the axes to draw in (default: the current one).
        annot_kw: annotate() kwargs for the note (filled from defaults); None: no note.
        **kw: ``hist()`` kwargs (``bins``, ...).

    Example:
        >>> hist_clipped(np.r_[np.zeros(50), np.ones(9)], peaks_to_clip=1)
    """
    target = ax if ax is not None else _plt().gca()
    counts, edges, _ = target.hist(np.asarray(data).ravel(), **kw)
    if peaks_to_clip == 0:
        return
    ranked = np.sort(counts)
    below = ranked[-(peaks_to_clip + 1)]
    peaks = []
    for k in range(1, peaks_to_clip + 1):
        i = int(np.where(counts == ranked[-k])[0][0])
        peaks.append((edges[i], counts[i]))
    target.set_ylim(0, below * 1.05)
    if annot_kw is None:
        return
    style = {
        "weight": "bold",
        "fontsize": 13,
        "color": "r",
        "xy": (0.83, 0.85),
        "xycoords": "axes fraction",
        **dict(annot_kw),
    }
    text = "\n".join(f"({b:.2f}, {int(c)})" for b, c in peaks)
    target.annotate(text, **style)
