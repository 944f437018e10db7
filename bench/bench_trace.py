"""``rnnscope.trace`` of an LSTM(256) on a 16x100x20 batch vs the same layer's forward pass in
Keras 3 (TensorFlow backend) and in torch, on CPU, in one process.

    python bench/bench_trace.py [--repeats 15] [--figure docs/images/bench_trace.png]

Each timing is the median of ``repeats`` runs after a warm-up; the ratios are what matter.
Keras is timed both as ``model(x)`` (eager call) and ``model.predict_on_batch(x)`` (compiled).
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


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def measure(repeats: int) -> dict[str, float]:
    import keras
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F)).astype("float32")
    res: dict[str, float] = {}

    tl = torch.nn.LSTM(F, U, batch_first=True).eval()
    xt = torch.from_numpy(x)

    def torch_forward() -> None:
        with torch.no_grad():
            tl(xt)

    w_torch = rnnscope.rnn_weights(tl)
    res["torch_forward_s"] = timed(torch_forward, repeats)
    res["trace_torch_layer_s"] = timed(lambda: rnnscope.trace(w_torch, x), repeats)

    model = keras.Sequential([keras.Input((T, F)), keras.layers.LSTM(U, return_sequences=True)])
    w_keras = rnnscope.rnn_weights(model)
    res["keras_tf_call_s"] = timed(lambda: model(x, training=False), repeats)
    res["keras_tf_predict_on_batch_s"] = timed(lambda: model.predict_on_batch(x), repeats)
    res["trace_keras_layer_s"] = timed(lambda: rnnscope.trace(w_keras, x), repeats)
    res["ratio_vs_torch"] = res["trace_torch_layer_s"] / res["torch_forward_s"]
    res["ratio_vs_keras_tf_call"] = res["trace_keras_layer_s"] / res["keras_tf_call_s"]
    res["ratio_vs_keras_tf_predict"] = (
        res["trace_keras_layer_s"] / res["keras_tf_predict_on_batch_s"]
    )
    return res


def figure(r: dict[str, float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        "torch forward",
        "rnnscope.trace\n(every gate recorded)",
        "Keras 3 (TF)\npredict_on_batch",
        "Keras 3 (TF)\nmodel(x)",
    ]
    vals = [
        r["torch_forward_s"],
        r["trace_torch_layer_s"],
        r["keras_tf_predict_on_batch_s"],
        r["keras_tf_call_s"],
    ]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.barh(labels, [v * 1e3 for v in vals], color=["#888", "#d62728", "#888", "#888"])
    ax.bar_label(bars, [f"{v * 1e3:.0f} ms" for v in vals], padding=3)
    ax.set_xlabel("milliseconds (median), LSTM(256), batch 16 x 100 steps x 20 features, CPU")
    ax.set_title("Forward pass time: rnnscope's numpy trace vs the frameworks")
    ax.invert_yaxis()
    ax.set_xlim(0, max(vals) * 1e3 * 1.25)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    r = measure(args.repeats)
    print(json.dumps(r, indent=2))
    print(
        f"trace / torch forward = {r['ratio_vs_torch']:.2f}x; trace / Keras(TF) model(x) = "
        f"{r['ratio_vs_keras_tf_call']:.2f}x; trace / Keras(TF) predict_on_batch = "
        f"{r['ratio_vs_keras_tf_predict']:.2f}x (target <= 2x)"
    )
    if args.figure:
        figure(r, args.figure)


if __name__ == "__main__":
    main()
