"""The ``rnnscope`` command line.

Tables go to stdout (rich tables when rich is installed, plain text otherwise); progress bars and
errors to stderr. Bad input gives a one-line error and exit code 2 (a traceback with --debug).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._errors import InputError, RnnscopeError
from ._format import cell

__all__ = ["main"]

_STATS_VIEW = [
    ("model", "model"),
    ("layer", "layer"),
    ("part", "part"),
    ("gate", "gate"),
    ("direction", "dir"),
    ("shape", "shape"),
    ("mean", "mean"),
    ("std", "std"),
    ("abs_max", "|w| max"),
    ("l2_norm", "L2"),
    ("frac_near_zero", "near 0"),
    ("nan", "NaN"),
    ("inf", "Inf"),
    ("dead_units", "dead"),
    ("spectral_norm", "sigma max"),
    ("alpha", "alpha"),
]


def _layer_key(text: str | None) -> str | int | None:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _has_rich() -> bool:
    return importlib.util.find_spec("rich") is not None


def _print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[cell(v) for v in r] for r in rows]
    if _has_rich():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", header_style="bold")
        for i, h in enumerate(headers):
            numeric = any(isinstance(r[i], (int, float)) for r in rows if r[i] is not None)
            table.add_column(h, justify="right" if numeric else "left", no_wrap=True)
        for r in cells:
            table.add_row(*r)
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
        TextColumn("{task.fields[name]}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total, name="")

        def tick(done: int, _total: int, name: str) -> None:
            bar.update(task, completed=done, name=name)

        yield tick


def _count(paths: Sequence[str]) -> int:
    from ._tables import expand_sources

    return len(expand_sources(list(paths), None))


def _write_frame(df: Any, csv: str | None, json: str | None) -> None:
    try:
        if csv:
            df.to_csv(csv, index=False)
            print(f"wrote {len(df)} rows to {csv}", file=sys.stderr)
        if json:
            df.to_json(json, orient="records", indent=1)
            print(f"wrote {len(df)} rows to {json}", file=sys.stderr)
    except OSError as err:
        raise InputError(f"cannot write '{csv or json}': {err}") from err


def _cmd_stats(args: argparse.Namespace) -> None:
    from ._tables import stats

    with _progress(_count(args.paths), "statistics") as tick:
        df = stats(args.paths, tol=args.tol, jobs=args.jobs, progress=tick)
    rows = [[r[k] for k, _ in _STATS_VIEW] for r in df.to_dict("records")]
    if not (args.csv or args.json) or args.show:
        _print_table(
            f"per-gate statistics (near 0: |w| < {args.tol:g})", [h for _, h in _STATS_VIEW], rows
        )
    _write_frame(df, args.csv, args.json)


def _cmd_compare(args: argparse.Namespace) -> None:
    from ._flags import Thresholds, change_flags
    from ._tables import compare

    with _progress(_count(args.paths), "statistics") as tick:
        df = compare(
            args.paths,
            baseline=_layer_key(args.baseline) or 0,
            tol=args.tol,
            jobs=args.jobs,
            progress=tick,
        )
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
    for f in change_flags(df.to_dict("records"), Thresholds()):
        print(f"{f.severity}: {f.model}: {f.where}: {f.message}")
    _write_frame(df, args.csv, args.json)


def _cmd_report(args: argparse.Namespace) -> None:
    from ._report import report

    with _progress(_count(args.paths), "models") as tick:
        out = report(
            args.paths,
            out=args.out,
            tol=args.tol,
            jobs=args.jobs,
            progress=tick,
            baseline=_layer_key(args.baseline) or 0,
            title=args.title,
            figures=not args.no_figures,
        )
    print(f"wrote {out}")


def _cmd_plot(args: argparse.Namespace) -> None:
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
            plot.history(args.path, layers=layers, savepath=args.out)
        elif args.kind in ("heatmap", "histogram"):
            draw = plot.rnn_heatmap if args.kind == "heatmap" else plot.rnn_histogram
            figs = draw(args.path, layer, direction=args.direction, savepath=args.out)
            if isinstance(figs, list):
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
            t = run_trace(w, x.astype(w.arrays[("kernel", "forward")].dtype, copy=False))
            dirs = None if args.direction is None else [args.direction]
            plot.trace_plot(t, sample=args.sample, directions=dirs, savepath=args.out)
    print("wrote " + ", ".join(written))


def _load_input(path: str) -> Any:
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"--input '{path}': expected a .npy or .npz array file: {err}") from err
    if hasattr(data, "files"):
        if len(data.files) != 1:
            raise InputError(
                f"--input '{path}': the .npz holds {len(data.files)} arrays "
                f"({', '.join(data.files)}); give a file with one"
            )
        data = data[data.files[0]]
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputError(
            f"--input '{path}': expected (batch, time, features); got shape {data.shape}"
        )
    return data


def _cmd_demo(args: argparse.Namespace) -> None:
    from ._demo import run_demo

    run_demo(args.out, report=True)


def _cmd_summary(args: argparse.Namespace) -> None:
    from ._summary import summary

    summary(args.path, layer=_layer_key(args.layer))


def _cmd_layers(args: argparse.Namespace) -> None:
    from ._api import layers
    from ._format import plain

    for info in layers(args.path):
        shapes = ", ".join(f"{k} {tuple(v)}" for k, v in info.shapes.items())
        print(f"{plain(info.name)}\t{info.kind}\t{info.n_params} params\t{plain(shapes, None)}")


def _jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help="read and analyse this many files in parallel (processes)",
    )
    p.add_argument(
        "--tol", type=float, default=1e-3, help="near-zero threshold: |w| < tol (default 1e-3)"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnscope",
        description="See inside recurrent networks, "
        "gate by gate, from live models or checkpoint files.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "demo",
        help="the bundled LSTM and bidirectional GRU: tables, traces, figures and the HTML report",
    )
    d.add_argument(
        "-o",
        "--out",
        default="rnnscope-demo",
        help="folder for the summaries, traces, figures and report (default: rnnscope-demo)",
    )
    d.set_defaults(run=_cmd_demo)
    s = sub.add_parser("summary", help="per-layer, per-gate statistics of a checkpoint")
    s.add_argument("path")
    s.add_argument("--layer", help="one layer: name, unique name part or index")
    s.set_defaults(run=_cmd_summary)
    ls = sub.add_parser("layers", help="list the layers with weights of a checkpoint")
    ls.add_argument("path")
    ls.set_defaults(run=_cmd_layers)
    st = sub.add_parser("stats", help="health statistics of checkpoints (files or folders)")
    st.add_argument("paths", nargs="+")
    out = st.add_mutually_exclusive_group()
    out.add_argument("--csv", help="write every statistic to this CSV file")
    out.add_argument("--json", help="write every statistic to this JSON file")
    st.add_argument("--show", action="store_true", help="print the table even with --csv/--json")
    _jobs(st)
    st.set_defaults(run=_cmd_stats)
    c = sub.add_parser("compare", help="compare checkpoints block by block against a baseline")
    c.add_argument("paths", nargs="+")
    c.add_argument("--baseline", default="0", help="baseline model: index or file name")
    out = c.add_mutually_exclusive_group()
    out.add_argument("--csv", help="write the comparison to this CSV file")
    out.add_argument("--json", help="write the comparison to this JSON file")
    _jobs(c)
    c.set_defaults(run=_cmd_compare)
    r = sub.add_parser("report", help="one self-contained HTML report of checkpoints")
    r.add_argument("paths", nargs="+")
    r.add_argument("-o", "--out", default="report.html", help="the HTML file (report.html)")
    r.add_argument("--baseline", default="0", help="baseline model: index or file name")
    r.add_argument("--title", default="rnnscope report")
    r.add_argument("--no-figures", action="store_true", help="tables and flags only")
    _jobs(r)
    r.set_defaults(run=_cmd_report)
    pl = sub.add_parser(
        "plot",
        help="one figure of one recurrent layer (or of a monitored run's history) to an image file",
    )
    pl.add_argument("path")
    pl.add_argument("--layer", help="name, unique name part or index (default: the only one)")
    pl.add_argument(
        "--kind",
        choices=("heatmap", "histogram", "trace", "history"),
        default="heatmap",
        help="history: PATH is a training monitor's database",
    )
    pl.add_argument("-o", "--out", required=True, help="image file (.png, .svg, .pdf)")
    pl.add_argument("--direction", choices=("forward", "backward"))
    pl.add_argument("--input", help="trace: a .npy/.npz array (batch, time, features)")
    pl.add_argument("--timesteps", type=int, default=20, help="trace without --input (20)")
    pl.add_argument("--sample", type=int, default=0, help="trace: which sample (0)")
    pl.set_defaults(run=_cmd_plot)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "out", None) and args.command in ("plot", "report"):
            parent = Path(args.out).parent
            if not parent.is_dir():
                raise InputError(f"-o: folder '{parent}' does not exist")
        args.run(args)
    except RnnscopeError as err:
        if args.debug:
            raise
        print(f"rnnscope: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and the like
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
