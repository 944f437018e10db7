"""Health statistics of weights, one tensor at a time, numpy only.

Per block (a gate of a part of a direction, or a whole generic weight): size, mean, std, min, max,
abs_max, L2 norm, exact-zero and near-zero fractions, NaN/Inf counts; per layer and direction the
dead units; per matrix the spectral norm, the stable rank and the power-law exponent ``alpha`` of
the eigenvalues of ``W^T W`` (heavy-tailed self-regularisation: well-trained layers show alpha
around 2 to 4; above ~6 the layer learnt little, below 2 it may be over-fitted).

Linear algebra is exact (``numpy.linalg.svd``) while the smaller side of a matrix is at most
``EXACT_MAX``; above that, the top ``APPROX_RANK`` singular values come from a randomised SVD
(Halko, Martinsson and Tropp 2011; twice oversampled, 4 power iterations, fixed seed;
the largest values agree with the exact ones to ~1e-6, the smallest kept ones to ~0.5 %),
and alpha is fitted to those eigenvalues only. Rows computed that way say so in ``approx``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ._model import LayerWeights, RNNWeights

__all__ = [
    "ALPHA_MIN_EIGS",
    "APPROX_RANK",
    "EXACT_MAX",
    "BlockStats",
    "block_stats",
    "count_nonfinite",
    "dead_units",
    "matrix_stats",
    "powerlaw_alpha",
    "record_rows",
    "saturated_units",
    "singular_values",
    "tensor_health",
]

EXACT_MAX = 2048
APPROX_RANK = 256
ALPHA_MIN_EIGS = 50
_TAIL_MIN = 10  # fewest eigenvalues a power-law tail is fitted to
_CHUNK = 1 << 16  # elements turned into float64 at a time by block_stats (stays in cache)
SATURATION = 6.0
"""A gate is pinned when its pre-activation stays beyond this (sigmoid' < 0.0025, tanh' < 2e-5)."""
INPUT_SPREAD = 3.0
"""Inputs are taken to be standardised: within this many standard deviations of 0 per feature."""
_MEMORY_GATES = {"forget", "update"}  # pinned open, these hold the memory: not a saturation


@dataclass(frozen=True)
class BlockStats:
    """Element statistics of one block: the one row every consumer reads (stats, summary,
    plots, compat, the monitor). Each output maps these names to its own public column names
    at its boundary (:mod:`rnnscope._columns`).

    Moments, extremes and the L2 norm are over the finite values (NaN when there are none);
    the fractions are over every element. Integer and boolean blocks have no NaN or Inf.

    Attributes:
        size: number of elements.
        nan: number of NaN elements.
        inf: number of +Inf and -Inf elements.
        mean: mean of the finite values.
        std: population standard deviation of the finite values.
        min: smallest finite value.
        max: largest finite value.
        abs_max: largest finite magnitude.
        l2_norm: square root of the sum of squares of the finite values.
        frac_zero: share of elements exactly 0.
        frac_near_zero: share of elements with ``|v| < tol`` (NaN when no ``tol`` was given).
    """

    size: int
    nan: int
    inf: int
    mean: float
    std: float
    min: float
    max: float
    abs_max: float
    l2_norm: float
    frac_zero: float
    frac_near_zero: float

    @property
    def finite(self) -> int:
        """Number of finite elements."""
        return self.size - self.nan - self.inf

    def as_dict(self) -> dict[str, Any]:
        """The row as ``{name: value}``, in field order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def block_stats(a: np.ndarray, tol: float | None = None) -> BlockStats:
    """Element statistics of one block (numpy, float64 arithmetic whatever the dtype).

    Args:
        a: any real array (float16/32/64, integer, boolean); empty arrays give NaN moments.
        tol: the near-zero threshold of ``frac_near_zero``; None leaves it NaN.

    Example:
        >>> import numpy as np
        >>> s = block_stats(np.array([3.0, np.nan, -4.0, np.inf]))
        >>> (s.nan, s.inf, s.finite, s.l2_norm, s.abs_max)
        (1, 1, 2, 5.0, 4.0)
    """
    a = np.asarray(a)
    nan, inf = count_nonfinite(a)
    finite = a[np.isfinite(a)] if nan or inf else a
    n = finite.size
    if n == 0:
        return BlockStats(int(a.size), nan, inf, *(math.nan,) * 8)
    total = sumsq = m2 = run_mean = 0.0
    seen = zero = near = 0
    lo, hi = math.inf, -math.inf
    for c in _chunks(finite):  # float64 a cache-sized chunk at a time, views of the block
        k, s = c.size, float(c.sum())
        d = c - s / k
        # the chunks' squared deviations combined (Chan, Golub and LeVeque 1979)
        delta, seen = s / k - run_mean, seen + k
        run_mean += delta * k / seen
        m2 += _sumsq(d) + delta * delta * (seen - k) * k / seen
        total += s
        sumsq += _sumsq(c)
        zero += int(np.count_nonzero(c == 0))
        if tol is not None:
            near += int(np.count_nonzero(np.abs(c) < tol))
        lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
    return BlockStats(
        size=int(a.size),
        nan=nan,
        inf=inf,
        mean=total / n,
        std=math.sqrt(m2 / n),
        min=lo,
        max=hi,
        abs_max=max(abs(lo), abs(hi)),
        l2_norm=math.sqrt(sumsq),
        frac_zero=zero / a.size,
        frac_near_zero=math.nan if tol is None else near / a.size,
    )


def count_nonfinite(a: np.ndarray) -> tuple[int, int]:
    """``(NaN count, Inf count)`` of ``a``: the one count every output uses (statistics rows,
    plots' notes, See RNN's ``detect_nans``); ``(0, 0)`` for integer and boolean arrays.

    Example:
        >>> count_nonfinite(np.array([np.nan, np.inf, -np.inf, 1.0]))
        (1, 2)
    """
    a = np.asarray(a)
    if a.dtype.kind not in "fc" or a.size == 0:
        return 0, 0
    wide = np.complex128 if a.dtype.kind == "c" else np.float64
    with np.errstate(invalid="ignore", over="ignore"):
        total = a.sum(dtype=wide)
    if np.isfinite(total):  # any NaN or Inf makes the sum non-finite: no masks needed
        return 0, 0
    return int(np.count_nonzero(np.isnan(a))), int(np.count_nonzero(np.isinf(a)))


def _sumsq(c: np.ndarray) -> float:
    """Sum of squares of a float64 vector (einsum: no BLAS thread start per chunk)."""
    return float(np.einsum("i,i->", c, c))


def _chunks(a: np.ndarray) -> Iterator[np.ndarray]:
    """``a``'s values as float64 pieces of about ``_CHUNK`` elements, read through views (a
    gate's columns are not copied whole first)."""
    m = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(1, -1)
    rows, cols = m.shape
    if cols >= _CHUNK:
        for r in range(rows):
            for j in range(0, cols, _CHUNK):
                yield m[r, j : j + _CHUNK].astype(np.float64)
        return
    step = _CHUNK // cols
    for i in range(0, rows, step):
        yield m[i : i + step].astype(np.float64).ravel()


def tensor_health(a: np.ndarray, tol: float) -> dict[str, Any]:
    """:func:`block_stats` as the dictionary the statistics rows are built from."""
    return block_stats(a, tol).as_dict()


def singular_values(m: np.ndarray, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Singular values of a finite matrix, descending; exact up to ``EXACT_MAX``.

    Returns ``(values, approximate)``.
    """
    m = np.asarray(m, dtype=np.float64)
    if min(m.shape) <= EXACT_MAX:
        return np.linalg.svd(m, compute_uv=False), False
    rng = np.random.default_rng(seed)
    k = min(2 * APPROX_RANK, min(m.shape))  # oversampled: the kept values come out close
    wide = m.shape[0] < m.shape[1]
    a = m.T if wide else m  # tall: rows >= cols
    q, _ = np.linalg.qr(a @ rng.standard_normal((a.shape[1], k)))
    for _ in range(4):  # power iterations sharpen the top of the spectrum
        q, _ = np.linalg.qr(a.T @ q)
        q, _ = np.linalg.qr(a @ q)
    s = np.linalg.svd(q.T @ a, compute_uv=False)
    return s[:APPROX_RANK], True


def powerlaw_alpha(eigs: np.ndarray) -> tuple[float, float, float]:
    """Fit ``p(x) ~ x^-alpha`` to the tail of ``eigs`` (maximum likelihood, with ``x_min``
    chosen to minimise the Kolmogorov-Smirnov distance, as Clauset, Shalizi and Newman 2009).

    Returns ``(alpha, x_min, ks_distance)``.
    """
    x = np.sort(np.asarray(eigs, dtype=np.float64))
    x = x[x > x[-1] * 1e-12] if x.size else x
    n = x.size
    logs = np.log(x)
    best = (float("nan"), float("nan"), float("inf"))
    csum = np.cumsum(logs[::-1])[::-1]  # sum of logs[i:]
    for i in range(n - _TAIL_MIN + 1):
        n_t = n - i
        denom = csum[i] - n_t * logs[i]
        if denom <= 0:
            continue
        alpha = 1.0 + n_t / denom
        tail = x[i:]
        fit = 1.0 - (tail / x[i]) ** (1.0 - alpha)
        emp_hi = np.arange(1, n_t + 1) / n_t
        emp_lo = np.arange(0, n_t) / n_t
        d = float(max(np.abs(emp_hi - fit).max(), np.abs(emp_lo - fit).max()))
        if d < best[2]:
            best = (float(alpha), float(x[i]), d)
    return best


def _as_matrix(a: np.ndarray, units_first: bool) -> np.ndarray:
    """A weight as a 2-D matrix: conv kernels flattened over all but the output axis."""
    if a.ndim == 2:
        return a
    return a.reshape(a.shape[0], -1) if units_first else a.reshape(-1, a.shape[-1])


def matrix_stats(m: np.ndarray) -> dict[str, Any]:
    """Spectral norm, stable rank and alpha of a matrix (all empty for vectors or non-finite
    matrices, with the reason in ``alpha_note``)."""
    empty: dict[str, Any] = {
        "spectral_norm": float("nan"),
        "stable_rank": float("nan"),
        "alpha": float("nan"),
        "alpha_note": "",
        "approx": False,
    }
    if m.ndim != 2 or min(m.shape) == 0:
        return {**empty, "alpha_note": "not a matrix"}
    if not np.isfinite(m).all():
        return {**empty, "alpha_note": "NaN or Inf in the matrix"}
    s, approx = singular_values(m)
    top = float(s[0])
    if top == 0:
        return {**empty, "spectral_norm": 0.0, "alpha_note": "all zero", "approx": approx}
    fro2 = float(np.square(np.asarray(m, dtype=np.float64)).sum())
    out = {**empty, "spectral_norm": top, "stable_rank": fro2 / top**2, "approx": approx}
    eigs = s**2
    n_eigs = min(m.shape)
    if n_eigs < ALPHA_MIN_EIGS:
        out["alpha_note"] = f"{n_eigs} eigenvalues, fewer than {ALPHA_MIN_EIGS}"
        return out
    alpha, _xmin, _d = powerlaw_alpha(eigs)
    out["alpha"] = alpha
    if approx:
        out["alpha_note"] = f"fitted to the top {eigs.size} of {n_eigs} eigenvalues"
    return out


def dead_units(columns: list[np.ndarray], tol: float) -> int:
    """Units whose incoming weights are all below ``tol`` in magnitude in every given matrix.

    Each matrix is ``(inputs, units)`` (a gate block, or a Dense kernel); NaN counts as alive.
    """
    alive: np.ndarray | None = None
    for c in columns:
        here = ~np.all(np.abs(np.nan_to_num(c, nan=np.inf)) < tol, axis=0)
        alive = here if alive is None else alive | here
    return 0 if alive is None else int((~alive).sum())


def saturated_units(rec: RNNWeights, direction: str) -> float:
    """Units with a gate pinned by its bias, whatever the state and the input (NaN where the
    state is not bounded: an activation other than tanh, or a projection).

    A gate of unit ``j`` is pinned when ``|b_j| - ||U[:, j]||_1 - INPUT_SPREAD * ||W[:, j]||_2``
    exceeds :data:`SATURATION`: with ``|h| < 1`` the recurrent input moves the pre-activation by
    at most ``||U[:, j]||_1``, and a standardised input by about ``||W[:, j]||_2`` per standard
    deviation, so the gate's derivative stays near 0. ``b`` is the input-side bias plus the
    recurrent one (in GRU's reset-after form the candidate's recurrent bias is scaled by the
    reset gate, so it widens the reach instead). The forget (LSTM) and update (GRU) gates
    pinned open hold the memory on purpose and are not counted.

    Example:
        >>> from rnnscope import RNNWeights
        >>> parts = {"kernel": np.zeros((1, 2)), "recurrent_kernel": np.zeros((2, 2)),
        ...          "bias": np.array([9.0, 0.5])}
        >>> rec = RNNWeights.from_parts("r", "SimpleRNN", {(p, "forward"): a
        ...                                                for p, a in parts.items()})
        >>> saturated_units(rec, "forward")
        1
    """
    if rec.activation != "tanh" or "projection" in rec.parts:
        return math.nan
    arrays = {p: np.asarray(rec.arrays[(p, direction)], np.float64) for p in rec.parts}
    pinned = np.zeros(rec.units, dtype=bool)
    for g in rec.gates:
        cut = rec.gate_slice(g)
        bias = arrays["bias"][cut] if "bias" in arrays else np.zeros(rec.units)
        reach = np.abs(arrays["recurrent_kernel"][:, cut]).sum(axis=0)
        reach += INPUT_SPREAD * np.sqrt(np.square(arrays["kernel"][:, cut]).sum(axis=0))
        if "recurrent_bias" in arrays:
            rb = arrays["recurrent_bias"][cut]
            if rec.cell == "GRU" and g == "new":
                reach += np.abs(rb)
            else:
                bias = bias + rb
        over = np.abs(bias) - reach > SATURATION
        if g in _MEMORY_GATES:
            over &= bias < 0
        pinned |= np.nan_to_num(over, nan=0).astype(bool)
    return int(pinned.sum())


def _recurrent_extremes(m: np.ndarray) -> tuple[float, float]:
    """Largest and smallest singular value of a whole recurrent kernel (NaN where not finite;
    the smallest is NaN above ``EXACT_MAX``, where only the top of the spectrum is computed)."""
    m = np.asarray(m)
    if m.ndim != 2 or min(m.shape) == 0 or not np.isfinite(m).all():
        return math.nan, math.nan
    s, approx = singular_values(m)
    return float(s[0]), math.nan if approx else float(s[-1])


def _rnn_rows(rec: RNNWeights, tol: float) -> Iterator[dict[str, Any]]:
    kind = rec.kind if rec.cell in rec.kind else f"{rec.kind}({rec.cell})"
    for d in rec.directions:
        incoming = [
            rec.arrays[(p, d)][..., rec.gate_slice(g)]
            for p in ("kernel", "recurrent_kernel")
            for g in rec.gates
        ]
        dead = dead_units(incoming, tol)
        whole, smallest = _recurrent_extremes(rec.arrays[("recurrent_kernel", d)])
        saturated = saturated_units(rec, d)
        for direction, part, gate, block in rec.blocks():
            if direction != d:
                continue
            yield {
                "layer": rec.name,
                "kind": kind,
                "part": part,
                "gate": gate,
                "direction": d,
                "shape": "x".join(map(str, block.shape)),
                **tensor_health(block, tol),
                "units": rec.units,
                "dead_units": dead,
                "saturated_units": saturated,
                **matrix_stats(np.asarray(block)),
                "matrix_spectral_norm": whole if part == "recurrent_kernel" else math.nan,
                "matrix_min_singular": smallest if part == "recurrent_kernel" else math.nan,
            }


def _generic_rows(rec: LayerWeights, tol: float) -> Iterator[dict[str, Any]]:
    for name, a in rec.items():
        units_first = name.endswith("weight")  # torch (out, in, ...); Keras kernels end in units
        matrix = a.ndim >= 2 and (name.endswith("kernel") or units_first or a.ndim == 2)
        m = _as_matrix(np.asarray(a), units_first) if matrix else np.asarray(a)
        dead, units = (math.nan, math.nan)
        if matrix and (name.endswith("kernel") or units_first):
            cols = m.T if units_first else m
            dead, units = dead_units([cols], tol), cols.shape[1]
        yield {
            "layer": rec.name,
            "kind": rec.kind,
            "part": name,
            "gate": "",
            "direction": "",
            "shape": "x".join(map(str, a.shape)),
            **tensor_health(a, tol),
            "units": units,
            "dead_units": dead,
            "saturated_units": math.nan,
            **(matrix_stats(m) if matrix else matrix_stats(m.reshape(-1))),
            "matrix_spectral_norm": math.nan,
            "matrix_min_singular": math.nan,
        }


def record_rows(rec: RNNWeights | LayerWeights, tol: float) -> list[dict[str, Any]]:
    """The statistics rows of one layer record."""
    if isinstance(rec, RNNWeights):
        return list(_rnn_rows(rec, tol))
    return list(_generic_rows(rec, tol))
