"""Per-tensor statistics over a generated 1 GiB checkpoint, in .h5 and .safetensors:
``rnnscope.summary`` (per gate: mean, std, min, max, NaN and Inf counts) against a bare script that
reads every tensor and computes the same reductions per tensor. Each run is a fresh process, so
its peak RSS is its own.

    python bench/bench_files.py [--gib 1.0] [--repeats 3] [--dir /tmp/rnnscope-bench]

Targets: throughput >= 0.7x of the bare script; peak RSS <= ~3x the largest tensor + 300 MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
kind, path = sys.argv[1], sys.argv[2]

def reduce(a):
    f = a.astype(np.float64, copy=False)
    return (float(f.mean()), float(f.std()), float(f.min()), float(f.max()),
            int(np.isnan(a).sum()), int(np.isinf(a).sum()))

t = time.perf_counter()
if kind == "bare-h5":
    import h5py
    with h5py.File(path, "r") as fh:
        names = []
        fh.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            reduce(fh[n][()])
elif kind == "bare-safetensors":
    from safetensors import safe_open
    with safe_open(path, framework="np") as fh:
        for k in fh.keys():
            reduce(fh.get_tensor(k))
else:
    import rnnscope
    rnnscope.summary(path, quiet=True)
elapsed = time.perf_counter() - t
# VmHWM is this process's own peak (ru_maxrss would include the parent's at fork time).
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
reader = 0  # rnnscope's HDF5 reader process has a peak of its own
if "rnnscope" in sys.modules:
    from rnnscope._io import _h5proc
    pid = _h5proc.reader_pid()
    if pid:
        reader = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status")
                      if l.startswith("VmHWM"))
print(json.dumps({"seconds": elapsed, "peak_rss_mb": hwm / 1024,
                  "reader_peak_rss_mb": reader / 1024}))
"""


def make_files(folder: Path, gib: float) -> tuple[Path, Path, int]:
    """Two stacked LSTM layers in a tf-keras weights-only .h5 tree and as a torch state dict."""
    import h5py
    from safetensors.numpy import save_file

    units = round((gib * 2**30 / (2 * 2 * 4 * 4)) ** 0.5 / 64) * 64  # 2 layers x 2 matrices
    rng = np.random.default_rng(0)
    h5, st = folder / "big.h5", folder / "big.safetensors"
    tensors: dict[str, np.ndarray] = {}
    with h5py.File(h5, "w") as f:
        f.attrs["layer_names"] = np.array([b"lstm", b"lstm_1"])
        f.attrs["keras_version"] = b"2.21.0"
        for k, name in enumerate(("lstm", "lstm_1")):
            g = f.create_group(name)
            names = [f"{name}/lstm_cell/{v}:0" for v in ("kernel", "recurrent_kernel", "bias")]
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            arrays = [rng.standard_normal((units, 4 * units), np.float32) for _ in range(2)]
            arrays.append(rng.standard_normal(4 * units, np.float32))
            for n, a in zip(names, arrays, strict=True):
                g.create_dataset(n, data=a)
            for w, a in zip(("weight_ih", "weight_hh", "bias_ih"), arrays, strict=True):
                tensors[f"encoder.{w}_l{k}"] = np.ascontiguousarray(a.T)
            tensors[f"encoder.bias_hh_l{k}"] = arrays[2]
    save_file(tensors, str(st))
    return h5, st, units * 4 * units * 4


def run(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def figure(results: dict[str, dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmts = list(results)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.arange(len(fmts))
    for ax, key, unit, title in (
        (a1, "gib_per_s", "GiB/s", "Throughput (higher is better)"),
        (a2, "peak_rss_mb", "MB", "Peak RSS (lower is better)"),
    ):
        for k, (who, colour) in enumerate((("bare", "#888888"), ("rnnscope", "#d62728"))):
            vals = [results[f][f"{who}_{key}"] for f in fmts]
            bars = ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, color=colour, label=who)
            ax.bar_label(
                bars, [f"{v:.2f}" if unit == "GiB/s" else f"{v:.0f}" for v in vals], fontsize=8
            )
        ax.set_xticks(x, [f".{f}" for f in fmts])
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10)
    budget = results[fmts[0]]["rss_budget_mb"]
    a2.axhline(budget, color="k", ls="--", lw=1)
    a2.text(
        len(fmts) - 0.5, budget, "3x largest tensor + 300 MB", ha="right", va="bottom", fontsize=8
    )
    a1.legend(fontsize=8)
    fig.suptitle(
        "Per-gate statistics of a 1 GiB checkpoint: rnnscope.summary vs bare read + reductions",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/rnnscope-bench")
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    h5, st, largest = make_files(folder, args.gib)
    size = h5.stat().st_size
    print(
        f"wrote {size / 2**30:.2f} GiB per file in {time.perf_counter() - t:.0f} s; "
        f"largest tensor {largest / 2**20:.0f} MiB"
    )
    results = {}
    for fmt, path in (("h5", h5), ("safetensors", st)):
        runs: dict[str, list[dict[str, float]]] = {"bare": [], "rnnscope": []}
        for _ in range(args.repeats):  # interleaved
            runs["bare"].append(run(f"bare-{fmt}", path))
            runs["rnnscope"].append(run("rnnscope", path))
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        rss = {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
        results[fmt] = {
            "bare_s": med["bare"],
            "rnnscope_s": med["rnnscope"],
            "throughput_ratio": med["bare"] / med["rnnscope"],
            "bare_gib_per_s": size / 2**30 / med["bare"],
            "rnnscope_gib_per_s": size / 2**30 / med["rnnscope"],
            "bare_peak_rss_mb": rss["bare"],
            "rnnscope_peak_rss_mb": rss["rnnscope"],
            "reader_peak_rss_mb": max(r.get("reader_peak_rss_mb", 0) for r in runs["rnnscope"]),
            "rss_budget_mb": 3 * largest / 2**20 + 300,
        }
    print(json.dumps(results, indent=2))
    if args.figure:
        figure(results, args.figure)
    for fmt, r in results.items():
        print(
            f"{fmt}: throughput {r['throughput_ratio']:.2f}x of bare (target >= 0.7x); peak RSS "
            f"{r['rnnscope_peak_rss_mb']:.0f} MB vs budget {r['rss_budget_mb']:.0f} MB"
            + (
                f" (HDF5 reader process: {r['reader_peak_rss_mb']:.0f} MB more)"
                if r["reader_peak_rss_mb"]
                else ""
            )
        )


if __name__ == "__main__":
    main()
