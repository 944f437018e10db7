"""``rnnscope report`` over 10 checkpoints of an LSTM(512) model: ``--jobs 2`` vs ``--jobs 1``.

    python bench/bench_report.py [--repeats 3] [--figure docs/images/bench_report.png]

The checkpoints (torch key names, .safetensors, an LSTM(512) with 64 inputs and a Dense head)
are written to a temporary folder; each run calls the command line's entry point in this
process, alternating the two settings. Target: jobs 2 at least 1.7x faster on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rnnscope._cli import main as cli

UNITS, INPUTS, FILES = 512, 64, 10


def write_checkpoints(folder: Path) -> list[str]:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    paths = []
    for epoch in range(FILES):
        s = 1 / np.sqrt(UNITS) * (1 + 0.05 * epoch)
        tensors = {
            "lstm.weight_ih_l0": rng.uniform(-s, s, (4 * UNITS, INPUTS)).astype("f4"),
            "lstm.weight_hh_l0": rng.uniform(-s, s, (4 * UNITS, UNITS)).astype("f4"),
            "lstm.bias_ih_l0": rng.uniform(-s, s, 4 * UNITS).astype("f4"),
            "lstm.bias_hh_l0": rng.uniform(-s, s, 4 * UNITS).astype("f4"),
            "head.weight": rng.normal(0, s, (10, UNITS)).astype("f4"),
            "head.bias": np.zeros(10, "f4"),
        }
        path = folder / f"epoch{epoch:02d}.safetensors"
        save_file(tensors, str(path))
        paths.append(str(path))
    return paths


def once(paths: list[str], out: Path, jobs: int) -> float:
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli(["report", *paths, "-o", str(out), "--jobs", str(jobs)])
    if code != 0:
        raise SystemExit(f"rnnscope report failed with exit code {code}")
    return time.perf_counter() - t


def measure(repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_checkpoints(folder)
        once(paths[:1], folder / "warm.html", 1)  # imports, fonts
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(repeats):
            for jobs in (1, 2):
                times[jobs].append(once(paths, folder / f"r{jobs}.html", jobs))
        size = (folder / "r1.html").stat().st_size
    j1, j2 = statistics.median(times[1]), statistics.median(times[2])
    return {"jobs1_s": j1, "jobs2_s": j2, "speedup": j1 / j2, "report_mb": size / 2**20}


def figure(r: dict[str, float], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.4))
    bars = ax.barh([0, 1], [r["jobs1_s"], r["jobs2_s"]], color=["#888888", "#d62728"])
    ax.bar_label(
        bars,
        [f"{r['jobs1_s']:.1f} s", f"{r['jobs2_s']:.1f} s ({r['speedup']:.2f}x)"],
        padding=3,
        fontsize=8,
    )
    ax.set_yticks([0, 1], ["--jobs 1", "--jobs 2"])
    ax.invert_yaxis()
    ax.set_xlim(0, r["jobs1_s"] * 1.3)
    ax.set_xlabel("seconds, median: rnnscope report of 10 LSTM(512) checkpoints, 2 cores")
    ax.set_title("Report: per-file statistics and figures in parallel processes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    r = measure(args.repeats)
    print(json.dumps(r, indent=2))
    print(
        f"report of {FILES} LSTM({UNITS}) checkpoints: --jobs 2 is {r['speedup']:.2f}x "
        "faster than --jobs 1 (target >= 1.7x)"
    )
    if args.figure:
        figure(r, args.figure)


if __name__ == "__main__":
    main()
