"""rnnscope.history, plot.history and a run database in the report."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError, InputError

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")
from rnnscope.torch import Monitor  # noqa: E402


@pytest.fixture
def db(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("gru", torch.nn.GRU(3, 4, batch_first=True, bidirectional=True))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    x, y = torch.randn(8, 5, 3), torch.randn(8, 5, 8)
    path = tmp_path / "run.db"
    for run in range(2):  # two runs in one database; the second meets an Inf
        expect = pytest.warns(RuntimeWarning, match="first non-finite") if run else nullcontext()
        with expect, Monitor(net, path, every=2) as mon:
            for step in range(5):
                torch.nn.functional.mse_loss(net(x)[0], y).backward()
                mon.step()
                opt.step()
                opt.zero_grad()
                if run == 1 and step == 2:
                    with torch.no_grad():
                        net.gru.weight_ih_l0_reverse[0, 0] = float("inf")  # torch: r, z, n
    return path


def test_history_tables_and_runs(db):
    runs = rnnscope.history(db, "runs")
    assert list(runs["run_id"]) == [1, 2]
    latest = rnnscope.history(db)
    assert set(latest["run_id"]) == {2} and set(latest["direction"]) == {"forward", "backward"}
    assert set(rnnscope.history(db, run="all")["run_id"]) == {1, 2}
    assert set(rnnscope.history(db, run=1)["step"]) == {0, 2, 4}
    events = rnnscope.history(db, "events")
    assert (
        events.iloc[0]["step"] == 3 and "gru.l0/kernel/reset/backward" in events.iloc[0]["message"]
    )
    with pytest.raises(InputError, match="run 7 is not in") as err:
        rnnscope.history(db, run=7)
    assert (err.value.path, err.value.argument) == (str(db), "run")
    with pytest.raises(InputError, match="table must be one of") as err:
        rnnscope.history(db, "nope")
    assert (err.value.path, err.value.argument) == (str(db), "table")


def test_history_of_something_else_says_so(tmp_path):
    other = tmp_path / "x.db"
    other.write_bytes(b"not sqlite at all")
    with pytest.raises(FormatError, match="is not an SQLite database") as err:
        rnnscope.history(other)
    assert err.value.path == str(other)  # the file, as an attribute: callers never parse text
    with pytest.raises(InputError, match="does not exist") as err:
        rnnscope.history(tmp_path / "missing.db")
    assert err.value.path == str(tmp_path / "missing.db")
    with pytest.raises(FormatError, match="not a regular file") as err:
        rnnscope.history(tmp_path)
    assert err.value.path == str(tmp_path)
    import sqlite3

    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (a)").connection.commit()
    with pytest.raises(FormatError, match="not a monitor database") as err:
        rnnscope.history(foreign)
    assert err.value.path == str(foreign)


def test_plot_history_panels_lines_and_nan_marks(db):
    fig = rnnscope.plot.history(db, ["weight_norm", "grad_norm"])
    axes = [ax for ax in fig.axes if ax.get_lines()]
    assert len(axes) == 2 * 2  # 2 statistics x (kernel, recurrent kernel)
    h = rnnscope.history(db)
    ax = fig.axes[1]  # weight_norm row, recurrent kernel column? no: row 0, column 1
    assert ax.get_title() == "gru.l0: recurrent kernel"
    lines = [ln for ln in ax.get_lines() if ln.get_gid() != "nan-step"]
    assert len(lines) == 6 and sum(ln.get_linestyle() == "--" for ln in lines) == 3
    sub = h[(h.part == "recurrent_kernel") & (h.gate == "update") & (h.direction == "forward")]
    np.testing.assert_allclose(lines[0].get_ydata(), sub["weight_norm"].to_numpy())
    marks = [ln for ln in ax.get_lines() if ln.get_gid() == "nan-step"]
    assert [ln.get_xdata()[0] for ln in marks] == [3]
    with pytest.raises(InputError, match="unknown statistic"):
        rnnscope.plot.history(db, "loss")


def test_report_shows_the_run(db, tmp_path):
    html = rnnscope.report(db, out=tmp_path / "r.html").read_text()
    assert "Training history: run.db" in html and "first non-finite weights at step 3" in html
    assert html.count("data:image/webp;base64,") == 1  # WebP since issue #21


def test_command_line_plots_and_reports_a_run(db, tmp_path, capsys):
    from rnnscope._cli import main

    assert main(["plot", str(db), "--kind", "history", "-o", str(tmp_path / "h.png")]) == 0
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["report", str(db), "-o", str(tmp_path / "r.html")]) == 0
    assert "Training history" in (tmp_path / "r.html").read_text()
