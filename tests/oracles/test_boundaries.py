"""Boundaries and columns: NaN and Inf counted in their own columns in every table (stats,
summary, the monitor's history, the report), and the near-zero tolerance at its exact boundary.

The README defines near zero as ``|w| < tol`` (strict): a weight equal to ``tol`` is not near
zero, the largest float below it is. Counts here are chosen distinct (2 NaN, 3 Inf) so that any
swap or merge of the two columns changes a number."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

import rnnscope

pd = pytest.importorskip("pandas")

U, F = 2, 3
TOL = 1e-3
BELOW, ABOVE = np.nextafter(TOL, 0.0), np.nextafter(TOL, 1.0)


def _poisoned() -> rnnscope.RNNWeights:
    """An LSTM record: 2 NaN in the forget block of the kernel, 3 Inf (one negative) in the cell
    block of the recurrent kernel; canonical columns are input, forget, cell, output."""
    rng = np.random.default_rng(0)
    k = rng.normal(size=(F, 4 * U)) + 2.0  # nothing near zero
    rk = rng.normal(size=(U, 4 * U)) + 2.0
    k[0, U + 0] = k[2, U + 1] = np.nan
    rk[0, 2 * U] = rk[1, 2 * U] = np.inf
    rk[1, 2 * U + 1] = -np.inf
    return rnnscope.RNNWeights.from_arrays("lstm", "LSTM", {"kernel": k, "recurrent_kernel": rk})


EXPECTED = {("kernel", "forget"): (2, 0), ("recurrent_kernel", "cell"): (0, 3)}


def _expected(part: str, gate: str) -> tuple[int, int]:
    return EXPECTED.get((part, gate), (0, 0))


def test_stats_counts_nan_and_inf_apart():
    df = rnnscope.stats(_poisoned())
    assert len(df) == 8
    for r in df.itertuples():
        assert (r.nan, r.inf) == _expected(r.part, r.gate), (r.part, r.gate)


def test_summary_counts_nan_and_inf_apart():
    s = rnnscope.summary(_poisoned(), quiet=True)
    assert len(s.rows) == 8
    for r in s.rows:
        assert (r.nans, r.infs) == _expected(r.part, r.gate), (r.part, r.gate)
    lines = str(s).splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"})
    assert lines[rule - 1].split()[-2:] == ["nan", "inf"]
    seen = 0
    for line in lines[rule + 1 :]:
        cells = line.split()  # layer and kind are printed once per layer; count from the right
        if len(cells) < 10 or not cells[-1].isdigit():
            continue
        part, gate, nan, inf = cells[-10], cells[-9], int(cells[-2]), int(cells[-1])
        assert (nan, inf) == _expected(part, gate), line
        seen += 1
    assert seen == 8, str(s)


class _Tables(HTMLParser):
    """Every <table> of a page as a list of rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _table_with(html: str, *headers: str) -> list[dict[str, str]]:
    p = _Tables()
    p.feed(html)
    for table in p.tables:
        if table and all(h in table[0] for h in headers):
            return [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    raise AssertionError(f"no table with columns {headers}")


def test_report_table_counts_nan_and_inf_apart(tmp_path):
    pytest.importorskip("jinja2")
    out = rnnscope.report(_poisoned(), tmp_path / "r.html", figures=False)
    rows = _table_with(out.read_text("utf-8"), "part", "gate", "NaN", "Inf")
    assert len(rows) == 8
    for r in rows:
        assert (int(r["NaN"]), int(r["Inf"])) == _expected(r["part"], r["gate"]), r


def test_monitor_history_and_report_count_nan_and_inf_apart(tmp_path):
    torch = pytest.importorskip("torch")
    from rnnscope.torch import Monitor

    torch.manual_seed(0)
    net = torch.nn.LSTM(F, U, batch_first=True)
    out, _ = net(torch.randn(4, 5, F))
    out.square().mean().backward()
    with torch.no_grad():  # torch rows: input, forget, cell (g), output
        net.weight_ih_l0[U + 1, 0] = float("nan")  # forget
        net.weight_ih_l0[U + 0, 2] = float("nan")
        net.weight_hh_l0[2 * U, 1] = float("inf")  # cell
        net.weight_hh_l0[2 * U + 1, 0] = float("-inf")
        net.weight_hh_l0[2 * U + 1, 1] = float("inf")
        net.weight_ih_l0.grad[3 * U, 0] = float("inf")  # output: one Inf in the gradient
        net.bias_hh_l0.grad[0] = float("nan")  # input: one NaN
        net.bias_hh_l0.grad[1] = float("-inf")  # and one Inf
    db = tmp_path / "run.db"
    with pytest.warns(RuntimeWarning, match="non-finite"), Monitor(net, db, every=1) as mon:
        mon.step()
    h = rnnscope.history(db)
    assert len(h) == 16  # kernel, recurrent kernel, two biases x 4 gates
    grads = {("kernel", "output"): (0, 1), ("recurrent_bias", "input"): (1, 1)}
    for r in h.itertuples():
        assert (r.nan, r.inf) == _expected(r.part, r.gate), (r.part, r.gate)
        assert (r.grad_nan, r.grad_inf) == grads.get((r.part, r.gate), (0, 0)), (r.part, r.gate)
    pytest.importorskip("jinja2")
    page = rnnscope.report(db, tmp_path / "r.html", figures=False).read_text("utf-8")
    rows = _table_with(page, "part", "gate", "weight norm", "NaN", "Inf")
    assert len(rows) == 16
    for r in rows:
        assert (int(float(r["NaN"])), int(float(r["Inf"]))) == _expected(r["part"], r["gate"])


def _boundary_block() -> np.ndarray:
    """(F, 4U) kernel whose forget block holds, of its 6 entries, exactly 3 below ``tol``."""
    k = np.full((F, 4 * U), 0.5)
    k[:, U : 2 * U] = [[TOL, -TOL], [BELOW, -BELOW], [ABOVE, 0.0]]  # below: BELOW, -BELOW, 0
    return k


def test_near_zero_is_strictly_below_tol_in_stats():
    assert BELOW < TOL < ABOVE
    rec = rnnscope.RNNWeights.from_arrays(
        "lstm", "LSTM", {"kernel": _boundary_block(), "recurrent_kernel": np.full((U, 4 * U), 0.5)}
    )
    df = rnnscope.stats(rec, tol=TOL).set_index(["part", "gate"])
    assert df.loc[("kernel", "forget"), "frac_near_zero"] == 3 / 6
    assert df.loc[("kernel", "input"), "frac_near_zero"] == 0.0
    assert df.loc[("kernel", "forget"), "tol"] == TOL


def test_dead_units_use_the_same_strict_boundary():
    # unit 0: every incoming weight exactly tol (alive); unit 1: every one just below (dead)
    k = np.zeros((F, 4 * U))
    rk = np.zeros((U, 4 * U))
    for a in (k, rk):
        a[:, 0::U] = TOL
        a[:, 1::U] = -BELOW
    rec = rnnscope.RNNWeights.from_arrays("lstm", "LSTM", {"kernel": k, "recurrent_kernel": rk})
    df = rnnscope.stats(rec, tol=TOL)
    assert set(df["dead_units"]) == {1}
    k[:, 1::U] = -TOL  # now every weight sits at tol: no unit is dead
    rk[:, 1::U] = -TOL
    rec = rnnscope.RNNWeights.from_arrays("lstm", "LSTM", {"kernel": k, "recurrent_kernel": rk})
    assert set(rnnscope.stats(rec, tol=TOL)["dead_units"]) == {0}


def test_near_zero_boundary_in_the_monitor(tmp_path):
    torch = pytest.importorskip("torch")
    from rnnscope.torch import Monitor

    net = torch.nn.LSTM(F, U, batch_first=True).double()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
        # torch's forget rows of weight_ih are the canonical kernel's forget columns, transposed
        net.weight_ih_l0[U : 2 * U] = torch.from_numpy(_boundary_block()[:, U : 2 * U].T.copy())
    db = tmp_path / "run.db"
    with Monitor(net, db, every=1, tol=TOL) as mon:
        mon.step()
    h = rnnscope.history(db).set_index(["part", "gate"])
    assert h.loc[("kernel", "forget"), "frac_near_zero"] == 3 / 6
    assert h.loc[("kernel", "input"), "frac_near_zero"] == 0.0


def test_readme_states_the_strict_boundary():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    assert re.search(r"\|w\\?\| < tol", readme), "the README's near-zero definition changed"
