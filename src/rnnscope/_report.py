"""``rnnscope.report``: one self-contained HTML file per set of models.

Built from a Jinja2 template with autoescape on: every string that comes from a file or a model
(file, layer and model names, notes) is escaped. Figures are embedded as lossless WebP data (PNG
where Pillow cannot write WebP); the page loads nothing from anywhere.

At scale (hundreds of checkpoints) the work runs in two passes: statistics of every model
first, then figures only for the models that get a full section (:mod:`._report_groups`).
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import datetime as dt
import importlib
import io
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._columns import COLUMNS, REPORT_VIEW
from ._errors import InputError, RnnscopeError, require
from ._flags import Flag, Thresholds, by_severity, flags_for
from ._format import cell
from ._model import LayerWeights, RNNWeights
from ._monitor._history import is_database
from ._report_groups import group_flags, select_detail, steps_of
from ._report_run import exports, group_view, model_index, picker
from ._runs import RUN
from ._stats import record_rows
from ._tables import Progress, compare_table, read_all, warn_failed

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._cache import Cache
    from ._report_early import Early

__all__ = ["build_report", "model_section", "report"]

_DPI = 72
_SAMPLE = 20_000  # weights kept per recurrent layer and detailed model, for the ridgelines


def _png(fig: Figure) -> str:
    """``fig`` as a data URI: lossless WebP (2-3x smaller than PNG for these figures)."""
    from PIL import features

    buf = io.BytesIO()
    if not features.check("webp"):
        fig.savefig(buf, format="png", dpi=_DPI, pil_kwargs={"optimize": True})
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    fig.set_dpi(_DPI)
    canvas: Any = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    Image.fromarray(rgba).convert("RGB").save(buf, "WEBP", lossless=True, method=4)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _other_figures(rec: LayerWeights) -> list[dict[str, str]]:
    from .plot._convlstm import is_convlstm
    from .plot._layers import layer_figure

    if is_convlstm(rec):  # per-gate heatmap and histograms, as a recurrent layer's
        return _layer_figures(rec)

    fig = layer_figure(rec)
    return [] if fig is None else [{"caption": f"{rec.name}: weights", "src": _png(fig)}]


def _layer_figures(rec: RNNWeights | LayerWeights) -> list[dict[str, str]]:
    from .plot import rnn_heatmap, rnn_histogram

    out = []
    directions = rec.directions if isinstance(rec, RNNWeights) else ("forward",)
    for kind, draw in (("heatmap", rnn_heatmap), ("histograms", rnn_histogram)):
        figs = draw(rec)
        figs = figs if isinstance(figs, list) else [figs]
        for d, fig in zip(directions, figs, strict=True):
            side = f", {d}" if len(directions) == 2 else ""
            out.append({"caption": f"{rec.name}: {kind}{side}", "src": _png(fig)})
    return out


def model_section(
    source: Any, name: str, tol: float, figures: bool = True, sample: int = 0, stats: bool = True
) -> dict[str, Any]:
    """Everything the report shows of one model (runs in workers; returns plain data).

    ``sample``: also keep up to this many of each recurrent layer's weights (a fixed-seed random
    choice, all of them when fewer), for the histograms across checkpoints. ``stats=False``
    leaves the statistics rows out (``rows`` is empty): the report's figure pass, whose rows
    the first pass already has.
    """
    from ._api import resolve
    from ._io import Checkpoint, is_remote, open_checkpoint
    from .plot._common import offscreen

    is_file = isinstance(source, (str, os.PathLike)) or is_remote(source)
    src_obj = open_checkpoint(source) if is_file else source
    src = resolve(src_obj)
    info: dict[str, Any] = {"name": name, "source": src.name, "notes": list(src.notes)}
    if isinstance(src_obj, Checkpoint):
        info.update(path=src_obj.path, format=src_obj.format, framework=src_obj.framework)
    layers, rows, figs = [], [], []
    samples: dict[str, Any] = {}
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
            if stats:
                rows += [{"model": name, **r, "tol": tol} for r in record_rows(rec, tol)]
            if figures and isinstance(rec, RNNWeights):
                figs += _layer_figures(rec)
            elif figures and isinstance(rec, LayerWeights):
                figs += _other_figures(rec)
            if sample and isinstance(rec, RNNWeights):
                samples[rec.name] = _sample(rec, sample)
    return {**info, "layers": layers, "rows": rows, "figures": figs, "samples": samples}


def _sample(rec: RNNWeights, n: int) -> Any:
    import numpy as np

    flat = np.concatenate([np.ravel(a) for _, _, _, a in rec.blocks()]).astype("f4")
    if flat.size <= n:
        return flat
    return flat[np.random.default_rng(0).choice(flat.size, n, replace=False)]


def _run_figures(
    table: Any,
    names: list[str],
    steps: list[float] | None,
    unit: str = "step",
    thresholds: Thresholds | None = None,
    ordered: bool = True,
) -> list[dict[str, str]]:
    """The run at a glance: every gate block through the checkpoints, then per-gate L2 norms
    and the recurrent kernels' largest singular values with steps on x (variants: points, as
    they have no order)."""
    from .plot._common import offscreen
    from .plot._runs import run_heatmap, run_lines

    out = []
    with offscreen():
        heat = run_heatmap(table, names, steps, unit=unit, ordered=ordered)
        if heat is not None:
            what = "through the run" if ordered else "in each variant against the first"
            out.append({"caption": f"every gate block {what}", "src": _png(heat)})
        for fig in run_lines(table, names, steps, unit, thresholds, ordered=ordered):
            title = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
            out.append({"caption": title or "the checkpoints", "src": _png(fig)})
    return out


def _drawn_digest(drawn: tuple[Any, ...]) -> str:
    """A hash of exactly what :func:`_run_figures` draws: the statistics table (columns, types
    and every value, row by row) and its other arguments."""
    import hashlib

    import pandas as pd

    table, *rest = drawn
    h = hashlib.sha256()
    h.update(repr([(str(c), str(table[c].dtype)) for c in table.columns]).encode("utf-8"))
    h.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    h.update(repr((rest, _DPI)).encode("utf-8"))
    return h.hexdigest()


def _kept_run_figures(
    cache: Cache | None, out: str | os.PathLike[str], drawn: tuple[Any, ...]
) -> list[dict[str, str]]:
    """:func:`_run_figures` of ``drawn``, taken from the results cache when this report (its
    output path) was last built from the same data: a rerun that found nothing new draws
    nothing. One entry per output file, replaced when the data change (not counted as a file
    found or read)."""
    if cache is None:
        return _run_figures(*drawn)
    from ._cache import Identity

    digest = _drawn_digest(drawn)
    ident = Identity(f"{os.path.abspath(os.fspath(out))}\nrun figures", digest)
    counts = cache.hits, cache.computed
    try:
        got = cache.get(ident, "run figures", _run_figures, ())
        if got is None:
            got = _run_figures(*drawn)
            cache.put(ident, "run figures", _run_figures, (), got, time.time_ns())
    finally:
        cache.hits, cache.computed = counts
    return list(got)


def _ridgelines(sections: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Per recurrent layer, its weights' histograms at the detailed checkpoints, stacked."""
    from .plot._common import offscreen
    from .plot._runs import ridgeline

    layers = list(dict.fromkeys(k for s in sections for k in s.get("samples", {})))
    out = []
    with offscreen():
        for layer in layers:
            got = [(s["name"], s["samples"][layer]) for s in sections if layer in s["samples"]]
            if len(got) < 2:
                continue
            caption = f"Layer '{layer}': weight histograms at the detailed checkpoints"
            out.append({"caption": caption, "src": _png(ridgeline(got, f"'{layer}': weights"))})
    return out


def _render(template: str, context: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rnnscope", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = cell
    return env.get_template(template).render(**context)


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
    run: bool | None = None,
    metrics: Any = None,
    rank_by: str | None = None,
    metrics_offset: int | None = None,
    detail: str | Sequence[str] = (),
    inputs: Any = None,
    tokens: Any = None,
    attributions: Any = None,
    cache: Any = None,
) -> Path:
    """Write ONE self-contained HTML report of one or several models; return its path.

    First the findings, one row per (finding, place) across every model: where it holds, its
    values at the first, worst and last checkpoints, a trend line and the severity reached (all
    flags in a collapsible table, and as CSV/JSON downloads). Then, for several models, the run
    in figures (every gate block through the checkpoints, per-gate norms and recurrent singular
    values with steps on x, weight histograms at the detailed checkpoints stacked) and an index
    of every model with a search box. Full sections (layers, statistics, figures of every
    layer) only for the models worth it: first, last, the worst of each finding, where one
    appears or stops holding, and ``detail``. A training monitor's database among the sources
    adds its run's history: per-gate norms over steps and events such as the first NaN.

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
        run, metrics, rank_by, metrics_offset: as in :func:`rnnscope.compare`: read the
            checkpoints as a training run or as variants (the comparison's heading says which),
            show training metrics beside them, and rank them by one ("which to keep").
        detail: more models to show in full: names, globs (``"*epoch1?*"``), or ``"all"``.
        inputs: an input for the models: adds an attributions section (integrated gradients
            of each runnable model's predicted class: live Keras/torch models and ``.keras``/
            ``.h5`` files) and an explorer page beside the report, linked from it.
        tokens: with integer token ``inputs``: one word per timestep per sample, shown
            coloured by attribution.
        attributions: with ``inputs``: options of :func:`rnnscope.attributions` for the
            section (``method``, ``target``, ``n_steps``, ``rule``, ``window``, ``stride``,
            ``n_samples``, ``stdev``, ``absolute``, ``internal_batch_size``), as a dict, checked
            before any model is read; the section's caption names them.
        cache: as in :func:`rnnscope.stats`: each file's statistics and figures are kept, so a
            rerun over a folder with one new checkpoint reads and draws only that one.

    ``out`` naming a folder (ending with ``/`` or existing) writes ``index.html`` there, one
    self-contained page per model shown in full, and ``flags.csv``/``flags.json``.

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
        run=run,
        metrics=metrics,
        rank_by=rank_by,
        metrics_offset=metrics_offset,
        detail=detail,
        inputs=inputs,
        tokens=tokens,
        attributions=attributions,
        cache=cache,
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
    run: bool | None = None,
    metrics: Any = None,
    rank_by: str | None = None,
    metrics_offset: int | None = None,
    detail: str | Sequence[str] = (),
    inputs: Any = None,
    tokens: Any = None,
    attributions: Any = None,
    cache: Any = None,
) -> tuple[Path, list[dict[str, str]], int]:
    """:func:`report`'s work: the path, the ``failed`` rows, and how many sources there were."""
    from ._cache import open_cache

    store = open_cache(cache)
    early = None
    try:
        if figures and sources is not None:  # the last checkpoint's figures, drawn meanwhile
            early = _start_early(sources, names, recursive, _tol_of(tol), store, jobs, executor)
        return _build(
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
            run=run,
            metrics=metrics,
            rank_by=rank_by,
            metrics_offset=metrics_offset,
            detail=detail,
            inputs=inputs,
            tokens=tokens,
            attributions=attributions,
            cache=store,
            early=early,
        )
    finally:
        if early is not None:
            early.close()
        if store is not None:
            store.close()


def _tol_of(tol: float) -> float:
    from ._tables import _tol

    return _tol(tol)


def _start_early(
    sources: Any,
    names: Sequence[str] | None,
    recursive: bool,
    tol: float,
    cache: Cache | None,
    jobs: int | None,
    executor: cf.Executor | None,
) -> Early | None:
    """The last checkpoint's figures started in a worker (:mod:`._report_early`), or None."""
    from ._io import is_remote
    from ._report_early import start
    from ._tables import collect_sources

    if executor is not None or cache is None or not _several(jobs):
        return None  # bad jobs= values are refused by the statistics pass, with a message
    items = [sources] if not isinstance(sources, (list, tuple)) or is_remote(sources) else sources
    files = [s for s in items if not (isinstance(s, (str, os.PathLike)) and is_database(s))]
    try:
        pairs, _ = collect_sources(files, names, recursive)
    except RnnscopeError:
        return None  # the statistics pass meets the same problem and reports it
    return start(model_section, pairs, _figure_args(tol), cache, jobs)


def _several(jobs: Any) -> bool:
    """``jobs`` asks for worker processes (bad values are refused later, with a message)."""
    return isinstance(jobs, int) and not isinstance(jobs, bool) and jobs > 1


def _figure_args(tol: float) -> tuple[Any, ...]:
    """The figure pass's arguments of :func:`model_section`: figures and samples, no rows (the
    first pass has them)."""
    return (tol, True, _SAMPLE, False)


def _build(
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
    run: bool | None,
    metrics: Any,
    rank_by: str | None,
    metrics_offset: int | None,
    detail: str | Sequence[str],
    inputs: Any,
    tokens: Any,
    attributions: Any,
    cache: Cache | None,
    early: Early | None = None,
) -> tuple[Path, list[dict[str, str]], int]:
    require("jinja2", "report", "rnnscope.report")
    require("pandas", "report", "rnnscope.report")
    if figures:
        require("matplotlib", "report", "rnnscope.report figures")
    from ._tables import _tol

    options: dict[str, Any] = {}
    if attributions is not None and inputs is None:
        raise InputError(
            "attributions: options for the attributions section need inputs= as well",
            argument="attributions",
        )
    if inputs is not None:  # bad tokens and options fail before any model is read
        from ._report_attributions import check_options, check_words

        check_words(tokens, inputs)
        options = check_options(attributions, inputs)
    t = thresholds or Thresholds()
    value = _tol(tol)
    picks = [detail] if isinstance(detail, str) else list(detail)
    from ._io import is_remote

    one = not isinstance(sources, (list, tuple)) or is_remote(sources)  # (fs, path) is one
    items = [sources] if one else list(sources)
    databases = [s for s in items if isinstance(s, (str, os.PathLike)) and is_database(s)]
    rest = [s for s in items if not any(s is d for d in databases)]
    if names is not None and databases:
        raise InputError(
            "names= names checkpoints; give it without monitor databases", argument="names"
        )
    sections: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    given: list[str] = []
    warm = _warm(figures) if executor is None and _several(jobs) else None
    if rest:  # pass 1: statistics of every model, no figures
        sections, failed, given = read_all(
            model_section,
            rest,
            names,
            (value, False),
            executor=executor,
            jobs=jobs,
            progress=progress,
            recursive=recursive,
            strict=strict,
            cache=cache,
        )
    if warm is not None:
        warm.join()
    import pandas as pd

    table = pd.DataFrame([r for s in sections for r in s["rows"]], columns=COLUMNS)
    table.attrs.update(tol=value, failed=failed, sources=given)
    all_flags: list[Flag] = []
    for s in sections:
        s["flags"] = flags_for(s["rows"], t)
        all_flags += s["flags"]
    model_names = [s["name"] for s in sections]
    comparison: dict[str, Any] | None = None
    growth: list[Flag] = []
    runs = {"run": run, "metrics": metrics, "rank_by": rank_by, "metrics_offset": metrics_offset}
    comparing = len(sections) > 1 and compare is not False
    base = baseline if comparing else None
    # flags are computed once: the sections' are counted by compare, which appends a run's
    # "changing fast" flags to the list
    counted = list(all_flags)
    cmp = compare_table(table, base, **runs, thresholds=t, flags=counted) if sections else None
    if cmp is not None and comparing:
        growth = counted[len(all_flags) :]  # empty for variants: only between steps of a run
        all_flags += growth
        comparison = _comparison(cmp, growth)
    model_metrics, ranking = _model_metrics(cmp)
    context: dict[str, Any] = {
        "title": title,
        "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "version": _version(),
        "tol": value,
        "thresholds": t,
        "columns": REPORT_VIEW,
        "failed": failed,
        "model_metrics": model_metrics,  # indexed by model: step, one column per metric
        "rank_by": rank_by,
        "ranking": ranking,  # models, best first ([] without rank_by)
    }
    metrics, rank_by = context.get("model_metrics"), context.get("rank_by")
    steps = steps_of(model_names, metrics)
    unit = (cmp.attrs.get("counter") if cmp is not None else "") or "step"  # epoch or step
    groups = group_flags(all_flags, model_names)
    chosen = select_detail(model_names, groups, metrics=metrics, rank_by=rank_by, detail=picks)
    if figures and sections:  # pass 2: figures of the detailed models only
        if comparison is not None:  # drawn while the early worker may still be drawing
            ordered = cmp is None or cmp.attrs.get("mode") == RUN  # variants: no order
            drawn = (table, model_names, steps, unit, t, ordered)
            comparison["figures"] = _kept_run_figures(cache, out, drawn)
        _add_figures(sections, chosen, rest, names, value, executor, jobs, recursive, cache, early)
        if comparison is not None:
            comparison["figures"] += _ridgelines([s for s in sections if s["name"] in chosen])
    for i, s in enumerate(sections):
        s["index"], s["why"] = i + 1, chosen.get(s["name"], [])
        s["columns"], s["alpha_note"] = _columns_of(s["rows"])
    if comparison is not None:
        comparison["models"] = [m for m in comparison["models"] if m in chosen]
        _trim_cells(comparison)
    script, script_hash = picker()
    context.update(
        script=script,
        script_hash=script_hash,
        models=sections,
        detailed=[s for s in sections if s["why"]],
        flags=by_severity(all_flags),
        groups=group_view(groups, model_names, steps, unit),
        unit=unit,
        index=model_index(sections, steps, metrics, rank_by, growth),
        steps=steps,
        exports=exports(all_flags),
        comparison=comparison,
        histories=[_history_section(Path(d), figures) for d in databases],
        attributions=_attributions(rest, inputs, out, tokens, options),
    )
    path = _write(out, context)
    total = len(sections) + sum(e["status"] == "failed" for e in failed)
    return path, failed, total


def _warm(figures: bool) -> threading.Thread:
    """Import the page's libraries in a thread while the first pass waits for its workers (a
    rerun's few seconds of imports then cost nothing). An import that fails there is raised
    again, with its message, where the library is first used."""

    def run() -> None:
        libs = ["pandas", "jinja2"]
        libs += ["matplotlib.figure", "matplotlib.backends.backend_agg", "PIL.Image"] * figures
        for lib in libs:
            try:
                importlib.import_module(lib)
            except ImportError:
                return

    thread = threading.Thread(target=run, name="rnnscope-imports", daemon=True)
    thread.start()
    return thread


def _attributions(
    sources: list[Any], inputs: Any, out: Any, tokens: Any, options: dict[str, Any]
) -> str:
    """The attributions section's HTML, or "" without inputs."""
    if inputs is None:
        return ""
    require("matplotlib", "report", "rnnscope.report attributions")
    from ._report_attributions import attributions_section

    return attributions_section(sources, inputs, out, _png, tokens, options=options)


def _add_figures(
    sections: list[dict[str, Any]],
    chosen: dict[str, list[str]],
    rest: list[Any],
    names: Sequence[str] | None,
    tol: float,
    executor: cf.Executor | None,
    jobs: int | None,
    recursive: bool,
    cache: Cache | None = None,
    early: Early | None = None,
) -> None:
    """Figures (and weight samples) of the chosen models, read again in a second pass (the
    last one's may have been drawn meanwhile: ``early``)."""
    from ._report_early import finish
    from ._tables import collect_sources, run_sources

    args = _figure_args(tol)
    by_name = finish(early, cache, model_section, args)
    pairs, _ = collect_sources(rest, names, recursive)
    wanted = [(n, src) for n, src in pairs if n in chosen and n not in by_name]
    done, _ = run_sources(model_section, wanted, args, executor, jobs, None, cache=cache)
    by_name.update({d["name"]: d for d in done})
    for s in sections:
        got = by_name.get(s["name"])
        s["figures"] = got["figures"] if got else []
        s["samples"] = got["samples"] if got else {}


def _columns_of(rows: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], str]:
    """The statistics columns to show, without alpha when it is empty on every row (and why)."""
    alphas = [r.get("alpha") for r in rows]
    if any(a is not None and a == a for a in alphas):
        return REPORT_VIEW, ""
    notes = sorted({str(r.get("alpha_note") or "") for r in rows} - {""})
    why = "; ".join(notes) if notes else "no matrix"
    return [c for c in REPORT_VIEW if c[0] != "alpha"], why


def _trim_cells(comparison: dict[str, Any]) -> None:
    keep = set(comparison["models"])
    for row in comparison["rows"]:
        row["cells"] = [c for c in row["cells"] if c["model"] in keep]


def _write(out: str | os.PathLike[str], context: dict[str, Any]) -> Path:
    """One file, or (``path`` a folder: ends with a separator or exists as one) ``index.html``
    plus one page per detailed model, each self-contained, and the flags as CSV and JSON."""
    path = Path(out)
    folder = os.fspath(out).endswith(("/", os.sep)) or path.is_dir()
    try:
        if not folder:
            _replace(path, _render("report.html", {**context, "pages": False}))
            return path
        path.mkdir(parents=True, exist_ok=True)
        for m in context["detailed"]:  # the pages first, the index linking them last
            page = path / f"model-{m['index']}.html"
            _replace(page, _render("model.html", {**context, "m": m}))
        _replace(path / "flags.csv", context["exports"]["csv_text"])
        _replace(path / "flags.json", context["exports"]["json_text"])
        index = path / "index.html"
        _replace(index, _render("report.html", {**context, "pages": True}))
        return index
    except OSError as err:
        raise InputError(
            f"out: cannot write the report to '{path}': {err}", path=str(path), argument="out"
        ) from err


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a file beside ``path``, then rename it over ``path``: a reader (a
    browser reload during ``--watch``) sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _comparison(cmp: Any, growth: list[Flag]) -> dict[str, Any]:
    models = cmp.attrs["models"]
    rows = []
    keys = ["layer", "part", "gate", "direction"]
    bare = cmp[[*keys, "model", "l2_norm", "l2_norm_rel_change"]]
    bare.attrs = {}  # pandas deep-copies attrs on every lookup: 60 % of a 100-model report
    for key, block in bare.groupby(keys, sort=False):
        value = dict(zip(block["model"], block["l2_norm"].to_numpy(), strict=True))
        rel = dict(zip(block["model"], block["l2_norm_rel_change"].to_numpy(), strict=True))
        cells = [{"model": m, "value": value[m], "rel": rel[m]} for m in models]
        rows.append({"key": key, "cells": cells})
    return {
        "mode": cmp.attrs["mode"],
        "mode_note": cmp.attrs["mode_note"],
        "keep": cmp.attrs["keep"],
        "checkpoints": {r["model"]: r for r in cmp.attrs["checkpoints"]},
        "metrics": cmp.attrs["metrics"],
        "checkpoint_rows": ["step", *cmp.attrs["metrics"], "errors", "warnings"]
        + (["rank"] if cmp.attrs["rank_by"] else []),
        "metrics_notes": cmp.attrs["metrics_notes"],
        "baseline": cmp.attrs["baseline"],
        "baseline_note": cmp.attrs["baseline_note"],
        "models": models,
        "n_models": len(models),
        "rows": rows,
        "flags": growth,
        "figures": [],
    }


def _model_metrics(cmp: Any) -> tuple[Any, list[str]]:
    """The report context's ``model_metrics`` (indexed by model: ``step`` and one column per
    metric) and the models in rank order (empty without ``rank_by``)."""
    import pandas as pd

    if cmp is None:
        return pd.DataFrame(columns=["step"], index=pd.Index([], name="model")), []
    recs = cmp.attrs["checkpoints"]
    frame = pd.DataFrame(recs, columns=["model", "step", *cmp.attrs["metrics"]])
    frame = frame.set_index("model").reindex(cmp.attrs["models"])  # the models' order
    frame["step"] = frame["step"].astype("Int64")
    ranked = (
        [r["model"] for r in sorted(recs, key=lambda r: r["rank"])] if cmp.attrs["rank_by"] else []
    )
    return frame, ranked


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
