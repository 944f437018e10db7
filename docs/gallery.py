"""Render every rnnscope figure from the bundled demo models into ``docs/images/gallery/``.

    python docs/gallery.py

The figures shown in the README come from here, and screenshots of the demo's HTML report and
of the worked example's report (the bundled checkpoints of ``docs/training_example.py``),
taken in headless Chromium. The weight figures need matplotlib only; the
gradient figures load the bundled ``.keras`` file with Keras (any backend) and are skipped,
with a message, when Keras is not installed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import rnnscope
from rnnscope import plot
from rnnscope._demo import demo_figures, demo_paths

OUT = Path(__file__).resolve().parent / "images" / "gallery"


def nan_example(out: Path) -> Path:
    """The demo LSTM with a few weights broken, as a diverging training run leaves them."""
    w = rnnscope.rnn_weights(demo_paths()["lstm"])
    arrays = {k: v.copy() for k, v in w.arrays.items()}
    k = arrays[("recurrent_kernel", "forward")]
    k[3, 16:20] = np.nan  # forget gate, unit row 3
    k[9, 40] = np.inf  # cell gate
    arrays[("bias", "forward")][50] = np.nan  # output gate
    broken = rnnscope.RNNWeights.from_parts(w.name, w.cell, arrays)
    path = out / "nan_heatmap.png"
    plt.close(
        plot.rnn_heatmap(
            broken,
            title="Heatmap of the demo LSTM with injected NaN and "
            "Inf: counted, marked x, drawn as 0",
            savepath=path,
        )
    )
    return path


def gradient_examples(out: Path) -> list[Path]:
    """Gradient heatmap and histograms of the demo LSTM, live in Keras."""
    import keras

    from rnnscope.compat.see_rnn import rnn_heatmap, rnn_histogram

    model = keras.saving.load_model(demo_paths()["lstm"], compile=False)
    model.compile(optimizer="adam", loss="mse")
    x = np.load(demo_paths()["inputs"])["lstm"]
    y = x[:, 2, :1]  # the task the LSTM was trained on: recall channel 0 of step 2
    paths = [out / "lstm_grads_heatmap.png", out / "see_rnn_histogram.png"]
    plt.close(
        rnn_heatmap(
            model,
            "lstm",
            mode="grads",
            input_data=x,
            labels=y,
            cmap=None,
            absolute_value=True,
            savepath=paths[0],
        )
    )
    plt.close(rnn_histogram(model, "lstm", equate_axes=False, show_bias=False, savepath=paths[1]))
    return paths


def screenshot(html: Path, png: Path, height: int = 1800) -> Path | None:
    """A headless Chromium screenshot of a report page (skipped without chromium)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed: report screenshots skipped")
        return None
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--window-size=1300,{height}",
                f"--screenshot={png}",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return png


def reports(out: Path) -> list[Path]:
    """The demo report and the worked example's report, and screenshots of both."""
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        demo = rnnscope.report(
            [demo_paths()["lstm"], demo_paths()["bigru"]],
            out=Path(tmp) / "demo.html",
            title="rnnscope demo: the bundled LSTM and bidirectional GRU",
            compare=False,
        )
        example = rnnscope.report(
            demo_paths()["run"],
            out=Path(tmp) / "example.html",
            title="A small LSTM training run, checkpoint by checkpoint",
        )
        for html, name, height in (
            (demo, "report_demo.png", 1500),
            (example, "report_example.png", 2300),
        ):
            shot = screenshot(html, out.parent / name, height)
            if shot is not None:
                written.append(shot)
    return written


def monitored_run(out: Path) -> list[Path]:
    """A short torch run under the monitor, with a NaN injected late: its history figure."""
    import torch

    from rnnscope.torch import Monitor

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 16, batch_first=True)
            self.head = torch.nn.Linear(16, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0][:, -1])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    x = torch.randn(2048, 20, 4)
    y = x[:, 12, :1]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "run.db"
        with warnings.catch_warnings(), Monitor(net, db, every=10) as mon:
            warnings.simplefilter("ignore", RuntimeWarning)
            for step in range(400):
                i = step % 32
                torch.nn.functional.mse_loss(
                    net(x[i * 64 : (i + 1) * 64]), y[i * 64 : (i + 1) * 64]
                ).backward()
                mon.step()
                opt.step()
                opt.zero_grad()
                if step == 345:  # a diverging run, in one line
                    with torch.no_grad():
                        net.lstm.weight_hh_l0[20, 3] = float("nan")
        path = out / "history.png"
        plt.close(
            plot.history(
                db,
                savepath=path,
                title="Monitored torch LSTM(16): per-gate statistics every 10 "
                "steps (red: first NaN, injected)",
            )
        )
    return [path]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    written = demo_figures(OUT)
    written.append(nan_example(OUT))
    if importlib.util.find_spec("keras") is not None:
        written += gradient_examples(OUT)
    else:
        print("Keras is not installed: gradient figures skipped")
    written += reports(OUT)
    if importlib.util.find_spec("torch") is not None:
        written += monitored_run(OUT)
    for p in written:
        print(p.relative_to(OUT.parents[1]))


if __name__ == "__main__":
    main()
