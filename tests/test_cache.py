"""The per-file results cache: a rerun reads only new or changed files, and what it returns is
bit-identical to a fresh run.

Reads are counted with a Python audit hook (the interpreter's own ``open`` events, nothing of
rnnscope's), in this process (``jobs=None``). Expected values come from the raw arrays written
(torch gate order i, f, g, o: rows ``[k*u:(k+1)*u]`` of ``weight_hh_l0``).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from rnnscope import _version
from rnnscope._cache import CacheNote, _pack, _unpack
from rnnscope._cli import main

pd = pytest.importorskip("pandas")
safetensors_np = pytest.importorskip("safetensors.numpy")

U, INPUTS = 4, 3
SRC = str(Path(__file__).resolve().parents[1] / "src")
_OPENED: list[Counter[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _OPENED and isinstance(args[0], (str, os.PathLike)):
        name = os.fspath(args[0])
        if name.endswith(".safetensors"):
            _OPENED[-1][os.path.basename(name)] += 1


sys.addaudithook(_audit)  # stays for the process; counts only inside `_reads()`


@contextmanager
def _reads():
    counter: Counter[str] = Counter()
    _OPENED.append(counter)
    try:
        yield counter
    finally:
        _OPENED.pop()


def _state(seed: int, nan: bool = False) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    hh = r.normal(size=(4 * U, U)).astype("f4")
    if nan:
        hh[1, 2], hh[5, 0] = np.nan, np.inf
    return {
        "rnn.weight_ih_l0": r.normal(size=(4 * U, INPUTS)).astype("f4"),
        "rnn.weight_hh_l0": hh,
        "rnn.bias_ih_l0": r.normal(size=4 * U).astype("f4"),
        "rnn.bias_hh_l0": np.zeros(4 * U, "f4"),
    }


def _write(path: Path, seed: int, nan: bool = False, age: float = 60.0) -> dict[str, np.ndarray]:
    """A checkpoint last modified ``age`` seconds ago (files modified in the last 2 s are read
    but not cached: they may still be being written)."""
    state = _state(seed, nan)
    safetensors_np.save_file(state, str(path))
    t = time.time() - age
    os.utime(path, (t, t))
    return state


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    states = {f"step{i}.safetensors": _write(folder / f"step{i}.safetensors", i) for i in range(4)}
    states["step4.safetensors"] = _write(folder / "step4.safetensors", 4, nan=True)
    return folder, states, tmp_path / "cache" / "results.sqlite"


def _forget_l2(df, model: str) -> float:
    row = df[(df.model == model) & (df.part == "recurrent_kernel") & (df.gate == "forget")].iloc[0]
    return float(row["l2_norm"])


def test_a_rerun_reads_nothing_and_gives_bit_identical_frames(run):
    folder, states, db = run
    fresh = rnnscope.stats(folder, cache=False)
    with _reads() as cold:
        first = rnnscope.stats(folder, cache=db)
    with _reads() as warm:
        again = rnnscope.stats(folder, cache=db)
    assert set(cold) == set(states) and not warm
    assert again.attrs["cache"]["hits"] == 5 and again.attrs["cache"]["computed"] == 0
    for df in (first, again):  # equal values, NaN in the same places, same dtypes
        pd.testing.assert_frame_equal(df, fresh, check_exact=True)
        assert (df.isna().to_numpy() == fresh.isna().to_numpy()).all()
    assert fresh["nan"].sum() == 1 and fresh["inf"].sum() == 1
    w = states["step2.safetensors"]["rnn.weight_hh_l0"].astype("f8")
    assert _forget_l2(again, "step2.safetensors") == pytest.approx(np.linalg.norm(w[U : 2 * U]))


def test_one_new_checkpoint_is_the_only_file_read(run):
    folder, _, db = run
    rnnscope.compare(folder, cache=db)
    new = _write(folder / "step5.safetensors", 5)
    with _reads() as opened:
        cmp = rnnscope.compare(folder, cache=db)
    assert set(opened) == {"step5.safetensors"}
    assert cmp.attrs["cache"]["hits"] == 5 and cmp.attrs["cache"]["computed"] == 1
    want = np.linalg.norm(new["rnn.weight_hh_l0"].astype("f8")[U : 2 * U])
    assert _forget_l2(cmp, "step5.safetensors") == pytest.approx(want)


def test_a_modified_file_is_read_again_and_shows_its_new_weights(run):
    folder, _, db = run
    rnnscope.stats(folder, cache=db)
    new = _write(folder / "step1.safetensors", 99, age=30.0)  # same size, other weights
    with _reads() as opened:
        df = rnnscope.stats(folder, cache=db)
    assert set(opened) == {"step1.safetensors"}
    want = np.linalg.norm(new["rnn.weight_hh_l0"].astype("f8")[U : 2 * U])
    assert _forget_l2(df, "step1.safetensors") == pytest.approx(want)


def test_settings_and_version_changes_invalidate(run, monkeypatch):
    folder, states, db = run
    rnnscope.stats(folder, cache=db)
    with _reads() as opened:
        df = rnnscope.stats(folder, cache=db, tol=0.5)
    assert set(opened) == set(states)
    w = states["step0.safetensors"]["rnn.weight_hh_l0"][U : 2 * U]
    row = df[(df.model == "step0.safetensors") & (df.gate == "forget")]
    row = row[row.part == "recurrent_kernel"].iloc[0]
    assert row["frac_near_zero"] == pytest.approx(np.mean(np.abs(w) < 0.5))
    with _reads() as opened:
        rnnscope.stats(folder, cache=db, tol=0.5)
    assert not opened  # both settings are kept side by side
    monkeypatch.setattr(_version, "__version__", "999.0")
    with _reads() as opened:
        rnnscope.stats(folder, cache=db)
    assert set(opened) == set(states)


def test_a_file_modified_just_now_is_not_kept(tmp_path):
    path = tmp_path / "fresh.safetensors"
    _write(path, 0, age=0.0)
    db = tmp_path / "c.sqlite"
    rnnscope.stats(path, cache=db)
    with _reads() as opened:  # it may have been rewritten within the clock's resolution
        df = rnnscope.stats(path, cache=db)
    assert opened["fresh.safetensors"] >= 1 and df.attrs["cache"]["hits"] == 0


def test_a_corrupt_database_is_moved_aside_and_rebuilt(run):
    folder, states, db = run
    rnnscope.stats(folder, cache=db)
    db.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with pytest.warns(CacheNote, match="could not be read"):
        with _reads() as opened:
            df = rnnscope.stats(folder, cache=db)
    assert set(opened) == set(states) and df.attrs["cache"]["notes"]
    assert (db.parent / "results.sqlite.corrupt").exists()
    with _reads() as opened:
        rnnscope.stats(folder, cache=db)
    assert not opened


def test_a_damaged_entry_is_read_again(run):
    folder, _, db = run
    rnnscope.stats(folder, cache=db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE results SET value = x'00ff'")
    con.close()
    with pytest.warns(CacheNote):
        df = rnnscope.stats(folder, cache=db)
    pd.testing.assert_frame_equal(df, rnnscope.stats(folder, cache=False), check_exact=True)


def test_a_location_that_cannot_be_written_turns_the_cache_off(run, capsys):
    folder, states, _ = run
    blocker = folder.parent / "a_file"
    blocker.write_text("not a folder")
    with pytest.warns(CacheNote, match="no cache"):
        df = rnnscope.stats(folder, cache=blocker / "results.sqlite")
    assert df["model"].nunique() == len(states)
    assert main(["stats", str(folder), "--cache", str(blocker / "x.sqlite"), "--csv", "-"]) == 0
    err = capsys.readouterr().err
    assert "rnnscope: note: cache:" in err and "Traceback" not in err


def test_no_cache_and_the_environment_variable(run, monkeypatch, capsys):
    folder, states, db = run
    monkeypatch.setenv("RNNSCOPE_CACHE", str(db))
    rnnscope.stats(folder)  # the default: $RNNSCOPE_CACHE
    assert db.exists()
    with _reads() as opened:
        assert main(["stats", str(folder), "--csv", "-"]) == 0
    assert not opened
    with _reads() as opened:
        assert main(["stats", str(folder), "--no-cache", "--csv", "-"]) == 0
    assert set(opened) == set(states)
    monkeypatch.setenv("RNNSCOPE_CACHE", "off")
    assert rnnscope.stats(folder).attrs["cache"] is None


def _page(path: Path) -> str:
    """The report without its "generated at" line (the only thing that differs run to run)."""
    return "\n".join(ln for ln in path.read_text().splitlines() if "generated" not in ln)


def test_report_rerun_reads_only_the_new_checkpoint(run):
    folder, _, db = run
    out = folder.parent / "r.html"
    rnnscope.report(folder, out=out, cache=db, figures=False)
    _write(folder / "step5.safetensors", 5)
    with _reads() as opened:
        rnnscope.report(folder, out=out, cache=db, figures=False)
    assert set(opened) == {"step5.safetensors"}
    fresh = folder.parent / "fresh.html"
    rnnscope.report(folder, out=fresh, cache=False, figures=False)
    assert _page(out) == _page(fresh) and "step5.safetensors" in _page(out)


def test_report_figures_come_back_from_the_cache_as_drawn(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    _write(folder / "step0.safetensors", 0)
    db, first, again = tmp_path / "c.sqlite", tmp_path / "a.html", tmp_path / "b.html"
    rnnscope.report(folder, out=first, cache=db, compare=False)  # drawn fresh, and kept
    with _reads() as opened:
        rnnscope.report(folder, out=again, cache=db, compare=False)
    assert not opened
    assert _page(again) == _page(first) and _page(first).count("data:image/webp") >= 2


def test_two_processes_with_two_workers_each_share_one_database(run):
    folder, states, db = run
    env = {**os.environ, "PYTHONPATH": SRC, "RNNSCOPE_CACHE": str(db)}
    argv = [sys.executable, "-m", "rnnscope", "stats", str(folder), "--jobs", "2", "--csv"]
    procs = [
        subprocess.Popen(
            [*argv, str(folder.parent / f"{k}.csv")], env=env, stderr=subprocess.PIPE, text=True
        )
        for k in range(2)
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert not any("Traceback" in e or "note: cache" in e for e in errs), errs
    a, b = (pd.read_csv(folder.parent / f"{k}.csv") for k in range(2))
    pd.testing.assert_frame_equal(a, b)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT COUNT(*) FROM results").fetchone() == (len(states),)
    con.close()
    with _reads() as opened:
        rnnscope.stats(folder, cache=db, jobs=2)
    assert not opened


def test_stored_values_come_back_exactly():
    value = {
        "rows": [{"a": float("nan"), "b": float("-inf"), "c": 0.1 + 0.2, "d": None, "e": 3}],
        "samples": {"l": np.array([[1.5, np.nan], [-0.0, 2e-45]], dtype="f4")},
        "t": (1, "x"),
        "s": np.float32(0.1),
    }
    back = _unpack(_pack(value))
    assert back["rows"][0]["c"] == 0.1 + 0.2 and back["rows"][0]["d"] is None
    assert np.isnan(back["rows"][0]["a"]) and back["rows"][0]["b"] == float("-inf")
    arr = back["samples"]["l"]
    assert arr.dtype == np.float32 and arr.tobytes() == value["samples"]["l"].tobytes()
    assert back["t"] == (1, "x") and back["s"].dtype == np.float32 and back["s"] == value["s"]


def test_a_result_is_kept_under_the_name_it_was_shown_with(run):
    folder, _, db = run
    path = folder / "step0.safetensors"
    assert set(rnnscope.stats(path, names=["a"], cache=db)["model"]) == {"a"}
    assert set(rnnscope.stats(path, names=["b"], cache=db)["model"]) == {"b"}


def test_the_same_relative_path_from_another_folder_is_another_file(tmp_path, monkeypatch):
    db = tmp_path / "c.sqlite"
    for sub, seed in (("a", 1), ("b", 2)):  # same name, size and time; other weights
        (tmp_path / sub).mkdir()
        _write(tmp_path / sub / "m.safetensors", seed)
        os.utime(tmp_path / sub / "m.safetensors", ns=(10**18, 10**18))
    monkeypatch.chdir(tmp_path / "a")
    rnnscope.stats("m.safetensors", cache=db)
    monkeypatch.chdir(tmp_path / "b")
    df = rnnscope.stats("m.safetensors", cache=db)
    w = _state(2)["rnn.weight_hh_l0"].astype("f8")
    assert _forget_l2(df, "m.safetensors") == pytest.approx(np.linalg.norm(w[U : 2 * U]))
