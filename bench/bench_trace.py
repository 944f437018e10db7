"""``rnnscope.trace`` of an LSTM(256) on a 16x100x20 batch vs the same layer's forward pass in
Keras 3 (TensorFlow backend) and in torch, on CPU, in one process.

    python bench/bench_trace.py [--repeats 30] [--figure docs/images/bench_trace.png]

Two protocols, both reported: "back to back" times each function in its own block of calls (warm
threads and caches, the best case for each), "alternated" interleaves the framework call and the
trace call by call so both see the same machine conditions. Medians; the ratios are what matter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

import rnnscope

B, T, F, U = 16, 100, 20, 256
Fn = Callable[[], object]


def block(fn: Fn, repeats: int) -> float:
    """Median seconds of ``fn`` called back to back."""
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def alternated(framework: Fn, ours: Fn, repeats: int) -> tuple[float, float]:
    """Median seconds of each, calls alternated."""
    framework(), ours()
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        for fn, out in ((framework, a), (ours, b)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)


def measure(repeats: int) -> dict[str, float]:
    import keras
    import torch

    x = np.random.default_rng(0).normal(size=(B, T, F)).astype("float32")
    xt = torch.from_numpy(x)
    tl = torch.nn.LSTM(F, U, batch_first=True).eval()

    def torch_forward() -> None:
        with torch.no_grad():
            tl(xt)

    model = keras.Sequential([keras.Input((T, F)), keras.layers.LSTM(U, return_sequences=True)])
    w_torch, w_keras = rnnscope.rnn_weights(tl), rnnscope.rnn_weights(model)

    def trace_torch() -> None:
        rnnscope.trace(w_torch, x)

    def trace_keras() -> None:
        rnnscope.trace(w_keras, x)

    r: dict[str, float] = {}
    r["torch_block_s"] = block(torch_forward, repeats)
    r["trace_block_s"] = block(trace_torch, repeats)
    r["keras_call_block_s"] = block(lambda: model(x, training=False), repeats)
    r["keras_predict_block_s"] = block(lambda: model.predict_on_batch(x), repeats)
    r["torch_alt_s"], r["trace_alt_torch_s"] = alternated(torch_forward, trace_torch, repeats)
    r["keras_call_alt_s"], r["trace_alt_keras_call_s"] = alternated(
        lambda: model(x, training=False), trace_keras, repeats
    )
    r["keras_predict_alt_s"], r["trace_alt_keras_predict_s"] = alternated(
        lambda: model.predict_on_batch(x), trace_keras, repeats
    )
    r["ratio_torch_block"] = r["trace_block_s"] / r["torch_block_s"]
    r["ratio_torch_alternated"] = r["trace_alt_torch_s"] / r["torch_alt_s"]
    r["ratio_keras_call_block"] = r["trace_block_s"] / r["keras_call_block_s"]
    r["ratio_keras_predict_block"] = r["trace_block_s"] / r["keras_predict_block_s"]
    r["ratio_keras_predict_alternated"] = r["trace_alt_keras_predict_s"] / r["keras_predict_alt_s"]
    return r


def figure(r: dict[str, float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        ("torch nn.LSTM", r["torch_block_s"], r["torch_alt_s"]),
        ("rnnscope.trace\n(records every gate)", r["trace_block_s"], r["trace_alt_torch_s"]),
        ("Keras 3 (TF)\npredict_on_batch", r["keras_predict_block_s"], r["keras_predict_alt_s"]),
        ("Keras 3 (TF)\nmodel(x)", r["keras_call_block_s"], r["keras_call_alt_s"]),
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    h = 0.38
    for k, (label, colour, off) in enumerate(
        (("back to back", "#4c72b0", -h / 2), ("alternated with the trace", "#dd8452", h / 2))
    ):
        ms = [row[1 + k] * 1e3 for row in rows]
        bars = ax.barh(np.arange(len(rows)) + off, ms, height=h, color=colour, label=label)
        ax.bar_label(bars, [f"{v:.0f} ms" for v in ms], padding=3, fontsize=8)
    ax.set_yticks(np.arange(len(rows)), [row[0] for row in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(3, max(row[1] for row in rows) * 1e3 * 4)
    ax.set_xlabel("milliseconds, median (log scale)")
    threads = os.environ.get("OMP_NUM_THREADS")
    ax.set_title(
        "LSTM(256) forward on CPU, batch 16 x 100 steps x 20 features"
        + (f"\nOMP_NUM_THREADS={threads} (numpy and torch)" if threads else "")
    )
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    r = measure(args.repeats)
    print(json.dumps(r, indent=2))
    print(
        f"trace / torch = {r['ratio_torch_block']:.2f}x back to back, "
        f"{r['ratio_torch_alternated']:.2f}x alternated; trace / Keras(TF) predict_on_batch = "
        f"{r['ratio_keras_predict_block']:.2f}x back to back; trace / Keras(TF) model(x) = "
        f"{r['ratio_keras_call_block']:.2f}x (target <= 2x)"
    )
    if args.figure:
        figure(r, args.figure)


if __name__ == "__main__":
    main()
