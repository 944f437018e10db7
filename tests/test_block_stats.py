"""``block_stats``, the one row of element statistics, against numpy written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnscope._stats import BlockStats, block_stats

NAMES = tuple("size nan inf mean std min max abs_max l2_norm frac_zero frac_near_zero".split())


def _by_numpy(a: np.ndarray, tol: float | None) -> dict[str, float | int]:
    """Expected values: NaN and Inf counted apart, the rest over the finite values as float64
    (a float64 copy made up front, as nothing in rnnscope does)."""
    x = np.asarray(a).astype(np.float64).ravel()
    fin = x[np.isfinite(x)]
    out: dict[str, float | int] = {
        "size": x.size,
        "nan": int(np.count_nonzero(x != x)),
        "inf": int(np.count_nonzero(np.abs(x) == np.inf)),
    }
    if fin.size == 0:
        return {**out, **dict.fromkeys(NAMES[3:], math.nan)}
    m = math.fsum(fin) / fin.size
    return {
        **out,
        "mean": m,
        "std": math.sqrt(math.fsum((v - m) ** 2 for v in fin) / fin.size),
        "min": float(np.min(fin)),
        "max": float(np.max(fin)),
        "abs_max": float(np.max(np.abs(fin))),
        "l2_norm": math.sqrt(math.fsum(v * v for v in fin)),
        "frac_zero": np.count_nonzero(fin == 0) / x.size,
        "frac_near_zero": math.nan if tol is None else np.count_nonzero(np.abs(fin) < tol) / x.size,
    }


def _check(a: np.ndarray, tol: float | None = None) -> BlockStats:
    got = block_stats(a, tol)
    assert tuple(got.as_dict()) == NAMES
    for k, w in _by_numpy(a, tol).items():
        g = getattr(got, k)
        if isinstance(w, float) and math.isnan(w):
            assert math.isnan(g), (k, g)
        elif k in ("size", "nan", "inf"):
            assert type(g) is int and g == w, (k, g, w)
        else:
            assert type(g) is float and g == pytest.approx(w, rel=1e-12, abs=1e-15), (k, g, w)
    return got


def test_nan_and_inf_are_counted_apart_and_left_out_of_the_moments():
    a = np.array([[1.5, np.nan, -np.inf], [np.inf, 0.0, -2.0], [np.nan, np.nan, 0.01]], np.float32)
    s = _check(a, tol=0.05)
    assert (s.nan, s.inf, s.finite) == (3, 2, 4)


def test_moments_norms_and_fractions_of_a_large_float32_block():
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((1500, 1500)) * 3 + 0.5).astype(np.float32)  # > one chunk
    a[::97, ::13] = 0
    a[5, 5] = -40.0
    s = _check(a, tol=0.1)
    assert s.abs_max == 40.0 and s.min == -40.0


def test_a_strided_gate_slice_is_read_as_its_own_values():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 16))
    _check(w[:, 4:8], tol=0.5)


def test_empty_arrays_give_zero_counts_and_nan_moments():
    for a in (np.zeros((0,), np.float32), np.zeros((3, 0)), np.zeros((0, 2), np.int64)):
        s = _check(a, tol=0.1)
        assert (s.size, s.nan, s.inf) == (0, 0, 0) and math.isnan(s.mean)


def test_nothing_finite():
    s = _check(np.array([np.nan, np.inf, -np.inf]), tol=1.0)
    assert (s.nan, s.inf, s.finite) == (1, 2, 0) and math.isnan(s.l2_norm)


def test_integer_and_boolean_blocks():
    ints = np.array([[0, 3], [-7, 0], [2, 1]], np.int64)
    s = _check(ints, tol=1.5)
    assert (s.nan, s.inf, s.abs_max, s.min) == (0, 0, 7.0, -7.0)
    _check(np.array([[1, 0], [3, 5]], np.uint8), tol=2)
    _check(np.array([True, False, True]), tol=0.5)


def test_float16_with_overflowing_values():
    a = np.array([60000.0, -60000.0, 1e-3, np.inf, np.nan, 0.0], np.float16)
    s = _check(a, tol=1e-2)  # float16 arithmetic would overflow: the row is float64
    assert math.isfinite(s.l2_norm) and s.l2_norm > 80000


def test_no_tol_leaves_the_near_zero_share_empty():
    s = _check(np.array([0.0, 1e-9, 1.0]))
    assert math.isnan(s.frac_near_zero) and s.frac_zero == pytest.approx(1 / 3)


def test_the_row_is_frozen():
    s = block_stats(np.ones(3))
    with pytest.raises(AttributeError):
        s.nan = 2  # type: ignore[misc]
