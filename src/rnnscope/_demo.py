"""``rnnscope demo``: the bundled LSTM and bidirectional GRU, their gates and a traced sequence."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from ._api import layers, rnn_weights
from ._io import load
from ._summary import summary
from ._trace import Trace, run_trace

__all__ = ["demo_figures", "demo_path", "demo_paths", "run_demo", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
Say = Callable[[str], None]


def demo_paths() -> dict[str, Path]:
    """Paths of the bundled demo files."""
    root = Path(__file__).resolve().parent / "data"  # package data (importlib.resources costs
    # a tenth of `import rnnscope`; the package is always installed as files)
    names = {
        "lstm": "demo_lstm.keras",
        "bigru": "demo_bigru.safetensors",
        "inputs": "demo_inputs.npz",
        "run": "run",
    }
    return {k: root / v for k, v in names.items()}


def demo_path(which: str = "run") -> Path:
    """The path of a file bundled with rnnscope, to try things on.

    Args:
        which: ``"run"`` (a folder of six ``.safetensors`` checkpoints of a small torch LSTM's
            training run: epochs 0, 1, 2, 4, 8 and 16), ``"lstm"`` (a trained Keras 3 LSTM,
            ``.keras``), ``"bigru"`` (a trained torch bidirectional GRU, ``.safetensors``) or
            ``"inputs"`` (sample inputs of both, ``.npz``).

    Example:
        >>> rnnscope.demo_path("lstm").name
        'demo_lstm.keras'
    """
    paths = demo_paths()
    if which not in paths:
        from ._errors import InputError

        raise InputError(
            f"which: expected one of {', '.join(paths)}; got {which!r}", argument="which"
        )
    return paths[which]


def sparkline(values: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> str:
    """One character per value, scaled from ``lo`` (lowest bar) to ``hi`` (highest)."""
    span = (hi - lo) or 1.0
    idx = np.clip(((np.asarray(values) - lo) / span * (len(_BARS) - 1)).round(), 0, len(_BARS) - 1)
    return "".join(_BARS[int(i)] for i in idx)


def _gate_lines(t: Trace, direction: str, names: tuple[str, ...], sample: int) -> list[str]:
    lines = []
    for n in names:
        a = t.get(n, direction)[sample]  # (time, units)
        lines.append(
            f"  {direction:<8} {n:<7} mean over units {sparkline(a.mean(axis=1))}  [{a.mean():.2f}]"
        )
    return lines


def _write_csv(rows: list[dict[str, object]], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


_MODELS = (
    ("lstm", "Keras 3 LSTM(16) trained to recall channel 0 at step 2"),
    ("bigru", "torch bidirectional GRU(8) trained on the sign of a running sum"),
)


def _show(key: str, title: str, path: Path, x: np.ndarray, out: Path | None, say: Say) -> Trace:
    ckpt = load(path)
    say(f"\n=== {title}\n    file: {path.name} ({ckpt.format}, written by {ckpt.framework})")
    for info in layers(ckpt):
        shapes = ", ".join(f"{k} {tuple(v)}" for k, v in info.shapes.items())
        say(f"    layer {info.name} ({info.kind}): {shapes}")
    s = summary(ckpt, quiet=True)
    say(str(s))
    w = rnn_weights(ckpt)
    t = run_trace(w, x)
    say(f"\n  gate trace of sample 0 ({x.shape[1]} timesteps, one bar per step, 0 to 1):")
    names = tuple(n for n in t.names if n not in ("h", "c", "cell", "new"))
    for direction in t.directions:
        say("\n".join(_gate_lines(t, direction, names, 0)))
    if w.cell == "LSTM":
        c = t.get("c")[0]
        unit = int(np.abs(c[-1]).argmax())
        say(
            f"  unit {unit} holds the largest cell state at the end; its forget gate: "
            f"{sparkline(t.get('forget')[0, :, unit])}, its cell state: "
            f"{sparkline(c[:, unit], c[:, unit].min(), c[:, unit].max())}"
        )
    if out is not None:
        _write_csv(s.records(), out / f"{key}_summary.csv")
        arrays = {f"{n}__{d}": t.get(n, d) for n in t.names for d in t.directions}
        np.savez(out / f"{key}_trace.npz", **arrays)  # type: ignore[arg-type]
    return t


def demo_figures(folder: Path, traces: dict[str, Trace] | None = None) -> list[Path]:
    """Render every figure kind from the bundled models into ``folder``; return the paths.

    Needs matplotlib (``pip install rnnscope[plot]``); no framework.
    """
    import matplotlib.pyplot as plt

    from . import plot

    paths = demo_paths()
    inputs = np.load(paths["inputs"], allow_pickle=False)
    lstm, bigru = load(paths["lstm"]), load(paths["bigru"])
    if traces is None:
        traces = {
            "lstm": run_trace(rnn_weights(lstm), inputs["lstm"]),
            "bigru": run_trace(rnn_weights(bigru), inputs["bigru"]),
        }
    gru_out = traces["bigru"].output("concat")  # (batch, time, 2 x units)
    lstm_h = traces["lstm"].get("h")
    lstm_w = rnn_weights(lstm)
    kernels = np.stack([lstm_w.array("recurrent_kernel", g) for g in lstm_w.gates])
    jobs: list[tuple[str, Callable[[Path], object]]] = [
        ("lstm_heatmap.png", lambda p: plot.rnn_heatmap(lstm, savepath=p)),
        ("lstm_histogram.png", lambda p: plot.rnn_histogram(lstm, savepath=p)),
        ("bigru_heatmap.png", lambda p: plot.rnn_heatmap(bigru, savepath=p)),
        ("bigru_histogram.png", lambda p: plot.rnn_histogram(bigru, equate_axes=2, savepath=p)),
        ("lstm_trace.png", lambda p: plot.trace_plot(traces["lstm"], savepath=p)),
        ("bigru_trace.png", lambda p: plot.trace_plot(traces["bigru"], savepath=p)),
        (
            "bigru_features_2d.png",
            lambda p: plot.features_2d(
                gru_out, n_rows=1, reflect_half=True, label="GRU output", savepath=p
            ),
        ),
        (
            "lstm_features_1d.png",
            lambda p: plot.features_1d(lstm_h[:2], n_rows=1, label="LSTM hidden state", savepath=p),
        ),
        (
            "bigru_features_0d.png",
            lambda p: plot.features_0d(
                gru_out[:, -1], label="GRU output at the last step", savepath=p
            ),
        ),
        (
            "lstm_features_hist.png",
            lambda p: plot.features_hist(
                kernels,
                n_rows=1,
                annotations=[f"{g} gate" for g in lstm_w.gates],
                label="recurrent kernel weight",
                savepath=p,
            ),
        ),
    ]
    written = []
    for name, draw in jobs:
        before = set(plt.get_fignums())
        draw(folder / name)
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
        stem, suffix = name.rsplit(".", 1)
        pair = [folder / f"{stem}_{d}.{suffix}" for d in ("forward", "backward")]
        written += pair if pair[0].exists() else [folder / name]
    return written


def _demo_report(folder: Path, paths: dict[str, Path], say: Say) -> None:
    missing = [m for m in ("pandas", "jinja2", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        say(f"report skipped: it needs {', '.join(missing)} (pip install 'rnnscope[report]')")
        return
    from ._report import report

    out = report(
        [paths["lstm"], paths["bigru"]],
        out=folder / "report.html",
        title="rnnscope demo: the bundled LSTM and bidirectional GRU",
        compare=False,
    )
    run = report(
        paths["run"],
        out=folder / "run_report.html",
        title="rnnscope demo: six checkpoints of a small LSTM training run",
    )
    say(
        f"wrote the HTML reports: {out} (the two models) and {run} (a training run, "
        "checkpoint by checkpoint); open them in a browser"
    )


def run_demo(
    out: str | None = None, file: IO[str] | None = None, report: bool = False
) -> dict[str, Trace]:
    """Print the demo to ``file`` (stdout); with ``out``, also write tables, traces and figures
    there, and with ``report`` the HTML report of both models.

    Example:
        >>> import io
        >>> traces = run_demo(file=io.StringIO())
        >>> sorted(traces)
        ['bigru', 'lstm']
    """
    fh = file or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=fh)

    paths = demo_paths()
    inputs = np.load(paths["inputs"], allow_pickle=False)
    folder = Path(out) if out else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    say("rnnscope demo: two small trained models bundled with rnnscope, read without any framework")
    traces = {k: _show(k, title, paths[k], inputs[k], folder, say) for k, title in _MODELS}
    if folder is not None:
        say(f"\nwrote per-gate summaries (CSV) and traces (npz) to {folder}")
        if importlib.util.find_spec("matplotlib") is None:
            say("figures skipped: they need matplotlib (pip install 'rnnscope[plot]')")
        else:
            figs = demo_figures(folder, traces)
            say(f"wrote {len(figs)} figures to {folder}: " + ", ".join(p.name for p in figs))
        if report:
            _demo_report(folder, paths, say)
    return traces
