"""See RNN's general figures ``features_0D/1D/2D``; each returns ``(fig, axes)`` and never calls
``plt.show()``. The histogram figures are in ``_hists``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._errors import InputError
from ._common import grid_shape, merge_configs, options, scalefig, share_pair

__all__ = [
    "features_0D",
    "features_1D",
    "features_2D",
]

_KINDS = {"grads", "outputs", "generic"}
_TIGHT = {"left": 0, "right": 1, "bottom": 0, "top": 1, "wspace": 0, "hspace": 0}


def _plt() -> Any:
    import matplotlib.pyplot as plt

    return plt


def _ndarray(data: Any, ndims: tuple[int, ...], fn: str) -> np.ndarray:
    a = np.asarray(data)
    if a.ndim not in ndims:
        want = " or ".join(f"{n}D" for n in ndims)
        raise InputError(f"{fn}: data must be {want}; got shape {a.shape}")
    return a


def _pair(v: Any) -> tuple[Any, Any]:
    return (v, v) if isinstance(v, (int, bool, np.integer)) else (v[0], v[1])


def _ticks(ax: Any, show_xy_ticks: tuple[Any, Any]) -> None:
    if not show_xy_ticks[0]:
        ax.set_xticks([])
    if not show_xy_ticks[1]:
        ax.set_yticks([])


def _labels(annotations: Any, n: int) -> list[str]:
    if annotations is None:
        return []
    return [str(i) for i in range(n)] if annotations == "auto" else list(annotations)


def _borders(axes: Any, width: Any = None, color: Any = None) -> None:
    for ax in np.asarray(axes).flat:
        for s in ax.spines.values():
            if width is not None:
                s.set_linewidth(width)
            if color is not None:
                s.set_color(color)


def _finish(fig: Any, savepath: Any, save_kw: dict[str, Any]) -> None:
    scalefig(fig)
    if savepath is not None:
        fig.savefig(savepath, **save_kw)


def _kind_title(title: Any) -> tuple[str, str]:
    if title == "generic":
        return "Context-feature", "Context-units"
    return ("Gradients" if title == "grads" else "Outputs"), "Timesteps"


def _colors(color: Any, n: int) -> list[Any]:
    """One colour per curve: None (matplotlib's cycle), one colour for all, or a list."""
    if color is None:
        return [None] * n
    single = isinstance(color, str) or (
        np.ndim(color) == 1 and len(color) in (3, 4) and not isinstance(color[0], str)
    )
    return [color] * n if single else list(color)


def features_0D(
    data: Any,
    marker: str = "o",
    cmap: Any = "bwr",
    color: Any = None,
    configs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Scatter of ``(samples, channels)`` data: samples along x (1, 2, ...), every channel's
    value above its sample, channels coloured along ``cmap``.

    Args:
        data: 2D array ``(samples, channels)``, e.g. gradients of a ``return_sequences=False``
            layer.
        marker: matplotlib marker.
        cmap: colormap spreading colours over the channels (unused when ``color`` is given).
        color: one colour, or a list of them (one per point), instead of ``cmap``.
        configs: ``{'plot': scatter kwargs, 'title': title kwargs, 'save': savefig kwargs}``.
        **kwargs: ``w``/``h`` (scale width/height), ``show_borders`` (False), ``title``
            (``'outputs'``, ``'grads'``, ``'generic'``, any text, or False), ``show_y_zero``
            (True), ``ylims`` (``'auto'``: symmetric about 0, or ``(ymin, ymax)``),
            ``markersize`` and ``markerwidth`` (the points' size and edge width), ``savepath``.

    Returns:
        ``(fig, ax)``.

    Example:
        >>> fig, ax = features_0D(np.random.randn(16, 6), show_y_zero=False)
    """
    o = options(
        "features_0D",
        kwargs,
        {
            "w": 1,
            "h": 1,
            "show_borders": False,
            "title": "outputs",
            "show_y_zero": True,
            "ylims": "auto",
            "savepath": None,
            "markersize": None,
            "markerwidth": None,
        },
    )
    kw = merge_configs(
        "features_0D",
        configs,
        {
            "plot": {"s": 15, "linewidth": 2},
            "title": {"weight": "bold", "fontsize": 14},
            "save": {},
        },
    )
    if o["markersize"] is not None:
        kw["plot"]["s"] = o["markersize"]
    if o["markerwidth"] is not None:
        kw["plot"]["linewidth"] = o["markerwidth"]
    a = _ndarray(data, (2,), "features_0D")
    plt = _plt()
    import matplotlib

    if color is None:
        lut = matplotlib.colormaps.get_cmap(cmap)
        color = np.vstack([lut(np.linspace(0, 256, a.shape[1]).astype("int32"))] * a.shape[0])
    x = np.repeat(np.arange(1, a.shape[0] + 1)[:, None], a.shape[1], axis=1).astype(float)
    fig = plt.figure()
    ax = fig.add_subplot()
    if o["show_y_zero"]:
        ax.axhline(0, color="k", linewidth=1)
    ax.scatter(x.ravel(), a.ravel(), marker=marker, color=color, **kw["plot"])
    ax.set_xticks(np.arange(1, a.shape[0] + 1), minor=True)
    ax.tick_params(which="minor", length=4)
    if isinstance(o["ylims"], str) and o["ylims"] == "auto":
        top = np.max(np.abs(a))
        ax.set_ylim(-top, top)
    else:
        ax.set_ylim(*o["ylims"])
    title = o["title"]
    if title:
        if title in _KINDS:
            feature, context = _kind_title(title)
            title = f"({feature} vs. {context}) vs. Channels"
        ax.set_title(title, **kw["title"])
    if not o["show_borders"]:
        ax.set_frame_on(False)
    fig.set_size_inches(12 * o["w"], 4 * o["h"])
    _finish(fig, o["savepath"], kw["save"])
    return fig, ax


def _grid_kw(
    configs: Any,
    fn: str,
    o: dict[str, Any],
    share_xy: Any,
    extra: dict[str, Any],
    title: dict[str, Any] | None = None,
    tight: dict[str, Any] | None = None,
) -> Any:
    defaults = {
        "plot": {},
        "subplot": {"dpi": 76, "figsize": (10, 10)},
        "title": title
        or {"weight": "bold", "fontsize": 14, "y": 0.93 + 0.12 * bool(o.get("tight"))},
        "tight": tight or dict(_TIGHT),
        **extra,
        "save": {},
    }
    kw = merge_configs(fn, configs, defaults)
    kw["subplot"]["sharex"], kw["subplot"]["sharey"] = share_pair(share_xy)
    w, h = kw["subplot"]["figsize"]
    kw["subplot"]["figsize"] = (w * o["w"], h * o["h"])
    return kw


def features_1D(
    data: Any,
    n_rows: int | None = None,
    annotations: Any = "auto",
    share_xy: Any = (1, 1),
    max_timesteps: int | None = None,
    subplot_samples: bool = False,
    configs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Curves over timesteps: one panel per channel with a curve per sample (3D data), or one
    panel with a curve per column (2D data).

    Args:
        data: ``(samples, timesteps, channels)``, or 2D ``(timesteps, channels)``.
        n_rows: rows of the panel grid (None: near-square).
        annotations: ``'auto'`` (panel numbers), a list of labels, or None.
        share_xy: ``(sharex, sharey)`` or one value for both (bool or ``'row'``/``'col'``).
        max_timesteps: draw only the first this many timesteps.
        subplot_samples: one panel per sample with a curve per channel instead.
        configs: kwargs per element: ``'plot'``, ``'subplot'``, ``'title'``, ``'tight'``,
            ``'annot'``, ``'save'``.
        **kwargs: ``w``, ``h``, ``show_borders`` (True), ``show_xy_ticks`` ((1, 1)), ``title``
            (``'outputs'``/``'grads'``/``'generic'``/text/False), ``show_y_zero`` (False),
            ``tight`` (no padding), ``borderwidth``, ``color`` (one colour or one per curve),
            ``savepath``.

    Returns:
        ``(fig, axes)``; panel ``i`` shows channel ``i`` (sample ``i`` with
        ``subplot_samples=True``).

    Example:
        >>> fig, axes = features_1D(np.random.randn(4, 20, 6), n_rows=2)
    """
    o = options(
        "features_1D",
        kwargs,
        {
            "w": 1,
            "h": 1,
            "show_borders": True,
            "show_xy_ticks": (1, 1),
            "title": "outputs",
            "show_y_zero": False,
            "tight": False,
            "borderwidth": None,
            "color": None,
            "savepath": None,
        },
    )
    kw = _grid_kw(
        configs,
        "features_1D",
        o,
        share_xy,
        {
            "annot": {
                "weight": "bold",
                "fontsize": 16,
                "color": "g",
                "xy": (0.03, 0.9),
                "xycoords": "axes fraction",
            }
        },
    )
    a = _ndarray(data, (2, 3), "features_1D")
    if a.ndim == 3 and subplot_samples:
        a = a.T
    if a.ndim == 2:
        a = a.T[..., None]
    n = a.shape[-1]
    rows, cols = grid_shape(n_rows, n)
    colors = _colors(o["color"], len(a))
    labels = _labels(annotations, n)
    plt = _plt()
    fig, axes = plt.subplots(rows, cols, **kw["subplot"])
    axes = np.asarray(axes)
    title = o["title"]
    if title:
        if title in _KINDS:
            feature, context = _kind_title(title)
            inner, outer = ("Channels", "Samples") if subplot_samples else ("Samples", "Channels")
            title = (
                f"(({feature} vs. {context}) vs. {inner}) vs. {outer}"
                if n != 1
                else f"({feature} vs. {context}) vs. {outer}"
            )
        fig.suptitle(title, **kw["title"])
    show_xy = _pair(o["show_xy_ticks"])
    for i, ax in enumerate(axes.flat):
        if o["show_y_zero"]:
            ax.axhline(0, color="red")
        curves = [s[:max_timesteps, i] for s in a]
        for j, c in enumerate(curves):
            ax.plot(c, color=colors[j % len(colors)], **kw["plot"])
        ax.axis(xmin=0, xmax=len(curves[0]))
        _ticks(ax, show_xy)
        if i < len(labels):
            ax.annotate(labels[i], **kw["annot"])
        if not o["show_borders"]:
            ax.set_frame_on(False)
    if o["tight"]:
        fig.subplots_adjust(**kw["tight"])
    if o["borderwidth"] is not None:
        _borders(axes, o["borderwidth"])
    _finish(fig, o["savepath"], kw["save"])
    return fig, axes


def features_2D(
    data: Any,
    n_rows: int | None = None,
    norm: Any = None,
    cmap: Any = "bwr",
    reflect_half: bool = False,
    timesteps_xaxis: bool = False,
    max_timesteps: int | None = None,
    share_xy: Any = (1, 1),
    configs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Heatmaps: one image of timesteps by channels per sample (3D data), or one image (2D).

    Args:
        data: ``(samples, timesteps, channels)`` or ``(timesteps, channels)``.
        n_rows: rows of the panel grid (None: near-square).
        norm: ``(vmin, vmax)``, ``'auto'`` (symmetric about 0 at the largest magnitude), or None.
        cmap: colormap.
        reflect_half: reverse the second half of the channels in time (a Bidirectional layer's
            backward half, so both halves read left to right).
        timesteps_xaxis: timesteps along x (channels along y).
        max_timesteps: draw only the first this many timesteps.
        share_xy: ``(sharex, sharey)`` or one value for both.
        configs: kwargs per element: ``'plot'`` (imshow), ``'subplot'``, ``'title'``,
            ``'tight'``, ``'colorbar'``, ``'save'``.
        **kwargs: ``w``, ``h``, ``show_borders`` (True), ``show_xy_ticks`` ((1, 1)),
            ``show_colorbar`` (False), ``title``, ``tight``, ``channel_axis`` (-1; 0 for
            ``(channels, timesteps, samples)`` data), ``borderwidth``, ``bordercolor``,
            ``savepath``.

    Returns:
        ``(fig, axes)``.

    Example:
        >>> fig, axes = features_2D(np.random.randn(4, 20, 6), norm="auto")
    """
    o = options(
        "features_2D",
        kwargs,
        {
            "w": 1,
            "h": 1,
            "show_borders": True,
            "show_xy_ticks": (1, 1),
            "show_colorbar": False,
            "title": "outputs",
            "tight": False,
            "channel_axis": -1,
            "borderwidth": None,
            "bordercolor": None,
            "savepath": None,
        },
    )
    kw = _grid_kw(configs, "features_2D", o, share_xy, {"colorbar": {}})
    a = _ndarray(data, (2, 3), "features_2D")
    if o["channel_axis"] == 0 and a.ndim == 3:
        a = a.T
    if max_timesteps is not None:
        a = a[..., :max_timesteps, :]
    if reflect_half:
        a = a.copy()
        half = a.shape[-1] // 2
        a[..., half:] = np.flip(a[..., half:], axis=-2)
    was_3d = a.ndim == 3
    if not was_3d:
        a = a[None]
    if timesteps_xaxis:
        a = np.transpose(a, (0, 2, 1))
    if isinstance(norm, str) and norm == "auto":
        v = np.abs(a).max()
        vmin, vmax = -v, v
    else:
        vmin, vmax = norm if norm is not None else (None, None)
    rows, cols = grid_shape(n_rows, len(a) if was_3d else 1)
    plt = _plt()
    fig, axes = plt.subplots(rows, cols, **kw["subplot"])
    axes = np.asarray(axes)
    title = o["title"]
    if title:
        if title in _KINDS:
            feature, context = _kind_title(title)
            order = f"(Channels vs. {context})" if timesteps_xaxis else f"({context} vs. Channels)"
            extra = ") vs. Samples" if was_3d else ""
            order = "(" + order if was_3d else order
            shown = f"({vmin:.4G}, {vmax:.4G})" if vmin is not None else "auto"
            title = f"{order} vs. {feature}{extra} -- norm={shown}"
        fig.suptitle(title, **kw["title"])
    show_xy = _pair(o["show_xy_ticks"])
    img = None
    for i, ax in enumerate(axes.flat):
        img = ax.imshow(a[i], cmap=cmap, vmin=vmin, vmax=vmax, **kw["plot"])
        ax.axis("tight")
        _ticks(ax, show_xy)
        if not o["show_borders"]:
            ax.set_frame_on(False)
    if o["show_colorbar"]:
        fig.colorbar(img, ax=axes.ravel().tolist(), **kw["colorbar"])
    if o["tight"]:
        fig.subplots_adjust(**kw["tight"])
    _borders(axes, o["borderwidth"], o["bordercolor"])
    _finish(fig, o["savepath"], kw["save"])
    return fig, axes
