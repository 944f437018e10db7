"""Metrics beside checkpoints, on real files: a tiny Keras model trained for 3 epochs with
``CSVLogger``, ``TensorBoard``, ``ModelCheckpoint`` (every epoch) and the rnnscope monitor.

Oracles never pass through rnnscope: each checkpoint's name carries the ``val_loss`` Keras
itself computed when it saved the file (``{val_loss:.6f}``), and the monitor's weight norm at the
end of an epoch must equal the L2 norm of the weights Keras saved in that epoch's file.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3

import numpy as np
import pytest

from tests.conftest import requires_keras

pytestmark = requires_keras
pd = pytest.importorskip("pandas")
pytest.importorskip("tensorboard")

NAME = re.compile(r"model\.(\d+)-(\d+\.\d+)\.keras")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import keras

    import rnnscope.keras

    d = tmp_path_factory.mktemp("fit")
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((4, 2)), keras.layers.LSTM(3, name="lstm"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(0.05), "mse", metrics=["mae"])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(24, 4, 2)).astype("float32")
    y = x[:, :, :1].sum(axis=1)  # learnable: val_loss moves from epoch to epoch
    (d / "ck").mkdir()
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        validation_split=0.25,
        verbose=0,
        shuffle=False,
        callbacks=[
            keras.callbacks.CSVLogger(str(d / "log.csv")),
            keras.callbacks.TensorBoard(str(d / "tb"), update_freq="batch"),
            keras.callbacks.ModelCheckpoint(
                str(d / "ck" / "model.{epoch:02d}-{val_loss:.6f}.keras")
            ),
            rnnscope.keras.Monitor(str(d / "run.db"), every=1),
        ],
    )
    (d / "history.json").write_text(json.dumps(history.history))
    return d


def _names(d):
    """Each checkpoint's epoch and the val_loss Keras wrote into its name."""
    found = {}
    for p in sorted((d / "ck").iterdir()):
        m = NAME.fullmatch(p.name)
        assert m, p.name
        found[p.name] = (int(m.group(1)), float(m.group(2)))
    return found


def test_keras_numbers_epochs_from_1_in_file_names_and_from_0_in_its_logs(trained):
    names = _names(trained)
    assert sorted(e for e, _ in names.values()) == [1, 2, 3]  # ModelCheckpoint's {epoch}
    with open(trained / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # CSVLogger's epoch column
    # the file named epoch E holds the val_loss of the CSV's epoch E - 1
    by_epoch = {int(r["epoch"]): float(r["val_loss"]) for r in rows}
    for e, v in names.values():
        assert round(by_epoch[e - 1], 6) == pytest.approx(v, abs=1e-6)
    assert len(set(names.values())) == 3


@pytest.mark.parametrize("source", ["log.csv", "history.json", "tb"])
def test_each_checkpoint_gets_the_val_loss_keras_wrote_into_its_name(trained, source):
    import rnnscope

    df = rnnscope.compare(trained / "ck", metrics=trained / source)
    assert df.attrs["mode"] == "run"
    assert "epoch" in df.attrs["mode_note"]
    per = pd.DataFrame(df.attrs["checkpoints"]).set_index("model")
    names = _names(trained)
    assert list(per.index) == sorted(names, key=lambda n: names[n][0])
    for name, (epoch, val_loss) in names.items():
        assert per.at[name, "step"] == epoch
        assert per.at[name, "val_loss"] == pytest.approx(val_loss, abs=6e-7)
        rows = df[df.model == name]
        assert (rows["val_loss"] == per.at[name, "val_loss"]).all()  # beside every row
    assert {"loss", "mae", "val_loss", "val_mae"} <= set(df.attrs["metrics"])
    assert any("E-1" in n for n in df.attrs["metrics_notes"])


def test_the_three_keras_sources_agree(trained):
    import rnnscope

    tables = [
        pd.DataFrame(rnnscope.compare(trained / "ck", metrics=trained / s).attrs["checkpoints"])
        for s in ("log.csv", "history.json", "tb")
    ]
    for t in tables[1:]:
        for c in ("loss", "val_loss", "mae", "val_mae"):
            np.testing.assert_allclose(t[c], tables[0][c], rtol=1e-6)


def test_monitor_weight_norm_at_an_epochs_end_is_the_norm_of_that_epochs_file(trained):
    import keras

    import rnnscope

    df = rnnscope.compare(trained / "ck", metrics=trained / "run.db")
    per = pd.DataFrame(df.attrs["checkpoints"]).set_index("model")
    with sqlite3.connect(trained / "run.db") as conn:
        steps = dict(conn.execute("SELECT epoch, MAX(step) FROM stats GROUP BY epoch").fetchall())
    assert len(steps) == 3
    for name in _names(trained):
        saved = keras.saving.load_model(trained / "ck" / name)
        norm = np.sqrt(sum(float((np.asarray(w, np.float64) ** 2).sum()) for w in saved.weights))
        assert per.at[name, "weight_norm"] == pytest.approx(norm, rel=1e-5), name
    # an offset of 0 would pair a file with the next epoch's weights: they differ
    shifted = rnnscope.compare(trained / "ck", metrics=trained / "run.db", metrics_offset=0)
    moved = pd.DataFrame(shifted.attrs["checkpoints"]).set_index("model")["weight_norm"]
    first = sorted(_names(trained))[0]
    assert moved[first] != pytest.approx(per.at[first, "weight_norm"], rel=1e-5)
    assert moved.isna().sum() == 1  # the last file has no epoch 3 in the logs
    assert any("no epoch 3 in the metrics" in n for n in shifted.attrs["metrics_notes"])


def test_rank_by_val_loss_keeps_the_checkpoint_keras_scored_best(trained, capsys):
    from rnnscope._cli import main

    names = _names(trained)
    best = min(names, key=lambda n: names[n][1])
    assert main(["compare", str(trained / "ck"), "--metrics", str(trained / "log.csv"),
                 "--rank-by", "val_loss"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "read as a training run" in out
    keep = next(line for line in out.splitlines() if line.startswith("keep "))
    assert keep.startswith(f"keep {best}: lowest val_loss")
    worst = max(names, key=lambda n: names[n][1])
    assert main(["compare", str(trained / "ck"), "--metrics", str(trained / "tb"),
                 "--rank-by", "val_loss:max", "--json"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert f"keep {worst}: highest val_loss" in captured.err
    rows = json.loads(captured.out)
    assert {r["model"]: r["val_loss"] for r in rows}[best] == pytest.approx(
        names[best][1], abs=6e-7
    )


def test_report_shows_the_metrics_and_the_ranking(trained, tmp_path):
    import rnnscope

    out = rnnscope.report(
        trained / "ck", tmp_path / "r.html", metrics=trained / "history.json", rank_by="val_loss",
        figures=False, detail="all",  # every checkpoint a column of the comparison table
    )  # fmt: skip
    html = out.read_text()
    names = _names(trained)
    best = min(names, key=lambda n: names[n][1])
    assert ">The run (baseline: " in html
    assert f"keep {best}: lowest val_loss" in html
    row = re.search(r"<b>val_loss</b></td>(.*?)</tr>", html).group(1)
    cells = [float(c) for c in re.findall(r"<td>([^<]*)</td>", row)]
    ordered = sorted(names.values())
    assert cells == pytest.approx([v for _, v in ordered], rel=1e-3)  # shown to 4 digits
