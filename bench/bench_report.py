"""``rnnscope report`` at scale, and ``--jobs 2`` vs ``--jobs 1``.

    python bench/bench_report.py scale [--big 100] [--many 1000] [--figure F.png]
    python bench/bench_report.py jobs [--repeats 3]

``scale``: checkpoints of a two-layer torch LSTM (.safetensors, written with numpy into a
temporary folder), reported with ``rnnscope report DIR -o OUT --jobs 2`` in a fresh process:
wall time, peak RSS of the largest process (the command or one of its workers), HTML size, and
Chromium's first contentful paint (Playwright, offline, median of 3 loads). Cases: ``--big``
checkpoints of LSTM(256) layers (100: ~330 MB, the issue's case; budget 15 MB and 2 s), and
LSTM(32) layers at 100 and ``--many`` checkpoints (1,000 x LSTM(256) would be 3.3 GB of files
and ~15 min on this machine): size and first paint must grow sub-linearly with the number of
checkpoints. Every file is read, so the report's own time is linear in it.

``jobs``: 10 LSTM(512) checkpoints, alternating the two settings. Target: 1.7x on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def write_run(folder: Path, n: int, units: int, inputs: int = 32) -> int:
    """``n`` checkpoints of a two-layer LSTM(``units``) trained-looking run: the recurrent
    kernels grow slowly, a unit dies for a stretch, the input kernel jumps once. Returns bytes."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(units)
    base = {}
    for layer, fan_in in ((0, inputs), (1, units)):
        base[f"lstm.weight_ih_l{layer}"] = rng.uniform(-s, s, (4 * units, fan_in)).astype("f4")
        base[f"lstm.weight_hh_l{layer}"] = rng.uniform(-s, s, (4 * units, units)).astype("f4")
        base[f"lstm.bias_ih_l{layer}"] = rng.uniform(-s, s, 4 * units).astype("f4")
        base[f"lstm.bias_hh_l{layer}"] = rng.uniform(-s, s, 4 * units).astype("f4")
    base["head.weight"] = rng.normal(0, s, (10, units)).astype("f4")
    base["head.bias"] = np.zeros(10, "f4")
    total = 0
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        t = dict(base)
        for layer in (0, 1):
            t[f"lstm.weight_hh_l{layer}"] = base[f"lstm.weight_hh_l{layer}"] * (1 + 1.5 * i / n)
        if n // 3 <= i < n // 2:
            ih = t["lstm.weight_ih_l1"].copy()
            hh = t["lstm.weight_hh_l1"].copy()
            for g in range(4):
                ih[g * units + 3] = 0.0
                hh[g * units + 3] = 0.0
            t["lstm.weight_ih_l1"], t["lstm.weight_hh_l1"] = ih, hh
        if i == (9 * n) // 10:
            t["lstm.weight_ih_l0"] = base["lstm.weight_ih_l0"] * 2.5
        path = folder / f"step{i * 50:06d}.safetensors"
        save_file(t, str(path))
        total += path.stat().st_size
    return total


def first_paint(html: Path, loads: int = 3) -> float:
    """Median first contentful paint (ms) of ``html`` in headless Chromium, offline."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        for _ in range(loads):
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(html.as_uri(), wait_until="load")
            paint = page.evaluate(
                "() => performance.getEntriesByType('paint')"
                ".filter(e => e.name === 'first-contentful-paint').map(e => e.startTime)"
            )
            times.append(float(paint[0]))
            context.close()
        browser.close()
    return statistics.median(times)


def report_once(folder: Path, out: Path, jobs: int = 2) -> dict[str, float]:
    """One ``rnnscope report`` in a fresh process: seconds, peak RSS (MB), HTML size (MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "rnnscope", "report", str(folder), "-o", str(out)]
    done = subprocess.run([*cmd, "--jobs", str(jobs)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"rnnscope report exited with {done.returncode}:\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": seconds,
        "peak_rss_mb": max(peak, before) / 1024,
        "html_mb": out.stat().st_size / 2**20,
        "first_paint_ms": first_paint(out),
    }


def scale(big: int, many: int) -> dict[str, dict[str, float]]:
    results = {}
    cases = [(f"{big} x LSTM(256)", big, 256), ("100 x LSTM(32)", 100, 32)]
    cases = [c for c in cases if c[1]] + [(f"{many} x LSTM(32)", many, 32)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, n, units in cases:
            folder = Path(tmp) / f"run{n}_{units}"
            size = write_run(folder, n, units)
            r = report_once(folder, Path(tmp) / f"r{n}_{units}.html")
            r.update(checkpoints=n, files_mb=size / 2**20)
            results[name] = r
            print(name, json.dumps(r), flush=True)
            shutil.rmtree(folder)
    return results


def figure(r: dict[str, dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(r)
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8))
    what = (("html_mb", "HTML size (MB)"), ("first_paint_ms", "first paint (ms)"),
            ("seconds", "report time (s), --jobs 2"))  # fmt: skip
    colours = ["#d62728", "#888888", "#1f77b4"]
    for ax, (key, title) in zip(axes, what, strict=True):
        vals = [r[n][key] for n in names]
        bars = ax.barh(range(len(names)), vals, color=colours[: len(names)])
        ax.bar_label(bars, [f"{v:.3g}" for v in vals], padding=3, fontsize=8)
        ax.set_yticks(range(len(names)), names if ax is axes[0] else [""] * len(names))
        ax.invert_yaxis()
        ax.set_xlim(0, max(vals) * 1.35)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.suptitle("rnnscope report at scale (budget for 100 x LSTM(256): 15 MB, 2 s first paint)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def jobs_once(paths: list[str], out: Path, jobs: int) -> float:
    from rnnscope._cli import main as cli

    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli(["report", *paths, "-o", str(out), "--jobs", str(jobs)])
    if code != 0:
        raise SystemExit(f"rnnscope report failed with exit code {code}")
    return time.perf_counter() - t


def jobs(repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_checkpoints(folder)
        jobs_once(paths[:1], folder / "warm.html", 1)  # imports, fonts
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(repeats):
            for n in (1, 2):
                times[n].append(jobs_once(paths, folder / f"r{n}.html", n))
    j1, j2 = statistics.median(times[1]), statistics.median(times[2])
    return {"jobs1_s": j1, "jobs2_s": j2, "speedup": j1 / j2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("case", choices=["scale", "jobs"], nargs="?", default="scale")
    ap.add_argument("--big", type=int, default=100)
    ap.add_argument("--many", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    if args.case == "jobs":
        print(json.dumps(jobs(args.repeats), indent=2))
        return
    r = scale(args.big, args.many)
    small, large = r["100 x LSTM(32)"], r[f"{args.many} x LSTM(32)"]
    grow = args.many / 100
    for key in ("html_mb", "first_paint_ms", "seconds"):
        print(f"{key}: x{large[key] / small[key]:.2f} for x{grow:g} checkpoints")
    if args.figure:
        figure(r, args.figure)


if __name__ == "__main__":
    main()
