"""``rnnscope.history`` opens any file name, read-only, creating nothing beside it."""

from __future__ import annotations

import os
import shutil
import sqlite3

import numpy as np
import pytest

import rnnscope
from rnnscope._model import LayerWeights
from rnnscope._monitor._recorder import Recorder

pytest.importorskip("pandas")


@pytest.fixture
def source(tmp_path):
    p = tmp_path / "made" / "source.db"
    p.parent.mkdir()
    rec = Recorder(p, {"framework": "numpy", "every": 1, "tol": 1e-3})
    for step in range(3):
        w = LayerWeights("dense", "Dense", {"kernel": np.full((2, 2), step + 1.0, "f4")})
        rec.record(step, 0, [w], None)
    rec.close()
    return p


@pytest.mark.parametrize(
    "name", ["run#1.db", "a?b.db", "50%20done.db", "sp ace & 'quote'.db", "ü-名前.db"]
)
def test_history_opens_any_name_and_creates_nothing(source, tmp_path, name):
    folder = tmp_path / "odd"
    folder.mkdir()
    p = folder / name
    shutil.copy(source, p)
    before = sorted(os.listdir(folder))
    cwd_before = sorted(os.listdir(os.getcwd()))
    df = rnnscope.history(p)
    with sqlite3.connect(source) as conn:  # the oracle: SQLite on the original file
        want = conn.execute("SELECT step, weight_norm FROM stats ORDER BY step").fetchall()
    assert list(zip(df["step"], df["weight_norm"], strict=True)) == want
    assert want == [(s, pytest.approx(2.0 * (s + 1))) for s in range(3)]
    assert sorted(os.listdir(folder)) == before  # no stray 'run', 'a', no -wal/-shm left
    assert sorted(os.listdir(os.getcwd())) == cwd_before


def test_history_never_writes(source, tmp_path):
    p = tmp_path / "ro#.db"
    shutil.copy(source, p)
    data = p.read_bytes()
    rnnscope.history(p, "runs")
    assert p.read_bytes() == data


def test_history_of_a_wal_database_creates_nothing(source, tmp_path):
    """Databases written in WAL mode (older rnnscope) read without -wal/-shm files appearing."""
    p = tmp_path / "old#wal.db"
    shutil.copy(source, p)
    with sqlite3.connect(p) as conn:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.close()
    assert sorted(os.listdir(tmp_path)) == ["made", "old#wal.db"]
    assert len(rnnscope.history(p)) == 3
    assert sorted(os.listdir(tmp_path)) == ["made", "old#wal.db"]
