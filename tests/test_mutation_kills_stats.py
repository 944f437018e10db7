"""Statistics checked where the mutation run (scripts/mutation.py) found them unchecked.

Every expected value is computed here with plain numpy from the raw arrays (never through
rnnscope), whole rows at a time, so a renamed column, a dropped row or a changed formula fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnscope import LayerWeights, RNNWeights, _stats

ELEMENT_KEYS = "size nan inf mean std min max abs_max l2_norm frac_zero frac_near_zero".split()
MATRIX_KEYS = ("spectral_norm", "stable_rank", "alpha", "alpha_note", "approx")


def _same(got: dict, want: dict) -> None:
    """Same keys, same values; NaN equals NaN only when both are float NaN."""
    assert list(got) == list(want)
    for k, w in want.items():
        g = got[k]
        if isinstance(w, float) and math.isnan(w):
            assert isinstance(g, float) and math.isnan(g), (k, g)
        elif isinstance(w, float):
            assert g == pytest.approx(w, rel=1e-9, abs=1e-12), (k, g, w)
        else:
            assert g == w and type(g) is type(w), (k, g, w)


def _elements(a: np.ndarray, tol: float) -> dict:
    """The element statistics by hand: over the finite values, fractions over every element."""
    flat = [float(v) for v in np.asarray(a).ravel()]
    fin = [v for v in flat if math.isfinite(v)]
    out = {
        "size": len(flat),
        "nan": sum(math.isnan(v) for v in flat),
        "inf": sum(math.isinf(v) for v in flat),
    }
    if not fin:
        return {**out, **dict.fromkeys(ELEMENT_KEYS[3:], math.nan)}
    mean = sum(fin) / len(fin)
    return {
        **out,
        "mean": mean,
        "std": math.sqrt(sum((v - mean) ** 2 for v in fin) / len(fin)),
        "min": min(fin),
        "max": max(fin),
        "abs_max": max(abs(v) for v in fin),
        "l2_norm": math.sqrt(sum(v * v for v in fin)),
        "frac_zero": sum(v == 0 for v in fin) / len(flat),
        "frac_near_zero": sum(abs(v) < tol for v in fin) / len(flat),
    }


def _matrix(m: np.ndarray | None) -> dict:
    """Spectral norm and stable rank by numpy's 2-norm and Frobenius norm (small matrices: no
    alpha)."""
    if m is None:
        return {
            "spectral_norm": math.nan,
            "stable_rank": math.nan,
            "alpha": math.nan,
            "alpha_note": "not a matrix",
            "approx": False,
        }
    top = float(np.linalg.norm(m, 2))
    return {
        "spectral_norm": top,
        "stable_rank": float(np.linalg.norm(m, "fro") ** 2 / top**2),
        "alpha": math.nan,
        "alpha_note": f"{min(m.shape)} eigenvalues, fewer than 50",
        "approx": False,
    }


def test_element_statistics_of_float32_ints_one_value_and_nothing_finite():
    tol = 0.25
    f32 = np.array([[0.0, np.nan, 0.25], [-np.inf, -3.5, 0.1]], np.float32)  # 0.25 == tol
    ints = np.array([[0, 3], [-2, 0], [7, 1]], np.int64)
    one = np.array([np.nan, 2.0, np.inf])  # a single finite value
    none = np.array([np.nan, np.inf, -np.inf])
    for a in (f32, ints, one, none):
        _same(_stats.tensor_health(a, tol), _elements(a, tol))
    assert _stats.tensor_health(ints, tol)["nan"] == 0 and _stats.tensor_health(ints, 1)["inf"] == 0


def _powerlaw_by_hand(eigs: np.ndarray) -> tuple[float, float, float]:
    """Clauset-Shalizi-Newman by brute force: every x_min with at least 10 values in its tail,
    the maximum-likelihood alpha, the KS distance of the fitted CDF; the smallest distance wins
    (the first on a tie). Values below 1e-12 of the largest are dropped first."""
    x = sorted(float(v) for v in eigs)
    x = [v for v in x if v > x[-1] * 1e-12] if x else x
    best = (math.nan, math.nan, math.inf)
    for i in range(len(x)):
        tail = x[i:]
        if len(tail) < 10:
            break
        denom = sum(math.log(v / x[i]) for v in tail)
        if denom <= 0:
            continue
        alpha = 1 + len(tail) / denom
        d = 0.0
        for k, v in enumerate(tail):
            cdf = 1 - (v / x[i]) ** (1 - alpha)
            d = max(d, abs((k + 1) / len(tail) - cdf), abs(k / len(tail) - cdf))
        if d < best[2]:
            best = (alpha, x[i], d)
    return best


@pytest.mark.parametrize(
    "case",
    ["pareto", "float32", "tiny", "second_largest", "ties", "zeros", "empty", "few"],
)
def test_powerlaw_alpha_equals_the_brute_force_fit(case):
    rng = np.random.default_rng(3)
    x = 0.5 * (1 - rng.random(60)) ** (-1 / 1.8)
    eigs = {
        "pareto": x,
        "float32": x.astype(np.float32),
        "tiny": np.r_[x, 1e-13, 1e-14] * 1.0,  # dropped: below 1e-12 of the largest
        "second_largest": np.r_[x[:40] * 1e-6, 1e6, 1e-9],  # 1e-9 is kept only by x[-2]
        "ties": np.r_[x[:20], np.full(12, 50.0)],  # the last tails are all equal: denominator 0
        "zeros": np.r_[x, 0.0, 0.0],
        "empty": np.array([]),
        "few": x[:9],  # fewer than 10 values: no fit
    }[case]
    want = _powerlaw_by_hand(np.asarray(eigs, np.float64))
    got = _stats.powerlaw_alpha(eigs)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    if case in ("empty", "few"):
        assert math.isnan(got[0]) and math.isnan(got[1]) and got[2] == math.inf


def test_dead_units_boundaries():
    tol = 0.5
    k = np.array([[0.1, 0.5, np.nan, 0.0], [0.2, 0.0, 0.0, 0.0]])  # unit 3: dead here
    r = np.array([[0.0, 0.0, 0.0, 0.9], [0.0, 0.0, 0.0, 0.0]])  # ... but alive here
    # unit 0 dead in both; unit 1 reaches tol exactly (alive); unit 2 has a NaN (alive)
    assert _stats.dead_units([k, r], tol) == 1
    assert _stats.dead_units([r, k], tol) == 1  # order does not matter
    assert _stats.dead_units([k], tol) == 2
    assert _stats.dead_units([], tol) == 0


def _rnn(rng, kind="", bidir=False) -> RNNWeights:
    def parts():
        return {
            "kernel": rng.normal(size=(3, 8)),
            "recurrent_kernel": rng.normal(size=(2, 8)),
            "bias": rng.normal(size=8),
        }

    return RNNWeights.from_arrays(
        "gru_like", "LSTM", parts(), parts() if bidir else None, kind=kind
    )


@pytest.mark.parametrize(
    ("kind", "shown"),
    [("", "LSTM"), ("CuDNNLSTM", "CuDNNLSTM"), ("Bidirectional", "Bidirectional(LSTM)")],
)
def test_recurrent_rows_by_hand(rng, kind, shown):
    w = _rnn(rng, kind, bidir=kind == "Bidirectional")
    raw = {key: np.asarray(a) for key, a in w.arrays.items()}  # canonical (in, 4 * units)
    rows = _stats.record_rows(w, 0.3)
    want = []
    for d in w.directions:
        blocks = [
            raw[(p, d)][:, 2 * g : 2 * g + 2]
            for p in ("kernel", "recurrent_kernel")
            for g in range(4)
        ]
        dead = sum(all(abs(b[:, u]).max() < 0.3 for b in blocks) for u in range(2))
        whole = float(np.linalg.norm(raw[("recurrent_kernel", d)], 2))
        smallest = float(np.linalg.svd(raw[("recurrent_kernel", d)], compute_uv=False)[-1])
        saturated = 0
        for u in range(2):  # a gate pinned beyond 6 by its bias; a forget gate pinned open kept
            pinned = False
            for g, gate in enumerate(("input", "forget", "cell", "output")):
                c = 2 * g + u
                b = float(raw[("bias", d)][c])
                reach = np.abs(raw[("recurrent_kernel", d)][:, c]).sum()
                reach += 3 * np.sqrt((raw[("kernel", d)][:, c] ** 2).sum())
                if abs(b) - reach > 6 and not (gate == "forget" and b > 0):
                    pinned = True
            saturated += pinned
        for part in ("kernel", "recurrent_kernel", "bias"):
            for g, gate in enumerate(("input", "forget", "cell", "output")):
                block = raw[(part, d)][..., 2 * g : 2 * g + 2]
                want.append(
                    {
                        "layer": "gru_like",
                        "kind": shown,
                        "part": part,
                        "gate": gate,
                        "direction": d,
                        "shape": "x".join(str(n) for n in block.shape),
                        **_elements(block, 0.3),
                        "units": 2,
                        "dead_units": dead,
                        "saturated_units": saturated,
                        **_matrix(block if block.ndim == 2 else None),
                        "matrix_spectral_norm": whole if part == "recurrent_kernel" else math.nan,
                        "matrix_min_singular": smallest if part == "recurrent_kernel" else math.nan,
                    }
                )
    assert len(rows) == len(want)
    for got, exp in zip(rows, want, strict=True):
        _same(got, exp)


def test_generic_rows_by_hand(rng):
    conv = rng.normal(size=(3, 4, 5))  # Keras conv kernel: (..., out)
    conv[..., 1] = 0.0  # a dead output unit
    tconv = rng.normal(size=(6, 2, 3))  # torch conv weight: (out, in, ...)
    tconv[4] = 0.01
    table = rng.normal(size=(7, 3))  # 2-D, not named kernel/weight: a matrix, no units
    cube = rng.normal(size=(2, 3, 4))  # 3-D, not a kernel: no matrix
    bias = np.r_[rng.normal(size=4), np.nan]
    rec = LayerWeights(
        "block",
        "Custom",
        {"kernel": conv, "weight": tconv, "table": table, "cube": cube, "bias": bias},
    )
    rows = _stats.record_rows(rec, 0.05)
    keras_m = conv.reshape(12, 5)  # flattened over all but the output axis (last)
    torch_m = tconv.reshape(6, 6)  # flattened over all but the output axis (first)
    nan = math.nan
    want = [
        ("kernel", conv, keras_m, 5, 1),
        ("weight", tconv, torch_m, 6, 1),
        ("table", table, table, nan, nan),
        ("cube", cube, None, nan, nan),
        ("bias", bias, None, nan, nan),
    ]
    assert len(rows) == len(want)
    for got, (name, a, m, units, dead) in zip(rows, want, strict=True):
        matrix = _matrix(m)
        if name == "bias":
            matrix["alpha_note"] = "not a matrix"
        exp = {
            "layer": "block",
            "kind": "Custom",
            "part": name,
            "gate": "",
            "direction": "",
            "shape": "x".join(str(n) for n in a.shape),
            **_elements(a, 0.05),
            "units": units,
            "dead_units": dead,
            "saturated_units": nan,
            **matrix,
            "matrix_spectral_norm": nan,
            "matrix_min_singular": nan,
        }
        _same(got, exp)


@pytest.mark.parametrize("case", ["exact_threshold", "all_ones", "narrow"])
def test_powerlaw_alpha_edge_cases_equal_the_brute_force_fit(case):
    rng = np.random.default_rng(5)
    top = 2.0**40
    eigs = {
        # a value exactly at 1e-12 of the largest is dropped (strictly greater is kept)
        "exact_threshold": np.r_[rng.uniform(1, 10, 30), top, top * 1e-12],
        # every tail is constant: no fit at all
        "all_ones": np.ones(12),
        # every tail's sum of log-ratios is below 1: still fitted
        "narrow": 1 + 0.05 * rng.random(30),
    }[case]
    want = _powerlaw_by_hand(eigs)
    got = _stats.powerlaw_alpha(eigs)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert math.isfinite(got[0]) == (case != "all_ones")


def _randomised_by_hand(m: np.ndarray, rank: int, seed: int) -> np.ndarray:
    """The documented randomised SVD (Halko, Martinsson and Tropp 2011): Gaussian test matrix
    of twice the kept rank from ``default_rng(seed)`` on the tall orientation, 4 power
    iterations re-orthonormalised by QR, exact SVD of the projection; the top ``rank`` values."""
    a = m.T if m.shape[0] < m.shape[1] else m
    k = min(2 * rank, min(a.shape))
    q = np.linalg.qr(a @ np.random.default_rng(seed).standard_normal((a.shape[1], k)))[0]
    for _ in range(4):
        q = np.linalg.qr(a @ np.linalg.qr(a.T @ q)[0])[0]
    return np.linalg.svd(q.T @ a, compute_uv=False)[:rank]


@pytest.mark.parametrize("shape", [(90, 70), (70, 90), (80, 80)])
def test_randomised_singular_values_follow_the_documented_algorithm(monkeypatch, shape):
    m = np.random.default_rng(11).normal(size=shape)
    monkeypatch.setattr(_stats, "EXACT_MAX", 40)
    monkeypatch.setattr(_stats, "APPROX_RANK", 20)
    s, approx = _stats.singular_values(m)
    assert approx
    np.testing.assert_allclose(s, _randomised_by_hand(m, 20, 0), rtol=1e-10)
    s7, _ = _stats.singular_values(m, seed=7)
    np.testing.assert_allclose(s7, _randomised_by_hand(m, 20, 7), rtol=1e-10)
    assert not np.allclose(s, s7, rtol=1e-10, atol=0)  # the seed matters (a Gaussian spectrum)
    np.testing.assert_array_equal(_stats.singular_values(m)[0], s)  # and fixes the result


def test_exact_singular_values_up_to_the_limit_and_in_float64(monkeypatch):
    m = np.random.default_rng(12).normal(size=(6, 9)).astype(np.float32)
    exact = np.linalg.svd(m.astype(np.float64), compute_uv=False)
    monkeypatch.setattr(_stats, "EXACT_MAX", 6)  # the smaller side at the limit: still exact
    s, approx = _stats.singular_values(m)
    assert not approx and s.dtype == np.float64
    np.testing.assert_allclose(s, exact, rtol=1e-12)  # float32 arithmetic would be ~1e-7 off


def test_matrix_statistics_of_edge_matrices():
    nan = math.nan
    zero = _stats.matrix_stats(np.zeros((3, 4)))
    _same(
        zero,
        {
            "spectral_norm": 0.0,
            "stable_rank": nan,
            "alpha": nan,
            "alpha_note": "all zero",
            "approx": False,
        },
    )
    eye = _stats.matrix_stats(np.eye(4))  # largest singular value exactly 1: not "all zero"
    _same(eye, {**_matrix(np.eye(4))})
    assert eye["stable_rank"] == pytest.approx(4.0)
    row = np.array([[3.0, 4.0, 0.0, 0.0, 0.0]])  # one row is still a matrix
    _same(_stats.matrix_stats(row), _matrix(row))
    assert _stats.matrix_stats(np.zeros((0, 5)))["alpha_note"] == "not a matrix"


def test_matrix_statistics_in_float64_and_alpha_from_the_squared_singular_values():
    rng = np.random.default_rng(21)
    m32 = rng.normal(size=(300, 200)).astype(np.float32) * 3
    m64 = m32.astype(np.float64)
    s = np.linalg.svd(m64, compute_uv=False)
    got = _stats.matrix_stats(m32)
    assert got["spectral_norm"] == pytest.approx(s[0], rel=1e-12)
    assert got["stable_rank"] == pytest.approx((m64**2).sum() / s[0] ** 2, rel=1e-12)
    assert got["alpha"] == pytest.approx(_powerlaw_by_hand(s**2)[0], rel=1e-9)
    at_limit = rng.normal(size=(70, 50))  # exactly ALPHA_MIN_EIGS eigenvalues: fitted
    fitted = _stats.matrix_stats(at_limit)
    s50 = np.linalg.svd(at_limit, compute_uv=False)
    assert fitted["alpha_note"] == ""
    assert fitted["alpha"] == pytest.approx(_powerlaw_by_hand(s50**2)[0], rel=1e-9)
