"""Attributions of one sequence: a time x feature heatmap under a per-timestep bar, or tokens
coloured by their attribution."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from ._common import integer_ticks, label, new_figure, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._attributions import Attribution

__all__ = ["attributions"]


def _record(attr: Any, sample: int) -> np.ndarray:
    values = getattr(attr, "values", None)
    if not isinstance(values, np.ndarray) or values.ndim != 3:
        kind = "a list (one record per input: pass one)" if isinstance(attr, list) else type(attr)
        raise InputError(f"attr: expected an rnnscope.Attribution; got {kind}", argument="attr")
    if not isinstance(sample, (int, np.integer)) or not -len(values) <= sample < len(values):
        raise InputError(
            f"sample: expected an index below the batch of {len(values)}; got {sample!r}",
            argument="sample",
        )
    return np.asarray(values[sample], dtype=np.float64)


def _limit(a: np.ndarray) -> float:
    finite = a[np.isfinite(a)]
    top = float(np.abs(finite).max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def _bars(ax: Any, per_step: np.ndarray) -> None:
    colors = np.where(per_step >= 0, "#b2182b", "#2166ac")
    ax.bar(np.arange(len(per_step)), per_step, width=0.8, color=colors)
    ax.axhline(0.0, color="0.4", linewidth=0.6)
    ax.set_ylabel("sum over\nfeatures")
    ax.set_xlim(-0.5, len(per_step) - 0.5)


def _tokens(fig: Figure, ax: Any, tokens: Sequence[Any], per_step: np.ndarray, cmap: str) -> None:
    import matplotlib as mpl

    lim = _limit(per_step)
    norm = mpl.colors.Normalize(-lim, lim)
    colormap = mpl.colormaps[cmap]
    cols = max(1, min(12, len(tokens)))
    rows = -(-len(tokens) // cols)
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.axis("off")
    for k, (tok, v) in enumerate(zip(tokens, per_step, strict=True)):
        r, c = divmod(k, cols)
        shade = colormap(norm(v)) if np.isfinite(v) else (0.85, 0.85, 0.85, 1.0)
        ax.add_patch(mpl.patches.Rectangle((c + 0.04, r + 0.1), 0.92, 0.8, color=shade))
        ax.text(c + 0.5, r + 0.5, label(tok)[:14], ha="center", va="center", fontsize=9)
    fig.colorbar(mpl.cm.ScalarMappable(norm, colormap), ax=ax, label="attribution")


def attributions(
    attr: Attribution,
    sample: int = 0,
    feature_names: Sequence[Any] | None = None,
    tokens: Sequence[Any] | None = None,
    cmap: str = "RdBu_r",
    fig: Figure | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float | None = None,
    savepath: str | os.PathLike[str] | None = None,
) -> Figure:
    """One sequence's attributions: the per-timestep sum as bars above a time x feature heatmap
    (red positive, blue negative, limits symmetric about 0); with ``tokens``, the tokens coloured
    by their timestep's attribution instead of the heatmap.

    Args:
        attr: an :class:`rnnscope.Attribution` (one input's record).
        sample: which sequence of the batch.
        feature_names: a name per feature for the heatmap's rows.
        tokens: a token (word) per timestep, shown coloured by its attribution.
        cmap: a diverging matplotlib colour map.
        fig: a figure to draw into (cleared first).
        figsize: inches; by default from the number of timesteps.
        dpi: dots per inch.
        savepath: write the figure there (format from the extension).

    Returns:
        The Figure: the bar axes first, then the heatmap (or token) axes, then a colour bar.

    Example:
        >>> a = rnnscope.attributions(model, x)
        >>> fig = rnnscope.plot.attributions(a, sample=0, savepath="attr.png")
    """
    values = _record(attr, sample)  # (time, features)
    t, f = values.shape
    per_step = values.sum(axis=1)
    if tokens is not None and len(tokens) != t:
        raise InputError(
            f"tokens: expected one per timestep ({t}); got {len(tokens)}", argument="tokens"
        )
    if feature_names is not None and len(feature_names) != f:
        raise InputError(
            f"feature_names: expected one per feature ({f}); got {len(feature_names)}",
            argument="feature_names",
        )
    size = figsize or (min(16.0, 3.0 + 0.25 * t), 4.5 if tokens is None else 3.5)
    fig = new_figure(fig, size, dpi, constrained=True)
    top, bottom = fig.subplots(2, 1, sharex=tokens is None, height_ratios=(1, 2.2))
    _bars(top, per_step)
    integer_ticks(top, y=False)
    name = getattr(attr, "input", "input")
    top.set_title(label(f"{attr.method} · {name} · sample {sample}"), fontsize=10)
    if tokens is not None:
        _tokens(fig, bottom, tokens, per_step, cmap)
    else:
        lim = _limit(values)
        im = bottom.imshow(
            values.T, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest"
        )
        bottom.set_xlabel("timestep")
        bottom.set_ylabel("feature")
        integer_ticks(bottom)
        if feature_names is not None:
            bottom.set_yticks(range(f), [label(n) for n in feature_names])
        fig.colorbar(im, ax=[top, bottom], label="attribution")  # keeps both aligned in time
    save(fig, savepath)
    return fig
