"""``rnnscope demo``: the bundled LSTM and bidirectional GRU, their gates and a traced sequence."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import IO

import numpy as np

from ._api import layers, rnn_weights
from ._io import load
from ._summary import summary
from ._trace import Trace, run_trace

__all__ = ["demo_paths", "run_demo", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
Say = Callable[[str], None]


def demo_paths() -> dict[str, Path]:
    """Paths of the bundled demo files."""
    root = resources.files("rnnscope") / "data"
    names = {
        "lstm": "demo_lstm.keras",
        "bigru": "demo_bigru.safetensors",
        "inputs": "demo_inputs.npz",
    }
    return {k: Path(str(root / v)) for k, v in names.items()}


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


def run_demo(out: str | None = None, file: IO[str] | None = None) -> dict[str, Trace]:
    """Print the demo to ``file`` (stdout); with ``out``, also write tables and traces there.

    Example:
        >>> traces = run_demo()  # doctest: +SKIP
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
    return traces
