"""Gate attributions of one sequence: a units x time heatmap per gate under a per-timestep bar."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from ._common import integer_ticks, label, new_figure, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._attributions_gates import GateAttribution

__all__ = ["gate_attributions"]


def _panels(attr: Any, sample: int, direction: str | None) -> list[tuple[str, str, np.ndarray]]:
    """``(direction, gate, (units, time))`` per heatmap, directions outer, gates inner."""
    values = getattr(attr, "values", None)
    if not isinstance(values, dict) or not hasattr(attr, "gates"):
        raise InputError(
            f"attr: expected an rnnscope.GateAttribution; got {type(attr).__name__}",
            argument="attr",
        )
    if direction is not None and direction not in values:
        raise InputError(
            f"direction must be one of {', '.join(values)} or None; got {direction!r}",
            argument="direction",
        )
    batch = len(next(iter(values.values())))
    if not isinstance(sample, (int, np.integer)) or not -batch <= sample < batch:
        raise InputError(
            f"sample: expected an index below the batch of {batch}; got {sample!r}",
            argument="sample",
        )
    dirs = list(values) if direction is None else [direction]
    return [
        (d, g, np.asarray(values[d][sample, :, k], dtype=np.float64).T)
        for d in dirs
        for k, g in enumerate(attr.gates)
    ]


def gate_attributions(
    attr: GateAttribution,
    sample: int = 0,
    direction: str | None = None,
    cmap: str = "RdBu_r",
    fig: Figure | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float | None = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Figure:
    """One sequence's gate attributions: the per-timestep sum (over the gates, units and the
    directions shown) as bars, above a units x time heatmap per gate and direction, all on one
    diverging colour scale centred at 0 (red positive, blue negative) so gates compare.

    Args:
        attr: an :class:`rnnscope.GateAttribution`.
        sample: which sequence of the batch.
        direction: ``"forward"`` or ``"backward"``; None: every direction.
        cmap: a diverging matplotlib colour map.
        fig: a figure to draw into (cleared first).
        figsize: inches; by default from the number of timesteps and heatmaps.
        dpi: dots per inch.
        savepath: write the figure there (format from the extension).

    Returns:
        The Figure: the bar axes first, then one heatmap axes per (direction, gate), then the
        colour bar.

    Example:
        >>> a = rnnscope.gate_attributions(model, x, layer="lstm")
        >>> fig = rnnscope.plot.gate_attributions(a, sample=0, savepath="gates.png")
    """
    panels = _panels(attr, sample, direction)
    units, t = panels[0][2].shape
    size = figsize or (min(16.0, 3.5 + 0.3 * t), 1.6 + len(panels) * (0.5 + 0.12 * units))
    fig = new_figure(fig, size, dpi, constrained=True)
    axes = fig.subplots(len(panels) + 1, 1, sharex=True, height_ratios=[1.2] + [1] * len(panels))
    per_step = sum(p.sum(axis=0) for _, _, p in panels)
    colors = np.where(per_step >= 0, "#b2182b", "#2166ac")
    axes[0].bar(np.arange(t), per_step, width=0.8, color=colors)
    axes[0].axhline(0.0, color="0.4", linewidth=0.6)
    axes[0].set_ylabel("sum", fontsize=8)
    integer_ticks(axes[0], y=False)
    axes[0].set_title(
        label(f"gate attributions · {attr.layer} ({attr.cell}) · sample {sample}"), fontsize=10
    )
    top = max((float(np.abs(p).max()) for _, _, p in panels), default=0.0) or 1.0
    many = len({d for d, _, _ in panels}) > 1
    im = None
    for ax, (d, g, p) in zip(axes[1:], panels, strict=True):
        im = ax.imshow(p, aspect="auto", cmap=cmap, vmin=-top, vmax=top, interpolation="nearest")
        name = f"{label(g)}\n{label(d)}" if many else label(g)
        ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
        ends = [0, units - 1] if units > 1 else [0]  # the unit rows' first and last index
        ax.set_yticks(ends, [f"u{u}" for u in ends], fontsize=6)
    axes[-1].set_xlabel("timestep")
    integer_ticks(axes[-1], y=False)
    assert im is not None  # one heatmap at least: every record has a gate and a direction
    fig.colorbar(im, ax=list(axes), label="attribution", shrink=0.6)
    save(fig, savepath)
    return fig
