"""``import rnnscope`` vs ``import numpy``, each in fresh processes, interleaved.

    python bench/bench_import.py [--repeats 15]

Prints the median wall time of each and their ratio (target: rnnscope <= 1.5x numpy). Public
names load their modules on first use, so it also times ``import rnnscope`` followed by touching
every public name (what a script that uses the whole API pays before its first call).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CODE = {
    "numpy": "import numpy",
    "rnnscope": "import rnnscope",
    "rnnscope_all_names": "import rnnscope\nfor n in rnnscope.__all__: getattr(rnnscope, n)",
}


def _once(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t


def measure(repeats: int) -> dict[str, float]:
    base = statistics.median(_once("pass") for _ in range(repeats))  # interpreter start-up
    times: dict[str, list[float]] = {m: [] for m in CODE}
    for _ in range(repeats):  # interleaved, so drifts hit all alike
        for m in times:
            times[m].append(_once(CODE[m]))
    med = {m: statistics.median(v) for m, v in times.items()}
    return {
        "python_startup_s": base,
        "numpy_s": med["numpy"],
        "rnnscope_s": med["rnnscope"],
        "rnnscope_all_names_s": med["rnnscope_all_names"],
        "ratio": med["rnnscope"] / med["numpy"],
        "ratio_excluding_startup": (med["rnnscope"] - base) / (med["numpy"] - base),
        "ratio_all_names": med["rnnscope_all_names"] / med["numpy"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=15)
    r = measure(ap.parse_args().repeats)
    print(json.dumps(r, indent=2))
    print(f"import rnnscope / import numpy = {r['ratio']:.2f}x (target <= 1.5x)")
    print(f"import rnnscope + every public name / import numpy = {r['ratio_all_names']:.2f}x")


if __name__ == "__main__":
    main()
