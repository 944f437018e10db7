"""Training-monitor overhead: one epoch of a small LSTM with and without the monitor
(``every=50``), alternated in one process.

    python bench/bench_monitor.py [--repeats 3] [--figure docs/images/bench_monitor.png]

torch: LSTM(128) over 100 timesteps of 16 features, batch 64, 200 batches, ``Monitor.step()``
after every ``backward()``. Keras 3 (TensorFlow backend): the same model with ``model.fit`` and
``rnnscope.keras.Monitor`` (training-batch gradients through its optimizer tap). Both write SQLite
files in a temporary folder. Target: at most 5% added wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

T, F, UNITS, BATCH, BATCHES, EVERY = 100, 16, 128, 64, 200, 50


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH * BATCHES, T, F)).astype("f4")
    return x, x[:, 10, :1].copy()


def torch_epoch(x: np.ndarray, y: np.ndarray, db: Path | None) -> tuple[float, float]:
    """Seconds for the epoch, and seconds spent inside the monitor."""
    import torch

    from rnnscope.torch import Monitor

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(F, UNITS, batch_first=True)
            self.head = torch.nn.Linear(UNITS, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0][:, -1])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    inside = 0.0
    t = time.perf_counter()
    mon = Monitor(net, db, every=EVERY) if db is not None else None
    inside += time.perf_counter() - t
    for i in range(BATCHES):
        sl = slice(i * BATCH, (i + 1) * BATCH)
        loss = torch.nn.functional.mse_loss(net(xt[sl]), yt[sl])
        loss.backward()
        if mon is not None:
            t0 = time.perf_counter()
            mon.step()
            inside += time.perf_counter() - t0
        opt.step()
        opt.zero_grad()
    if mon is not None:
        t0 = time.perf_counter()
        mon.close()
        inside += time.perf_counter() - t0
    return time.perf_counter() - t, inside


def keras_epoch(x: np.ndarray, y: np.ndarray, db: Path | None) -> tuple[float, float]:
    """Seconds for the epoch, and seconds spent inside the monitor's callback methods (the
    optimizer tap's copies run inside the compiled step and show in the epoch time only)."""
    import keras

    from rnnscope.keras import Monitor

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.LSTM(UNITS, name="lstm"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    inside = [0.0]

    class Timed(Monitor):  # type: ignore[misc]
        def on_train_begin(self, logs=None):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            super().on_train_begin(logs)
            inside[0] += time.perf_counter() - t0

        def on_train_batch_end(self, batch, logs=None):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            super().on_train_batch_end(batch, logs)
            inside[0] += time.perf_counter() - t0

        def on_train_end(self, logs=None):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            super().on_train_end(logs)
            inside[0] += time.perf_counter() - t0

    callbacks = [Timed(db, every=EVERY)] if db else []
    t = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
    return time.perf_counter() - t, inside[0]


def measure(repeats: int) -> dict[str, dict[str, float]]:
    x, y = data()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, epoch in (("torch", torch_epoch), ("keras-tensorflow", keras_epoch)):
            epoch(x[: BATCH * 4], y[: BATCH * 4], Path(tmp) / "warm.db")  # imports, tracing
            times: dict[str, list[float]] = {"bare": [], "monitor": [], "inside": []}
            for r in range(repeats):  # ABBA order: a drift in machine speed hits both alike
                order = ("bare", "monitor") if r % 2 == 0 else ("monitor", "bare")
                for kind in order:
                    db = Path(tmp) / f"{name}{r}.db" if kind == "monitor" else None
                    total, inside = epoch(x, y, db)
                    times[kind].append(total)
                    if kind == "monitor":
                        times["inside"].append(inside)
            bare, mon = statistics.median(times["bare"]), statistics.median(times["monitor"])
            inside = statistics.median(times["inside"])
            out[name] = {
                "bare_s": bare,
                "monitor_s": mon,
                "overhead": mon / bare - 1,
                "inside_s": inside,
                "inside_share": inside / bare,
            }
    return out


def figure(r: dict[str, dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(r)
    fig, ax = plt.subplots(figsize=(8.0, 3.2))
    y = np.arange(len(names))
    for k, (key, colour, label) in enumerate(
        (
            ("bare_s", "#888888", "without the monitor"),
            ("monitor_s", "#d62728", "with Monitor(every=50)"),
        )
    ):
        vals = [r[n][key] for n in names]
        bars = ax.barh(y + (k - 0.5) * 0.36, vals, 0.36, color=colour, label=label)
        labels = [
            f"{v:.2f} s"
            + (
                f" ({r[n]['overhead']:+.1%}; inside the monitor {r[n]['inside_share']:.1%})"
                if key == "monitor_s"
                else ""
            )
            for v, n in zip(vals, names, strict=True)
        ]
        ax.bar_label(bars, labels, padding=3, fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(v["monitor_s"] for v in r.values()) * 1.6)
    ax.set_xlabel(
        f"seconds per epoch, median ({BATCHES} batches of {BATCH}, LSTM({UNITS}), {T} steps)"
    )
    threads = os.environ.get("OMP_NUM_THREADS")
    ax.set_title("Training-monitor overhead" + (f" (OMP_NUM_THREADS={threads})" if threads else ""))
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--figure", default=None)
    ap.add_argument("--from-json", default=None, help="redraw the figure from saved results")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as fh:
            r = json.load(fh)
        figure(r, args.figure)
        return
    r = measure(args.repeats)
    print(json.dumps(r, indent=2))
    for name, v in r.items():
        print(
            f"{name}: epoch with the monitor {v['overhead']:+.1%} (difference of medians); "
            f"time inside the monitor {v['inside_share']:.1%} of the bare epoch "
            "(target <= 5%)"
        )
    if args.figure:
        figure(r, args.figure)


if __name__ == "__main__":
    main()
