"""Per-gate statistics over training steps, from a monitor database."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import InputError
from ._common import label as text_label
from ._common import new_figure, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["history"]

_LABELS = {
    "weight_norm": "weight L2 norm",
    "grad_norm": "gradient L2 norm",
    "update_ratio": "update ratio ||Δw|| / ||w||",
    "abs_max": "largest |w|",
    "mean": "mean",
    "std": "std",
    "frac_near_zero": "near-zero share",
}


def history(
    source: Any,
    what: str | Sequence[str] = ("weight_norm", "grad_norm", "update_ratio"),
    *,
    layers: Sequence[str] | None = None,
    parts: Sequence[str] = ("kernel", "recurrent_kernel"),
    run: int | str | None = None,
    log: bool = True,
    title: str | None = None,
    dpi: float | None = None,
    fig: Figure | None = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Figure:
    """Per-gate statistics over training steps: one row per statistic, one column per
    (layer, part), one line per gate (dashed: backward), red lines at the first NaN/Inf.

    Args:
        source: a monitor database path, or the DataFrame :func:`rnnscope.history` returns.
        what: statistics to draw (columns of the stats table).
        layers: layers to draw (default every recurrent layer, else every layer).
        parts: parts of recurrent layers to draw (other layers draw every weight).
        run: which run of the database (default the latest).
        log: logarithmic y axis (norms span orders of magnitude).
        title, dpi, fig, savepath: as in :func:`rnn_heatmap`.

    Example:
        >>> fig = rnnscope.plot.history("run.db", ["grad_norm"])
    """
    from matplotlib.ticker import MaxNLocator

    from .._monitor._history import history as read

    if isinstance(source, (str, os.PathLike)):
        df, events = read(source, run=run), read(source, "events", run=run)
    else:
        df, events = source, None
    whats = [what] if isinstance(what, str) else list(what)
    unknown = [w for w in whats if w not in df.columns]
    if unknown:
        raise InputError(f"what: unknown statistic(s) {unknown}; choose from {list(_LABELS)}")
    if df.empty:
        raise InputError("the monitor database holds no rows yet")
    recurrent = sorted(set(df.loc[df["gate"] != "", "layer"]), key=list(df["layer"]).index)
    chosen = list(layers) if layers is not None else (recurrent or list(dict.fromkeys(df.layer)))
    missing = [c for c in chosen if c not in set(df["layer"])]
    if missing:
        raise InputError(
            f"layers {missing} are not in the history; it has "
            f"{', '.join(dict.fromkeys(df['layer']))}"
        )
    columns = []
    for layer in chosen:
        sub = df[df["layer"] == layer]
        ps = (
            [p for p in dict.fromkeys(sub["part"]) if p in parts]
            if (sub["gate"] != "").any()
            else list(dict.fromkeys(sub["part"]))
        )
        columns += [(layer, p) for p in ps]
    fig = new_figure(fig, (3.6 * len(columns) + 1.2, 2.5 * len(whats) + 1.0), dpi, constrained=True)
    axes = fig.subplots(len(whats), len(columns), squeeze=False, sharex=True)
    nan_steps = sorted(set(events["step"])) if events is not None and len(events) else []
    for j, (layer, part) in enumerate(columns):
        block = df[(df["layer"] == layer) & (df["part"] == part)]
        for i, w in enumerate(whats):
            ax = axes[i, j]
            values = block[w].dropna()
            for (gate, direction), line in block.groupby(["gate", "direction"], sort=False):
                line = line.dropna(subset=[w])
                label = text_label(gate or part) + (
                    " (backward)" if direction == "backward" else ""
                )
                ax.plot(
                    line["step"],
                    line[w],
                    "--" if direction == "backward" else "-",
                    marker="o" if len(line) < 2 else None,  # one point: a dot, not nothing
                    markersize=4,
                    linewidth=1.2,
                    label=label,
                )
            for s in nan_steps:
                ax.axvline(s, color="#b00020", linewidth=1, gid="nan-step")
            _y_axis(ax, values, log)
            _say_if_sparse(ax, w, values, block.loc[values.index, "step"])
            if i == 0:
                ax.set_title(text_label(f"{layer}: {part.replace('_', ' ')}"), fontsize=10)
            if j == 0:
                ax.set_ylabel(_LABELS.get(w, w), fontsize=9)
            if i == len(whats) - 1:
                ax.set_xlabel("training step", fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
            ax.tick_params(labelsize=8)
        if axes[0, j].get_legend_handles_labels()[0]:
            axes[0, j].legend(fontsize=7)
    fig.suptitle(
        title or "Training history per gate" + (" (red: first NaN/Inf)" if nan_steps else ""),
        fontsize=12,
    )
    save(fig, savepath)
    return fig


def _y_axis(ax: Any, values: Any, log: bool) -> None:
    """Log scale only where values span more than a decade; plain numbers as tick labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    positive = values[values > 0]
    plain = FuncFormatter(lambda v, _pos: f"{v:.3g}")
    if log and len(positive) and positive.max() / positive.min() > 10:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif len(values):
        ax.yaxis.set_major_formatter(plain)  # no offset or "1e-3" corner label to decode


def _say_if_sparse(ax: Any, what: str, values: Any, steps: Any) -> None:
    """A panel with no values, or values at a single step, says so in words."""
    n = len(set(steps))
    if n >= 2:
        return
    if n == 0:
        text = f"no {_LABELS.get(what, what)} recorded"
        if what == "grad_norm":
            text += "\n(Keras on JAX: pass data=(x, y) to the Monitor)"
        ax.set_yticks([])
        ax.set_xticks([])
    else:
        text = (
            f"one recorded step ({int(next(iter(set(steps))))}): a line needs two;\n"
            "record more often (every=) or train longer"
        )
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=8,
        color="0.35",
        gid="sparse-note",
    )
