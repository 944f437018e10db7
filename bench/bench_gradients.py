"""``rnnscope.gradients`` vs the bare framework forward + backward on the same batch:
16x100x20 -> LSTM(256) -> Dense(1), per framework and Keras backend, each in its own process.

    python bench/bench_gradients.py [--repeats 10] [--figure docs/images/bench_gradients.png]

Bare baselines: TF ``GradientTape``, Keras-on-torch and torch ``autograd.grad``, JAX
``jit(grad)`` of ``stateless_call``. Calls are alternated; medians; target ratio <= 1.25x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, statistics, sys, time
import numpy as np
kind, repeats = sys.argv[1], int(sys.argv[2])
x = np.random.default_rng(0).normal(size=(16, 100, 20)).astype("float32")
y = np.random.default_rng(1).normal(size=(16, 1)).astype("float32")
import rnnscope
if kind == "native-torch":
    import torch
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(20, 256, batch_first=True)
            self.head = torch.nn.Linear(256, 1)
        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])
    net, loss = Net().eval(), torch.nn.MSELoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    params = list(net.parameters())
    def bare():
        torch.autograd.grad(loss(net(xt), yt), params)
    ours = lambda: rnnscope.gradients(net, x, y, wrt="weights", loss=loss)
    ours_out = lambda: rnnscope.gradients(net, x, y, layers="lstm", loss=loss)
else:
    os.environ["KERAS_BACKEND"] = kind
    import keras
    model = keras.Sequential([keras.Input((100, 20)), keras.layers.LSTM(256, name="lstm"),
                              keras.layers.Dense(1, name="head")])
    model.compile(loss="mse")
    if kind == "tensorflow":
        import tensorflow as tf
        def bare():
            with tf.GradientTape() as tape:
                l = model.compute_loss(x=x, y=y, y_pred=model(x, training=False))
            tape.gradient(l, model.trainable_variables)
    elif kind == "torch":
        import torch
        def bare():
            l = model.compute_loss(x=x, y=y, y_pred=model(x, training=False))
            torch.autograd.grad(l, [v.value for v in model.trainable_variables])
    else:
        import jax
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        mv = [v.value for v in model.metrics_variables]
        def f(tv, x, y):
            yp, _ = model.stateless_call(tv, ntv, x, training=False)
            return model.stateless_compute_loss(tv, ntv, mv, x=x, y=y, y_pred=yp)[0]
        g = jax.jit(jax.grad(f))
        def bare():
            jax.block_until_ready(g(tv, x, y))
    ours = lambda: rnnscope.gradients(model, x, y, wrt="weights")
    ours_out = lambda: rnnscope.gradients(model, x, y, layers="lstm")
for fn in (bare, ours, ours_out):
    fn(); fn()
t = {"bare": [], "weights": [], "outputs": []}
for _ in range(repeats):
    for k, fn in (("bare", bare), ("weights", ours), ("outputs", ours_out)):
        s = time.perf_counter(); fn(); t[k].append(time.perf_counter() - s)
print(json.dumps({k: statistics.median(v) for k, v in t.items()}))
"""

KINDS = {
    "tensorflow": "Keras 3 (TF)",
    "jax": "Keras 3 (JAX)",
    "torch": "Keras 3 (torch)",
    "native-torch": "torch",
}


def run(kind: str, repeats: int) -> dict[str, float]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def figure(results: dict[str, dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    h = 0.26
    for k, (key, colour, label) in enumerate(
        (
            ("bare", "#888888", "bare forward + backward"),
            ("weights", "#d62728", "rnnscope.gradients(wrt='weights')"),
            ("outputs", "#ff9896", "rnnscope.gradients(wrt='outputs')"),
        )
    ):
        ms = [results[n][key] * 1e3 for n in names]
        bars = ax.barh(np.arange(len(names)) + (k - 1) * h, ms, h, color=colour, label=label)
        ax.bar_label(bars, [f"{v:.0f}" for v in ms], padding=2, fontsize=7)
    ax.set_yticks(np.arange(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per call, median (16x100x20 -> LSTM(256) -> Dense)")
    ax.set_title("Gradients: rnnscope vs the bare framework, same batch, same process")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    results = {label: run(kind, args.repeats) for kind, label in KINDS.items()}
    print(json.dumps(results, indent=2))
    for label, r in results.items():
        print(
            f"{label}: weights {r['weights'] / r['bare']:.2f}x, outputs "
            f"{r['outputs'] / r['bare']:.2f}x of bare (target <= 1.25x)"
        )
    if args.figure:
        figure(results, args.figure)


if __name__ == "__main__":
    main()
