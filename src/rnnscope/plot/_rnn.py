"""Per-gate heatmaps and histograms of one recurrent layer's weights or weight gradients."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._enums import EquateAxes
from .._errors import InputError, LayerError
from .._model import RNNWeights
from ._common import (
    QUIET,
    NonFinite,
    PlotMode,
    color_limits,
    describe_nonfinite,
    finite_view,
    integer_ticks,
    label,
    new_figure,
    nonfinite_counts,
    save,
    savepaths,
    shrink_image,
)
from ._common import (
    equate_axes as to_equate,
)
from ._convlstm import ConvLSTMView, draw_record

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["rnn_heatmap", "rnn_histogram"]

Record = RNNWeights | ConvLSTMView  # a ConvLSTM is drawn from its flattened per-gate blocks

_LABEL = {
    "kernel": "kernel",
    "recurrent_kernel": "recurrent kernel",
    "bias": "bias",
    "recurrent_bias": "recurrent bias",
    "projection": "projection",
}
_BIASES = ("bias", "recurrent_bias")
_MARK = "#111111"
_NOTE = "#b00020"
_MAX_MARKS = 5000


def _directions(rec: Record, direction: str | None) -> tuple[str, ...]:
    if direction is None:
        return rec.directions
    if direction not in rec.directions:
        raise LayerError(
            f"layer '{rec.name}': direction must be one of {', '.join(rec.directions)}; "
            f"got {direction!r}",
            layer=rec.name,
            argument="direction",
        )
    return (direction,)


def _title(rec: Record, mode: PlotMode, direction: str, what: str) -> str:
    shown = "weights" if mode is PlotMode.WEIGHTS else "gradients of the loss w.r.t. the weights"
    side = f", {direction}" if rec.bidirectional else ""
    size = f", {rec.units} filters" if isinstance(rec, ConvLSTMView) else f" {rec.units}"
    return f"{what} of {shown}: layer '{label(rec.name)}' ({rec.cell}{size}{side})"


def _report(fn: str, rec: Record, counts: NonFinite) -> None:
    if counts and not QUIET.get():
        by_dir: dict[str, NonFinite] = {}
        for k, v in counts.items():
            by_dir.setdefault(k[0], {})[k] = v
        for d, c in by_dir.items():
            print(
                f"{fn}: layer '{rec.name}' ({d}) has non-finite values, drawn as 0 and "
                f"marked: {describe_nonfinite(c)}"
            )


def _figures(fig: Any, n: int) -> list[Any]:
    if fig is None:
        return [None] * n
    figs = list(fig) if isinstance(fig, (list, tuple)) else [fig]
    if len(figs) != n:
        raise InputError(
            f"fig: {n} direction(s) to draw, so {n} figure(s) are needed; got {len(figs)}",
            argument="fig",
        )
    return figs


def _result(figs: list[Figure]) -> Figure | list[Figure]:
    return figs[0] if len(figs) == 1 else figs


# -- heatmap ---------------------------------------------------------------------------------------
def _line_colour(image: Any, absolute: bool) -> str:
    """Black separators on light backgrounds (``bwr``'s white 0), white ones on dark."""
    r, g, b, _ = image.cmap(0.0 if absolute else 0.5)
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


def _gate_axis(ax: Axes, rec: Record, lines: bool, colour: str) -> None:
    u = rec.units
    ax.set_xticks([(k + 0.5) * u - 0.5 for k in range(rec.n_gates)], list(rec.gates))
    ax.tick_params(axis="x", length=0)
    if lines:
        for k in range(1, rec.n_gates):
            ax.axvline(k * u - 0.5, color=colour, linewidth=1.4, gid="gate-line")


def _mark(ax: Axes, a: np.ndarray) -> None:
    rows, cols = np.nonzero(~np.isfinite(a))
    if rows.size:
        ax.scatter(
            cols[:_MAX_MARKS],
            rows[:_MAX_MARKS],
            marker="x",
            s=14,
            linewidths=1,
            color=_MARK,
            gid="nonfinite-marker",
        )


def _note(ax: Axes, counts: NonFinite, direction: str, parts: tuple[str, ...]) -> None:
    mine = {k: v for k, v in counts.items() if k[0] == direction and k[1] in parts}
    if mine:
        nan = sum(v["nan"] for v in mine.values())
        inf = sum(v["inf"] for v in mine.values())
        ax.text(
            1.0,
            1.0,
            f"{nan} NaN, {inf} Inf (drawn as 0, marked x)",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color=_NOTE,
            gid="nonfinite-note",
        )


def _heat_panels(rec: Record, show_bias: bool) -> list[tuple[str, tuple[str, ...], float]]:
    """(label, parts, height in inches) of each panel, top to bottom."""
    rows = {p: rec.expected_shape(p)[0] for p in ("kernel", "recurrent_kernel")}
    biggest = max(rows.values())
    panels: list[tuple[str, tuple[str, ...], float]] = [
        (_LABEL[p], (p,), 1.2 + 3.6 * rows[p] / biggest) for p in rows
    ]
    biases = tuple(p for p in _BIASES if p in rec.parts)
    if show_bias and biases:
        panels.append(("biases", biases, 0.45 + 0.2 * len(biases)))
    if "projection" in rec.parts:
        panels.append(("projection", ("projection",), 2.0))
    return panels


@dataclass(frozen=True)
class HeatOptions:
    """How :func:`rnn_heatmap` draws each direction's figure (its keyword arguments)."""

    norm: tuple[float, float] | None = None
    cmap: Any = "bwr"
    absolute: bool = False
    show_bias: bool = True
    gate_lines: bool = True
    title: str | None = None
    dpi: float | None = None


def _heat_one(
    rec: Record,
    mode: PlotMode,
    direction: str,
    fig: Figure | None,
    counts: NonFinite,
    o: HeatOptions,
) -> Figure:
    norm, cmap, absolute, show_bias = o.norm, o.cmap, o.absolute, o.show_bias
    panels = _heat_panels(rec, show_bias)
    data = [  # one part: a view, no copy (a 100 MB layer must not cost its size again here)
        np.vstack(blocks) if len(blocks) > 1 else blocks[0]
        for blocks in (
            [
                rec.arrays[(p, direction)].reshape(-1, rec.arrays[(p, direction)].shape[-1])
                for p in parts
            ]
            for _, parts, _ in panels
        )
    ]
    shown = [np.abs(finite_view(a)) if absolute else finite_view(a) for a in data]
    lo, hi = color_limits(shown, norm, absolute)
    heights = [h for _, _, h in panels]
    height = sum(heights) + 0.35 * (len(panels) - 1) + 1.4
    fig = new_figure(fig, (10.0, height), o.dpi)
    axes = fig.subplots(len(panels), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    fig.subplots_adjust(
        left=0.13,
        right=0.86,
        top=1 - 0.9 / height,
        bottom=0.45 / height,
        hspace=0.35 * len(panels) / sum(heights),
    )
    image = None
    for ax, (panel, parts, _), raw, a in zip(axes, panels, data, shown, strict=True):
        image = ax.imshow(
            shrink_image(a),
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            extent=(-0.5, a.shape[1] - 0.5, a.shape[0] - 0.5, -0.5),
        )
        integer_ticks(ax, x=parts == ("projection",), y=True)
        if parts == ("projection",):
            ax.set_xlabel("projection output")
            ax.set_ylabel(f"projection\n({rec.units} units)")
        else:
            _gate_axis(ax, rec, o.gate_lines, _line_colour(image, absolute))
            if panel == "biases":
                ax.set_yticks(range(len(parts)), [_LABEL[p] for p in parts], fontsize=9)
            else:
                rows = "inputs" if parts == ("kernel",) else "hidden units"
                if isinstance(rec, ConvLSTMView):
                    ax.set_ylabel(rec.rows_label(parts[0]), gid="conv-rows")
                else:
                    ax.set_ylabel(f"{panel}\n({a.shape[0]} {rows})")
        _mark(ax, raw)
        _note(ax, counts, direction, parts)
    axes[0].tick_params(axis="x", top=True, labeltop=True, bottom=False, labelbottom=False)
    for ax in axes[1:-1]:
        ax.tick_params(axis="x", labelbottom=False)
    assert image is not None
    cbar = fig.colorbar(image, cax=fig.add_axes((0.88, 0.2, 0.018, 0.6), label="<colorbar>"))
    cbar.set_label("|value|" if absolute else "value")
    fig.suptitle(o.title or _title(rec, mode, direction, "Heatmap"), fontsize=12)
    return fig


def rnn_heatmap(
    source: Any,
    layer: Any = None,
    mode: str = "weights",
    x: Any = None,
    y: Any = None,
    *,
    loss: Any = None,
    sample_weight: Any = None,
    norm: tuple[float, float] | None = None,
    cmap: Any = "bwr",
    absolute_value: bool = False,
    show_bias: bool = True,
    gate_lines: bool = True,
    direction: str | None = None,
    title: str | None = None,
    dpi: float | None = None,
    fig: Any = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Any:
    """Heatmaps of a recurrent layer's weights (or weight gradients), gate by gate.

    One figure per direction; in each, one panel per part (kernel, recurrent kernel, biases,
    and a torch projection; a Keras ConvLSTM's parts flattened to ``(kernel positions x input
    channels, filters)`` per gate), gates side by side with separator lines and labels at the
    gate boundaries, and one colour bar shared by the panels. NaN and Inf values are counted per
    part, gate and direction, printed, stored in ``fig.nonfinite``, marked with ``x`` and drawn
    as 0.

    Args:
        source: a live model or layer, checkpoint path, :class:`rnnscope.RNNWeights`, or (with
            ``mode="grads"``) a gradient record or the dict :func:`rnnscope.gradients` returns.
        layer: layer name, unique name part or index.
        mode: ``"weights"`` or ``"grads"`` (needs ``x`` and ``y`` with a live model).
        x, y, loss, sample_weight: passed to :func:`rnnscope.gradients` in ``"grads"`` mode.
        norm: ``(low, high)`` colour limits; default symmetric around 0 over the figure.
        cmap: a matplotlib colormap; None for matplotlib's default.
        absolute_value: draw ``|value|`` (colour limits from 0).
        show_bias: draw the biases panel.
        gate_lines: draw separator lines at gate boundaries.
        direction: ``"forward"`` or ``"backward"`` only; default every direction.
        title: replaces the generated title.
        dpi: figure resolution.
        fig: a Figure (or one per direction) to draw into.
        savepath: write the figure there; with two directions, ``name_forward.png`` and
            ``name_backward.png``.

    Returns:
        The Figure, or a list of Figures (one per direction).

    Example:
        >>> fig = rnnscope.plot.rnn_heatmap("model.keras", "lstm", norm=(-1, 1))
    """
    rec, m = draw_record(source, layer, mode, x, y, loss, sample_weight)
    dirs = _directions(rec, direction)
    drawn = {p for _, parts, _ in _heat_panels(rec, show_bias) for p in parts}

    o = HeatOptions(norm, cmap, absolute_value, show_bias, gate_lines, title, dpi)

    def draw(d: str, f: Figure | None, counts: NonFinite) -> Figure:
        return _heat_one(rec, m, d, f, counts, o)

    return _per_direction("rnn_heatmap", rec, dirs, drawn, fig, savepath, draw)


def _per_direction(
    fn: str,
    rec: Record,
    dirs: tuple[str, ...],
    drawn: set[str],
    fig: Any,
    savepath: Any,
    draw: Any,
) -> Any:
    """Count and report non-finite values of the drawn parts, then draw, annotate and save one
    figure per direction."""
    counts = {k: v for k, v in nonfinite_counts(rec, dirs).items() if k[1] in drawn}
    _report(fn, rec, counts)
    figs = []
    for d, f, path in zip(dirs, _figures(fig, len(dirs)), savepaths(savepath, dirs), strict=True):
        out = draw(d, f, counts)
        out.nonfinite = {k: v for k, v in counts.items() if k[0] == d}
        save(out, path)
        figs.append(out)
    return _result(figs)


# -- histogram -------------------------------------------------------------------------------------
def _edges(arrays: list[np.ndarray], bins: int) -> np.ndarray:
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if a.size]
    if not finite:
        return np.linspace(-1.0, 1.0, bins + 1)
    lo = min(float(a.min()) for a in finite)
    hi = max(float(a.max()) for a in finite)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def _hist_rows(rec: Record, show_bias: bool) -> list[str]:
    rows: list[str] = [p for p in ("kernel", "recurrent_kernel") if p in rec.parts]
    if show_bias:
        rows += [p for p in _BIASES if p in rec.parts]
    if "projection" in rec.parts:
        rows.append("projection")
    return rows


_COLORS = {
    "kernel": "#1f6fb4",
    "recurrent_kernel": "#c0392b",
    "bias": "#2e8b57",
    "recurrent_bias": "#8e44ad",
    "projection": "#7f6000",
}


@dataclass(frozen=True)
class HistOptions:
    """How :func:`rnn_histogram` draws each direction's figure (its keyword arguments)."""

    equate: EquateAxes = EquateAxes.PART
    show_bias: bool = True
    bins: int = 100
    title: str | None = None
    dpi: float | None = None


def _hist_one(
    rec: Record,
    mode: PlotMode,
    direction: str,
    fig: Figure | None,
    counts: NonFinite,
    o: HistOptions,
) -> Figure:
    equate, show_bias, bins = o.equate, o.show_bias, o.bins
    rows = _hist_rows(rec, show_bias)
    n_cols = rec.n_gates
    blocks = {(p, g): a for d, p, g, a in rec.items() if d == direction and p in rows}
    fig = new_figure(fig, (2.6 * n_cols + 0.6, 1.75 * len(rows) + 1.0), o.dpi)
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    groups: list[list[tuple[str, str]]]
    if equate is EquateAxes.ALL:
        groups = [list(blocks)]
    elif equate is EquateAxes.PART:
        groups = [[k for k in blocks if k[0] == p] for p in rows]
    else:
        groups = [[k] for k in blocks]
    hists: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    peaks: dict[tuple[str, str], float] = {}
    for group in groups:
        edges = _edges([blocks[k] for k in group], bins)
        top = 0.0
        for k in group:
            a = blocks[k]
            counts_k, _ = np.histogram(a[np.isfinite(a)], bins=edges)
            hists[k] = (counts_k, edges)
            top = max(top, float(counts_k.max(initial=0)))
        for k in group:
            peaks[k] = top
    for i, p in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            g = "" if p == "projection" else rec.gates[j]
            if (p, g) not in hists:
                ax.set_axis_off()
                continue
            h, edges = hists[(p, g)]
            ax.stairs(h, edges, fill=True, color=_COLORS[p], alpha=0.85)
            ax.set_xlim(edges[0], edges[-1])
            if equate is not EquateAxes.NONE:
                ax.set_ylim(0, peaks[(p, g)] * 1.05 or 1)
            ax.tick_params(labelsize=7)
            ax.locator_params(axis="y", nbins=4)
            if i == 0 or p == "projection":
                ax.set_title(g or "projection", fontsize=10, fontweight="bold")
            if j == 0:
                ax.set_ylabel(_LABEL[p], fontsize=10)
            c = counts.get((direction, p, g))
            if c:
                ax.text(
                    0.98,
                    0.95,
                    f"{c['nan']} NaN\n{c['inf']} Inf",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=8,
                    color=_NOTE,
                    gid="nonfinite-note",
                )
    height = fig.get_figheight()
    fig.subplots_adjust(
        left=0.6 / fig.get_figwidth() + 0.02,
        right=0.985,
        bottom=0.35 / height,
        top=1 - 0.75 / height,
        wspace=0.22,
        hspace=0.38,
    )
    fig.suptitle(o.title or _title(rec, mode, direction, "Histograms"), fontsize=12)
    return fig


def rnn_histogram(
    source: Any,
    layer: Any = None,
    mode: str = "weights",
    x: Any = None,
    y: Any = None,
    *,
    loss: Any = None,
    sample_weight: Any = None,
    equate_axes: int | bool = 1,
    show_bias: bool = True,
    bins: int = 100,
    direction: str | None = None,
    title: str | None = None,
    dpi: float | None = None,
    fig: Any = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Any:
    """Histograms of a recurrent layer's weights (or weight gradients): parts x gates.

    One figure per direction, a grid with one row per part (kernel, recurrent kernel, and with
    ``show_bias`` each bias) and one column per gate. Panels with NaN or Inf values say how many;
    the counts are printed and stored in ``fig.nonfinite``.

    Args:
        source, layer, mode, x, y, loss, sample_weight: as in :func:`rnn_heatmap`.
        equate_axes: 0 each panel its own bins and limits; 1 shared bins and limits within each
            part (row); 2 shared across all panels.
        show_bias: include the bias rows.
        bins: number of bins.
        direction, title, dpi, fig, savepath: as in :func:`rnn_heatmap`.

    Returns:
        The Figure, or a list of Figures (one per direction).

    Example:
        >>> fig = rnnscope.plot.rnn_histogram(model, "lstm", equate_axes=2)
    """
    rec, m = draw_record(source, layer, mode, x, y, loss, sample_weight)
    equate = to_equate(equate_axes)
    if not isinstance(bins, int) or bins < 1:
        raise InputError(
            f"bins must be a positive integer; got {bins!r}", layer=rec.name, argument="bins"
        )
    dirs = _directions(rec, direction)

    o = HistOptions(equate, show_bias, bins, title, dpi)

    def draw(d: str, f: Figure | None, counts: NonFinite) -> Figure:
        return _hist_one(rec, m, d, f, counts, o)

    return _per_direction(
        "rnn_histogram", rec, dirs, set(_hist_rows(rec, show_bias)), fig, savepath, draw
    )
