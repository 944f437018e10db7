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
from typing import Any

import numpy as np

from ._model import LayerWeights, RNNWeights

__all__ = [
    "ALPHA_MIN_EIGS",
    "APPROX_RANK",
    "EXACT_MAX",
    "dead_units",
    "matrix_stats",
    "powerlaw_alpha",
    "record_rows",
    "singular_values",
    "tensor_health",
]

EXACT_MAX = 2048
APPROX_RANK = 256
ALPHA_MIN_EIGS = 50
_TAIL_MIN = 10  # fewest eigenvalues a power-law tail is fitted to


def tensor_health(a: np.ndarray, tol: float) -> dict[str, Any]:
    """Element statistics over the finite values of ``a`` (NaN where there are none)."""
    a = np.asarray(a)
    finite = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a
    nan = int(np.isnan(a).sum()) if np.issubdtype(a.dtype, np.floating) else 0
    inf = int(np.isinf(a).sum()) if np.issubdtype(a.dtype, np.floating) else 0
    out: dict[str, Any] = {"size": int(a.size), "nan": nan, "inf": inf}
    if finite.size == 0:
        none = float("nan")
        return {
            **out,
            "mean": none,
            "std": none,
            "min": none,
            "max": none,
            "abs_max": none,
            "l2_norm": none,
            "frac_zero": none,
            "frac_near_zero": none,
        }
    f64 = finite.astype(np.float64, copy=False)
    absf = np.abs(f64)
    return {
        **out,
        "mean": float(f64.mean()),
        "std": float(f64.std()),
        "min": float(f64.min()),
        "max": float(f64.max()),
        "abs_max": float(absf.max()),
        "l2_norm": float(np.sqrt(np.dot(f64.ravel(), f64.ravel()))),
        "frac_zero": float(np.count_nonzero(f64 == 0) / a.size),
        "frac_near_zero": float(np.count_nonzero(absf < tol) / a.size),
    }


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


def _rnn_rows(rec: RNNWeights, tol: float) -> Iterator[dict[str, Any]]:
    kind = rec.kind if rec.cell in rec.kind else f"{rec.kind}({rec.cell})"
    for d in rec.directions:
        incoming = [
            rec.arrays[(p, d)][..., rec.gate_slice(g)]
            for p in ("kernel", "recurrent_kernel")
            for g in rec.gates
        ]
        dead = dead_units(incoming, tol)
        whole = matrix_stats(np.asarray(rec.arrays[("recurrent_kernel", d)]))["spectral_norm"]
        for direction, part, gate, block in rec.items():
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
                **matrix_stats(np.asarray(block)),
                "matrix_spectral_norm": whole if part == "recurrent_kernel" else float("nan"),
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
            **(matrix_stats(m) if matrix else matrix_stats(m.reshape(-1))),
            "matrix_spectral_norm": float("nan"),
        }


def record_rows(rec: RNNWeights | LayerWeights, tol: float) -> list[dict[str, Any]]:
    """The statistics rows of one layer record."""
    if isinstance(rec, RNNWeights):
        return list(_rnn_rows(rec, tol))
    return list(_generic_rows(rec, tol))
