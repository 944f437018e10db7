"""Figures of a whole run of checkpoints, for the report: one image per story, not per file.

* :func:`run_lines`: per-gate L2 norms (and the recurrent kernels' largest singular values)
  with training steps on x;
* :func:`run_heatmap`: every gate block (rows) through the checkpoints (columns), coloured by
  its statistic relative to the first checkpoint;
* :func:`ridgeline`: one layer's weight histograms at a few checkpoints, stacked.

Each takes the ``stats`` frame (or samples) and returns a matplotlib Figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._common import label, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ridgeline", "run_heatmap", "run_lines", "x_axis"]

_SIGMA = "\N{GREEK SMALL LETTER SIGMA} max"
_NAMED_TICKS = 12  # up to this many checkpoints, ticks are their (shortened) names


def _short(name: str, width: int = 18) -> str:
    name = name.rsplit(".", 1)[0] if "." in name else name
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def x_axis(
    ax: Axes, names: Sequence[str], steps: Sequence[float] | None, unit: str = "step"
) -> np.ndarray:
    """x positions for ``names``: their steps when known, else their order; labels that read.

    With steps, x is numeric (a few round ticks, labelled "step"); without, up to
    :data:`_NAMED_TICKS` names are written horizontally (shortened to their end), more get
    a few numbered ticks ("checkpoint #").
    """
    from matplotlib.ticker import MaxNLocator

    if steps is not None:
        ax.set_xlabel(unit, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        return np.asarray(steps, float)
    x = np.arange(len(names), dtype=float)
    if len(names) <= _NAMED_TICKS:
        ax.set_xticks(x, [label(_short(n)) for n in names], fontsize=7)
        if len(names) > 5:
            for i, t in enumerate(ax.get_xticklabels()):
                t.set_y(-0.045 * (i % 2))  # alternate two rows instead of rotating
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.set_xlabel("checkpoint # (in order)", fontsize=8)
    return x


def run_lines(
    table: Any,
    names: Sequence[str],
    steps: Sequence[float] | None,
    unit: str = "step",
    thresholds: Any = None,
    ordered: bool = True,
) -> list[Figure]:
    """Per layer, one panel per part with a line per gate (L2 norm); then one figure of the
    recurrent kernels' largest singular values (all gates), each through the checkpoints, with
    each kernel's size-aware bound (:func:`rnnscope._flags.recurrent_bound`) as a dotted line
    of its colour. ``ordered=False`` (variants, not a run): points only, no line joining
    models that have no order."""
    figs = []
    gated = table[table["gate"] != ""]
    many = len(names) > 40
    marker: dict[str, Any] = dict(marker="o", markersize=2.5) if not many else {}
    if not ordered:
        marker = dict(marker="o", markersize=4, linestyle="none")
    through = "through the run" if ordered else "of each variant (points: variants have no order)"
    for layer, block in gated.groupby("layer", sort=False):
        parts = list(dict.fromkeys(block["part"]))
        width = 3.1 * len(parts) + 0.6
        fig = new_figure(None, (width, 2.9), 80)
        axes = fig.subplots(1, len(parts), squeeze=False)[0]
        _margins(fig, width, 2.9, left=0.7, wspace=0.35)
        for ax, part in zip(axes, parts, strict=True):
            sub = block[block["part"] == part]
            x = x_axis(ax, names, steps, unit)
            for (gate, direction), line in sub.groupby(["gate", "direction"], sort=False):
                y = line.set_index("model").reindex(list(names))["l2_norm"].to_numpy(float)
                back = direction == "backward"
                ax.plot(
                    x,
                    y,
                    **({"linestyle": "--" if back else "-"} | marker),
                    linewidth=1.2,
                    fillstyle="none" if back and not ordered else "full",
                    label=label(gate + (" (backward)" if back else "")),
                )
            if not ordered:
                ax.set_xmargin(0.15)  # room for the outer names under lone points
            ax.set_title(label(part.replace("_", " ")), fontsize=9)
            ax.set_ylabel("L2 norm", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"Layer '{label(layer)}': per-gate L2 norm {through}", fontsize=10)
        figs.append(fig)
    rk = table[table["part"] == "recurrent_kernel"].drop_duplicates(["model", "layer", "direction"])
    if len(rk):
        fig = new_figure(None, (5.6, 2.9), 80)
        ax = fig.subplots()
        _margins(fig, 5.6, 2.9, left=0.7)
        x = x_axis(ax, names, steps, unit)
        drawn: set[float] = set()
        for (layer, direction), line in rk.groupby(["layer", "direction"], sort=False):
            y = line.set_index("model").reindex(list(names))["matrix_spectral_norm"]
            tag = f" ({direction})" if direction not in ("", "forward") else ""
            (curve,) = ax.plot(
                x, y.to_numpy(float), linewidth=1.2, **marker, label=label(f"{layer}{tag}")
            )
            bound = _bound(table, line.iloc[0], thresholds)
            if bound is not None and round(bound, 6) not in drawn:
                drawn.add(round(bound, 6))
                ax.axhline(bound, color=curve.get_color(), linewidth=0.9, linestyle=":")
                ax.annotate(
                    f"bound {bound:.3g}",
                    (1.0, bound),
                    xycoords=("axes fraction", "data"),
                    xytext=(-3, 2),
                    textcoords="offset points",
                    ha="right",
                    va="bottom",
                    fontsize=7,
                    color=curve.get_color(),
                )
        if not ordered:
            ax.set_xmargin(0.15)
        ax.set_ylabel("largest singular value", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
        fig.suptitle(
            "Recurrent kernels (all gates): largest singular value"
            + ("" if ordered else " of each variant"),
            fontsize=10,
        )
        figs.append(fig)
    return figs


def _bound(table: Any, row: Any, thresholds: Any) -> float | None:
    """The size-aware bound of the recurrent kernel whose first gate row is ``row``: above it
    a SimpleRNN gets a warning and a gated cell a note (None without a usable shape)."""
    from .._flags import Thresholds, recurrent_bound

    dims = [int(d) for d in str(row["shape"]).split("x") if d.isdigit()]
    units = float(row["units"])
    if len(dims) != 2 or not units > 0:
        return None
    same = table[
        (table["model"] == row["model"])
        & (table["layer"] == row["layer"])
        & (table["direction"] == row["direction"])
        & (table["part"] == "recurrent_kernel")
    ]
    n = int(units) * max(len(same), 1)
    t = thresholds or Thresholds()
    return recurrent_bound(str(row["kind"]), dims[0], n, int(units), t)


def _margins(
    fig: Figure, width: float, height: float, left: float, wspace: float = 0.2, right: float = 0.15
) -> None:
    """Fixed margins in inches (matplotlib's automatic layouts cost seconds per figure)."""
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - 0.55 / height,
        bottom=0.55 / height,
        wspace=wspace,
    )


def _row_name(key: tuple[str, str, str, str]) -> str:
    layer, part, gate, direction = key
    bits = [layer, part.replace("recurrent_", "rec. "), gate]
    if direction not in ("", "forward"):
        bits.append(direction[:4])
    return label(" / ".join(bits))


def run_heatmap(
    table: Any,
    names: Sequence[str],
    steps: Sequence[float] | None,
    stats: Sequence[tuple[str, str]] = (
        ("l2_norm", "L2 norm"),
        ("spectral_norm", "\N{GREEK SMALL LETTER SIGMA} max"),
    ),
    unit: str = "step",
    ordered: bool = True,
) -> Figure | None:
    """Every gate block (a row: layer / part / gate) through the checkpoints (columns), one
    panel per statistic, coloured by log2 of the value over the block's first finite value:
    a whole run in one image (red grew, blue shrank; grey: missing). None without gate rows.
    ``ordered=False`` (variants): the same image, titled as each model against the first."""
    from matplotlib.colors import TwoSlopeNorm

    gated = table[table["gate"] != ""]
    keys = list(dict.fromkeys(map(tuple, gated[["layer", "part", "gate", "direction"]].values)))
    if not keys:
        return None
    height = min(0.2 * len(keys), 11.0) + 1.3
    width = 4.2 * len(stats) + 2.1
    fig = new_figure(None, (width, height), 80)
    axes = fig.subplots(1, len(stats), squeeze=False, sharey=True)[0]
    _margins(fig, width, height, left=2.4, wspace=0.3, right=0.5)
    col = {m: i for i, m in enumerate(names)}
    for ax, (stat, title) in zip(axes, stats, strict=True):
        grid = np.full((len(keys), len(names)), np.nan)
        row = {k: i for i, k in enumerate(keys)}
        idx = list(map(tuple, gated[["layer", "part", "gate", "direction"]].values))
        for k, m, v in zip(idx, gated["model"], gated[stat].to_numpy(float), strict=True):
            grid[row[k], col[m]] = v
        ratio = _log_ratio(grid)
        lim = max(float(np.nanmax(np.abs(ratio))) if np.isfinite(ratio).any() else 0.0, 0.1)
        cmap = _cmap()
        x = np.asarray(steps, float) if steps is not None else np.arange(len(names), dtype=float)
        edges = _edges(x)
        img = ax.pcolormesh(
            edges,
            np.arange(len(keys) + 1) - 0.5,
            np.ma.masked_invalid(ratio),
            cmap=cmap,
            norm=TwoSlopeNorm(0.0, -lim, lim),
            shading="flat",
        )
        x_axis(ax, names, steps, unit)
        if steps is None and len(names) <= _NAMED_TICKS:
            ax.set_xticks(np.arange(len(names)), [label(_short(n)) for n in names], fontsize=7)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_title(f"{title}: log2(value / first)", fontsize=9)
        ax.tick_params(labelsize=7.5)
        fig.colorbar(img, ax=ax, fraction=0.05, pad=0.02).ax.tick_params(labelsize=7.5)
    rows = len(keys)
    axes[0].set_yticks(range(rows), [_row_name(k) for k in keys], fontsize=8 if rows <= 48 else 6)
    axes[0].set_ylim(len(keys) - 0.5, -0.5)
    fig.suptitle(
        (
            "Every gate block through the run"
            if ordered
            else "Every gate block: each variant against the first"
        )
        + " (red: grew, blue: shrank, grey: no value, "
        "e.g. \N{GREEK SMALL LETTER SIGMA} max of a bias)",
        fontsize=10,
    )
    return fig


def _cmap() -> Any:
    import matplotlib

    return matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d1d5db")


def _edges(x: np.ndarray) -> np.ndarray:
    if len(x) == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])


def _log_ratio(grid: np.ndarray) -> np.ndarray:
    """log2(grid / the row's first finite positive value); NaN where undefined."""
    out = np.full_like(grid, np.nan)
    for i, r in enumerate(grid):
        ok = np.flatnonzero(np.isfinite(r) & (r > 0))
        if len(ok):
            with np.errstate(divide="ignore", invalid="ignore"):
                out[i] = np.log2(r / r[ok[0]])
    out[~np.isfinite(out)] = np.nan
    return out


def ridgeline(samples: Sequence[tuple[str, np.ndarray]], title: str, bins: int = 80) -> Figure:
    """Histograms of the same weights at several checkpoints, stacked (the first on top) over
    one shared range, each scaled to its own peak: how a layer's distribution moves."""
    finite = [a[np.isfinite(a)] for _, a in samples]
    allv = np.concatenate([a for a in finite if a.size] or [np.zeros(1)])
    lo, hi = np.percentile(allv, [0.1, 99.9]) if allv.size > 1 else (-1.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    edges = np.linspace(lo, hi, bins + 1)
    height = 0.42 * len(samples) + 1.2
    fig = new_figure(None, (5.4, height), 80)
    ax = fig.subplots()
    _margins(fig, 5.4, height, left=1.7)
    cmap = __import__("matplotlib").colormaps["viridis"]
    for i, a in enumerate(finite):
        counts, _ = np.histogram(np.clip(a, lo, hi), edges)
        h = counts / counts.max() * 1.6 if counts.max() else counts.astype(float)
        base = -float(i)
        colour = cmap(i / max(len(samples) - 1, 1))
        ax.fill_between(
            edges[:-1],
            base,
            base + h,
            step="post",
            color=colour,
            alpha=0.75,
            linewidth=0.6,
            edgecolor="white",
            zorder=i,
        )
    ticks = [label(_short(n, 24)) for n, _ in samples]
    ax.set_yticks([-float(i) for i in range(len(samples))], ticks)
    ax.tick_params(labelsize=7)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-(len(samples) - 1) - 0.15, 1.75)
    ax.set_xlabel("weight value (0.1 to 99.9 percentile range)", fontsize=8)
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.set_title(label(title), fontsize=10)
    return fig
