"""The one table of statistics columns: each column's public name and where it is shown.

``rnnscope.stats``/``compare`` (DataFrame, CSV, JSON), the ``rnnscope stats`` table, the HTML
report, ``rnnscope.summary`` and the monitor database all read their column lists from
:data:`STATS_COLUMNS`, so a column is added or renamed in one place. Columns that come from the
element statistics row (:class:`rnnscope._stats.BlockStats`) name its field in ``row``; the other
outputs map that field to their own public names here (``nan`` is ``nans`` in
:class:`rnnscope.SummaryRow`, ``l2_norm`` is ``weight_norm`` in the monitor database).
No imports: every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CLI_VIEW",
    "COLUMNS",
    "COMPARED",
    "KEY",
    "MONITOR_GRAD_ROW",
    "MONITOR_ROW",
    "REPORT_VIEW",
    "STATS_COLUMNS",
    "SUMMARY_ROW",
    "Column",
]


@dataclass(frozen=True)
class Column:
    """One column of the statistics table.

    Attributes:
        name: the public name in ``stats``/``compare`` frames, CSV and JSON.
        cli: the header in the ``rnnscope stats`` table; ``""`` when not shown there.
        report: the header in the HTML report's table; ``""`` when not shown there.
        compared: ``compare`` adds ``<name>_change`` and ``<name>_rel_change`` for it.
        row: the :class:`~rnnscope._stats.BlockStats` field it holds; ``""`` when it is not one.
        summary: the :class:`~rnnscope.SummaryRow` field of the same value; ``""`` when none.
        monitor: the monitor database's column of the same value of the weights; ``""`` when
            none.
        monitor_grad: the monitor database's column of the same value of the gradients.
    """

    name: str
    cli: str = ""
    report: str = ""
    compared: bool = False
    row: str = ""
    summary: str = ""
    monitor: str = ""
    monitor_grad: str = ""


def _stat(name: str, cli: str = "", report: str = "", **where: str | bool) -> Column:
    """A column read from the statistics row under its own name."""
    return Column(name, cli, report, row=name, **where)  # type: ignore[arg-type]


_SIGMA = "\N{GREEK SMALL LETTER SIGMA}"
STATS_COLUMNS: tuple[Column, ...] = (
    Column("model", cli="model"),
    Column("layer", "layer", "layer"),
    Column("part", "part", "part"),
    Column("gate", "gate", "gate"),
    Column("direction", "dir", "direction"),
    Column("kind"),
    Column("shape", "shape", "shape"),
    _stat("size"),
    _stat("mean", "mean", "mean", compared=True, summary="mean", monitor="mean"),
    _stat("std", "std", "std", compared=True, summary="std", monitor="std"),
    _stat("min", summary="min"),
    _stat("max", summary="max"),
    _stat("abs_max", "|w| max", "|w| max", compared=True, monitor="abs_max"),
    _stat("l2_norm", "L2", "L2", compared=True, monitor="weight_norm", monitor_grad="grad_norm"),
    _stat("frac_zero"),
    _stat("frac_near_zero", "near 0", "near 0", compared=True, monitor="frac_near_zero"),
    Column("tol"),
    _stat(
        "nan", "NaN", "NaN", compared=True, summary="nans", monitor="nan", monitor_grad="grad_nan"
    ),
    _stat(
        "inf", "Inf", "Inf", compared=True, summary="infs", monitor="inf", monitor_grad="grad_inf"
    ),
    Column("units"),
    Column("dead_units", "dead", "dead", compared=True),
    Column("saturated_units", compared=True),
    Column("spectral_norm", "sigma max", f"{_SIGMA} max", compared=True),
    Column("stable_rank", report="stable rank", compared=True),
    Column("alpha", "alpha", "\N{GREEK SMALL LETTER ALPHA}", compared=True),
    Column("alpha_note"),
    Column("matrix_spectral_norm", report=f"{_SIGMA} max (all gates)", compared=True),
    Column("matrix_min_singular", compared=True),
    Column("approx"),
)
"""Every column of a ``stats`` frame, in frame order."""

KEY = ["layer", "part", "gate", "direction"]
"""The columns naming a block."""
COLUMNS = [c.name for c in STATS_COLUMNS]
"""The ``stats`` frame's columns, in order."""
COMPARED = [c.name for c in STATS_COLUMNS if c.compared]
"""The columns ``compare`` computes changes of."""
CLI_VIEW = [(c.name, c.cli) for c in STATS_COLUMNS if c.cli]
"""``(column, header)`` of the ``rnnscope stats`` table."""
REPORT_VIEW = [(c.name, c.report) for c in STATS_COLUMNS if c.report]
"""``(column, header)`` of the report's statistics table."""
SUMMARY_ROW = {c.row: c.summary for c in STATS_COLUMNS if c.summary}
"""BlockStats field -> :class:`~rnnscope.SummaryRow` field."""
MONITOR_ROW = {c.row: c.monitor for c in STATS_COLUMNS if c.monitor}
"""BlockStats field -> monitor database column (statistics of the weights)."""
MONITOR_GRAD_ROW = {c.row: c.monitor_grad for c in STATS_COLUMNS if c.monitor_grad}
"""BlockStats field -> monitor database column (statistics of the gradients)."""
