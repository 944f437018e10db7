"""``rnnscope.trace`` of a padded batch vs the unpadded trace of the same shape: LSTM(256),
16 sequences of lengths 10..100 (evenly spread), 100 steps, 20 features, in one process.

    python bench/bench_masks.py [--repeats 30]

Calls alternate (padded, unpadded, padded, ...) so both see the same machine conditions; the
ratio of medians is what matters (target: at most 1.3x). Also reported: the padded batch given
as a torch ``PackedSequence`` (unpacked in numpy first), and a right-padded batch traced through
the backward direction of a bidirectional LSTM (which regathers every sample).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np

import rnnscope
from rnnscope import RNNWeights

B, T, F, U = 16, 100, 20, 256


def alternated(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median seconds of each function, calls interleaved."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def measure(repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)

    def parts() -> dict[str, np.ndarray]:
        return {
            "kernel": rng.normal(0, 0.1, (F, 4 * U)).astype("float32"),
            "recurrent_kernel": rng.normal(0, 0.1, (U, 4 * U)).astype("float32"),
            "bias": rng.normal(0, 0.1, 4 * U).astype("float32"),
        }

    w = RNNWeights.from_arrays("lstm", "LSTM", parts())
    wb = RNNWeights.from_arrays("bilstm", "LSTM", parts(), parts())
    x = rng.normal(size=(B, T, F)).astype("float32")
    lengths = np.linspace(10, T, B).astype(int)
    out = {}
    padded, plain = alternated(
        [lambda: rnnscope.trace(w, x, lengths=lengths), lambda: rnnscope.trace(w, x)], repeats
    )
    out.update(padded_s=padded, unpadded_s=plain, ratio=padded / plain)
    bi_padded, bi_plain = alternated(
        [lambda: rnnscope.trace(wb, x, lengths=lengths), lambda: rnnscope.trace(wb, x)],
        max(3, repeats // 3),
    )
    out.update(bidirectional_ratio=bi_padded / bi_plain)
    try:
        import torch
        from torch.nn.utils.rnn import pack_padded_sequence
    except ImportError:
        return out
    packed = pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    p, q = alternated([lambda: rnnscope.trace(w, packed), lambda: rnnscope.trace(w, x)], repeats)
    out.update(packed_ratio=p / q)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    r = measure(args.repeats)
    print(json.dumps({k: round(v, 4) for k, v in r.items()}, indent=2))
    print(
        f"padded trace {r['padded_s'] * 1e3:.1f} ms vs unpadded {r['unpadded_s'] * 1e3:.1f} ms: "
        f"{r['ratio']:.2f}x (target <= 1.3x)"
    )


if __name__ == "__main__":
    main()
