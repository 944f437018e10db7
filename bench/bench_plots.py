"""``rnn_histogram`` and ``rnn_heatmap`` of an LSTM(256) with 20 inputs, written to PNG, against a
bare-matplotlib floor drawing the same layout, alternated call by call in one process.

    python bench/bench_plots.py [--repeats 15] [--figure docs/images/bench_plots.png]

The floor is the least code that draws the same figure: for the histogram, a 3 x 4 grid with
``numpy.histogram`` (edges shared within each part) and ``stairs`` per panel; for the heatmap,
three stacked panels with one ``imshow`` each and a colour bar. Both write PNG with the same
``savefig`` settings rnnscope uses. Targets: within 1.5x of the floor, and at least 3x faster
than See RNN's measured 1.1-1.2 s histogram (0.23-0.48 s heatmap) on this machine class.

``--compat`` also times the See RNN compatibility layer's ``rnn_histogram`` at the sandbox's 400
bins on a torch Bidirectional LSTM(64): its one bar artist per panel against the same call drawing
one Rectangle per bar through ``ax.hist`` (``configs={"plot": {"histtype": "bar"}}``, See RNN's
own drawing), alternated call by call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import rnnscope
from rnnscope import plot

UNITS, INPUTS, BINS = 256, 20, 100
SEE_RNN = {"histogram": (1.1, 1.2), "heatmap": (0.23, 0.48)}  # seconds, See RNN 1.15.1
PNG = {"pil_kwargs": {"compress_level": 3}}


def lstm() -> rnnscope.RNNWeights:
    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(UNITS)
    return rnnscope.RNNWeights.from_arrays(
        "lstm",
        "LSTM",
        {
            "kernel": rng.uniform(-s, s, (INPUTS, 4 * UNITS)).astype("f4"),
            "recurrent_kernel": rng.normal(0, s, (UNITS, 4 * UNITS)).astype("f4"),
            "bias": np.r_[np.zeros(UNITS), np.ones(UNITS), np.zeros(2 * UNITS)].astype("f4"),
        },
    )


def floor_histogram(w: rnnscope.RNNWeights, path: str) -> None:
    fig = plt.figure(figsize=(11.0, 6.25))
    axes = fig.subplots(3, 4)
    for i, part in enumerate(("kernel", "recurrent_kernel", "bias")):
        full = w.array(part)
        edges = np.linspace(full.min(), full.max(), BINS + 1)
        for j, gate in enumerate(w.gates):
            counts, _ = np.histogram(w.array(part, gate), bins=edges)
            axes[i, j].stairs(counts, edges, fill=True)
    fig.savefig(path, **PNG)
    plt.close(fig)


def floor_heatmap(w: rnnscope.RNNWeights, path: str) -> None:
    fig = plt.figure(figsize=(10.0, 8.8))
    axes = fig.subplots(3, 1, gridspec_kw={"height_ratios": [1.5, 4.8, 0.65]})
    for ax, a in zip(
        axes, (w.array("kernel"), w.array("recurrent_kernel"), w.array("bias")[None]), strict=True
    ):
        image = ax.imshow(a, aspect="auto", interpolation="nearest", cmap="bwr")
    fig.colorbar(image, ax=list(axes))
    fig.savefig(path, **PNG)
    plt.close(fig)


def ours_histogram(w: rnnscope.RNNWeights, path: str) -> None:
    plt.close(plot.rnn_histogram(w, bins=BINS, savepath=path))


def ours_heatmap(w: rnnscope.RNNWeights, path: str) -> None:
    plt.close(plot.rnn_heatmap(w, savepath=path))


def measure_compat(repeats: int) -> dict[str, float]:
    """The compat ``rnn_histogram`` (one artist per panel) vs one patch per bar, medians."""
    import torch

    from rnnscope.compat.see_rnn import rnn_histogram

    torch.manual_seed(0)
    layer = torch.nn.LSTM(20, 64, bidirectional=True)
    ways = {"one_artist_s": None, "patch_per_bar_s": {"plot": {"histtype": "bar"}}}
    times: dict[str, list[float]] = {k: [] for k in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats + 1):  # the first round warms up
            for name, configs in ways.items():
                t = time.perf_counter()
                figs, _ = rnn_histogram(layer, None, layer=layer, bins=400, configs=configs)
                for k, fig in enumerate(figs):
                    fig.savefig(os.path.join(tmp, f"{k}.png"), **PNG)
                plt.close("all")
                if i:
                    times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {**med, "speedup": med["patch_per_bar_s"] / med["one_artist_s"]}


def measure(repeats: int) -> dict[str, dict[str, float]]:
    w = lstm()
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "x.png")
        for kind, floor, ours in (
            ("histogram", floor_histogram, ours_histogram),
            ("heatmap", floor_heatmap, ours_heatmap),
        ):
            floor(w, png), ours(w, png)  # warm-up: fonts, caches
            times: dict[str, list[float]] = {"floor": [], "rnnscope": []}
            for _ in range(repeats):
                for name, fn in (("floor", floor), ("rnnscope", ours)):
                    t = time.perf_counter()
                    fn(w, png)
                    times[name].append(time.perf_counter() - t)
            med = {k: statistics.median(v) for k, v in times.items()}
            lo, hi = SEE_RNN[kind]
            out[kind] = {
                **{f"{k}_s": v for k, v in med.items()},
                "vs_floor": med["rnnscope"] / med["floor"],
                "faster_than_see_rnn": (lo / med["rnnscope"], hi / med["rnnscope"]),
            }
    return out


def figure(results: dict[str, dict[str, float]], path: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    kinds = list(results)
    y = np.arange(len(kinds))
    h = 0.26
    rows = (
        ("see_rnn", "#bbbbbb", "See RNN 1.15.1 (measured earlier, upper value)"),
        ("rnnscope_s", "#d62728", "rnnscope"),
        ("floor_s", "#555555", "bare matplotlib, same layout"),
    )
    for k, (key, colour, label) in enumerate(rows):
        ms = [(SEE_RNN[kd][1] if key == "see_rnn" else results[kd][key]) * 1e3 for kd in kinds]
        bars = ax.barh(y + (k - 1) * h, ms, h, color=colour, label=label)
        ax.bar_label(bars, [f"{v:.0f}" for v in ms], padding=2, fontsize=7)
    ax.set_yticks(y, [f"rnn_{k}" for k in kinds])
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds to draw and write the PNG, median (LSTM(256), 20 inputs)")
    ax.set_title("Figures: rnnscope vs See RNN and the bare-matplotlib floor")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--figure", default=None)
    ap.add_argument("--compat", action="store_true", help="also time the See RNN layer")
    ap.add_argument("--compat-repeats", type=int, default=3)
    args = ap.parse_args()
    r = measure(args.repeats)
    print(json.dumps(r, indent=2))
    if args.compat:
        c = measure_compat(args.compat_repeats)
        print(json.dumps(c, indent=2))
        print(
            f"compat rnn_histogram, 400 bins, Bidirectional LSTM(64): one artist "
            f"{c['one_artist_s']:.2f} s, one patch per bar {c['patch_per_bar_s']:.2f} s "
            f"({c['speedup']:.1f}x)"
        )
    for kind, v in r.items():
        lo, hi = v["faster_than_see_rnn"]
        print(
            f"rnn_{kind}: {v['rnnscope_s'] * 1e3:.0f} ms, {v['vs_floor']:.2f}x the floor "
            f"(target <= 1.5x), {lo:.1f}-{hi:.1f}x faster than See RNN (target >= 3x)"
        )
    if args.figure:
        figure(r, args.figure)


if __name__ == "__main__":
    main()
