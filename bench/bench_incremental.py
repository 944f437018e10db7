"""Rerunning ``rnnscope report`` over a run folder after one checkpoint is added, vs the full run.

    python bench/bench_incremental.py [--files 100] [--units 512] [--jobs 2] [--no-figures]
                                      [--uncached]

Writes ``--files`` checkpoints of a torch LSTM(``--units``) (``.safetensors``, input size 64,
a Dense head; the recurrent kernel grows through the run) into a temporary folder, then times,
each in a fresh process, ``rnnscope report DIR -o OUT --cache DB --jobs N``:

1. the full run, with an empty cache (every file read, its statistics and, for the checkpoints
   shown in full, its figures computed and kept);
2. the same command after one more checkpoint is written: only that file is read.

Prints both times and their ratio (target: <= 5 % at the default 100 x LSTM(512), 476 MB).
``--uncached`` also times the full run with ``--no-cache``, to show what keeping the results
costs the first run. A quicker, smaller set: ``--files 20`` (95 MB; the rerun's fixed part,
the new checkpoint's statistics, the run's figures and the page, weighs five times more there,
so its ratio is higher).

Where a rerun's time goes (``python -m cProfile`` on the rerun): the new checkpoint's
statistics, read in this process with one BLAS thread (``threadpoolctl``; a worker without it);
its figures, drawn in a worker meanwhile (:mod:`rnnscope._report_early`); the page's imports,
done in a thread while those run; then the run's figures (kept in the cache under a hash of
what they draw: a rerun that found nothing new draws none), the comparison and the page.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

INPUTS = 64


def write_checkpoint(folder: Path, i: int, n: int, units: int) -> Path:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(i)
    s = 1 / np.sqrt(units)
    grow = 1 + 1.5 * i / n
    tensors = {
        "lstm.weight_ih_l0": rng.uniform(-s, s, (4 * units, INPUTS)).astype("f4"),
        "lstm.weight_hh_l0": (rng.uniform(-s, s, (4 * units, units)) * grow).astype("f4"),
        "lstm.bias_ih_l0": rng.uniform(-s, s, 4 * units).astype("f4"),
        "lstm.bias_hh_l0": rng.uniform(-s, s, 4 * units).astype("f4"),
        "head.weight": rng.normal(0, s, (10, units)).astype("f4"),
        "head.bias": np.zeros(10, "f4"),
    }
    path = folder / f"step{(i + 1) * 100:06d}.safetensors"
    save_file(tensors, str(path))
    old = time.time() - 600  # written a while ago, as a finished run's files are
    os.utime(path, (old, old))
    return path


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", type=int, default=100)
    p.add_argument("--units", type=int, default=512)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--uncached", action="store_true", help="also time a full run without cache")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        folder.mkdir()
        for i in range(a.files):
            write_checkpoint(folder, i, a.files + 1, a.units)
        size = sum(f.stat().st_size for f in folder.iterdir())
        out, db = Path(tmp) / "report.html", Path(tmp) / "results.sqlite"
        cmd = [sys.executable, "-m", "rnnscope", "report", str(folder), "-o", str(out)]
        cmd += ["--jobs", str(a.jobs)] + (["--no-figures"] if a.no_figures else [])
        what = f"{a.files} x LSTM({a.units}) ({size / 1e6:.0f} MB), --jobs {a.jobs}"
        print(what + (", no figures" if a.no_figures else ""), flush=True)
        if a.uncached:
            bare = timed([*cmd, "--no-cache"])
            print(f"full run, --no-cache:          {bare:8.1f} s", flush=True)
        full = timed([*cmd, "--cache", str(db)])
        print(f"full run, empty cache:         {full:8.1f} s", flush=True)
        write_checkpoint(folder, a.files, a.files + 1, a.units)
        again = timed([*cmd, "--cache", str(db)])
        print(f"rerun after adding one file:   {again:8.1f} s", flush=True)
        print(f"ratio: {again / full:.3f} (target <= 0.05); cache {db.stat().st_size / 1e6:.1f} MB")
        if a.uncached:
            print(f"keeping the results cost the first run {full / bare - 1:+.1%}")


if __name__ == "__main__":
    main()
