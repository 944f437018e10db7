"""The trace's recording cost: ``rnnscope.trace`` (every gate recorded) of an LSTM(256) on a
16x100x20 batch against the floor, a numpy LSTM forward of the same weights that records only
``h``; beside them torch's ``nn.LSTM`` and Keras 3's (TensorFlow) ``predict_on_batch``.

    python bench/bench_trace_floor.py [--repeats 30] [--rounds 3]

The floor is the least numpy that computes the layer: the input projection of every timestep in
one matrix product, then per step one matrix product into a reused buffer, the activations in
place (the sigmoids as ``0.5 * tanh(0.5 z) + 0.5``, one ``tanh`` pass over the four gates with
the sigmoid columns pre-halved) and ``h`` written into its output array. Calls are alternated
floor / trace / torch / Keras call by call, in ``--rounds`` rounds, medians; the ratios are what
matter (target: trace <= 1.3x the floor).
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


def floor_forward(x: np.ndarray, kernel: np.ndarray, rk: np.ndarray, bias: np.ndarray) -> Fn:
    """The floor: Keras-layout weights (gates i, f, c, o), ``h`` only recorded."""
    u = rk.shape[0]
    order = np.r_[0 : 2 * u, 3 * u : 4 * u, 2 * u : 3 * u]  # i, f, o (sigmoids), c
    scale = np.ones(4 * u, np.float32)
    scale[: 3 * u] = 0.5
    k, r, b = (np.ascontiguousarray(a[..., order] * scale) for a in (kernel, rk, bias))

    def run() -> np.ndarray:
        batch, steps, feats = x.shape
        xp = (np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(-1, feats) @ k).reshape(
            steps, batch, 4 * u
        )
        xp += b
        hs = np.empty((steps, batch, u), np.float32)
        h = np.zeros((batch, u), np.float32)
        c = np.zeros((batch, u), np.float32)
        z = np.empty((batch, 4 * u), np.float32)
        m = np.empty((batch, u), np.float32)
        for s in range(steps):
            np.matmul(h, r, out=z)
            z += xp[s]
            np.tanh(z, out=z)
            sig = z[:, : 3 * u]
            sig *= 0.5
            sig += 0.5
            c *= z[:, u : 2 * u]
            np.multiply(z[:, :u], z[:, 3 * u :], out=m)
            c += m
            np.tanh(c, out=m)
            np.multiply(z[:, 2 * u : 3 * u], m, out=hs[s])
            h = hs[s]
        return hs.transpose(1, 0, 2)

    return run


def measure(repeats: int, rounds: int) -> dict[str, float]:
    import keras
    import torch

    x = np.random.default_rng(0).normal(size=(B, T, F)).astype("float32")
    model = keras.Sequential([keras.Input((T, F)), keras.layers.LSTM(U, return_sequences=True)])
    kernel, rk, bias = (np.asarray(v) for v in model.layers[0].get_weights())
    w = rnnscope.rnn_weights(model)
    tl = torch.nn.LSTM(F, U, batch_first=True).eval()
    xt = torch.from_numpy(x)
    floor = floor_forward(x, kernel, rk, bias)
    want = keras.ops.convert_to_numpy(model(x))
    got_floor, got_trace = floor(), rnnscope.trace(w, x).output()
    assert np.allclose(got_floor, want, atol=1e-5), "the floor does not compute the layer"
    assert np.allclose(got_trace, want, atol=1e-5), "the trace does not compute the layer"

    def torch_forward() -> None:
        with torch.no_grad():
            tl(xt)

    fns: dict[str, Fn] = {
        "floor_s": floor,
        "trace_s": lambda: rnnscope.trace(w, x),
        "torch_s": torch_forward,
        "keras_predict_s": lambda: model.predict_on_batch(x),
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for _ in range(repeats):
            for k, fn in fns.items():
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    r = {k: statistics.median(v) for k, v in times.items()}
    r["trace_over_floor"] = r["trace_s"] / r["floor_s"]
    r["floor_over_torch"] = r["floor_s"] / r["torch_s"]
    r["trace_over_torch"] = r["trace_s"] / r["torch_s"]
    r["trace_over_keras_predict"] = r["trace_s"] / r["keras_predict_s"]
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    r = measure(args.repeats, args.rounds)
    print(json.dumps(r, indent=2))
    print(
        f"trace / floor = {r['trace_over_floor']:.2f}x (target <= 1.3x); floor / torch = "
        f"{r['floor_over_torch']:.2f}x; trace / torch = {r['trace_over_torch']:.2f}x; "
        f"trace / Keras(TF) predict_on_batch = {r['trace_over_keras_predict']:.2f}x"
    )


if __name__ == "__main__":
    main()
