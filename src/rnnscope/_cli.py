"""The ``rnnscope`` command line (also ``python -m rnnscope``).

Tables go to stdout (rich tables when rich is installed, plain text otherwise); progress bars,
the list of sources not read, and errors to stderr. With ``--csv``/``--json`` stdout holds the
machine output only. Exit codes: 0 everything done, 1 done with sources that could not be read,
2 nothing done (an error: one line, a traceback with --debug).
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._cache import CacheNote
from ._columns import CLI_VIEW
from ._errors import InputError, RnnscopeError
from ._format import cell, plain

__all__ = ["main"]

OK, PARTIAL, ERROR = 0, 1, 2
INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def _layer_key(text: str | None) -> str | int | None:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _has_rich() -> bool:
    return importlib.util.find_spec("rich") is not None


def _print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[cell(v) for v in r] for r in rows]
    title = plain(title, None)
    if _has_rich():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text  # names are data: no markup taken from them

        table = Table(title=Text(title), title_justify="left", header_style="bold")
        for i, h in enumerate(headers):
            numeric = any(isinstance(r[i], (int, float)) for r in rows if r[i] is not None)
            table.add_column(h, justify="right" if numeric else "left", no_wrap=True)
        for r in cells:
            table.add_row(*(Text(c) for c in r))
        wide = None if sys.stdout.isatty() else 220  # files and pipes get every column
        Console(width=wide).print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A progress bar over files on stderr (rich), or nothing for a single file."""
    if total < 2 or not _has_rich():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[name]}", markup=False),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total, name="")

        def tick(done: int, _total: int, name: str) -> None:
            bar.update(task, completed=done, name=plain(name))

        yield tick


def _count(args: argparse.Namespace) -> int:
    from ._tables import collect_sources

    return len(collect_sources(list(args.paths), None, args.recursive)[0])


def _report_failed(failed: list[dict[str, str]]) -> int:
    """List the sources not read on stderr; the exit code they give."""
    bad = [e for e in failed if e["status"] == "failed"]
    skipped = [e for e in failed if e["status"] == "skipped"]
    if bad:
        print(f"rnnscope: {len(bad)} source(s) could not be read:", file=sys.stderr)
        for e in bad:
            print(f"  failed   {plain(e['name'])}: {plain(e['reason'], None)}", file=sys.stderr)
    if skipped:
        entries = "entry" if len(skipped) == 1 else "entries"
        print(f"rnnscope: {len(skipped)} folder {entries} left out:", file=sys.stderr)
        for e in skipped:
            print(f"  skipped  {plain(e['name'])}: {plain(e['reason'], None)}", file=sys.stderr)
    return PARTIAL if bad else OK


def _write_frame(df: Any, csv: str | None, json: str | None) -> None:
    """``--csv``/``--json``: to the file named, or to stdout for ``-``."""
    target = csv or json
    if not target:
        return
    try:
        if target == "-":
            if csv:
                df.to_csv(sys.stdout, index=False)
            else:
                sys.stdout.write(df.to_json(orient="records", indent=1) + "\n")
            return
        if csv:
            df.to_csv(target, index=False)
        else:
            df.to_json(target, orient="records", indent=1)
    except OSError as err:
        raise InputError(f"cannot write '{target}': {err}") from err
    print(f"wrote {len(df)} rows to {target}", file=sys.stderr)


def _print_flags(flags: list[Any], stream: Any = None) -> None:
    """Flags most serious first, one line each, with what to look at next below it."""
    from ._flags import by_severity

    for f in by_severity(flags):
        # message and hint can quote names from the file (layers, models): escaped like them
        line = f"{f.severity}: {plain(f.model)}: {plain(f.where, None)}: {plain(f.message, None)}"
        print(line, file=stream or sys.stdout)
        if f.hint:
            print(f"  next: {plain(f.hint, None)}", file=stream or sys.stdout)


def _model_flags(df: Any) -> list[Any]:
    """The flags of every model of a ``stats`` frame."""
    from ._flags import Thresholds, flags_for

    t = Thresholds()
    rows = df.to_dict("records")
    models = list(dict.fromkeys(r["model"] for r in rows))
    return [f for m in models for f in flags_for([r for r in rows if r["model"] == m], t)]


def _machine(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "csv", None) or getattr(args, "json", None))


def _cmd_stats(args: argparse.Namespace) -> int:
    from ._tables import stats

    with _progress(_count(args), "statistics") as tick:
        df = stats(
            args.paths,
            tol=args.tol,
            jobs=args.jobs,
            progress=tick,
            recursive=args.recursive,
            strict=args.strict,
            cache=_cache(args),
        )
    _cache_notes(df.attrs["cache"])
    rows = [[r[k] for k, _ in CLI_VIEW] for r in df.to_dict("records")]
    shown = not _machine(args) or (args.show and "-" not in (args.csv, args.json))
    if shown:
        _print_table(
            f"per-gate statistics (near 0: |w| < {args.tol:g})", [h for _, h in CLI_VIEW], rows
        )
    _write_frame(df, args.csv, args.json)
    _print_flags(_model_flags(df), None if shown else sys.stderr)
    return _report_failed(df.attrs["failed"])


def _cmd_compare(args: argparse.Namespace) -> int:
    from ._flags import Thresholds, change_flags
    from ._tables import compare

    with _progress(_count(args), "statistics") as tick:
        df = compare(
            args.paths,
            baseline=_layer_key(args.baseline),
            tol=args.tol,
            jobs=args.jobs,
            progress=tick,
            recursive=args.recursive,
            strict=args.strict,
            run=args.as_run,
            metrics=args.metrics,
            rank_by=args.rank_by,
            metrics_offset=args.metrics_offset,
            cache=_cache(args),
        )
    _cache_notes(df.attrs["cache"])
    run = df.attrs["mode"] == "run"  # "changing fast" compares consecutive steps of a run only
    flags = change_flags(df.to_dict("records"), Thresholds()) if run else []
    if df.attrs["baseline_note"]:
        print(f"rnnscope: baseline: {plain(df.attrs['baseline_note'], None)}", file=sys.stderr)
    if _machine(args):  # stdout is the machine output; the findings go to stderr
        _write_frame(df, args.csv, args.json)
        for line in _run_lines(df):
            print(line, file=sys.stderr)
        _print_flags(flags, sys.stderr)
        return _report_failed(df.attrs["failed"])
    models = df.attrs["models"]
    headers = ["layer", "part", "gate", "dir", *models]
    rows = []
    for key, block in df.groupby(["layer", "part", "gate", "direction"], sort=False):
        by = block.set_index("model")
        cells: list[Any] = list(key)
        for m in models:
            v, rel = by.at[m, "l2_norm"], by.at[m, "l2_norm_rel_change"]
            if not by.at[m, "present"]:
                cells.append("missing")
            elif m == df.attrs["baseline"] or cell(rel) == "":
                cells.append(cell(v))
            else:
                cells.append(f"{cell(v)} ({rel:+.0%})")
        rows.append(cells)
    _print_table(f"L2 norm per block; change against {df.attrs['baseline']}", headers, rows)
    _print_checkpoints(df)
    for line in _run_lines(df):
        print(line)
    _print_flags(flags)
    return _report_failed(df.attrs["failed"])


def _print_checkpoints(df: Any) -> None:
    """The per-checkpoint table: step, metrics, flag counts (and rank), in compare's order."""
    recs = df.attrs["checkpoints"]
    ranked = df.attrs.get("rank_by") is not None
    if ranked:
        recs = sorted(recs, key=lambda r: r["rank"])
    keys = ["step", *df.attrs["metrics"], "errors", "warnings", "notes"] + (["rank"] * ranked)
    what = "metrics and flags" if df.attrs["metrics"] else "flags"
    title = f"checkpoints: {what}" + (f", ranked by {df.attrs['rank_by']}" if ranked else "")
    rows = [[plain(r["model"]), *(r.get(k) for k in keys)] for r in recs]
    _print_table(title, ["model", *keys], rows)


def _run_lines(df: Any) -> list[str]:
    """The run/variants line, how metrics were matched, and the "which to keep" line."""
    lines = [plain(df.attrs["mode_note"], None)]
    notes = df.attrs["step_notes"]
    if notes:
        more = f" (and {len(notes) - 1} more like it)" if len(notes) > 1 else ""
        lines.append(f"  numbers in names: {plain(notes[0], None)}{more}")
    lines += [f"  {plain(n, None)}" for n in df.attrs["metrics_notes"]]
    if df.attrs["keep"]:
        lines.append(plain(df.attrs["keep"], None))
    return lines


def _cache(args: argparse.Namespace) -> Any:
    """The ``cache=`` argument for ``--cache PATH`` / ``--no-cache``: a ``Cache`` or False."""
    from ._cache import open_cache

    return (None if args.no_cache else open_cache(args.cache)) or False


def _cache_notes(summary: dict[str, Any] | None) -> None:
    for note in (summary or {}).get("notes", []):
        print(f"rnnscope: note: cache: {plain(note, None)}", file=sys.stderr)


def _cmd_cache(args: argparse.Namespace) -> int:
    from ._cache import ENV, Cache, default_path, turned_off

    if args.cache is None and turned_off():
        raise InputError(f"the cache is off (${ENV}); name a database with --cache PATH")
    path = Path(args.cache).expanduser() if args.cache else default_path()
    path = path / "results.sqlite" if path.is_dir() else path
    if not path.is_file():
        print(f"no results database at {plain(str(path), None)}")
        return OK
    store = Cache(path)
    try:
        if args.clear:
            print(f"removed {store.clear():,} entries from {plain(str(path), None)}")
        elif args.prune:
            n = store.prune(args.days)
            gone = n["other_versions"] + n["missing_files"] + n["unused"]
            print(
                f"removed {gone:,} entries ({n['other_versions']:,} of other versions, "
                f"{n['missing_files']:,} of files that are gone, {n['unused']:,} unused for "
                f"{args.days:g} days); {n['kept']:,} kept; "
                f"{_mb(n['bytes_before'])} -> {_mb(n['bytes_after'])}"
            )
        else:
            c = store.contents()
            old = c["oldest_use"]
            age = "" if old is None else f"; least recently used {old / 86400:.1f} days ago"
            print(
                f"{plain(str(path), None)}: {c['entries']:,} entries, {c['current']:,} of these "
                f"versions; {_mb(c['bytes'])}{age}"
            )
    except OSError as err:
        store.notes.clear()  # one message: the error says why
        raise InputError(f"--cache: cannot use '{path}': {err}", path=str(path)) from err
    finally:
        _cache_notes(store.summary())
        store.close()
    return OK


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _cmd_report(args: argparse.Namespace) -> int:
    if args.tokens is not None and args.input is None:
        raise InputError("--tokens: give the token ids with --input as well")
    # read once, before any model, so a bad input file fails first (and once under --watch)
    args.input_data = None if args.input is None else _load_input(args.input, tokens=True)
    args.tokens_data = None if args.tokens is None else _load_tokens(args.tokens)
    args.attr_options = _attr_options(args)
    cache = _cache(args)
    if args.watch:
        from ._watch import watch

        def once(paths: list[str], names: list[str], store: Any) -> str:
            out, failed = _report_once(args, paths, names, store, None)
            _report_failed(failed)
            return str(out)

        return watch(args, cache, once)
    with _progress(_count(args), "models") as tick:
        out, failed = _report_once(args, args.paths, None, cache, tick)
    print(f"wrote {out}")
    return _report_failed(failed)


_ATTR_FLAGS = {
    "method": "method",
    "target": "target",
    "steps": "n_steps",
    "rule": "rule",
    "window": "window",
    "stride": "stride",
}


def _attr_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--attr-*`` as the report's ``attributions=`` options (None if none is given), checked
    against ``--input`` before any model is read; errors name the flag."""
    from ._cli_parser import _target
    from ._report_attributions import check_options

    given = {k: getattr(args, f"attr_{k}") for k in _ATTR_FLAGS}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return None
    if args.input_data is None:
        flags = ", ".join(f"--attr-{k}" for k in given)
        raise InputError(f"{flags}: options of the attributions section; give --input as well")
    options: dict[str, Any] = {}
    for k, text in given.items():
        value: Any = text
        if k == "target":
            try:
                value = _target(text)
            except argparse.ArgumentTypeError as err:
                raise InputError(f"--attr-target: {err}", argument="--attr-target") from None
        elif k in ("steps", "window", "stride"):
            try:
                value = int(text)
            except ValueError:
                raise InputError(
                    f"--attr-{k}: expected a whole number; got {text!r}", argument=f"--attr-{k}"
                ) from None
        options[_ATTR_FLAGS[k]] = value
    flag = {v: f"--attr-{k}" for k, v in _ATTR_FLAGS.items()}
    return check_options(options, args.input_data, label=lambda key: flag[key])


def _report_once(
    args: argparse.Namespace, paths: list[str], names: list[str] | None, cache: Any, tick: Any
) -> tuple[Path, list[dict[str, str]]]:
    from ._report import build_report

    out, failed, _ = build_report(
        paths,
        args.out,
        names,
        tol=args.tol,
        thresholds=None,
        baseline=_layer_key(args.baseline),
        title=args.title,
        figures=not args.no_figures,
        compare=None,
        executor=None,
        jobs=args.jobs,
        progress=tick,
        recursive=args.recursive and names is None,
        strict=args.strict,
        run=args.as_run,
        metrics=args.metrics,
        rank_by=args.rank_by,
        metrics_offset=args.metrics_offset,
        detail=args.detail,
        inputs=args.input_data,
        tokens=args.tokens_data,
        attributions=args.attr_options,
        cache=cache,
    )
    if cache:
        _cache_notes(cache.summary())
        cache.notes.clear()
    return out, failed


def _cmd_plot(args: argparse.Namespace) -> int:
    import numpy as np

    from . import plot
    from ._api import rnn_weights
    from ._trace import run_trace
    from .plot._common import offscreen

    layer = _layer_key(args.layer)
    written = [args.out]
    with offscreen():
        if args.kind == "history":
            layers = None if args.layer is None else [args.layer]
            plot.history(args.path, layers=layers, run=args.run_id, savepath=args.out)
        elif args.kind in ("heatmap", "histogram"):
            draw = plot.rnn_heatmap if args.kind == "heatmap" else plot.rnn_histogram
            figs = draw(args.path, layer, direction=args.direction, savepath=args.out)
            if isinstance(figs, list):  # one file per direction
                stem = Path(args.out)
                written = [
                    str(stem.with_name(f"{stem.stem}_{d}{stem.suffix}"))
                    for d in ("forward", "backward")
                ]
        else:
            w = rnn_weights(args.path, layer)
            if args.input:
                x = _load_input(args.input)
            else:
                x = np.random.default_rng(0).normal(size=(1, args.timesteps, w.input_dim))
                print(
                    f"no --input: traced one random N(0, 1) sequence of {args.timesteps} steps",
                    file=sys.stderr,
                )
            if not 0 <= args.sample < len(x):
                raise InputError(
                    f"--sample {args.sample}: the input holds {len(x)} sample(s) "
                    f"(0 to {len(x) - 1})"
                )
            t = run_trace(w, x.astype(w.arrays[("kernel", "forward")].dtype, copy=False))
            dirs = None if args.direction is None else [args.direction]
            plot.trace_plot(t, sample=args.sample, directions=dirs, savepath=args.out)
    print(f"wrote {len(written)} file{'s' if len(written) > 1 else ''}: " + ", ".join(written))
    return OK


def _cmd_attributions(args: argparse.Namespace) -> int:
    from ._attributions import attributions
    from ._attributions_fw import load_keras_model

    x = _load_input(args.input, tokens=True)
    model = load_keras_model(args.path)
    a = attributions(
        model,
        x if x.dtype.kind in "iu" else x.astype("float32", copy=False),
        target=args.target,
        method=args.method,
        n_steps=args.n_steps,
        window=args.window,
        stride=args.stride,
    )
    assert not isinstance(a, list)  # a loaded single-input model, one array
    if args.json:
        record = {
            "method": a.method,
            "target": a.target,
            "settings": a.settings,
            "values": a.values.tolist(),
            "per_timestep": a.per_timestep.tolist(),
            "per_timestep_abs": a.per_timestep_abs.tolist(),
            "per_feature": a.per_feature.tolist(),
            "delta": None if a.delta is None else a.delta.tolist(),
        }
        _write_json([record], args.json)
    if args.json != "-":
        rows = [
            [t, f"{s:.4g}", f"{m:.4g}"]
            for t, (s, m) in enumerate(
                zip(a.per_timestep.mean(0), a.per_timestep_abs.mean(0), strict=True)
            )
        ]
        _print_table(
            f"{a.method} of {args.path}, mean over {len(x)} sample(s)",
            ["timestep", "signed", "absolute"],
            rows,
        )
        if a.delta is not None:
            print(f"convergence delta: max |delta| {abs(a.delta).max():.3g}")
    if args.out:
        if not 0 <= args.sample < len(x):
            raise InputError(f"--sample {args.sample}: the input holds {len(x)} sample(s)")
        from . import plot
        from .plot._common import offscreen

        with offscreen():
            plot.attributions(a, sample=args.sample, savepath=args.out)
        print(f"wrote 1 file: {args.out}")
    return OK


_NPY, _NPZ = b"\x93NUMPY", b"PK\x03\x04"


def _load_tokens(path: str) -> list[list[str]]:
    """``--tokens``: a UTF-8 text file, one sample per line, its words separated by spaces."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--tokens '{path}': cannot read it as UTF-8 text: {err}") from err
    return [line.split() for line in text.splitlines() if line.strip()]


def _load_input(path: str, tokens: bool = False) -> Any:
    """``--input``: a ``.npy``/``.npz`` array, ``(batch, time, features)`` (one sample may omit
    the batch); with ``tokens``, integer arrays are token ids, ``(batch, time)`` or ``(time,)``."""
    import numpy as np

    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError as err:
        raise InputError(f"--input '{path}': cannot read it: {err.strerror or err}") from err
    if not (head.startswith(_NPY) or head.startswith(_NPZ)):
        raise InputError(
            f"--input '{path}': expected a .npy or .npz array file (numpy.save / numpy.savez); "
            f"it starts with {head!r}. Convert text first, e.g. "
            "numpy.save('x.npy', numpy.loadtxt('x.txt'))"
        )
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(
            f"--input '{path}': expected a .npy or .npz of numbers (no pickled objects): {err}"
        ) from err
    if hasattr(data, "files"):
        if len(data.files) != 1:
            raise InputError(
                f"--input '{path}': the .npz holds {len(data.files)} arrays "
                f"({', '.join(data.files)}); give a file with one"
            )
        data = data[data.files[0]]
    if tokens and data.dtype.kind in "iu" and data.ndim in (1, 2):
        return data if data.ndim == 2 else data[None]
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputError(
            f"--input '{path}': expected (batch, time, features); got shape {data.shape}"
        )
    return data


def _text_lines(path: str, option: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [line.rstrip("\r\n") for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{option} '{path}': cannot read it as UTF-8 text: {err}") from err


def _cmd_explore(args: argparse.Namespace) -> int:
    from ._explore import explore

    x = _load_input(args.input)
    tokens = None
    if args.tokens:
        tokens = [line.split() for line in _text_lines(args.tokens, "--tokens")]
        if len(tokens) != len(x):
            raise InputError(
                f"--tokens '{args.tokens}': {len(tokens)} non-empty line(s); expected one per "
                f"sample of --input ({len(x)})"
            )
        for i, row in enumerate(tokens):
            if len(row) != x.shape[1]:
                raise InputError(
                    f"--tokens '{args.tokens}': line {i + 1} has {len(row)} token(s); expected "
                    f"one per timestep of --input ({x.shape[1]})"
                )
    labels = _text_lines(args.labels, "--labels") if args.labels else None
    signals = [s.strip() for s in args.signals.split(",")] if args.signals else None
    out = explore(
        args.path,
        x,
        layer=_layer_key(args.layer),
        labels=labels,
        tokens=tokens,
        out=args.out,
        signals=signals,
        threshold=args.threshold,
        max_mb=args.max_mb,
    )
    kept = ", ".join(f"{n} ({d})" for n, d in out.signals)
    print(f"wrote {out.path} ({out.path.stat().st_size / 1e6:.1f} MB, {out.encoding}: {kept})")
    return OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import demo_paths, run_demo

    if args.path:
        print(demo_paths()[args.path])
        return OK
    run_demo(args.out, report=True)
    return OK


def _each_file(args: argparse.Namespace, fn: Callable[[str, str], Any]) -> tuple[list[Any], int]:
    """``fn(name, path)`` per file of ``args.paths`` (folders expanded), carrying on past files
    that fail (unless --strict or a single file); the results and the exit code."""
    from ._parallel import call
    from ._tables import collect_sources

    pairs, left = collect_sources(list(args.paths), None, args.recursive)
    strict = args.strict or (len(pairs) == 1 and not left)
    results, failed = [], list(left)
    for name, path in pairs:
        ok, value = call(lambda src, nm: fn(nm, src), path, name, (), strict)
        if ok:
            results.append(value)
        else:
            failed.append(
                {
                    "name": name,
                    "source": path,
                    "status": "failed",
                    "error": value[0],
                    "reason": value[1],
                }
            )
    failed.sort(key=lambda e: e["status"])
    code = _report_failed(failed)
    if not results:
        raise InputError(f"none of the {len(pairs)} files could be read")
    return results, code


def _json(records: list[dict[str, Any]]) -> str:
    """Strict JSON: a NaN or infinite statistic is null (as in ``stats --json``; the
    ``nans``/``infs`` counts say why), never the ``NaN``/``Infinity`` JSON parsers refuse."""
    import json
    import math

    def finite(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    clean = [{k: finite(v) for k, v in r.items()} for r in records]
    return json.dumps(clean, indent=1, default=str, allow_nan=False)


def _write_json(records: list[dict[str, Any]], target: str) -> None:
    """``--json``: to stdout for ``-``, else to the file named (listed on stderr)."""
    text = _json(records) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    try:
        Path(target).write_text(text, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write '{target}': {err}") from err
    print(f"wrote {len(records)} records to {target}", file=sys.stderr)


def _cmd_summary(args: argparse.Namespace) -> int:
    import dataclasses

    from ._summary import summary

    layer = _layer_key(args.layer)

    def one(name: str, path: str) -> Any:
        s = summary(path, layer=layer, quiet=True)
        if layer is not None:  # that layer's notes, and the file's own
            names = {r.layer for r in s.rows}
            keep = tuple(
                n for n in s.notes if "layer '" not in n or any(f"'{x}'" in n for x in names)
            )
            s = dataclasses.replace(s, notes=keep)
        return name, s

    results, code = _each_file(args, one)
    if args.json:
        records = [{"model": name, **r} for name, s in results for r in s.records()]
        _write_json(records, args.json)
        return code
    for i, (_, s) in enumerate(results):
        print(("\n" if i else "") + str(s))
    return code


def _cmd_layers(args: argparse.Namespace) -> int:
    from ._api import layers

    results, code = _each_file(args, lambda name, path: (name, layers(path)))
    if args.json:
        records = [
            {
                "model": name,
                "layer": i.name,
                "kind": i.kind,
                "params": i.n_params,
                "shapes": {k: list(v) for k, v in i.shapes.items()},
            }
            for name, infos in results
            for i in infos
        ]
        _write_json(records, args.json)
        return code
    for name, infos in results:
        if len(results) > 1:
            print(f"== {plain(name)}")
        for info in infos:
            shapes = ", ".join(f"{k} {tuple(v)}" for k, v in info.shapes.items())
            print(f"{plain(info.name)}\t{info.kind}\t{info.n_params} params\t{plain(shapes, None)}")
    return code


def _parser() -> argparse.ArgumentParser:
    from ._cli_parser import build

    commands = {
        "demo": _cmd_demo,
        "summary": _cmd_summary,
        "layers": _cmd_layers,
        "stats": _cmd_stats,
        "compare": _cmd_compare,
        "report": _cmd_report,
        "plot": _cmd_plot,
        "explore": _cmd_explore,
        "attributions": _cmd_attributions,
        "cache": _cmd_cache,
    }
    return build(commands)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 partial, 2 error, 130 interrupted).

    Run as the program (``argv`` None), a Ctrl-C after the command finished is ignored: the
    interpreter's shutdown would print it as a traceback, though the work is done.
    """
    try:
        return _main(argv)
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv: Sequence[str] | None) -> int:
    import warnings

    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        if getattr(args, "out", None) and args.command in (
            "plot",
            "report",
            "explore",
            "attributions",
        ):
            parent = Path(args.out).parent
            if not parent.is_dir():
                raise InputError(f"-o: folder '{parent}' does not exist")
        with warnings.catch_warnings():  # the CLI lists the sources not read itself
            warnings.filterwarnings("ignore", r"\d+ of \d+ sources could not be read")
            warnings.filterwarnings("ignore", category=CacheNote)  # printed as notes
            code: int = args.run(args)
    except RnnscopeError as err:
        if debug:
            raise
        print(f"rnnscope: error: {err}", file=sys.stderr)
        return ERROR
    except BrokenPipeError:  # output piped into head and the like
        return OK
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's code for SIGINT
        if debug:
            raise
        print("rnnscope: interrupted", file=sys.stderr)
        return INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
