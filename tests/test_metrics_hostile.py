"""Metrics files a user gives, crafted or damaged: each gets a clear error naming the file and
what was expected, never a deep traceback, a hang or memory out of proportion to the file.

The files are real files written here (an SQLite database with another schema by ``sqlite3``,
a corrupt TensorBoard event file by truncating and flipping bytes of one TensorBoard wrote).
"""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

import rnnscope
from rnnscope import FormatError, InputError
from rnnscope._cli import main

pytest.importorskip("pandas")


def _error(source, capsys=None):
    with pytest.raises((FormatError, InputError)) as got:
        rnnscope.read_metrics(source)
    err = got.value
    assert err.argument == "metrics"
    return err


def test_a_csv_larger_than_metrics_ever_are_is_refused_before_reading(tmp_path):
    # a 2 GB file whose first line never ends (sparse: no disk used, nothing read)
    path = tmp_path / "log.csv"
    with open(path, "wb") as fh:
        fh.write(b"epoch,loss,")
        fh.truncate(2 * 1024**3)
    err = _error(path)
    assert err.path == str(path) and "log.csv" in str(err)
    assert "2 GiB" in str(err) and "64 MiB" in str(err) and "DataFrame" in str(err)


def test_a_csv_with_one_huge_field_is_a_clear_error(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("epoch,loss\n0," + "9" * 300_000 + "\n1,0.5\n")
    err = _error(path)
    assert "wide.csv" in str(err) and "CSV" in str(err)


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    path = tmp_path / "history.json"
    path.write_text("[" * 200_000 + "]" * 200_000)  # deeper than Python's recursion limit
    assert 200_000 > sys.getrecursionlimit()
    err = _error(path)
    assert "history.json" in str(err) and "nested" in str(err)


def test_json_with_a_number_too_long_to_convert_is_a_clear_error(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"loss": [1]})[:-2] + "9" * 50_000 + "]}")
    err = _error(path)
    assert "history.json" in str(err) and "JSON" in str(err)


def test_json_values_that_are_not_numbers_are_named(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"loss": [{"a": 1}, [2]], "val_loss": [0.5, 0.4]}))
    df = rnnscope.read_metrics(path)  # a metric with no number left out, and said so
    assert list(df.columns) == ["epoch", "step", "val_loss"]
    assert "loss" in " ".join(df.attrs["notes"])


def test_a_db_file_that_is_not_sqlite_is_named_as_such(tmp_path):
    path = tmp_path / "run.db"
    path.write_bytes(b"\x00\x01garbage that is no database" * 10)
    err = _error(path)
    assert "run.db" in str(err) and "not an SQLite database" in str(err)


def test_an_sqlite_file_of_another_schema_is_a_clear_error(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE stats (x INTEGER)")
        conn.execute("INSERT INTO stats VALUES (1)")
    conn.close()
    err = _error(path)
    assert "other.db" in str(err) and "monitor" in str(err)


def test_a_corrupt_tensorboard_event_file_is_a_clear_error_or_read_without_it(tmp_path):
    tf = pytest.importorskip("tensorflow")
    logs = tmp_path / "logs"
    writer = tf.summary.create_file_writer(str(logs / "train"))
    with writer.as_default():
        for epoch in range(3):
            tf.summary.scalar("epoch_loss", 1.0 / (epoch + 1), step=epoch)
    writer.close()
    (event,) = (logs / "train").glob("*tfevents*")
    data = bytearray(event.read_bytes())
    data[len(data) // 2 :] = bytes(b ^ 0xFF for b in data[len(data) // 2 :])  # flip the 2nd half
    event.write_bytes(bytes(data))
    # TensorBoard's reader stops at the damage without a word; rnnscope says where it is
    err = _error(logs)
    assert "logs" in str(err) and f"train/{event.name} damaged at byte " in str(err)
    # a second, intact run folder: read, with the damage in the notes
    writer = tf.summary.create_file_writer(str(logs / "validation"))
    with writer.as_default():
        for epoch in range(3):
            tf.summary.scalar("epoch_loss", 2.0 / (epoch + 1), step=epoch)
    writer.close()
    df = rnnscope.read_metrics(logs)
    assert df["val_loss"].tolist() == pytest.approx([2.0, 1.0, 2 / 3])
    assert any(f"train/{event.name} damaged at byte" in n for n in df.attrs["notes"])


def test_the_cli_reports_a_bad_metrics_file_in_one_line(tmp_path, capsys):
    run = rnnscope.demo_path("run")
    bad = tmp_path / "history.json"
    bad.write_text("[" * 100_000)
    assert main(["compare", str(run), "--metrics", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "history.json" in err and "Traceback" not in err and len(err.splitlines()) <= 3
