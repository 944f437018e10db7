"""Costs of reading untrusted files safely, each measured in a fresh process.

1. safetensors listing and reading: 1k, 10k and 100k small tensors; time per tensor should stay
   flat (linear total time) since the header is parsed once per file.
2. The HDF5 reader process: per-file cost of a ``.weights.h5`` load + read of every layer, the
   first file (which starts the reader) and the next ones, against h5py in-process.
3. ``rnn_heatmap`` of a ~100 MB recurrent layer: peak RSS growth against the layer's size.

    python bench/bench_untrusted.py [--dir /tmp/rnnscope-bench-untrusted] [--skip-heatmap]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SAFETENSORS = r"""
import json, sys, time
import rnnscope
path = sys.argv[1]
t = time.perf_counter()
ckpt = rnnscope.load(path)
refs = ckpt.layer_refs()
listed = time.perf_counter() - t
for r in refs:
    r.extract()
total = time.perf_counter() - t
print(json.dumps({"layers": len(refs), "list_s": listed, "read_all_s": total}))
"""

HDF5 = r"""
import json, sys, time
import h5py
import rnnscope
paths = sys.argv[1:]
times = []
for p in paths:
    t = time.perf_counter()
    ckpt = rnnscope.load(p)
    for r in ckpt.layer_refs():
        r.extract()
    times.append(time.perf_counter() - t)
bare = []
for p in paths:
    t = time.perf_counter()
    with h5py.File(p, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            f[n][()]
    bare.append(time.perf_counter() - t)
print(json.dumps({"first_s": times[0], "next_s": sorted(times[1:])[len(times[1:]) // 2],
                  "bare_h5py_s": sorted(bare)[len(bare) // 2]}))
"""

HEATMAP = r"""
import json, sys, os
import numpy as np
import matplotlib
matplotlib.use("Agg")
import rnnscope
from rnnscope.plot import rnn_heatmap
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
w = rnnscope.rnn_weights(sys.argv[1])
size = sum(a.nbytes for _, _, _, a in w.items())
import matplotlib.pyplot as plt
plt.figure(); plt.close("all")
base = rss()
fig = rnn_heatmap(w)
fig.canvas.draw()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"layer_mb": size / 2**20, "peak_growth_mb": (hwm - base) / 1024}))
"""


def _run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_safetensors(folder: Path) -> None:
    from safetensors.numpy import save_file

    print("safetensors: n tensors, listing s, read-all s, us per tensor (read-all)")
    for n in (1_000, 10_000, 100_000):
        p = folder / f"many_{n}.safetensors"
        if not p.exists():
            save_file({f"layer{i}.weight": np.full(4, i, "f4") for i in range(n)}, str(p))
        r = _run(SAFETENSORS, str(p))
        print(
            f"  {n:>7} {r['list_s']:8.3f} {r['read_all_s']:8.3f} {1e6 * r['read_all_s'] / n:8.1f}"
        )


def bench_hdf5(folder: Path) -> None:
    import h5py

    paths = []
    for i in range(8):
        p = folder / f"small_{i}.weights.h5"
        with h5py.File(p, "w") as f:
            for name in ("lstm", "dense"):
                v = f.create_group(f"layers/{name}/vars")
                v.attrs["name"] = name
                v["0"] = np.ones((64, 256), "f4")
                v["1"] = np.ones((64, 256), "f4")
                v["2"] = np.ones(256, "f4")
        paths.append(str(p))
    r = _run(HDF5, *paths)
    print(
        f"HDF5 per file (load + read every layer): first {r['first_s']:.3f} s (starts the "
        f"reader), next {r['next_s'] * 1e3:.1f} ms, bare h5py in-process "
        f"{r['bare_h5py_s'] * 1e3:.1f} ms"
    )


def bench_heatmap(folder: Path) -> None:
    from safetensors.numpy import save_file

    p = folder / "big_lstm.safetensors"
    if not p.exists():
        h, n_in = 2048, 1024  # 4h x (in + h) float32 ~ 100 MB
        rng = np.random.default_rng(0)
        save_file(
            {
                "lstm.weight_ih_l0": rng.standard_normal((4 * h, n_in), dtype="f4"),
                "lstm.weight_hh_l0": rng.standard_normal((4 * h, h), dtype="f4"),
                "lstm.bias_ih_l0": np.zeros(4 * h, "f4"),
                "lstm.bias_hh_l0": np.zeros(4 * h, "f4"),
            },
            str(p),
        )
    r = _run(HEATMAP, str(p))
    print(
        f"rnn_heatmap: layer {r['layer_mb']:.0f} MB, peak RSS growth {r['peak_growth_mb']:.0f} MB "
        f"({r['peak_growth_mb'] / r['layer_mb']:.2f}x the layer)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/rnnscope-bench-untrusted")
    ap.add_argument("--skip-heatmap", action="store_true")
    ap.add_argument("--only", choices=("safetensors", "hdf5", "heatmap"))
    args = ap.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "safetensors"):
        bench_safetensors(folder)
    if args.only in (None, "hdf5"):
        bench_hdf5(folder)
    if args.only in (None, "heatmap") and not args.skip_heatmap:
        bench_heatmap(folder)


if __name__ == "__main__":
    main()
