"""The command line's arguments: subcommands, options, and checks on their values.

Values are checked when parsed (argparse prints ``rnnscope CMD: error: argument --x: ...`` and
exits with code 2), so a command only ever sees valid numbers and file names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["EXIT_CODES", "build"]

EXIT_CODES = (
    "exit codes: 0 everything done; 1 done, but some sources could not be read (listed on "
    "stderr); 2 nothing done: bad arguments or input (one line on stderr; --debug for the "
    "traceback); 130 interrupted (Ctrl-C)"
)
_BASELINE = (
    "baseline model: a file name, or an index among the files given, read or not "
    "(default: the first file read)"
)


def _number(text: str, kind: type, low: float, what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
    if not value >= low:
        raise argparse.ArgumentTypeError(f"expected {what}; got {text}")
    return value


def _positive_int(text: str) -> int:
    return int(_number(text, int, 1, "a whole number >= 1"))


def _count_int(text: str) -> int:
    return int(_number(text, int, 0, "a whole number >= 0"))


def _tolerance(text: str) -> float:
    return float(_number(text, float, 0.0, "a number >= 0"))


def _run_id(text: str) -> int | str:
    if text == "all":
        return text
    return int(_number(text, int, 0, "a run id (a whole number; see the runs table) or 'all'"))


def _machine_file(suffix: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text != "-" and not text.lower().endswith(suffix):
            raise argparse.ArgumentTypeError(
                f"expected a file name ending in {suffix}, or - for stdout; got {text!r} "
                "(put the option after the checkpoints)"
            )
        return text

    return check


def _machine_options(p: argparse.ArgumentParser, what: str) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--csv",
        nargs="?",
        const="-",
        type=_machine_file(".csv"),
        metavar="FILE.csv",
        help=f"{what} as CSV, to stdout (and nothing else there) or to FILE.csv",
    )
    _json_option(out, what)


def _json_option(p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, what: str) -> None:
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        type=_machine_file(".json"),
        metavar="FILE.json",
        help=f"{what} as JSON records, to stdout (and nothing else there) or to FILE.json",
    )


def _many(p: argparse.ArgumentParser, parallel: bool = True) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="checkpoint files (.keras .h5 .hdf5 .safetensors .pt .pth .onnx) or folders of them; "
        "also URLs (s3://bucket/run/, quoted globs such as 's3://b/run/*.safetensors')",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="read folders inside folders")
    p.add_argument(
        "--strict",
        action="store_true",
        help="all or nothing: stop at the first source that cannot be read (exit code 2)",
    )
    if parallel:
        p.add_argument(
            "--jobs",
            "-j",
            type=_positive_int,
            default=1,
            help="read and analyse this many files in parallel (processes)",
        )
        p.add_argument(
            "--tol",
            type=_tolerance,
            default=1e-3,
            help="near-zero threshold: |w| < tol (default 1e-3)",
        )
        cache = p.add_mutually_exclusive_group()
        cache.add_argument(
            "--cache",
            metavar="PATH",
            help="the results database that lets a rerun read only new or changed files "
            "(default: $RNNSCOPE_CACHE, else rnnscope/results.sqlite in the user cache folder)",
        )
        cache.add_argument(
            "--no-cache", action="store_true", help="read every file; keep no results"
        )


def _offset(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number (e.g. -1, 0); got {text!r}"
        ) from None


def _rank_by(text: str) -> str:
    if not text.strip() or text.endswith(":"):
        raise argparse.ArgumentTypeError(
            f"expected METRIC, METRIC:min or METRIC:max (e.g. val_loss); got {text!r}"
        )
    return text


def _run_options(p: argparse.ArgumentParser) -> None:
    """Runs vs variants, metrics beside checkpoints, ranking (compare and report)."""
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--run",
        dest="as_run",
        action="store_const",
        const=True,
        default=None,
        help="read the checkpoints as one training run, in step order, flagging fast changes "
        "(default when every name carries a step or epoch number)",
    )
    how.add_argument(
        "--variants",
        dest="as_run",
        action="store_const",
        const=False,
        help="read them as unrelated variants: against the baseline only, no 'changing fast'",
    )
    p.add_argument(
        "--metrics",
        metavar="PATH",
        help="training metrics to show beside the checkpoints: a CSVLogger .csv, a History "
        ".json, a TensorBoard log folder or a monitor database (matched by epoch or step)",
    )
    p.add_argument(
        "--metrics-offset",
        type=_offset,
        metavar="N",
        help="a checkpoint's epoch/step + N is the metrics' epoch/step (default: -1 for epochs, "
        "as ModelCheckpoint counts from 1 and the logs from 0; 0 for steps)",
    )
    p.add_argument(
        "--rank-by",
        type=_rank_by,
        metavar="METRIC[:min|max]",
        help="rank the checkpoints by a metric (loss-like: lowest first, accuracy-like: highest; "
        "':min'/':max' says so), fewer errors then fewer warnings breaking ties",
    )


def _global_options() -> argparse.ArgumentParser:
    """Options every subcommand takes too, before or after its name."""
    g = argparse.ArgumentParser(add_help=False)
    g.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )
    return g


def build(commands: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The parser; each subcommand's ``run`` default is its function in ``commands``."""
    from ._version import __version__

    common = _global_options()
    p = argparse.ArgumentParser(
        prog="rnnscope",
        description="See inside recurrent networks, "
        "gate by gate, from live models or checkpoint files.",
        epilog=EXIT_CODES,
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"rnnscope {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=text, description=text, parents=[common], epilog=EXIT_CODES
        )

    d = add(
        "demo",
        "the bundled LSTM and bidirectional GRU: tables, traces, figures and the HTML report",
    )
    d.add_argument(
        "-o",
        "--out",
        default="rnnscope-demo",
        help="folder for the summaries, traces, figures and report (default: rnnscope-demo)",
    )
    d.add_argument(
        "--path",
        choices=("lstm", "bigru", "inputs", "run"),
        help="print the path of a bundled file (run: the folder of six training checkpoints)",
    )
    d.set_defaults(run=commands["demo"])
    s = add("summary", "per-layer, per-gate statistics of checkpoints")
    _many(s, parallel=False)
    s.add_argument("--layer", help="one layer: name, unique name part or index")
    _json_option(s, "the rows")
    s.set_defaults(run=commands["summary"])
    ls = add("layers", "list the layers with weights of checkpoints")
    _many(ls, parallel=False)
    _json_option(ls, "the layers")
    ls.set_defaults(run=commands["layers"])
    st = add("stats", "health statistics of checkpoints")
    _many(st)
    _machine_options(st, "every statistic")
    st.add_argument(
        "--show", action="store_true", help="print the table too when --csv/--json go to a file"
    )
    st.set_defaults(run=commands["stats"])
    c = add("compare", "compare checkpoints block by block against a baseline")
    _many(c)
    c.add_argument("--baseline", help=_BASELINE)
    _run_options(c)
    _machine_options(c, "the comparison")
    c.set_defaults(run=commands["compare"])
    r = add("report", "one self-contained HTML report of checkpoints (and monitor databases)")
    _many(r)
    r.add_argument(
        "-o",
        "--out",
        default="report.html",
        help="the HTML file (report.html); a folder (DIR/): index.html and a page per model "
        "shown in full",
    )
    r.add_argument("--baseline", help=_BASELINE)
    r.add_argument("--title", default="rnnscope report", help="the page title")
    r.add_argument("--no-figures", action="store_true", help="tables and flags only")
    _run_options(r)
    r.add_argument(
        "--detail",
        action="append",
        default=[],
        metavar="NAME",
        help="also show this model in full: a name, a glob ('*epoch1?*') or 'all' (repeatable)",
    )
    r.add_argument(
        "--input",
        metavar="X.npy",
        help="an input for the models (.npy/.npz; integers are token ids): adds an "
        "attributions section for the .keras/.h5 models Keras can load, and an explorer page",
    )
    r.add_argument(
        "--tokens",
        metavar="FILE",
        help="with token ids in --input: a text file, one sample per line, one word per "
        "timestep separated by spaces, shown coloured by attribution",
    )
    for flag, what in (
        ("--attr-method", "the attributions section's method (integrated_gradients)"),
        ("--attr-target", "its target: INDEX or TIMESTEP,UNIT (the predicted class)"),
        ("--attr-steps", "its integrated gradients' n_steps (50)"),
        ("--attr-rule", "its integrated gradients' rule (gausslegendre)"),
        ("--attr-window", "its occlusion window in timesteps (1)"),
        ("--attr-stride", "its occlusion stride (1)"),
    ):
        r.add_argument(flag, metavar=flag[7:].upper(), help=f"with --input: {what}")
    r.add_argument(
        "--watch",
        action="store_true",
        help="keep watching the paths and rebuild the report as new checkpoints appear "
        "(files still being written wait; Ctrl-C stops)",
    )
    r.add_argument(
        "--every",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="with --watch: seconds between looks at the paths (default 10)",
    )
    r.set_defaults(run=commands["report"])
    pl = add(
        "plot",
        "one figure of one recurrent layer (or of a monitored run's history) to an image file",
    )
    pl.add_argument(
        "path",
        metavar="FILE",
        help="a checkpoint file; with --kind history, a training monitor's database",
    )
    pl.add_argument("--layer", help="name, unique name part or index (default: the only one)")
    pl.add_argument(
        "--kind",
        choices=("heatmap", "histogram", "trace", "history"),
        default="heatmap",
        help="history: FILE is a training monitor's database",
    )
    pl.add_argument(
        "-o",
        "--out",
        required=True,
        help="image file (.png, .svg, .pdf); a bidirectional layer's heatmap or histogram "
        "without --direction goes to OUT_forward and OUT_backward",
    )
    pl.add_argument("--direction", choices=("forward", "backward"), help="one direction only")
    pl.add_argument("--input", help="trace: a .npy/.npz array (batch, time, features)")
    pl.add_argument(
        "--timesteps", type=_positive_int, default=20, help="trace without --input (20)"
    )
    pl.add_argument("--sample", type=_count_int, default=0, help="trace: which sample (0)")
    pl.add_argument(
        "--run",
        dest="run_id",
        type=_run_id,
        help="history: a run id or 'all' (default: the latest run)",
    )
    pl.set_defaults(run=commands["plot"])
    _explore_parser(add, commands)
    _cache_parser(add, commands)
    _attributions_parser(
        add(
            "attributions",
            "which inputs, at which timesteps, drove a "
            "Keras model's output (.keras/.h5 that Keras can load)",
        ),
        commands,
    )
    return p


def _explore_parser(
    add: Callable[[str, str], argparse.ArgumentParser],
    commands: Mapping[str, Callable[[argparse.Namespace], int]],
) -> None:
    ex = add("explore", "an interactive HTML explorer of one layer's hidden states and gates")
    ex.add_argument("path", metavar="MODEL", help="a checkpoint file")
    ex.add_argument("--input", required=True, help="a .npy/.npz array (batch, time, features)")
    ex.add_argument(
        "--tokens",
        help="a text file: one line per sample, one token per timestep, separated by spaces",
    )
    ex.add_argument("--labels", help="a text file: one label per sample, one per line")
    ex.add_argument("--layer", help="name, unique name part or index (default: the only one)")
    ex.add_argument("-o", "--out", default="explore.html", help="the HTML file (explore.html)")
    ex.add_argument(
        "--signals", help="comma-separated, e.g. h,c,forget (default: every recorded signal)"
    )
    ex.add_argument(
        "--threshold", type=float, default=0.5, help="the threshold the page starts with (0.5)"
    )
    ex.add_argument(
        "--max-mb",
        type=_positive_float,
        default=64.0,
        help="file-size budget for the data (64): float32 while it fits, then 16 and 8 bits",
    )
    ex.set_defaults(run=commands["explore"])


def _cache_parser(
    add: Callable[[str, str], argparse.ArgumentParser],
    commands: Mapping[str, Callable[[argparse.Namespace], int]],
) -> None:
    c = add("cache", "what the results database holds; prune or clear it")
    c.add_argument(
        "--cache",
        metavar="PATH",
        help="the database (default: $RNNSCOPE_CACHE, else rnnscope/results.sqlite in the "
        "user cache folder)",
    )
    act = c.add_mutually_exclusive_group()
    act.add_argument(
        "--prune",
        action="store_true",
        help="remove entries of other rnnscope/numpy/matplotlib/Pillow versions, of files "
        "that are gone, and entries unused for --days days",
    )
    act.add_argument("--clear", action="store_true", help="remove every entry")
    c.add_argument(
        "--days",
        type=_positive_float,
        default=30.0,
        help="with --prune: remove entries no run used for this many days (default 30)",
    )
    c.set_defaults(run=commands["cache"])


def _positive_float(text: str) -> float:
    value = float(_number(text, float, 0.0, "a number > 0"))
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text}")
    return value


def _target(text: str) -> int | tuple[int, int]:
    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a unit/class index, or TIMESTEP,UNIT for a sequence output; got {text!r}"
        ) from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(f"expected INDEX or TIMESTEP,UNIT; got {text!r}")


def _attributions_parser(
    a: argparse.ArgumentParser, commands: Mapping[str, Callable[[argparse.Namespace], int]]
) -> None:
    a.add_argument("path", metavar="MODEL", help="a .keras or .h5 model file")
    a.add_argument("--input", required=True, help="a .npy/.npz array (batch, time, features)")
    a.add_argument(
        "--target",
        type=_target,
        help="class/unit index, or TIMESTEP,UNIT (default: the predicted class)",
    )
    a.add_argument(
        "--method",
        choices=(
            "integrated_gradients",
            "saliency",
            "gradient_x_input",
            "smoothgrad",
            "occlusion",
        ),
        default="integrated_gradients",
    )
    a.add_argument("--n-steps", type=_positive_int, default=50, help="integrated gradients (50)")
    a.add_argument("--window", type=_positive_int, default=1, help="occlusion: timesteps (1)")
    a.add_argument("--stride", type=_positive_int, default=1, help="occlusion (1)")
    a.add_argument("--sample", type=_count_int, default=0, help="the sample of -o (0)")
    a.add_argument("-o", "--out", help="a figure of one sample (.png, .svg, .pdf)")
    a.add_argument(
        "--json", type=_machine_file(".json"), help="the values and summaries as JSON (- stdout)"
    )
    a.set_defaults(run=commands["attributions"])
