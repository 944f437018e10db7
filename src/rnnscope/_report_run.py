"""What the report's first screen shows of a run: grouped findings with their trends, the index
of every checkpoint, the flags as CSV/JSON downloads, and the picker's script.

Plain data for the template (no figures): sparklines are small inline SVG paths, downloads are
``data:`` links, and the one script is allowed by its SHA-256 hash in the page's CSP.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from importlib import resources
from typing import Any

from ._flags import Flag
from ._report_groups import FlagGroup

__all__ = ["exports", "group_view", "model_index", "picker", "sparkline"]

_SPARK_W, _SPARK_H = 140, 24


def sparkline(xs: Sequence[float], ys: Sequence[float], x_range: tuple[float, float]) -> str:
    """An SVG path of ``ys`` over ``xs`` scaled into a 140x24 box (``x_range`` spans the run);
    a gap in ``xs`` (a point not adjacent to the previous one) starts a new stroke. Points with
    a NaN value are left out."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
    if not pts:
        return ""
    lo, hi = min(y for _, y in pts), max(y for _, y in pts)
    x0, x1 = x_range
    sx = (_SPARK_W - 4) / (x1 - x0) if x1 > x0 else 0.0
    sy = (_SPARK_H - 4) / (hi - lo) if hi > lo else 0.0
    out = []
    for x, y in pts:
        px = 2 + (x - x0) * sx if sx else _SPARK_W / 2
        py = _SPARK_H - 2 - (y - lo) * sy if sy else _SPARK_H / 2
        out.append(f"{px:.1f} {py:.1f}")
    return "M" + " L".join(out) if len(out) > 1 else f"M{out[0]} h0.1"


def _strokes(group: FlagGroup, x: Sequence[float], x_range: tuple[float, float]) -> list[str]:
    paths, pos = [], 0
    for first, last in group.runs:
        n = last - first + 1
        flags = group.flags[pos : pos + n]
        pos += n
        idx = group.models[pos - n : pos]
        paths.append(sparkline([x[i] for i in idx], [f.value for f in flags], x_range))
    return paths


def group_view(
    groups: Sequence[FlagGroup],
    names: Sequence[str],
    steps: Sequence[float] | None,
    unit: str = "step",
) -> list[dict[str, Any]]:
    """One row of the findings table per group: where it holds, its values, its trend."""
    x = list(steps) if steps is not None else [float(i) for i in range(len(names))]
    x_range = (x[0], x[-1]) if x else (0.0, 1.0)
    rows = []
    for g in groups:
        w = g.worst
        worst = g.flags[w]
        rows.append(
            {
                "severity": g.severity,
                "rule": g.rule,
                "where": g.where,
                "message": worst.message,
                "hint": worst.hint,
                "count": len(g.models),
                "stretches": len(g.runs),
                "first": names[g.models[0]],
                "last": names[g.models[-1]],
                "span": _span(g, names, steps, unit),
                "worst_model": names[g.models[w]],
                "trio": [g.flags[0].value, worst.value, g.flags[-1].value],
                "spark": _strokes(g, x, x_range),
                "spark_w": _SPARK_W,
                "spark_h": _SPARK_H,
            }
        )
    return rows


def _step(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else f"{s:g}"


def _span(
    g: FlagGroup, names: Sequence[str], steps: Sequence[float] | None, unit: str = "step"
) -> str:
    """Where a finding holds, as steps ("step 1650 to 2450") when known, else as names."""
    a, b = g.models[0], g.models[-1]
    if steps is not None:
        first, last = _step(steps[a]), _step(steps[b])
        return f"{unit} {first}" if a == b else f"{unit}s {first} to {last}"
    return names[a] if a == b else f"{names[a]} to {names[b]}"


def model_index(
    sections: Sequence[dict[str, Any]],
    steps: Sequence[float] | None,
    metrics: Any = None,
    rank_by: str | None = None,
    growth: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """One row per model for the compact table: its step, flag counts by severity (its own
    flags and the run's "changing fast" ones, ``growth``, as compare counts them), the largest
    recurrent singular value, the ranking metric, and why it has a full section (if it does)."""
    rows = []
    for i, s in enumerate(sections):
        counts = {sev: 0 for sev in ("error", "warning", "note")}
        for f in [*s["flags"], *(g for g in growth if g.model == s["name"])]:
            counts[f.severity] += 1
        sig = [r.get("matrix_spectral_norm") for r in s["rows"]]
        finite = [float(v) for v in sig if v is not None and v == v]
        metric = math.nan
        if metrics is not None and rank_by and rank_by in metrics.columns:
            got = metrics[rank_by].get(s["name"])
            metric = math.nan if got is None else float(got)
        rows.append(
            {
                "index": s["index"],
                "name": s["name"],
                "step": _step(steps[i]) if steps is not None else "",
                "counts": counts,
                "sigma": max(finite) if finite else math.nan,
                "metric": metric,
                "why": s.get("why", []),
            }
        )
    return rows


def _data_uri(text: str, mime: str) -> str:
    return f"data:{mime};charset=utf-8;base64," + base64.b64encode(text.encode()).decode("ascii")


def exports(flags: Sequence[Flag]) -> dict[str, str]:
    """Every flag (one per model and finding) as CSV and JSON text, and as ``data:`` links."""
    fields = ["severity", "model", "where", "rule", "value", "message", "hint"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    records = []
    for f in flags:
        d = asdict(f)
        d["value"] = None if math.isnan(d["value"]) else d["value"]
        records.append({k: d[k] for k in fields})
        w.writerow({**records[-1], "value": "" if d["value"] is None else repr(d["value"])})
    text = json.dumps(records, indent=1)
    return {
        "csv_text": buf.getvalue(),
        "json_text": text,
        "csv": _data_uri(buf.getvalue(), "text/csv"),
        "json": _data_uri(text, "application/json"),
    }


def picker() -> tuple[str, str]:
    """The picker's script and its SHA-256 (base64), for the CSP's ``script-src 'sha256-...'``."""
    script = resources.files("rnnscope").joinpath("templates/picker.js").read_text("utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode("ascii")
    return script, digest
