"""The one column table: the public column names and headers it yields are the ones the
outputs have always had (written out here), and its name maps land on real fields."""

from __future__ import annotations

from dataclasses import fields

from rnnscope import SummaryRow
from rnnscope._columns import (
    CLI_VIEW,
    COLUMNS,
    COMPARED,
    KEY,
    MONITOR_GRAD_ROW,
    MONITOR_ROW,
    REPORT_VIEW,
    SUMMARY_ROW,
)
from rnnscope._monitor._schema import STAT_COLUMNS
from rnnscope._stats import BlockStats


def test_stats_frame_columns_and_compared_columns():
    assert KEY == ["layer", "part", "gate", "direction"]
    assert (
        COLUMNS
        == (
            "model layer part gate direction kind shape size mean std min max abs_max l2_norm "
            "frac_zero frac_near_zero tol nan inf units dead_units saturated_units spectral_norm "
            "stable_rank alpha alpha_note matrix_spectral_norm matrix_min_singular approx"
        ).split()
    )
    assert (
        COMPARED
        == (
            "mean std abs_max l2_norm frac_near_zero nan inf dead_units saturated_units "
            "spectral_norm stable_rank alpha matrix_spectral_norm matrix_min_singular"
        ).split()
    )


def test_cli_and_report_views():
    assert [h for _, h in CLI_VIEW] == [
        *"model layer part gate dir shape mean std".split(),
        *("|w| max", "L2", "near 0", "NaN", "Inf", "dead", "sigma max", "alpha"),
    ]
    assert [k for k, _ in REPORT_VIEW] == (
        "layer part gate direction shape mean std abs_max l2_norm frac_near_zero nan inf "
        "dead_units spectral_norm stable_rank alpha matrix_spectral_norm"
    ).split()
    assert dict(REPORT_VIEW)["matrix_spectral_norm"] == "\u03c3 max (all gates)"
    assert set(k for k, _ in CLI_VIEW) <= set(COLUMNS)


def test_row_name_maps_land_on_real_fields():
    row = {f.name for f in fields(BlockStats)}
    assert set(SUMMARY_ROW) <= row and set(MONITOR_ROW) <= row and set(MONITOR_GRAD_ROW) <= row
    assert SUMMARY_ROW == {
        "mean": "mean",
        "std": "std",
        "min": "min",
        "max": "max",
        "nan": "nans",
        "inf": "infs",
    }
    assert set(SUMMARY_ROW.values()) <= {f.name for f in fields(SummaryRow)}
    assert MONITOR_ROW["l2_norm"] == "weight_norm" and MONITOR_GRAD_ROW["l2_norm"] == "grad_norm"
    assert set(MONITOR_ROW.values()) | set(MONITOR_GRAD_ROW.values()) <= set(STAT_COLUMNS)
