"""The results cache against what a user may point it at: another program's SQLite database
and a cache written by a newer rnnscope are used by no command and changed by none, byte for
byte (``stats`` reads every file and says why once; ``rnnscope cache`` is one error naming the
file), and ``prune`` refuses an age that would remove everything.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from rnnscope._cache import Cache, CacheNote
from rnnscope._cli import main

safetensors_np = pytest.importorskip("safetensors.numpy")

U = 2


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    r = np.random.default_rng(0)
    for i in range(2):
        path = folder / f"step{i}.safetensors"
        state = {
            "rnn.weight_ih_l0": r.normal(size=(4 * U, 3)).astype("f4"),
            "rnn.weight_hh_l0": r.normal(size=(4 * U, U)).astype("f4"),
            "rnn.bias_ih_l0": r.normal(size=4 * U).astype("f4"),
            "rnn.bias_hh_l0": np.zeros(4 * U, "f4"),
        }
        safetensors_np.save_file(state, str(path))
        t = time.time() - 60
        os.utime(path, (t, t))
    return folder


def _user_db(path: Path, tables: dict[str, str]) -> bytes:
    con = sqlite3.connect(path)
    with con:
        for name, columns in tables.items():
            con.execute(f"CREATE TABLE {name} ({columns})")
            ncol = columns.count(",") + 1
            con.executemany(
                f"INSERT INTO {name} VALUES ({', '.join('?' * ncol)})",
                [tuple(f"{name}{i}" for _ in range(ncol)) for i in range(5)],
            )
    con.close()
    return path.read_bytes()


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


FOREIGN = {
    "results": {"results": "id TEXT, score TEXT"},  # a table named like ours
    "meta": {"meta": "name TEXT, value TEXT"},  # a meta table of other columns
    "both": {  # our two tables' names and columns, but no schema row
        "meta": "k TEXT PRIMARY KEY, v TEXT",
        "results": "key TEXT, stamp TEXT, file TEXT, value BLOB, stored REAL, used REAL, env TEXT",
    },
    "other": {"runs": "name TEXT", "results": "id TEXT"},
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_another_programs_database_is_never_changed(run, tmp_path, capsys, kind):
    db = tmp_path / "user.db"
    before = _user_db(db, FOREIGN[kind])
    listing = _files(tmp_path)
    with pytest.warns(CacheNote, match="another program"):
        df = rnnscope.stats(run, cache=db)
    assert df.attrs["cache"]["hits"] == 0 and len(df.attrs["cache"]["notes"]) == 1
    assert "left untouched" in df.attrs["cache"]["notes"][0]
    for argv in (["--clear"], ["--prune", "--days", "1e-9"], []):
        assert main(["cache", "--cache", str(db), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "user.db" in err and "another program" in err
    assert db.read_bytes() == before and _files(tmp_path) == listing  # no -wal, no .corrupt


def test_a_cache_of_a_newer_layout_is_left_for_the_newer_rnnscope(run, tmp_path, capsys):
    db = tmp_path / "results.sqlite"
    rnnscope.stats(run, cache=db)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE meta SET v = '3' WHERE k = 'schema'")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    before = db.read_bytes()
    with pytest.warns(CacheNote, match=r"newer rnnscope \(cache layout 3; this one reads 2\)"):
        df = rnnscope.stats(run, cache=db)
    assert (df.attrs["cache"]["hits"], len(df)) == (0, len(rnnscope.stats(run, cache=False)))
    assert main(["cache", "--cache", str(db), "--clear"]) == 2
    assert "newer rnnscope" in capsys.readouterr().err
    assert db.read_bytes() == before
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone() == (2,)


@pytest.mark.parametrize("days", [-1.0, 0.0, float("nan")])
def test_prune_refuses_an_age_that_is_not_positive(run, tmp_path, days):
    db = tmp_path / "results.sqlite"
    rnnscope.stats(run, cache=db)
    with pytest.raises(rnnscope.InputError, match="days must be a number > 0") as info:
        Cache(db).prune(days)
    assert info.value.argument == "days"
    assert Cache(db).contents()["entries"] == 2


def test_a_checkpoint_given_as_the_cache_is_left_where_it_is(run, capsys):
    """``--cache run/step0.safetensors`` by mistake: not an SQLite file nor named like a
    database, so it is not moved aside as a damaged cache; the run reads it as a checkpoint."""
    victim = run / "step0.safetensors"
    before, listing = victim.read_bytes(), _files(run)
    assert main(["stats", str(run), "--cache", str(victim)]) == 0
    err = capsys.readouterr().err
    assert err.count("rnnscope: note: cache:") == 1 and "left untouched" in err
    assert main(["cache", "--cache", str(victim), "--clear"]) == 2
    assert "not an SQLite database" in capsys.readouterr().err
    assert victim.read_bytes() == before and _files(run) == listing


def test_a_damaged_file_named_like_a_database_is_still_rebuilt(run, tmp_path):
    db = tmp_path / "mine.db"
    db.write_bytes(b"\x01garbage" * 64)
    with pytest.warns(CacheNote, match="moved to"):
        rnnscope.stats(run, cache=db)
    assert (tmp_path / "mine.db.corrupt").read_bytes() == b"\x01garbage" * 64
    assert rnnscope.stats(run, cache=db).attrs["cache"]["hits"] == 2
