"""When a statistic becomes a flag: the :class:`Thresholds` and the size-aware references
the recurrent-kernel rule judges against (what a standard initialisation of a kernel of that size
gives), so the report can draw the same bounds the flags use."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "SLOPES",
    "Thresholds",
    "gate_reference",
    "gate_weighted",
    "recurrent_bound",
    "recurrent_reference",
]


@dataclass(frozen=True)
class Thresholds:
    """When a statistic becomes a flag (defaults suit float32 models of ordinary scale).

    The recurrent kernel is judged against the largest singular value the standard
    initialisations give a random ``m x n`` recurrent kernel (``m`` inputs from the state,
    ``n = gates * units``): ``sigma_ref = max(1, s_g (sqrt(m) + sqrt(n)), s_t (sqrt(m) +
    sqrt(n)))`` with the element standard deviations of Glorot-uniform, ``s_g = sqrt(2 / (m +
    n))``, and of torch's uniform(-1/sqrt(units), 1/sqrt(units)), ``s_t = 1 / sqrt(3 units)``
    (a random matrix's largest singular value is close to ``s (sqrt(m) + sqrt(n))``; 1 is the
    orthogonal initialiser's). A SimpleRNN gets a warning above ``recurrent_high *
    sigma_ref``. A gated cell (LSTM, GRU) gets a note there; its warning looks at the
    gate-weighted bound ``J = sum_g slope_g * sigma_g`` (each gate block's largest singular
    value times the largest slope of its nonlinearity: 1/4 for a sigmoid gate, 1 for the tanh
    candidate), which bounds how much one step of the state update through the recurrent
    kernel can stretch a gradient, and warns above ``gated_high`` times the ``J`` a standard
    initialisation gives (:func:`gate_reference`).

    Attributes:
        near_zero_fraction: a weight matrix (a bias: a note) whose share of ``|w| < tol``
            exceeds this is flagged.
        abs_max: flag weights larger than this in magnitude.
        recurrent_high: the factor over ``sigma_ref`` above which a recurrent kernel is flagged
            (a SimpleRNN's a warning, a gated cell's a note).
        gated_high: the factor over the initial gate-weighted bound above which a gated cell's
            recurrent kernel gets a warning.
        recurrent_low: note a recurrent kernel whose largest singular value is below this.
        growth: flag a part whose L2 norm changed by more than this fraction per the run's
            shortest gap between checkpoints (comparisons only).
        init_z: how many standard errors a part's mean and variance may be from an
            initialiser's and still match it (:mod:`rnnscope._inits`).
        orthogonal_tol: how far from 1 an orthogonal recurrent kernel's singular values may be.
    """

    near_zero_fraction: float = 0.5
    abs_max: float = 10.0
    recurrent_high: float = 2.0
    gated_high: float = 8.0
    recurrent_low: float = 0.25
    growth: float = 0.5
    init_z: float = 5.0
    orthogonal_tol: float = 1e-4


def recurrent_reference(m: int, n: int, units: int) -> float:
    """``sigma_ref`` of an ``m x n`` recurrent kernel of ``units`` units (see
    :class:`Thresholds`).

    Example:
        >>> round(recurrent_reference(8, 8, 8), 3)  # SimpleRNN: Glorot's 2 s sqrt(8)
        2.0
    """
    root = math.sqrt(m) + math.sqrt(n)
    return max(1.0, math.sqrt(2 / (m + n)) * root, root / math.sqrt(3 * units))


SLOPES = {"input": 0.25, "forget": 0.25, "output": 0.25, "update": 0.25, "reset": 0.25}
"""The largest slope of each sigmoid gate's nonlinearity; any other gate (``cell``, ``new``,
a tanh candidate) counts with slope 1."""


def gate_weighted(sigmas: Mapping[str, float]) -> float:
    """``J = sum_g slope_g * sigma_g`` over a recurrent kernel's gate blocks (:data:`SLOPES`).

    Example:
        >>> gate_weighted({"input": 2.0, "forget": 2.0, "cell": 1.0, "output": 2.0})
        2.5
    """
    return sum(SLOPES.get(g, 1.0) * s for g, s in sigmas.items())


def gate_reference(m: int, n: int, units: int, gates: list[str]) -> float:
    """The gate-weighted bound ``J`` a standard initialisation gives an ``m x n`` recurrent
    kernel of ``units`` units and these gates: each ``m x units`` block's largest singular
    value is at most ``max(1, s_g (sqrt(m) + sqrt(units)), s_t (sqrt(m) + sqrt(units)))`` (the
    element deviations of :func:`recurrent_reference`, Glorot's over the whole kernel).

    Example:
        >>> round(gate_reference(32, 128, 32, ["input", "forget", "cell", "output"]), 2)
        2.21
    """
    root = math.sqrt(m) + math.sqrt(units)
    block = max(1.0, math.sqrt(2 / (m + n)) * root, root / math.sqrt(3 * units))
    return gate_weighted(dict.fromkeys(gates, block))


def recurrent_bound(kind: str, m: int, n: int, units: int, t: Thresholds) -> float:
    """The largest singular value above which a recurrent kernel of this kind and shape is
    flagged (a warning for a SimpleRNN, a note for a gated cell): ``t.recurrent_high *
    sigma_ref``; the report draws it.

    Example:
        >>> round(recurrent_bound("SimpleRNN", 8, 8, 8, Thresholds()), 2)
        4.0
    """
    return t.recurrent_high * recurrent_reference(m, n, units)
