"""See RNN's ``rnn_histogram`` and ``rnn_heatmap``: one figure per direction of a recurrent
layer, kernel and recurrent kernel side by side (split into gates for the histograms), the bias
below. Weights come from rnnscope's canonical record, gradients from rnnscope's capture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._enums import EquateAxes
from ..._errors import InputError
from ..._frameworks import KERAS, framework_for
from ..._model import RNNWeights
from ._common import merge_configs, options, save_figs, scalefig
from ._weights import detect_nans, record_of, rnn_layer

__all__ = ["rnn_heatmap", "rnn_histogram"]

GATE_NAMES = {
    "LSTM": ["INPUT", "FORGET", "CELL", "OUTPUT"],
    "GRU": ["UPDATE", "RESET", "NEW"],
    "SimpleRNN": [""],
}
KERNELS = ("KERNEL", "RECURRENT")


@dataclass
class Info:
    """What the figures need to know about the layer."""

    gate_names: list[str]
    n_gates: int
    is_bidir: bool
    rnn_dim: int
    uses_bias: bool
    gated: bool

    @property
    def directions(self) -> list[str | None]:
        return ["FORWARD", "BACKWARD"] if self.is_bidir else [None]


def _layer_data(
    fn: str,
    model: Any,
    _id: Any,
    layer: Any,
    input_data: Any,
    labels: Any,
    mode: str,
    data: Any,
    sample_weight: Any = None,
    loss: Any = None,
) -> tuple[list[np.ndarray], Info]:
    if mode not in ("weights", "grads"):
        raise InputError(f"{fn}: mode must be 'weights' or 'grads'; got {mode!r}")
    _, ref = rnn_layer(model, _id, layer)
    rec = record_of(ref)
    info = Info(
        GATE_NAMES[rec.cell],
        rec.n_gates,
        rec.bidirectional,
        rec.units,
        "bias" in rec.parts,
        rec.n_gates > 1,
    )
    if data is not None:
        if not isinstance(data, list) or not all(isinstance(a, np.ndarray) for a in data):
            raise InputError(
                f"{fn}: data must be a list of numpy arrays (kernel, recurrent kernel[, bias] "
                "per direction), as get_rnn_weights returns"
            )
        return [np.array(a, copy=True) for a in data], info
    if mode == "grads":
        if input_data is None or labels is None:
            raise InputError(f"{fn}: mode='grads' needs input_data and labels")
        out = dict(
            framework_for(model).capture.gradients(
                model, input_data, labels, [ref], True, loss, sample_weight, False
            )
        )
        rec = out[ref.info.name]
        assert isinstance(rec, RNNWeights)
    return [np.array(a, copy=True) for a in KERAS.from_canonical(rec)], info


def _plt() -> Any:
    import matplotlib.pyplot as plt

    return plt


def _nan_text(a: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``a`` with NaN/Inf set to 0, and See RNN's note about them (one item per line)."""
    text = detect_nans(a, include_inf=True)
    if text is None:
        return a, None
    a = np.where(np.isfinite(a), a, 0.0)
    return a, "\n".join(text.split(", ") if ", " in text else text.split(" "))


# hist() keywords the one-artist path draws itself; any other keyword goes to ``ax.hist``.
_BAR_STYLE = {
    "color": "facecolor",
    "facecolor": "facecolor",
    "fc": "facecolor",
    "edgecolor": "edgecolor",
    "ec": "edgecolor",
    "linewidth": "linewidth",
    "lw": "linewidth",
    "alpha": "alpha",
    "zorder": "zorder",
}


def _shade(edges: np.ndarray) -> np.ndarray:
    """See RNN's banded bar colours (for 1000 values or more): one RGBA row per bin."""
    g = np.sin(np.pi * 8 * (edges[:-1] / edges.max())) / 15 + 0.04
    base = np.array([0.121569, 0.466667, 0.705882])
    rgb = base + g[:, None] * np.array([1.2, 1.0, 1.0])
    return np.column_stack([rgb, np.full(len(g), 0.94)])


def _shaded_hist(ax: Any, a: np.ndarray, bins: int, plot_kw: dict[str, Any]) -> None:
    """A density histogram of ``a`` as See RNN's ``ax.hist`` draws it, in ONE artist.

    ``ax.hist`` adds one Rectangle per bin (at 400 bins on a Bidirectional LSTM, thousands of
    ``add_patch`` calls, most of a figure's time); the same bars, colours and limits are one
    PolyCollection here (gid ``'histogram-bars'``). Keywords other than the bar styles in
    ``_BAR_STYLE`` (``histtype``, ``log``, ``range``...) go to ``ax.hist`` unchanged.
    """
    if any(k not in _BAR_STYLE for k in plot_kw):
        _, edges, patches = ax.hist(a, bins=bins, density=True, **plot_kw)
        if len(a) >= 1000:
            for colour, patch in zip(_shade(edges), patches, strict=False):
                patch.set_facecolor(colour)
        return
    import matplotlib as mpl
    from matplotlib.collections import PolyCollection

    heights, edges = np.histogram(a, bins=bins, density=True)
    # ax.hist's arithmetic to the last bit (float64 edges, bar centres, then left = centre -
    # width / 2), so the bars and the axis limits equal See RNN's exactly
    edges = edges.astype(np.float64)
    width = np.diff(edges)
    x0 = (edges[:-1] + 0.5 * width) - width / 2
    x1 = x0 + width
    zero = np.zeros_like(heights)
    verts = np.stack(
        [np.column_stack(c) for c in ((x0, zero), (x0, heights), (x1, heights), (x1, zero))],
        axis=1,
    )
    style = {_BAR_STYLE[k]: v for k, v in plot_kw.items()}
    face = style.pop("facecolor", mpl.rcParams["axes.prop_cycle"].by_key()["color"][0])
    if len(a) >= 1000:
        face = _shade(edges)
    bars = PolyCollection(list(verts), facecolors=face, gid="histogram-bars", **style)
    bars.sticky_edges.y.append(0.0)
    ax.add_collection(bars, autolim=True)
    major, minor = (int(v) for v in mpl.__version__.split(".")[:2])
    if (major, minor) < (3, 11):  # from 3.11 on add_collection requests the autoscale itself
        ax.autoscale_view()


_SUBPLOTS_ONLY = (
    "sharex",
    "sharey",
    "squeeze",
    "subplot_kw",
    "gridspec_kw",
    "width_ratios",
    "height_ratios",
)


def _figure(plt: Any, kw: dict[str, Any]) -> Any:
    return plt.figure(**{k: v for k, v in kw.items() if k not in _SUBPLOTS_ONLY})


def _grid(plt: Any, rows: int, kw: dict[str, Any], share: bool) -> tuple[Any, Any, Any]:
    """A figure with ``rows`` two-row-tall panel pairs over one full-width bottom panel."""
    fig = _figure(plt, kw)
    gs = fig.add_gridspec(2 * rows + 1, 2)
    first = None
    pairs = []
    for r in range(rows):
        row = []
        for c in range(2):
            ax = fig.add_subplot(
                gs[2 * r : 2 * r + 2, c],
                sharex=first if share else None,
                sharey=first if share else None,
            )
            first = first or ax
            row.append(ax)
        pairs.append(row)
    return fig, gs, pairs


def rnn_histogram(
    model: Any,
    _id: Any,
    layer: Any = None,
    input_data: Any = None,
    labels: Any = None,
    mode: str = "weights",
    equate_axes: int | bool = 1,
    data: Any = None,
    configs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[list[Any], list[Any]]:
    """Histograms of a recurrent layer's weights (or their gradients): kernel and recurrent
    kernel in two columns, a row per gate, the whole bias below; one figure per direction.

    Args:
        model: a Keras 3 / tf-keras model or a torch module.
        _id: the layer's name (or part) or index; layer: the layer object instead.
        input_data, labels: for ``mode='grads'``.
        mode: ``'weights'`` or ``'grads'`` (gradients of the loss w.r.t. the weights).
        equate_axes: 0: each panel its own limits; 1: kernel and recurrent panels share x and y
            limits; 2: as 1, and both directions get the same (symmetric) limits. The bias
            panel keeps its own.
        data: arrays to draw instead (as :func:`get_rnn_weights` returns them).
        configs: kwargs per element: ``'plot'`` (hist), ``'subplot'`` (figure), ``'tight'``,
            ``'title'``, ``'annot'``, ``'annot-nan'``, ``'save'``.
        **kwargs: ``w``, ``h``, ``show_borders`` (False), ``show_xy_ticks`` ([1, 1]),
            ``show_bias`` (True), ``bins`` (150), ``savepath``; rnnscope adds ``sample_weight``
            and ``loss`` (torch) for gradients.

    Returns:
        ``(figs, axes)``: a list of figures (two for a Bidirectional layer) and, per figure,
        an array of axes ``(n_gates [+1 for the bias row], 2)``.

    Example:
        >>> figs, axes = rnn_histogram(model, "lstm", equate_axes=2, bins=50)
    """
    o = options(
        "rnn_histogram",
        kwargs,
        {
            "w": 1,
            "h": 1,
            "show_borders": False,
            "show_xy_ticks": [1, 1],
            "show_bias": True,
            "bins": 150,
            "savepath": None,
            "sample_weight": None,
            "loss": None,
        },
    )
    kw = merge_configs(
        "rnn_histogram",
        configs,
        {
            "plot": {},
            "subplot": {"sharex": True, "sharey": True, "dpi": 76, "figsize": (9, 9)},
            "tight": {},
            "title": {"weight": "bold", "fontsize": 12, "y": 1.05},
            "annot": {
                "fontsize": 12,
                "weight": "bold",
                "xy": (0.90, 0.93),
                "xycoords": "axes fraction",
            },
            "annot-nan": {
                "fontsize": 12,
                "weight": "bold",
                "color": "red",
                "xy": (0.05, 0.63),
                "xycoords": "axes fraction",
            },
            "save": {},
        },
    )
    equate = (  # See RNN's reading: 2 is 2, any other true value 1
        EquateAxes.ALL if equate_axes == 2 else EquateAxes.PART if equate_axes else EquateAxes.NONE
    )
    if equate is EquateAxes.NONE:
        kw["subplot"].update(sharex=False, sharey=False)
    fw, fh = kw["subplot"]["figsize"]
    kw["subplot"]["figsize"] = (fw * o["w"], fh * o["h"])
    arrays, d = _layer_data(
        "rnn_histogram",
        model,
        _id,
        layer,
        input_data,
        labels,
        mode,
        data,
        o["sample_weight"],
        o["loss"],
    )
    plt = _plt()
    with_bias = d.uses_bias and o["show_bias"]
    per = 2 + d.uses_bias
    figs, all_axes = [], []

    def style(ax: Any, gate: int, kernel: str | None, note: str | None) -> None:
        if note is not None:
            ax.annotate(note, **kw["annot-nan"])
        if gate == 0:
            ax.set_title(f"{kernel} GATES" if d.gated else str(kernel), weight="bold")
        if d.gated:
            ax.annotate("BIAS" if kernel is None else d.gate_names[gate], **kw["annot"])
        if not o["show_borders"]:
            ax.set_frame_on(False)
        if not o["show_xy_ticks"][0]:
            ax.set_xticks([])
        if not o["show_xy_ticks"][1]:
            ax.set_yticks([])

    for di, direction in enumerate(d.directions):
        if with_bias:
            fig, gs, pairs = _grid(plt, d.n_gates, kw["subplot"], equate is not EquateAxes.NONE)
            if direction is not None:
                fig.suptitle(f"{direction} LAYER", **kw["title"])
        else:
            fig, grid = plt.subplots(d.n_gates, 2, squeeze=False, **kw["subplot"])
            pairs = [list(r) for r in grid]
        for t, kernel in enumerate(KERNELS):
            for g in range(d.n_gates):
                a = arrays[t + di * per]
                if d.gated:
                    a = a[:, g * d.rnn_dim : (g + 1) * d.rnn_dim]
                flat, note = _nan_text(a.ravel())
                _shaded_hist(pairs[g][t], flat, o["bins"], kw["plot"])
                style(pairs[g][t], g, kernel, note)
        rows = [list(r) for r in pairs]
        if with_bias:
            big = fig.add_subplot(gs[-1, :])
            flat, note = _nan_text(arrays[2 + di * per].ravel())
            _shaded_hist(big, flat, o["bins"], kw["plot"])
            style(big, -1, None, note)
            for ax in pairs[-1]:
                ax.tick_params(axis="both", which="both", labelbottom=True)
            rows.append([big, big])
        if kw["tight"]:
            fig.subplots_adjust(**kw["tight"])
        else:
            fig.tight_layout()
        figs.append(fig)
        all_axes.append(np.array(rows, dtype=object))
    if equate is EquateAxes.ALL:
        panels = [ax for axs in all_axes for ax in axs[: d.n_gates].flat]
        x = max(float(np.max(np.abs(ax.get_xlim()))) for ax in panels)
        y = max(float(np.max(np.abs(ax.get_ylim()))) for ax in panels)
        for ax in panels:
            ax.set_xlim(-x, x)
            ax.set_ylim(0, y)
    for fig in figs:
        scalefig(fig)
    save_figs(figs, o["savepath"], kw["save"])
    return figs, all_axes


def _print_nans(a: np.ndarray, kernel: str, d: Info) -> None:
    text = detect_nans(a, include_inf=True)
    if text is None:
        return
    if not d.gated:
        print(f"{kernel}:{text}")
        return
    print(f"\n{kernel}:")
    for g, name in enumerate(d.gate_names):
        t = detect_nans(a[..., g * d.rnn_dim : (g + 1) * d.rnn_dim], include_inf=True)
        if t is not None:
            print(f"{name}: {t}")


def _gate_lines(ax: Any, d: Info, width: float) -> None:
    if width != 0:
        for g in range(1, d.n_gates):
            ax.axvline(d.rnn_dim * g - 0.5, linewidth=width, color="k")


def rnn_heatmap(
    model: Any,
    _id: Any,
    layer: Any = None,
    input_data: Any = None,
    labels: Any = None,
    mode: str = "weights",
    cmap: Any = "bwr",
    norm: Any = "auto",
    data: Any = None,
    configs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[list[Any], list[Any]]:
    """Heatmaps of a recurrent layer's weights (or their gradients): kernel and recurrent
    kernel side by side with vertical lines between gates, the bias below; one figure per
    direction. Non-finite values are reported on the console, per kernel and gate.

    Args:
        model, _id, layer, input_data, labels, mode, data: as in :func:`rnn_histogram`.
        cmap: colormap; None: greyscale (``'bone'``), suited to magnitudes.
        norm: ``(vmin, vmax)``; ``'auto'``: symmetric about 0 at the largest kernel or
            recurrent-kernel magnitude over both directions (None, None with
            ``absolute_value``); None: matplotlib's per-image scaling.
        configs: kwargs per element: ``'plot'``, ``'plot-bias'`` (imshow), ``'subplot'``,
            ``'tight'``, ``'title'``, ``'subtitle'``, ``'xlabel'``, ``'ylabel'``,
            ``'colorbar'``, ``'save'``.
        **kwargs: ``w``, ``h``, ``show_borders`` (True), ``show_colorbar`` (True),
            ``show_bias`` (True), ``gate_sep_width`` (1; 0 draws no gate lines),
            ``normalize`` (scale each matrix to 0..1), ``absolute_value``, ``savepath``;
            rnnscope adds ``sample_weight`` and ``loss`` (torch) for gradients.

    Returns:
        ``(figs, axes)``: a list of figures (two for a Bidirectional layer) and, per figure,
        a 2x2 array of axes: the kernel pair, then the bias panel (twice).

    Example:
        >>> figs, axes = rnn_heatmap(model, "gru", cmap=None, absolute_value=True)
    """
    o = options(
        "rnn_heatmap",
        kwargs,
        {
            "w": 1,
            "h": 1,
            "show_borders": True,
            "show_colorbar": True,
            "show_bias": True,
            "gate_sep_width": 1,
            "normalize": False,
            "absolute_value": False,
            "savepath": None,
            "sample_weight": None,
            "loss": None,
        },
    )
    kw = merge_configs(
        "rnn_heatmap",
        configs,
        {
            "plot": {"interpolation": "nearest"},
            "plot-bias": {"interpolation": "nearest"},
            "subplot": {"dpi": 76, "figsize": (14, 8)},
            "tight": {},
            "title": {"weight": "bold", "fontsize": 13, "y": 0.98},
            "subtitle": {"weight": "bold", "fontsize": 13},
            "xlabel": {"fontsize": 12, "weight": "bold"},
            "ylabel": {"fontsize": 12, "weight": "bold"},
            "colorbar": {"fraction": 0.03},
            "save": {},
        },
    )
    fw, fh = kw["subplot"]["figsize"]
    kw["subplot"]["figsize"] = (fw * o["w"], fh * o["h"])
    valid = (
        norm is None
        or (isinstance(norm, str) and norm == "auto")
        or (isinstance(norm, (list, tuple, np.ndarray)) and len(norm) == 2)
    )
    if not valid:
        raise InputError(f"rnn_heatmap: norm must be None, 'auto' or (vmin, vmax); got {norm!r}")
    arrays, d = _layer_data(
        "rnn_heatmap",
        model,
        _id,
        layer,
        input_data,
        labels,
        mode,
        data,
        o["sample_weight"],
        o["loss"],
    )
    if o["absolute_value"]:
        arrays = [np.abs(a) for a in arrays]
    if o["normalize"]:
        for i, a in enumerate(arrays):
            a = a - np.min(a)
            top = np.max(a)
            arrays[i] = -a if top == 0 else a / top
    plt = _plt()
    if cmap is None:
        cmap = plt.cm.bone
    per = 2 + d.uses_bias
    if isinstance(norm, str):
        kernels = [arrays[t + di * per] for di in range(len(d.directions)) for t in (0, 1)]
        vmax = None if o["absolute_value"] else max(float(np.max(np.abs(a))) for a in kernels)
        vmin = None if vmax is None else -vmax
    elif norm is None:
        vmin = vmax = None
    else:
        vmin, vmax = norm
    names = f"({', '.join(d.gate_names)})" if d.gated else ""
    with_bias = d.uses_bias and o["show_bias"]
    figs, all_axes = [], []
    for di, direction in enumerate(d.directions):
        if with_bias:
            fig = _figure(plt, kw["subplot"])
            gs = fig.add_gridspec(10, 2)
            pair = [fig.add_subplot(gs[:8, 0]), fig.add_subplot(gs[:8, 1])]
            if direction is not None:
                fig.suptitle(f"{direction} LAYER", **kw["title"])
        else:
            fig, grid = plt.subplots(1, 2, **kw["subplot"])
            pair = list(grid)
        img = None
        for t, (kernel, ax) in enumerate(zip(KERNELS, pair, strict=True)):
            a = arrays[t + di * per]
            _print_nans(a, kernel, d)
            vector = a.ndim == 1
            if vector:
                a = a[:, None]
            plot_kw = {"aspect": (20 / len(a) if vector else "auto"), **kw["plot"]}
            img = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, **plot_kw)
            if vector:
                ax.set_xticks([])
            _gate_lines(ax, d, o["gate_sep_width"])
            ax.set_title(kernel, **kw["subtitle"])
            ax.set_xlabel(names, **kw["xlabel"])
            ax.set_ylabel(["Channel units", "Hidden units"][t], **kw["ylabel"])
            if not o["show_borders"]:
                ax.set_frame_on(False)
        if o["show_colorbar"]:
            fig.colorbar(img, ax=pair, **kw["colorbar"])
        rows = [pair]
        if with_bias:
            big = fig.add_subplot(gs[-1, :])
            b = np.atleast_2d(arrays[2 + di * per])
            dim = b.shape[1]
            bias_kw = {"aspect": dim / 100 if dim > 100 else 0.5, **kw["plot-bias"]}
            big.imshow(b, cmap=cmap, vmin=vmin, vmax=vmax, **bias_kw)
            _gate_lines(big, d, o["gate_sep_width"])
            big.set_frame_on(False)
            big.set_title("BIAS", **kw["subtitle"])
            big.get_yaxis().set_ticks([])
            rows.append([big, big])
        if kw["tight"]:
            fig.subplots_adjust(**kw["tight"])
        figs.append(fig)
        all_axes.append(np.array(rows, dtype=object))
    for fig in figs:
        scalefig(fig)
    save_figs(figs, o["savepath"], kw["save"])
    return figs, all_axes
