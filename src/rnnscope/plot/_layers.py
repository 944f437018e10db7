"""Figures of a non-recurrent layer (Dense, Embedding, Conv1D/2D/3D, ...): per weight, a heatmap
of its values and their histogram, for the report.

Weights of three or more dimensions (convolution kernels) are shown as a matrix with one row per
output channel and that channel's kernel flattened along the row (:func:`as_matrix`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._common import finite_view, label, new_figure, shrink_image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._model import LayerWeights

__all__ = ["as_matrix", "layer_figure"]


def as_matrix(name: str, a: np.ndarray) -> tuple[np.ndarray, str, str]:
    """A weight as a 2-D matrix, with its row and column meaning.

    1-D: one row. 2-D: as stored (Keras ``kernel`` is inputs x outputs, torch ``weight``
    outputs x inputs). 3-D and more (a convolution kernel): one row per output channel, the
    rest flattened in C order — Keras kernels keep the output channel last (``(k..., in,
    out)``), torch weights first (``(out, in, k...)``), told apart by the name (``weight``
    or ending in ``.weight``/``_weight``: torch).

    Example:
        >>> m, rows, cols = as_matrix("kernel", np.zeros((3, 3, 2, 8)))  # Keras Conv2D
        >>> m.shape, rows, cols
        ((8, 18), 'output channel', 'kernel (3x3) x input channel (2), flattened')
    """
    a = np.asarray(a)
    if a.ndim == 0:
        return a.reshape(1, 1), "", ""
    if a.ndim == 1:
        return a.reshape(1, -1), "", "index"
    if a.ndim == 2:
        return a, "row", "column"
    torch = name == "weight" or name.endswith((".weight", "_weight"))
    if torch:  # (out, in, k...)
        k = "x".join(map(str, a.shape[2:]))
        cols = f"input channel ({a.shape[1]}) x kernel ({k}), flattened"
        return a.reshape(a.shape[0], -1), "output channel", cols
    k = "x".join(map(str, a.shape[:-2]))
    moved = np.moveaxis(a, -1, 0)
    cols = f"kernel ({k}) x input channel ({a.shape[-2]}), flattened"
    return moved.reshape(a.shape[-1], -1), "output channel", cols


def layer_figure(rec: LayerWeights, bins: int = 60) -> Figure | None:
    """One row per weight of ``rec``: a heatmap (2-D and up) and a histogram; None when the
    layer has no weights."""
    names = [n for n in rec.names if np.asarray(rec.weights[n]).size]
    if not names:
        return None
    height = 1.9 * len(names) + 0.6
    fig = new_figure(None, (7.2, height), 72)
    axes = fig.subplots(len(names), 2, squeeze=False, width_ratios=[1.6, 1])
    fig.subplots_adjust(
        left=0.09, right=0.97, top=1 - 0.45 / height, bottom=0.5 / height, hspace=0.75, wspace=0.35
    )
    for (heat, hist), name in zip(axes, names, strict=True):
        a = np.asarray(rec.weights[name])
        shape = "x".join(map(str, a.shape))
        if a.ndim >= 2:
            m, rows, cols = as_matrix(name, a)
            shown = shrink_image(finite_view(m), (256, 512))
            lim = float(np.abs(shown).max()) or 1.0
            img = heat.imshow(
                shown,
                aspect="auto",
                cmap="RdBu_r",
                vmin=-lim,
                vmax=lim,
                interpolation="nearest",
                extent=(0, m.shape[1], m.shape[0], 0),
            )
            heat.set_ylabel(rows, fontsize=7)
            heat.set_xlabel(cols, fontsize=7)
            fig.colorbar(img, ax=heat, fraction=0.05, pad=0.02).ax.tick_params(labelsize=6)
        else:
            heat.set_axis_off()
        heat.set_title(label(f"{name} ({shape})"), fontsize=8)
        heat.tick_params(labelsize=6)
        finite = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a.ravel()
        hist.hist(np.ravel(finite), bins=bins, color="#4b5563")
        bad = a.size - finite.size
        hist.set_title(f"values{f' ({bad} NaN/Inf left out)' if bad else ''}", fontsize=8)
        hist.tick_params(labelsize=6)
    fig.suptitle(label(f"{rec.name} ({rec.kind})"), fontsize=9)
    return fig
