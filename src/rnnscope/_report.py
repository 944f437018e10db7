"""``rnnscope.report``: one self-contained HTML file per set of models.

Built from a Jinja2 template with autoescape on: every string that comes from a file or a model
(file, layer and model names, notes) is escaped. Figures are embedded as PNG data; the page
loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import datetime as dt
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._columns import COLUMNS, REPORT_VIEW
from ._errors import InputError, require
from ._flags import Flag, Thresholds, by_severity, change_flags, flags_for
from ._format import cell
from ._model import RNNWeights
from ._monitor._history import is_database
from ._stats import record_rows
from ._tables import Progress, compare_table, read_all, warn_failed

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["build_report", "model_section", "report"]

_DPI = 72


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, pil_kwargs={"compress_level": 6})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _layer_figures(rec: RNNWeights) -> list[dict[str, str]]:
    from .plot import rnn_heatmap, rnn_histogram

    out = []
    for kind, draw in (("heatmap", rnn_heatmap), ("histograms", rnn_histogram)):
        figs = draw(rec)
        figs = figs if isinstance(figs, list) else [figs]
        for d, fig in zip(rec.directions, figs, strict=True):
            side = f", {d}" if rec.bidirectional else ""
            out.append({"caption": f"{rec.name}: {kind}{side}", "src": _png(fig)})
    return out


def model_section(source: Any, name: str, tol: float, figures: bool = True) -> dict[str, Any]:
    """Everything the report shows of one model (runs in workers; returns plain data)."""
    from ._api import resolve
    from ._io import Checkpoint, open_checkpoint
    from .plot._common import offscreen

    src_obj = open_checkpoint(source) if isinstance(source, (str, os.PathLike)) else source
    src = resolve(src_obj)
    info: dict[str, Any] = {"name": name, "source": src.name, "notes": list(src.notes)}
    if isinstance(src_obj, Checkpoint):
        info.update(path=src_obj.path, format=src_obj.format, framework=src_obj.framework)
    layers, rows, figs = [], [], []
    with offscreen():
        for ref in src.refs:
            shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in ref.info.shapes.items())
            layers.append(
                {
                    "name": ref.info.name,
                    "kind": ref.info.kind,
                    "params": ref.info.n_params,
                    "shapes": shapes,
                }
            )
            rec = ref.extract()
            rows += [{"model": name, **r, "tol": tol} for r in record_rows(rec, tol)]
            if figures and isinstance(rec, RNNWeights):
                figs += _layer_figures(rec)
    return {**info, "layers": layers, "rows": rows, "figures": figs}


def _overlay(table: Any) -> list[dict[str, str]]:
    """Per-gate L2 norms (and recurrent largest singular values) across the models."""
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(table["model"]))
    figs = []
    matrices = table[table["gate"] != ""]
    for layer, block in matrices.groupby("layer", sort=False):
        parts = list(dict.fromkeys(block["part"]))
        fig = Figure(figsize=(3.3 * len(parts) + 0.6, 3.2), layout="constrained")
        axes = fig.subplots(1, len(parts), squeeze=False)[0]
        for ax, part in zip(axes, parts, strict=True):
            sub = block[block["part"] == part]
            for (gate, direction), line in sub.groupby(["gate", "direction"], sort=False):
                y = line.set_index("model").reindex(models)["l2_norm"].to_numpy(float)
                style = "--" if direction == "backward" else "-"
                label = gate + (" (backward)" if direction == "backward" else "")
                ax.plot(range(len(models)), y, style, marker="o", markersize=3, label=label)
            ax.set_title(part.replace("_", " "), fontsize=10)
            ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=7)
            ax.set_ylabel("L2 norm", fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"Layer '{layer}': per-gate L2 norm across models", fontsize=11)
        figs.append({"caption": f"{layer}: per-gate L2 norms across models", "src": _png(fig)})
    rk = table[(table["part"] == "recurrent_kernel")].drop_duplicates(
        ["model", "layer", "direction"]
    )
    if len(rk) and len(models) > 1:
        fig = Figure(figsize=(6.0, 3.2), layout="constrained")
        ax = fig.subplots()
        for (layer, direction), line in rk.groupby(["layer", "direction"], sort=False):
            y = line.set_index("model").reindex(models)["matrix_spectral_norm"].to_numpy(float)
            ax.plot(
                range(len(models)),
                y,
                marker="o",
                markersize=3,
                label=f"{layer}" + (f" ({direction})" if direction != "forward" else ""),
            )
        ax.axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
        ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("largest singular value", fontsize=8)
        ax.legend(fontsize=7)
        fig.suptitle("Recurrent kernels (all gates): largest singular value", fontsize=11)
        figs.append(
            {"caption": "recurrent kernels: largest singular value across models", "src": _png(fig)}
        )
    return figs


def _render(context: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rnnscope", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = cell
    return env.get_template("report.html").render(**context)


def report(
    sources: Any,
    out: str | os.PathLike[str] = "report.html",
    names: Sequence[str] | None = None,
    *,
    tol: float = 1e-3,
    thresholds: Thresholds | None = None,
    baseline: int | str | None = None,
    title: str = "rnnscope report",
    figures: bool = True,
    compare: bool | None = None,
    executor: cf.Executor | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    recursive: bool = False,
    strict: bool = False,
) -> Path:
    """Write ONE self-contained HTML report of one or several models; return its path.

    Per model: source, layers, per-gate statistics, heatmaps and histograms of every recurrent
    layer, and flags with a one-line explanation each. For several models: comparison tables
    against ``baseline`` and figures of per-gate norms across them. A training monitor's
    database among the sources adds its run's history: per-gate norms over steps and events
    such as the first NaN.

    Args:
        sources, names, tol, executor, jobs, progress: as in :func:`rnnscope.stats`.
        out: the HTML file to write.
        thresholds: when statistics become flags (:class:`rnnscope.Thresholds`).
        baseline: the model the comparison is against: its name, or its index among the
            sources given (read or not); None, the first model read.
        title: the page title.
        figures: embed figures (off: tables and flags only).
        compare: compare the models (default: when there are several; False for unrelated
            models).
        recursive, strict: as in :func:`rnnscope.stats`. Sources that cannot be read (and
            folder entries left out) are listed in the report's "Not read" section, and one
            ``RuntimeWarning`` names the failed ones.

    Example:
        >>> rnnscope.report("checkpoints/", out="health.html", jobs=2).name
        'health.html'
    """
    path, failed, total = build_report(
        sources,
        out,
        names,
        tol=tol,
        thresholds=thresholds,
        baseline=baseline,
        title=title,
        figures=figures,
        compare=compare,
        executor=executor,
        jobs=jobs,
        progress=progress,
        recursive=recursive,
        strict=strict,
    )
    warn_failed(failed, total, f"the report's 'Not read' section ({path})")
    return path


def build_report(
    sources: Any,
    out: str | os.PathLike[str],
    names: Sequence[str] | None,
    *,
    tol: float,
    thresholds: Thresholds | None,
    baseline: int | str | None,
    title: str,
    figures: bool,
    compare: bool | None,
    executor: cf.Executor | None,
    jobs: int | None,
    progress: Progress | None,
    recursive: bool,
    strict: bool,
) -> tuple[Path, list[dict[str, str]], int]:
    """:func:`report`'s work: the path, the ``failed`` rows, and how many sources there were."""
    require("jinja2", "report", "rnnscope.report")
    require("pandas", "report", "rnnscope.report")
    if figures:
        require("matplotlib", "report", "rnnscope.report figures")
    import pandas as pd

    from ._tables import _tol

    t = thresholds or Thresholds()
    value = _tol(tol)
    items = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    databases = [s for s in items if isinstance(s, (str, os.PathLike)) and is_database(s)]
    rest = [s for s in items if not any(s is d for d in databases)]
    if names is not None and databases:
        raise InputError(
            "names= names checkpoints; give it without monitor databases", argument="names"
        )
    sections: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    given: list[str] = []
    if rest:
        sections, failed, given = read_all(
            model_section,
            rest,
            names,
            (value, figures),
            executor=executor,
            jobs=jobs,
            progress=progress,
            recursive=recursive,
            strict=strict,
        )
    table = pd.DataFrame([r for s in sections for r in s["rows"]], columns=COLUMNS)
    table.attrs.update(tol=value, failed=failed, sources=given)
    all_flags: list[Flag] = []
    for s in sections:
        s["flags"] = flags_for(s["rows"], t)
        all_flags += s["flags"]
    comparison: dict[str, Any] | None = None
    if len(sections) > 1 and compare is not False:
        cmp = compare_table(table, baseline)
        growth = change_flags(cmp.to_dict("records"), t)
        all_flags += growth
        comparison = _comparison(cmp, growth, figures, table)
    context = {
        "title": title,
        "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "version": _version(),
        "tol": value,
        "thresholds": t,
        "models": sections,
        "flags": by_severity(all_flags),
        "columns": REPORT_VIEW,
        "comparison": comparison,
        "failed": failed,
        "histories": [_history_section(Path(d), figures) for d in databases],
    }
    path = Path(out)
    try:
        path.write_text(_render(context), encoding="utf-8")
    except OSError as err:
        raise InputError(
            f"out: cannot write the report to '{path}': {err}", path=str(path), argument="out"
        ) from err
    total = len(sections) + sum(e["status"] == "failed" for e in failed)
    return path, failed, total


def _comparison(cmp: Any, growth: list[Flag], figures: bool, table: Any) -> dict[str, Any]:
    models = cmp.attrs["models"]
    rows = []
    for key, block in cmp.groupby(["layer", "part", "gate", "direction"], sort=False):
        by_model = block.set_index("model")
        cells = [
            {"value": by_model.at[m, "l2_norm"], "rel": by_model.at[m, "l2_norm_rel_change"]}
            for m in models
        ]
        rows.append({"key": key, "cells": cells})
    return {
        "baseline": cmp.attrs["baseline"],
        "baseline_note": cmp.attrs["baseline_note"],
        "models": models,
        "rows": rows,
        "flags": growth,
        "figures": _overlay(table) if figures else [],
    }


def _history_section(path: Path, figures: bool) -> dict[str, Any]:
    """A monitored run: its figure of per-gate norms over steps, its events, its last step."""
    from ._monitor._history import history
    from .plot import history as draw
    from .plot._common import offscreen

    runs = history(path, "runs")
    stats = history(path)
    events = history(path, "events")
    run = runs.iloc[-1].to_dict() if len(runs) else {}
    section: dict[str, Any] = {
        "name": path.name,
        "run": run,
        "events": events.to_dict("records"),
        "figures": [],
        "last": [],
    }
    if len(stats):
        last = stats[stats["step"] == stats["step"].max()]
        section["last"] = last.to_dict("records")
        section["steps"] = int(stats["step"].max())
        if figures:
            with offscreen():
                fig = draw(
                    stats.assign(),
                    what=[
                        w
                        for w in ("weight_norm", "grad_norm", "update_ratio")
                        if stats[w].notna().any()
                    ],
                )
                _mark_events(fig, events)
            section["figures"].append(
                {"caption": f"{path.name}: per-gate statistics over training", "src": _png(fig)}
            )
    return section


def _mark_events(fig: Any, events: Any) -> None:
    for step in sorted(set(events["step"])) if len(events) else []:
        for ax in fig.axes:
            ax.axvline(step, color="#b00020", linewidth=1)


def _version() -> str:
    from ._version import __version__

    return __version__
