"""Feature plots of ``(samples, timesteps, channels)`` data: activations, gradients, kernels.

The layouts follow See RNN's ``features_*`` functions: 2D draws one channels-by-timesteps image
per sample, 1D one line per channel (or per sample) over time, 0D one point per channel and
sample (``return_sequences=False`` outputs), and hist one histogram per entry.

A ``numpy.ma.MaskedArray`` (what ``activations``, ``gradients`` and ``Trace.get`` return for
padded batches) has its masked entries drawn as masked: hatched grey in images, gaps and hatched
spans in line plots, and left out of colour limits, NaN counts and histograms.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .._errors import InputError
from .._stats import count_nonfinite
from .._trace import to_numpy
from ._common import (
    color_limits,
    finite_view,
    grid_shape,
    hide_ticks,
    integer_ticks,
    new_figure,
    save,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["features_0d", "features_1d", "features_2d", "features_hist", "masked_image"]

_NOTE = "#b00020"
MASKED_GID = "masked-steps"
"""The ``gid`` of the hatched patches that show masked (padded) steps."""


def _split_mask(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The data of ``a`` and its mask (None when nothing is masked)."""
    if not np.ma.isMaskedArray(a):
        return a, None
    mask = np.ma.getmaskarray(a)
    return np.ma.getdata(a), (mask if mask.any() else None)


def masked_image(ax: Axes, values: np.ndarray, mask: np.ndarray | None, cmap: Any) -> Any:
    """``values`` for ``imshow``, with masked cells see-through over a hatched grey patch
    behind the image; returns ``(image data, colormap)``."""
    import matplotlib as mpl
    from matplotlib.patches import Rectangle

    cm = (
        mpl.colormaps[cmap if cmap is not None else mpl.rcParams["image.cmap"]]
        if (isinstance(cmap, str) or cmap is None)
        else cmap
    )
    if mask is None or not mask.any():
        return values, cm
    ax.add_patch(
        Rectangle(
            (0, 0),
            1,
            1,
            transform=ax.transAxes,
            facecolor="0.9",
            edgecolor="0.6",
            hatch="///",
            linewidth=0,
            zorder=-1,
            gid=MASKED_GID,
        )
    )
    cm = cm.with_extremes(bad=(0, 0, 0, 0))
    return np.ma.MaskedArray(values, mask=mask), cm


def _masked_spans(ax: Axes, steps: np.ndarray) -> None:
    """Hatched spans over runs of masked timesteps (``steps``: booleans over time)."""
    edges = np.flatnonzero(np.diff(np.r_[0, steps.astype(np.int8), 0]))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        ax.axvspan(
            start - 0.5,
            stop - 0.5,
            facecolor="0.9",
            edgecolor="0.6",
            hatch="///",
            linewidth=0,
            zorder=0,
            gid=MASKED_GID,
        )


def _array(data: Any, ndims: tuple[int, ...], what: str) -> np.ndarray:
    a = to_numpy(data, what=what)
    if a.ndim not in ndims:
        want = " or ".join(f"{n}D" for n in ndims)
        raise InputError(f"{what}: expected a {want} array; got shape {a.shape}")
    if a.size == 0:
        raise InputError(f"{what}: the array is empty (shape {a.shape})")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{what}: expected numbers; got dtype {a.dtype}")
    return a


def _samples_time_channels(data: Any, channel_axis: int, what: str) -> np.ndarray:
    """``data`` as ``(samples, timesteps, channels)``; 2D data is one sample."""
    a = _array(data, (2, 3), what)
    a = np.moveaxis(a, channel_axis, -1)
    return a[None] if a.ndim == 2 else a


def _with_mask(data: Any, channel_axis: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(samples, timesteps, channels)`` data and its mask (all False when none)."""
    a = _samples_time_channels(data, channel_axis, what)
    values, mask = _split_mask(a)
    values = np.asarray(values)
    return values, (np.zeros(values.shape, bool) if mask is None else np.asarray(mask))


def _reflect(a: np.ndarray, what: str) -> np.ndarray:
    """Flip the second half of the channels in time (a bidirectional layer's backward half)."""
    channels = a.shape[-1]
    if channels % 2:
        raise InputError(
            f"{what}: reflect_half needs an even number of channels (two directions); "
            f"got {channels}"
        )
    out = a.copy()
    out[:, :, channels // 2 :] = a[:, ::-1, channels // 2 :]
    return out


def _pair(value: Any, name: str) -> tuple[bool, bool]:
    if isinstance(value, (bool, int, np.integer)):
        return bool(value), bool(value)
    try:
        x, y = value
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be a bool or a pair of bools; got {value!r}") from err
    return bool(x), bool(y)


def _labels(annotations: Any, n: int, auto: str) -> list[str] | None:
    if annotations is None or annotations is False:
        return None
    if isinstance(annotations, str):
        if annotations != "auto":
            raise InputError(
                f"annotations must be 'auto', None or a list of {n} strings; got {annotations!r}"
            )
        return [f"{auto} {i}" for i in range(n)]
    labels = [str(s) for s in annotations]
    if len(labels) != n:
        raise InputError(f"annotations: {n} panels, so {n} labels are needed; got {len(labels)}")
    return labels


def _grid(
    fig: Figure | None,
    n: int,
    n_rows: int | None,
    share: tuple[bool, bool],
    panel: tuple[float, float],
    dpi: float | None,
) -> tuple[Figure, list[Axes]]:
    rows, cols = grid_shape(n, n_rows)
    w = min(16.0, panel[0] * cols + 0.8)
    h = min(14.0, panel[1] * rows + 1.0)
    fig = new_figure(fig, (w, h), dpi, constrained=True)
    axes = fig.subplots(rows, cols, sharex=share[0], sharey=share[1], squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, list(axes[:n])


def _cap(text: str) -> str:
    """First letter upper case, the rest untouched (``"GRU output"`` stays as is)."""
    return text[:1].upper() + text[1:]


def _finish(fig: Figure, title: str | None, default: str, show_title: bool) -> None:
    if show_title:
        fig.suptitle(title or default, fontsize=12)


def _nonfinite_note(ax: Axes, a: np.ndarray) -> None:
    nan, inf = count_nonfinite(a)
    if nan or inf:
        ax.text(
            0.99,
            0.98,
            f"{nan} NaN, {inf} Inf (drawn as 0)",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7,
            color=_NOTE,
            gid="nonfinite-note",
        )


def features_2d(
    data: Any,
    n_rows: int | None = None,
    *,
    norm: tuple[float, float] | None = None,
    cmap: Any = "bwr",
    reflect_half: bool = False,
    timesteps_xaxis: bool = True,
    max_timesteps: int | None = None,
    share_xy: Any = True,
    show_xy_ticks: Any = True,
    annotations: Any = "auto",
    channel_axis: int = -1,
    label: str = "value",
    colorbar: bool = True,
    show_title: bool = True,
    title: str | None = None,
    dpi: float | None = None,
    fig: Figure | None = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Figure:
    """One channels-by-timesteps image per sample.

    Args:
        data: ``(samples, timesteps, channels)``, or ``(timesteps, channels)`` for one sample.
        n_rows: rows of the panel grid (default about square).
        norm: ``(low, high)`` colour limits, shared by every panel; default symmetric around 0.
        cmap: a matplotlib colormap.
        reflect_half: flip the second half of the channels in time, so a bidirectional layer's
            backward half reads in the order that direction processed the sequence.
        timesteps_xaxis: timesteps across (True) or down (False).
        max_timesteps: draw only the first this many timesteps.
        share_xy: share the x and y axes between panels (a bool or an ``(x, y)`` pair).
        show_xy_ticks: tick labels on x and y (a bool or a pair), e.g. ``(0, 0)`` for none.
        annotations: ``"auto"`` (``sample i``), None, or one label per panel.
        channel_axis: where the channels are in ``data``.
        label: what the values are, for the colour bar (e.g. ``"gradient"``).
        colorbar: draw the colour bar.
        show_title, title: the figure title (generated unless given).
        dpi, fig, savepath: resolution, a Figure to draw into, and a file to write.

    Example:
        >>> grads = rnnscope.gradients(model, x, y, layers="lstm")["lstm"]
        >>> fig = rnnscope.plot.features_2d(grads, n_rows=2, norm=(-.01, .01))
    """
    a, masked = _with_mask(data, channel_axis, "data")
    if max_timesteps is not None:
        a, masked = a[:, :max_timesteps], masked[:, :max_timesteps]
    if reflect_half:
        a, masked = _reflect(a, "data"), _reflect(masked, "data")
    a = np.where(masked, 0, a) if masked.any() else a  # masked: out of limits and NaN counts
    shown = finite_view(a)
    lo, hi = color_limits([shown], norm, absolute=False)
    n = a.shape[0]
    labels = _labels(annotations, n, "sample")
    sx, sy = _pair(share_xy, "share_xy")
    fig, axes = _grid(fig, n, n_rows, (sx, sy), (3.2, 2.6), dpi)
    ticks = _pair(show_xy_ticks, "show_xy_ticks")
    image = None
    for i, ax in enumerate(axes):
        img = shown[i].T if timesteps_xaxis else shown[i]
        hidden = masked[i].T if timesteps_xaxis else masked[i]
        img, cm = masked_image(ax, img, hidden, cmap)
        image = ax.imshow(img, aspect="auto", interpolation="nearest", cmap=cm, vmin=lo, vmax=hi)
        integer_ticks(ax)
        if labels:
            ax.set_title(labels[i], fontsize=9)
        hide_ticks(ax, *ticks)
        _nonfinite_note(ax, a[i])
    if ticks[0]:
        for ax in axes[-min(len(axes), grid_shape(n, n_rows)[1]) :]:
            ax.set_xlabel("timestep" if timesteps_xaxis else "channel", fontsize=8)
    if ticks[1]:
        for ax in axes[:: grid_shape(n, n_rows)[1]]:
            ax.set_ylabel("channel" if timesteps_xaxis else "timestep", fontsize=8)
    if colorbar and image is not None:
        fig.colorbar(image, ax=axes, fraction=0.04, pad=0.02).set_label(label)
    what = "channels (rows) x timesteps" if timesteps_xaxis else "timesteps (rows) x channels"
    half = ", backward half flipped in time" if reflect_half else ""
    _finish(fig, title, f"{_cap(label)} per sample: {what}{half}", show_title)
    save(fig, savepath)
    return fig


def features_1d(
    data: Any,
    n_rows: int | None = None,
    *,
    per: str = "sample",
    share_xy: Any = True,
    reflect_half: bool = False,
    max_timesteps: int | None = None,
    show_xy_ticks: Any = True,
    annotations: Any = "auto",
    channel_names: Sequence[str] | None = None,
    channel_axis: int = -1,
    label: str = "value",
    show_title: bool = True,
    title: str | None = None,
    dpi: float | None = None,
    fig: Figure | None = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Figure:
    """Values over timesteps as lines: one panel per sample (lines: channels) or per channel.

    Args:
        data: ``(samples, timesteps, channels)``, or ``(timesteps, channels)`` for one sample.
        n_rows: rows of the panel grid.
        per: ``"sample"`` (one panel per sample, a line per channel) or ``"channel"`` (one panel
            per channel, a line per sample).
        share_xy, reflect_half, max_timesteps, show_xy_ticks, channel_axis: as in
            :func:`features_2d`.
        annotations: ``"auto"``, None, or one label per panel.
        channel_names: names for the channels (legend when there are at most 10).
        label, show_title, title, dpi, fig, savepath: as in :func:`features_2d`.

    Example:
        >>> acts = rnnscope.activations(model, x, layers="lstm")
        >>> fig = rnnscope.plot.features_1d(acts["lstm"][:4], n_rows=2)
    """
    if per not in ("sample", "channel"):
        raise InputError(f"per must be 'sample' or 'channel'; got {per!r}")
    a, masked = _with_mask(data, channel_axis, "data")
    if max_timesteps is not None:
        a, masked = a[:, :max_timesteps], masked[:, :max_timesteps]
    if reflect_half:
        a, masked = _reflect(a, "data"), _reflect(masked, "data")
    a = np.where(masked, 0, a) if masked.any() else a
    shown = finite_view(a)
    if masked.any():  # gaps in the lines
        shown = np.where(masked, np.nan, shown.astype(np.float64))
    n_samples, _, n_channels = a.shape
    names = list(channel_names) if channel_names is not None else None
    if names is not None and len(names) != n_channels:
        raise InputError(f"channel_names: {n_channels} channels; got {len(names)} names")
    panels = n_samples if per == "sample" else n_channels
    labels = _labels(annotations, panels, per)
    fig, axes = _grid(fig, panels, n_rows, _pair(share_xy, "share_xy"), (3.4, 2.2), dpi)
    ticks = _pair(show_xy_ticks, "show_xy_ticks")
    for i, ax in enumerate(axes):
        lines = shown[i] if per == "sample" else shown[:, :, i].T  # (time, lines)
        if per == "sample" and masked[i].any():
            _masked_spans(ax, masked[i].all(axis=-1))
        drawn = ax.plot(lines, linewidth=1.0)
        if per == "sample" and names and n_channels <= 10:
            for line, name in zip(drawn, names, strict=True):
                line.set_label(name)
            ax.legend(fontsize=7, loc="best")
        ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
        integer_ticks(ax, y=False)
        if labels:
            ax.set_title(labels[i], fontsize=9)
        hide_ticks(ax, *ticks)
        _nonfinite_note(ax, a[i] if per == "sample" else a[:, :, i])
    lines_are = "channels" if per == "sample" else "samples"
    _finish(
        fig,
        title,
        f"{_cap(label)} vs timestep, one panel per {per}, one line per {lines_are[:-1]}",
        show_title,
    )
    save(fig, savepath)
    return fig


def features_0d(
    data: Any,
    *,
    marker: str = "o",
    cmap: Any = "viridis",
    color: Any = None,
    show_y_zero: bool = True,
    channel_axis: int = -1,
    label: str = "value",
    show_xy_ticks: Any = True,
    show_title: bool = True,
    title: str | None = None,
    dpi: float | None = None,
    fig: Figure | None = None,
    ax: Axes | None = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Figure:
    """``(samples, channels)`` data, e.g. a ``return_sequences=False`` output or its gradient:
    one point per channel, one colour per sample. ``ax=`` draws into existing axes (the
    figure title is then left alone).

    Example:
        >>> grads = rnnscope.gradients(model, x, y, layers="gru")  # (samples, channels)
        >>> fig = rnnscope.plot.features_0d(grads["gru"])
    """
    a = _array(data, (1, 2), "data")
    a = np.moveaxis(a, channel_axis, -1) if a.ndim == 2 else a[None]
    shown = finite_view(a)
    own = ax is None
    if ax is None:
        fig = new_figure(fig, (8.0, 4.0), dpi, constrained=True)
        ax = fig.subplots()
    else:  # one panel: draw into the caller's axes
        fig = cast("Figure", ax.figure)
    import matplotlib as mpl

    colors = (
        [color] * len(a)
        if color is not None
        else mpl.colormaps[cmap](np.linspace(0, 1, max(len(a), 2)))[: len(a)]
    )
    channels = np.arange(a.shape[1])
    for i, row in enumerate(shown):
        ax.scatter(channels, row, marker=marker, s=18, color=colors[i], label=f"sample {i}")
    if len(a) <= 10:
        ax.legend(fontsize=7, loc="best")
    if show_y_zero:
        ax.axhline(0, color="0.5", linewidth=0.8, zorder=0)
    ax.set_xlabel("channel")
    ax.set_ylabel(label)
    hide_ticks(ax, *_pair(show_xy_ticks, "show_xy_ticks"))
    _nonfinite_note(ax, a)
    if own:
        _finish(fig, title, f"{_cap(label)} per channel, one colour per sample", show_title)
    elif show_title and title:
        ax.set_title(title)
    save(fig, savepath)
    return fig


def features_hist(
    data: Any,
    n_rows: int | None = None,
    *,
    bins: int = 100,
    share_xy: Any = True,
    annotations: Any = "auto",
    show_xy_ticks: Any = True,
    label: str = "value",
    show_title: bool = True,
    title: str | None = None,
    dpi: float | None = None,
    fig: Figure | None = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Figure:
    """One histogram per entry along the first axis (per sample, per kernel, ...).

    With shared x, every panel uses the same bins, so the shapes compare directly.

    Example:
        >>> conv1d_kernel = np.random.randn(5, 3, 8)  # (width, in channels, out channels)
        >>> fig = rnnscope.plot.features_hist(conv1d_kernel.transpose(2, 0, 1))
    """
    a, masked = _split_mask(_array(data, (2, 3, 4), "data"))
    if not isinstance(bins, int) or bins < 1:
        raise InputError(f"bins must be a positive integer; got {bins!r}")
    flat = a.reshape(a.shape[0], -1).astype(np.float64)
    if masked is not None:  # masked entries count nowhere: NaN is left out below
        flat[masked.reshape(flat.shape)] = np.nan
        a = np.where(masked, 0, a)
    sx, sy = _pair(share_xy, "share_xy")
    finite = flat[np.isfinite(flat)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    labels = _labels(annotations, len(flat), "entry")
    fig, axes = _grid(fig, len(flat), n_rows, (sx, sy), (3.0, 2.0), dpi)
    ticks = _pair(show_xy_ticks, "show_xy_ticks")
    for i, ax in enumerate(axes):
        row = flat[i][np.isfinite(flat[i])]
        edges = np.linspace(lo, hi, bins + 1) if sx else bins
        counts, e = np.histogram(row, bins=edges)
        ax.stairs(counts, e, fill=True, color="#1f6fb4", alpha=0.85)
        if labels:
            ax.set_title(labels[i], fontsize=9)
        hide_ticks(ax, *ticks)
        _nonfinite_note(ax, a[i])
    _finish(fig, title, f"Histogram of {label}s, one panel per entry", show_title)
    save(fig, savepath)
    return fig
