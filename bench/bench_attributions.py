"""``rnnscope.attributions`` (integrated gradients, 50 steps) on 16x100x20 -> LSTM(256) -> Dense(1):
torch against Captum's ``IntegratedGradients``, and Keras 3 on each backend against a bare batched
forward + backward over the same 50x16 scaled inputs, each kind in its own process.

    python bench/bench_attributions.py [--repeats 3]

Both sides compute the convergence delta (Captum with ``return_convergence_delta=True``). The
bare Keras baselines: TF ``GradientTape``, torch ``autograd.grad``, JAX ``jit(grad)`` of
``stateless_call``, each over the 800 rows at once. Calls alternate; medians. Targets: torch
<= 1.2x Captum, Keras <= 1.3x the bare pass.
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
alphas = 0.5 * (np.polynomial.legendre.leggauss(50)[0] + 1)
rows = np.concatenate([a * x for a in alphas]).astype("float32")  # zero baseline
import rnnscope
if kind == "native-torch":
    import torch
    from captum.attr import IntegratedGradients
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(20, 256, batch_first=True)
            self.head = torch.nn.Linear(256, 1)
        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])
    net = Net().eval()
    xt = torch.from_numpy(x)
    ig = IntegratedGradients(net)
    base = lambda: ig.attribute(xt, target=0, n_steps=50, return_convergence_delta=True)
else:
    os.environ["KERAS_BACKEND"] = kind
    import keras
    model = keras.Sequential([keras.Input((100, 20)), keras.layers.LSTM(256, name="lstm"),
                              keras.layers.Dense(1, name="head")])
    net = model
    if kind == "tensorflow":
        import tensorflow as tf
        def base():
            r = tf.convert_to_tensor(rows)
            with tf.GradientTape() as tape:
                tape.watch(r)
                s = tf.reduce_sum(model(r, training=False)[:, 0])
            return tape.gradient(s, r).numpy()
    elif kind == "torch":
        import torch
        def base():
            r = torch.from_numpy(rows).requires_grad_()
            s = model(r, training=False)[:, 0].sum()
            return torch.autograd.grad(s, r)[0].numpy()
    else:
        import jax
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        def f(r):
            return model.stateless_call(tv, ntv, r, training=False)[0][:, 0].sum()
        g = jax.jit(jax.grad(f))
        def base():
            return np.asarray(g(jax.numpy.asarray(rows)))
ours = lambda: rnnscope.attributions(net, x, target=0, n_steps=50)
for fn in (base, ours):
    fn()
t = {"base": [], "ours": []}
for _ in range(repeats):
    for k, fn in (("base", base), ("ours", ours)):
        s = time.perf_counter(); fn(); t[k].append(time.perf_counter() - s)
print(json.dumps({k: statistics.median(v) for k, v in t.items()}))
"""

KINDS = {
    "native-torch": "torch (vs Captum)",
    "tensorflow": "Keras 3 (TF)",
    "jax": "Keras 3 (JAX)",
    "torch": "Keras 3 (torch)",
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
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", nargs="*", default=list(KINDS))
    args = ap.parse_args()
    for kind in args.kinds:
        r = run(kind, args.repeats)
        print(
            f"{KINDS[kind]}: base {r['base']:.2f} s, rnnscope {r['ours']:.2f} s, "
            f"{r['ours'] / r['base']:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
