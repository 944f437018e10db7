"""``import rnnscope`` vs ``import numpy``, each in fresh processes, interleaved.

    python bench/bench_import.py [--repeats 15]

Prints the median wall time of each and their ratio (target: rnnscope <= 1.5x numpy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def _once(module: str | None) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}" if module else "pass"], check=True)
    return time.perf_counter() - t


def measure(repeats: int) -> dict[str, float]:
    base = statistics.median(_once(None) for _ in range(repeats))  # interpreter start-up
    times: dict[str, list[float]] = {"numpy": [], "rnnscope": []}
    for _ in range(repeats):  # interleaved, so drifts hit both alike
        for m in times:
            times[m].append(_once(m))
    med = {m: statistics.median(v) for m, v in times.items()}
    return {
        "python_startup_s": base,
        "numpy_s": med["numpy"],
        "rnnscope_s": med["rnnscope"],
        "ratio": med["rnnscope"] / med["numpy"],
        "ratio_excluding_startup": (med["rnnscope"] - base) / (med["numpy"] - base),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=15)
    r = measure(ap.parse_args().repeats)
    print(json.dumps(r, indent=2))
    print(f"import rnnscope / import numpy = {r['ratio']:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
