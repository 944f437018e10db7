"""Per-timestep norms of a layer's output gradient on the monitor's held batch, masked steps
left out.

A step is left out where the gradient is masked (``gradients`` masks the padded steps of a
Keras mask or a torch ``PackedSequence``) or where the monitor's own ``mask=``/``lengths=``
says it is padding; a timestep with no real step in any sample has no norm (no row is written).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import InputError
from .._trace import as_mask

__all__ = ["held_mask", "timestep_norms"]


def held_mask(x: Any, mask: Any, lengths: Any) -> np.ndarray | None:
    """The held batch's ``(batch, time)`` real-step mask from ``mask=``/``lengths=``, checked
    against the batch's shape (``x`` batch first)."""
    if mask is None and lengths is None:
        return None
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) < 2:
        raise InputError(
            "mask=/lengths= describe the held batch's timesteps, so its x must be one "
            f"(batch, time, ...) array; got {type(x).__name__}",
            argument="mask" if mask is not None else "lengths",
        )
    m = as_mask(mask, lengths, int(shape[0]), int(shape[1]), "held batch")
    assert m is not None
    return m


def timestep_norms(g: Any, mask: np.ndarray | None, layer: str) -> np.ma.MaskedArray:
    """``sqrt(sum over samples and features of g**2)`` at each timestep, over real steps only;
    masked where a timestep has none. ``g`` is ``(batch, time, features)``."""
    data = np.asarray(np.ma.getdata(g), dtype=np.float64)
    left_out = np.ma.getmaskarray(g) if np.ma.isMaskedArray(g) else np.zeros(data.shape, bool)
    if mask is not None:
        if mask.shape != data.shape[:2]:
            raise InputError(
                f"layer '{layer}': the monitor's mask=/lengths= are (batch, time) = "
                f"{mask.shape}, but the layer's output gradient is {data.shape}",
                layer=layer,
                argument="mask",
            )
        left_out = left_out | ~mask[:, :, None]
    squares = np.where(left_out, 0.0, data * data).sum(axis=(0, 2))
    real = (~left_out).any(axis=(0, 2))
    return np.ma.MaskedArray(np.sqrt(squares), mask=~real)
