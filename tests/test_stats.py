"""rnnscope.stats and compare: every statistic against a direct numpy computation, alpha against
samples of a known power law, dead units, missing layers, and parallel runs equal to serial."""

from __future__ import annotations

import concurrent.futures as cf

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError, LayerWeights, RNNWeights, _stats

pd = pytest.importorskip("pandas")
safetensors_np = pytest.importorskip("safetensors.numpy")


def _lstm(rng, units=4, inputs=3) -> RNNWeights:
    return RNNWeights.from_arrays(
        "lstm",
        "LSTM",
        {
            "kernel": rng.normal(size=(inputs, 4 * units)),
            "recurrent_kernel": rng.normal(size=(units, 4 * units)),
            "bias": rng.normal(size=4 * units),
        },
    )


def test_element_statistics_match_numpy(rng):
    a = rng.normal(size=(7, 9))
    a[0, :3] = 0.0
    a[1, 1] = 5e-4
    a[2, 2] = np.nan
    a[3, 3] = -np.inf
    h = _stats.tensor_health(a, tol=1e-3)
    f = a[np.isfinite(a)]
    assert h["size"] == 63 and h["nan"] == 1 and h["inf"] == 1
    assert h["mean"] == pytest.approx(f.mean()) and h["std"] == pytest.approx(f.std())
    assert h["min"] == f.min() and h["max"] == f.max() and h["abs_max"] == np.abs(f).max()
    assert h["l2_norm"] == pytest.approx(np.linalg.norm(f))
    assert h["frac_zero"] == pytest.approx(3 / 63)
    assert h["frac_near_zero"] == pytest.approx(4 / 63)


def test_matrix_statistics_match_numpy(rng):
    m = rng.normal(size=(80, 60))
    s = _stats.matrix_stats(m)
    sigma = np.linalg.norm(m, 2)
    assert s["spectral_norm"] == pytest.approx(sigma)
    assert s["stable_rank"] == pytest.approx(np.linalg.norm(m, "fro") ** 2 / sigma**2)
    assert np.isfinite(s["alpha"]) and s["alpha_note"] == "" and not s["approx"]
    small = _stats.matrix_stats(m[:, :20])
    assert np.isnan(small["alpha"]) and small["alpha_note"] == "20 eigenvalues, fewer than 50"
    assert _stats.matrix_stats(np.ones(5))["alpha_note"] == "not a matrix"
    bad = m.copy()
    bad[0, 0] = np.nan
    assert _stats.matrix_stats(bad)["alpha_note"] == "NaN or Inf in the matrix"


def test_randomised_singular_values_above_the_exact_limit(rng, monkeypatch):
    u, _ = np.linalg.qr(rng.normal(size=(400, 300)))
    v, _ = np.linalg.qr(rng.normal(size=(300, 300)))
    true = np.sort(rng.pareto(2.5, 300) + 1)[::-1]
    m = (u * true) @ v.T
    monkeypatch.setattr(_stats, "EXACT_MAX", 100)
    monkeypatch.setattr(_stats, "APPROX_RANK", 64)
    s, approx = _stats.singular_values(m)
    assert approx and s.shape == (64,)
    np.testing.assert_allclose(s[:10], true[:10], rtol=1e-6)  # the top: as exact
    np.testing.assert_allclose(s, true[:64], rtol=5e-3)  # the rest of the kept values: close
    out = _stats.matrix_stats(m)
    assert out["approx"] and out["alpha_note"] == "fitted to the top 64 of 300 eigenvalues"
    assert out["stable_rank"] == pytest.approx((true**2).sum() / true[0] ** 2)


@pytest.mark.parametrize("alpha", [2.5, 4.0])
def test_powerlaw_alpha_recovers_a_known_exponent(alpha):
    rng = np.random.default_rng(7)
    x = 0.5 * (1 - rng.random(4000)) ** (-1 / (alpha - 1))  # Pareto, p(x) ~ x^-alpha, x >= 0.5
    fitted, xmin, ks = _stats.powerlaw_alpha(x)
    assert fitted == pytest.approx(alpha, abs=0.15)
    assert xmin >= 0.5 and ks < 0.05


def test_dead_units_need_every_gate_near_zero(rng):
    w = _lstm(rng)
    arrays = {k: v.copy() for k, v in w.arrays.items()}
    for part in ("kernel", "recurrent_kernel"):
        for g in range(4):
            arrays[(part, "forward")][:, g * 4 + 2] = 0.0  # unit 2: dead in every gate
    arrays[("kernel", "forward")][:, 3] = 0.0  # unit 3: only its input gate's kernel
    df = rnnscope.stats(RNNWeights.from_parts("lstm", "LSTM", arrays))
    assert set(df["dead_units"]) == {1}
    dense = LayerWeights("dense", "Dense", {"kernel": np.c_[rng.normal(size=(3, 2)), np.zeros(3)]})
    linear = LayerWeights(
        "fc", "Linear", {"weight": np.r_[np.zeros((1, 3)), rng.normal(size=(4, 3))]}
    )
    assert rnnscope.stats(dense)["dead_units"].tolist() == [1]
    row = rnnscope.stats(linear).iloc[0]
    assert row["dead_units"] == 1 and row["units"] == 5


def test_stats_rows_and_columns(rng):
    w = _lstm(rng)
    df = rnnscope.stats(w, tol=0.01)
    assert len(df) == 12 and df.attrs["tol"] == 0.01 and set(df["tol"]) == {0.01}
    rk = df[(df.part == "recurrent_kernel") & (df.gate == "forget")].iloc[0]
    block = w.array("recurrent_kernel", "forget")
    assert rk["spectral_norm"] == pytest.approx(np.linalg.norm(block, 2))
    assert rk["matrix_spectral_norm"] == pytest.approx(
        np.linalg.norm(w.array("recurrent_kernel"), 2)
    )
    assert rk["shape"] == "4x4" and rk["l2_norm"] == pytest.approx(np.linalg.norm(block))
    assert df[df.part == "kernel"]["matrix_spectral_norm"].isna().all()
    assert list(df.columns[:5]) == ["model", "layer", "part", "gate", "direction"]


def _checkpoint(path, rng, hidden=6, with_head=True, scale=1.0):
    tensors = {
        "rnn.weight_ih_l0": rng.normal(size=(4 * hidden, 3)).astype("f4") * scale,
        "rnn.weight_hh_l0": rng.normal(size=(4 * hidden, hidden)).astype("f4") * scale,
        "rnn.bias_ih_l0": rng.normal(size=4 * hidden).astype("f4"),
        "rnn.bias_hh_l0": rng.normal(size=4 * hidden).astype("f4"),
    }
    if with_head:
        tensors["head.weight"] = rng.normal(size=(1, hidden)).astype("f4")
        tensors["head.bias"] = np.zeros(1, "f4")
    safetensors_np.save_file(tensors, str(path))
    return path


@pytest.fixture
def folder(tmp_path, rng):
    d = tmp_path / "ckpts"
    d.mkdir()
    _checkpoint(d / "epoch1.safetensors", rng)
    _checkpoint(d / "epoch2.safetensors", rng, scale=2.0)
    _checkpoint(d / "epoch3.safetensors", rng, with_head=False)
    (d / "notes.txt").write_text("not a checkpoint")
    return d


def test_compare_aligns_models_and_shows_missing_layers(folder):
    df = rnnscope.compare(folder)
    assert df.attrs["models"] == ["epoch1.safetensors", "epoch2.safetensors", "epoch3.safetensors"]
    head = df[df.layer == "head"]
    assert head.groupby("model")["present"].all().to_dict() == {
        "epoch1.safetensors": True,
        "epoch2.safetensors": True,
        "epoch3.safetensors": False,
    }
    assert head[~head.present]["l2_norm"].isna().all()
    rows = df[(df.part == "recurrent_kernel") & (df.gate == "cell")].set_index("model")
    base = rows.loc["epoch1.safetensors", "l2_norm"]
    other = rows.loc["epoch2.safetensors", "l2_norm"]
    assert rows.loc["epoch2.safetensors", "l2_norm_change"] == pytest.approx(other - base)
    assert rows.loc["epoch2.safetensors", "l2_norm_rel_change"] == pytest.approx(
        (other - base) / base
    )
    assert rows.loc["epoch1.safetensors", "l2_norm_change"] == 0
    steps = rows["l2_norm_step_rel_change"]
    assert np.isnan(steps["epoch1.safetensors"])
    assert steps["epoch2.safetensors"] == pytest.approx((other - base) / base)
    third = rows.loc["epoch3.safetensors", "l2_norm"]
    assert steps["epoch3.safetensors"] == pytest.approx((third - other) / other)
    by_name = rnnscope.compare(folder, baseline="epoch2.safetensors")
    assert by_name.attrs["baseline"] == "epoch2.safetensors"
    with pytest.raises(InputError, match="baseline 'nope' is not one of the models"):
        rnnscope.compare(folder, baseline="nope")


def test_parallel_runs_equal_the_serial_run(folder):
    serial = rnnscope.stats(folder)
    with cf.ThreadPoolExecutor(2) as pool:
        threaded = rnnscope.stats(folder, executor=pool)
    processes = rnnscope.stats(folder, jobs=2)
    pd.testing.assert_frame_equal(serial, threaded)
    pd.testing.assert_frame_equal(serial, processes)
    seen = []
    rnnscope.stats(folder, progress=lambda done, total, name: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_dask_local_cluster_executor(folder):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = rnnscope.stats(folder, executor=client.get_executor())
        workers = set(client.run(lambda: 1))
    assert len(workers) == 2
    pd.testing.assert_frame_equal(on_dask, rnnscope.stats(folder))


def test_folders_sort_numbers_by_value(tmp_path, rng):
    for epoch in (10, 2, 1):
        _checkpoint(tmp_path / f"epoch{epoch}.safetensors", rng)
    models = rnnscope.compare(tmp_path).attrs["models"]
    assert models == ["epoch1.safetensors", "epoch2.safetensors", "epoch10.safetensors"]


def test_bad_arguments(folder, tmp_path):
    with pytest.raises(InputError, match="names: 3 sources"):
        rnnscope.stats(folder, names=["a"])
    with pytest.raises(InputError, match="tol must be"):
        rnnscope.stats(folder, tol=-1)
    with pytest.raises(InputError, match="jobs must be"):
        rnnscope.stats(folder, jobs=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no checkpoint files"):
        rnnscope.stats(empty)
    with pytest.raises(rnnscope.FormatError, match=r"notes\.txt"):
        rnnscope.stats(folder / "notes.txt")


def test_jobs_from_an_unguarded_script_explains_itself(folder, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(f"import rnnscope\nrnnscope.stats(r'{folder}', jobs=2)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    # The parent's error line, found by content: other lines (the children's own tracebacks, a
    # resource-tracker warning) may come after it in any order.
    ours = [
        ln for ln in out.stderr.splitlines() if ln.startswith("rnnscope._errors.UnsupportedError")
    ]
    assert len(ours) == 1, out.stderr  # the children fail at start-up with their own errors
    assert "a worker process could not start" in ours[0]
    assert "under `if __name__ == '__main__':` (or use jobs=1)" in ours[0]
