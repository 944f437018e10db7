"""The results cache over time: ``rnnscope cache`` shows, prunes and clears it; a hit records
its use, so pruning keeps what runs still use; a database of the older layout starts afresh; and
a report rerun draws the new checkpoint's figures in a worker while it reads its statistics
(in this process, with one BLAS thread).

Which files a run read is counted with a Python audit hook (the interpreter's own ``open``
events), in this process only: a file read in a worker process is not counted.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from rnnscope._cli import main

pd = pytest.importorskip("pandas")
safetensors_np = pytest.importorskip("safetensors.numpy")

U = 4
DAY = 86400.0
_OPENED: list[Counter[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _OPENED and isinstance(args[0], (str, os.PathLike)):
        name = os.fspath(args[0])
        if name.endswith(".safetensors"):
            _OPENED[-1][os.path.basename(name)] += 1


sys.addaudithook(_audit)


@contextmanager
def _reads():
    counter: Counter[str] = Counter()
    _OPENED.append(counter)
    try:
        yield counter
    finally:
        _OPENED.pop()


def _write(path: Path, seed: int) -> None:
    r = np.random.default_rng(seed)
    state = {
        "rnn.weight_ih_l0": r.normal(size=(4 * U, 3)).astype("f4"),
        "rnn.weight_hh_l0": r.normal(size=(4 * U, U)).astype("f4"),
        "rnn.bias_ih_l0": r.normal(size=4 * U).astype("f4"),
        "rnn.bias_hh_l0": np.zeros(4 * U, "f4"),
    }
    safetensors_np.save_file(state, str(path))
    t = time.time() - 60  # not just written: results of files modified in the last 2 s are not kept
    os.utime(path, (t, t))


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for i in range(5):
        _write(folder / f"step{i}.safetensors", i)
    return folder, tmp_path / "results.sqlite"


def _sql(db: Path, query: str, *args: object) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        with con:
            return con.execute(query, args).fetchall()
    finally:
        con.close()


def _cache_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["cache", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_prune_removes_other_versions_gone_files_and_unused_entries_only(run, capsys):
    folder, db = run
    assert rnnscope.stats(folder, cache=db).attrs["cache"]["computed"] == 5
    _sql(db, "UPDATE results SET used = ?", time.time() - 40 * DAY)  # all unused for 40 days
    assert rnnscope.stats(folder, cache=db).attrs["cache"]["hits"] == 5  # ...and now used
    _sql(db, "UPDATE results SET used = ? WHERE file LIKE '%step1%'", time.time() - 40 * DAY)
    _sql(db, "UPDATE results SET env = 'rnnscope 0.0.1' WHERE file LIKE '%step0%'")
    (folder / "step2.safetensors").unlink()
    code, text = _cache_cli(capsys, "--cache", str(db), "--prune", "--days", "30")
    assert code == 0
    assert "removed 3 entries (1 of other versions, 1 of files that are gone, 1 unused for 30 " in (
        text
    )
    assert "2 kept" in text
    left = sorted(Path(f).name for (f,) in _sql(db, "SELECT file FROM results"))
    assert left == ["step3.safetensors", "step4.safetensors"]
    with _reads() as opened:
        df = rnnscope.stats(folder, cache=db)
    assert set(opened) == {"step0.safetensors", "step1.safetensors"}
    assert (df.attrs["cache"]["hits"], df.attrs["cache"]["computed"]) == (2, 2)


def test_show_and_clear(run, capsys):
    folder, db = run
    rnnscope.stats(folder, cache=db)
    code, text = _cache_cli(capsys, "--cache", str(db))
    assert code == 0 and "5 entries, 5 of these versions" in text
    code, text = _cache_cli(capsys, "--cache", str(db), "--clear")
    assert code == 0 and "removed 5 entries" in text
    assert _sql(db, "SELECT COUNT(*) FROM results") == [(0,)]
    with _reads() as opened:
        rnnscope.stats(folder, cache=db)
    assert len(opened) == 5


def test_cache_command_errors_and_a_missing_database(run, capsys, monkeypatch):
    folder, _ = run
    code, text = _cache_cli(capsys, "--cache", str(folder.parent / "none.sqlite"), "--prune")
    assert code == 0 and "no results database at" in text
    assert not (folder.parent / "none.sqlite").exists()  # looking does not create one
    monkeypatch.setenv("RNNSCOPE_CACHE", "off")
    code, text = _cache_cli(capsys)
    assert code == 2 and "the cache is off ($RNNSCOPE_CACHE)" in text and "--cache" in text
    with pytest.raises(SystemExit):
        main(["cache", "--prune", "--days", "0"])
    assert "expected a number > 0" in capsys.readouterr().err


def test_a_database_of_the_first_layout_starts_afresh(run):
    folder, db = run
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "CREATE TABLE results (key TEXT PRIMARY KEY, stamp TEXT NOT NULL, file TEXT NOT NULL,"
            " value BLOB NOT NULL, stored REAL NOT NULL)"
        )
        con.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT)")
        con.execute("INSERT INTO meta VALUES ('schema', '1')")
        con.execute("INSERT INTO results VALUES ('k', 's', 'f', x'00', 0)")
    con.close()
    first = rnnscope.stats(folder, cache=db)
    assert first.attrs["cache"]["computed"] == 5 and not first.attrs["cache"]["notes"]
    again = rnnscope.stats(folder, cache=db)
    assert again.attrs["cache"]["hits"] == 5
    pd.testing.assert_frame_equal(again, first, check_exact=True)


def _page(path: Path) -> str:
    return "\n".join(ln for ln in path.read_text().splitlines() if "generated" not in ln)


def test_a_report_rerun_draws_the_new_checkpoints_figures_in_a_worker(tmp_path, monkeypatch):
    """With jobs=2 the new (last) checkpoint's figures are drawn in a worker while this process
    reads its statistics (in another worker): the figure pass gets them from that worker, the
    figures on the page are those drawn here, and the cache keeps them."""
    import rnnscope._report_early
    from rnnscope._cache import Cache, identity
    from rnnscope._report import _figure_args, model_section

    early_finish = rnnscope._report_early.finish

    folder, db = tmp_path / "run", tmp_path / "results.sqlite"
    folder.mkdir()
    _write(folder / "step0.safetensors", 0)
    out = tmp_path / "r.html"
    rnnscope.report(folder, out=out, cache=db)  # its rows and figures kept: the figure pass
    # of the rerun has the new checkpoint only, which it would read in this process
    new = folder / "step1.safetensors"
    _write(new, 1)
    delivered: list[list[str]] = []

    def finish(*args):  # which files the worker delivered to the figure pass, recorded
        got = early_finish(*args)
        delivered.append(list(got))
        return got

    monkeypatch.setattr(rnnscope._report_early, "finish", finish)
    with _reads() as opened:
        rnnscope.report(folder, out=out, cache=db, jobs=2)
    # the one file left to read is read here (no worker to start for it), once for its
    # statistics; its figures came from the worker
    assert set(opened) == {"step1.safetensors"}
    assert delivered == [["step1.safetensors"]]
    here = model_section(new, "step1.safetensors", *_figure_args(1e-3))["figures"]
    page = _page(out)
    assert len(here) == 2 and all(f["src"] in page for f in here)  # heatmap, histograms
    store = Cache(db)
    try:
        assert store.has(identity(new), "step1.safetensors", model_section, _figure_args(1e-3))
    finally:
        store.close()


def _probe(source, name):
    """Where a source is read: the process, and its BLAS libraries' thread counts."""
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return {"pid": os.getpid(), "blas": blas}


def test_the_one_file_a_rerun_has_left_is_read_here_with_one_blas_thread(tmp_path):
    """Several sources, all but one cached, jobs=2: the last one is read in this process (a
    worker's start costs more than its statistics) with every BLAS library at one thread, and
    the thread counts are given back afterwards; two left go to workers."""
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info

    from rnnscope._cache import Cache, identity
    from rnnscope._tables import run_sources

    paths = [tmp_path / f"s{i}.safetensors" for i in range(3)]
    for i, p in enumerate(paths):
        _write(p, i)
        old = time.time() - 600
        os.utime(p, (old, old))
    pairs = [(p.name, str(p)) for p in paths]
    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    store = Cache(tmp_path / "c.sqlite")
    try:
        for name, src in pairs[:2]:
            assert store.put(identity(src), name, _probe, (), {"cached": 1}, time.time_ns())
        got, failed = run_sources(_probe, pairs, (), None, 2, None, cache=store)
        assert not failed and got[:2] == [{"cached": 1}] * 2
        assert got[2]["pid"] == os.getpid() and got[2]["blas"] and set(got[2]["blas"]) == {1}
        after = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        assert after == before
        store.clear()
        store.put(identity(pairs[0][1]), pairs[0][0], _probe, (), {"cached": 1}, time.time_ns())
        got, _ = run_sources(_probe, pairs, (), None, 2, None, cache=store)
        assert {g["pid"] for g in got[1:]}.isdisjoint({os.getpid()})  # two left: workers
    finally:
        store.close()


def test_the_run_figures_are_drawn_again_only_when_what_they_draw_changes(tmp_path, monkeypatch):
    """The run's figures are kept under the report's path, keyed by a hash of what they draw:
    the same data again draws nothing and gives the same images; one changed value, or other
    thresholds, draws them again (equal to a fresh drawing); one entry per report path."""
    import rnnscope._report
    from rnnscope._cache import Cache
    from rnnscope._flags import Thresholds

    real = rnnscope._report._run_figures
    calls: list[int] = []

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(rnnscope._report, "_run_figures", counted)
    folder = tmp_path / "run"
    folder.mkdir()
    for i in range(3):
        _write(folder / f"step{i}.safetensors", i)
    table = rnnscope.stats(folder, cache=False)
    names = list(dict.fromkeys(table["model"]))
    drawn = (table, names, None, "step", Thresholds(), True)
    store, out = Cache(tmp_path / "c.sqlite"), tmp_path / "r.html"
    try:
        first = rnnscope._report._kept_run_figures(store, out, drawn)
        again = rnnscope._report._kept_run_figures(store, out, drawn)
        assert len(calls) == 1 and again == first and len(first) == 3
        assert (store.hits, store.computed) == (0, 0)  # files found / read: none of them
        changed = table.copy()
        row = changed.index[(changed["model"] == names[-1]) & (changed["gate"] != "")][0]
        changed.loc[row, "l2_norm"] *= 2  # one gate's norm at the last checkpoint
        new = (changed, *drawn[1:])
        got = rnnscope._report._kept_run_figures(store, out, new)
        assert len(calls) == 2 and got != first and got == real(*new)
        other = (changed, names, None, "step", Thresholds(recurrent_high=0.5), True)
        assert rnnscope._report._kept_run_figures(store, out, other) == real(*other)
        assert len(calls) == 3  # the bounds drawn changed
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as con:  # one entry per report path, replaced
        kept = con.execute("SELECT file FROM results").fetchall()
    assert kept == [(str(out.resolve()),)]
