"""The standard initialisations, recognised from a layer's statistics rows (no arrays needed).

A layer *matches an initialisation* when every one of its parts does:

- **zeros / ones**: every value exactly 0 (biases); an LSTM's forget-gate bias exactly 1 and the
  other gates 0 (Keras ``unit_forget_bias``).
- **orthogonal**: the whole recurrent kernel's largest and smallest singular values both within
  ``orthogonal_tol`` of 1 (Keras's recurrent initialiser: every singular value is 1).
- **uniform(-a, a)** for the ``a`` of a named initialiser: Glorot-uniform
  ``a = sqrt(6 / (fan_in + fan_out))`` (Keras kernels; fans of the whole kernel, all gates),
  torch's ``a = 1 / sqrt(hidden)`` (every weight and bias of ``nn.RNN/LSTM/GRU``) and
  ``1 / sqrt(fan_in)`` (``nn.Linear``, ``nn.Conv*``), Keras's ``RandomUniform`` ``a = 0.05``
  (embeddings). Over the part's ``n`` values pooled: every ``|w| <= a`` (float rounding aside);
  the largest ``|w| >= a * 10**(-6 / n)`` (a true draw misses this with probability 1e-6); the
  variance within ``z`` standard errors of ``a**2 / 3`` (standard error ``sqrt(0.8 / n)``
  relative: the fourth moment of a uniform is ``a**4 / 5``); the mean within ``z`` standard
  errors of 0 (``a / sqrt(3 n)``); no value exactly 0 (a float32 uniform draw gives one with
  probability about 1e-9 per value; zeroed or pruned weights are a fault, not an init).

**How much evidence a match needs.** A few values prove nothing: with ``n`` values the variance
test accepts any ratio to ``a**2 / 3`` within ``z * sqrt(0.8 / n)``, and at ``n = 6``, ``z = 5``
that is ±1.8 — every variance below the initialiser's passes, so a trained ``Linear(6 -> 1)``
head reads as a uniform draw. Uniform matches *count as evidence* only when the test could tell
a variance half or one and a half times the initialiser's, ``z * sqrt(0.8 / n) <= 0.5``: at
least ``n >= 3.2 z**2`` values (:func:`min_uniform_values`, 80 at ``z = 5``), counted over the
uniform-matched parts of a layer (or, when every layer matches, of the model). An orthogonal
match (every singular value 1 to ``1e-4``) always counts; constant biases (zeros, a forget gate
of 1) never do on their own (a trained bias can be 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._format import as_float

__all__ = ["LayerInit", "Pooled", "layer_init", "min_uniform_values", "pooled", "uniform_matches"]

_ROUND = 1e-5  # float32 rounding of a bound: values may sit this far (relative) above it
_POWER = 0.5  # the relative variance error a counted uniform match must be able to detect
KERAS = "Keras defaults"
TORCH = "torch defaults"


@dataclass(frozen=True)
class Pooled:
    """Statistics of several blocks taken together (one part of a layer)."""

    n: int
    mean: float
    var: float
    abs_max: float
    lo: float
    hi: float
    zeros: float = math.nan


def pooled(rows: Sequence[Mapping[str, Any]]) -> Pooled:
    """The pooled size, mean, population variance and extremes of statistics rows."""
    n = sum(int(v) for r in rows if (v := as_float(r.get("size"))) == v)
    if n == 0:
        return Pooled(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = sum(as_float(r.get("mean")) * as_float(r.get("size")) for r in rows) / n
    second = (
        sum(
            (as_float(r.get("std")) ** 2 + as_float(r.get("mean")) ** 2) * as_float(r.get("size"))
            for r in rows
        )
        / n
    )
    return Pooled(
        n,
        mean,
        max(second - mean * mean, 0.0),
        max(as_float(r.get("abs_max")) for r in rows),
        min(as_float(r.get("min")) for r in rows),
        max(as_float(r.get("max")) for r in rows),
        sum(as_float(r.get("frac_zero")) * as_float(r.get("size")) for r in rows),
    )


def min_uniform_values(z: float) -> int:
    """The fewest values whose uniform match counts as evidence: ``z * sqrt(0.8 / n) <= 0.5``.

    Example:
        >>> min_uniform_values(5.0)
        80
    """
    return math.ceil(0.8 * (z / _POWER) ** 2 - 1e-9)


@dataclass(frozen=True)
class LayerInit:
    """What a layer's weights still match: ``family`` (``"Keras defaults"``, ``"torch
    defaults"`` or ``"mixed"``), ``description`` (each part and its initialiser), whether a
    part matched exactly (``exact``: an orthogonal kernel) and how many values the uniform
    tests judged (``uniform_values``)."""

    family: str
    description: str
    exact: bool = False
    uniform_values: int = 0

    def counts(self, z: float) -> bool:
        """Whether this match is evidence on its own (see the module)."""
        return self.exact or self.uniform_values >= min_uniform_values(z)


def uniform_matches(p: Pooled, a: float, z: float) -> bool:
    """Whether ``p`` is a plausible draw of ``n`` values from uniform(-a, a) (see the module)."""
    if p.n < 1 or not a > 0 or any(math.isnan(v) for v in (p.mean, p.var, p.abs_max)):
        return False
    if p.abs_max > a * (1 + _ROUND) or p.abs_max < a * 10 ** (-6 / p.n):
        return False
    if p.zeros > 0.5:  # a float32 uniform draw is exactly 0 with probability ~1e-9 per value
        return False
    if abs(p.var / (a * a / 3) - 1) > z * math.sqrt(0.8 / p.n):
        return False
    return abs(p.mean) <= z * a / math.sqrt(3 * p.n)


def _constant(rows: Sequence[Mapping[str, Any]], value: float) -> bool:
    return bool(rows) and all(
        as_float(r.get("min")) == value == as_float(r.get("max")) for r in rows
    )


def _dims(rows: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(d) for d in str(rows[0].get("shape", "")).split("x") if d.isdigit()]


def _orthogonal(rows: Sequence[Mapping[str, Any]], tol: float) -> bool:
    top = [as_float(r.get("matrix_spectral_norm")) for r in rows]
    low = [as_float(r.get("matrix_min_singular")) for r in rows]
    vals = [v for v in top + low if not math.isnan(v)]
    return bool(vals) and len(vals) >= 2 and all(abs(v - 1) <= tol for v in vals)


_PM, _SQRT = "\N{PLUS-MINUS SIGN}", "\N{SQUARE ROOT}"
Candidates = list[tuple[str, str]]
"""The ``(family, name)`` pairs a part matches."""


def _rnn_part(part: str, rows: list[Mapping[str, Any]], z: float, tol: float) -> Candidates:
    """What one part of a recurrent layer matches."""
    width = as_float(rows[0].get("units"))
    if not width > 0:
        return []
    units = int(width)
    gates = list(dict.fromkeys(str(r.get("gate") or "") for r in rows))
    p = pooled(rows)
    out: Candidates = []
    if uniform_matches(p, 1 / math.sqrt(units), z):
        out.append((TORCH, f"uniform({_PM}1/{_SQRT}{units})"))
    if part in ("bias", "recurrent_bias"):
        forget = [r for r in rows if r.get("gate") == "forget"]
        rest = [r for r in rows if r.get("gate") != "forget"]
        if _constant(rows, 0.0):
            out.append((KERAS, "zeros"))
        elif forget and _constant(forget, 1.0) and _constant(rest, 0.0):
            out.append((KERAS, "zeros, forget gate 1"))
        return out
    if part == "recurrent_kernel" and _orthogonal(rows, tol):
        out.append((KERAS, "orthogonal"))
    dims = _dims(rows)
    if part in ("kernel", "recurrent_kernel") and len(dims) == 2:
        if uniform_matches(p, math.sqrt(6 / (dims[0] + dims[1] * len(gates))), z):
            out.append((KERAS, "glorot_uniform"))
    return out


def _generic_part(part: str, rows: list[Mapping[str, Any]], z: float) -> Candidates | None:
    """What one weight of a non-recurrent layer matches; None when it is no weight a standard
    initialiser is known for (a torch bias: its bound is the fan-in of its weight)."""
    dims = _dims(rows)
    p = pooled(rows)
    if part == "bias":
        return [(KERAS, "zeros")] if _constant(rows, 0.0) else None
    if part == "embeddings":
        return [(KERAS, f"uniform({_PM}0.05)")] if uniform_matches(p, 0.05, z) else []
    if part == "kernel" and len(dims) >= 2:
        field = math.prod(dims[:-2]) if len(dims) > 2 else 1
        a = math.sqrt(6 / (field * (dims[-2] + dims[-1])))
        return [(KERAS, "glorot_uniform")] if uniform_matches(p, a, z) else []
    if part == "weight" and len(dims) >= 2:
        fan_in = math.prod(dims[1:])
        if uniform_matches(p, 1 / math.sqrt(fan_in), z):
            return [(TORCH, f"uniform({_PM}1/{_SQRT}{fan_in})")]
        return []
    return None


def _torch_bias(
    rows: list[Mapping[str, Any]], weight: list[Mapping[str, Any]], z: float
) -> Candidates:
    dims = _dims(weight)
    fan_in = math.prod(dims[1:]) if len(dims) >= 2 else 0
    if fan_in and uniform_matches(pooled(rows), 1 / math.sqrt(fan_in), z):
        return [(TORCH, f"uniform({_PM}1/{_SQRT}{fan_in})")]
    return []


def _uniform(name: str) -> bool:
    return name.startswith("uniform") or name == "glorot_uniform"


def layer_init(
    rows: Sequence[Mapping[str, Any]], z: float = 5.0, orthogonal_tol: float = 1e-4
) -> LayerInit | None:
    """The initialisation a layer's statistics rows (every direction) still match.

    Returns a :class:`LayerInit` — or None when some part matches none, or the layer has a
    weight no standard initialiser is known for.

    Example:
        >>> zeros = {"part": "bias", "gate": "", "size": 4, "mean": 0.0, "std": 0.0,
        ...          "abs_max": 0.0, "min": 0.0, "max": 0.0, "shape": "4"}
        >>> layer_init([zeros])  # a zero bias matches, but proves nothing on its own
        LayerInit(family='Keras defaults', description='bias zeros', exact=False, uniform_values=0)
    """
    parts: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        parts.setdefault(str(r["part"]), []).append(r)
    recurrent = "recurrent_kernel" in parts and bool(rows[0].get("gate"))
    found: dict[str, Candidates] = {}
    for part, prs in parts.items():
        got = _rnn_part(part, prs, z, orthogonal_tol) if recurrent else _generic_part(part, prs, z)
        if got is None and part == "bias" and "weight" in parts:
            got = _torch_bias(prs, parts["weight"], z)
        if not got:
            return None
        found[part] = got
    if not found:
        return None
    for family in (KERAS, TORCH):  # one family for every part, where one fits
        names = [dict(reversed(c)).get(family) for c in found.values()]
        if all(names):
            chosen = dict(zip(found, [str(n) for n in names], strict=True))
            break
    else:
        family, chosen = "mixed", {p: c[0][1] for p, c in found.items()}
    exact = any(n == "orthogonal" for n in chosen.values())
    judged = sum(pooled(parts[p]).n for p, n in chosen.items() if _uniform(n))
    return LayerInit(family, ", ".join(f"{p} {n}" for p, n in chosen.items()), exact, judged)
