"""Render every rnnscope figure from the bundled demo models into ``docs/images/gallery/``.

    python docs/gallery.py

The figures shown in the README come from here. The weight figures need matplotlib only; the
gradient figures load the bundled ``.keras`` file with Keras (any backend) and are skipped,
with a message, when Keras is not installed.
"""

from __future__ import annotations

import importlib.util
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


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    written = demo_figures(OUT)
    written.append(nan_example(OUT))
    if importlib.util.find_spec("keras") is not None:
        written += gradient_examples(OUT)
    else:
        print("Keras is not installed: gradient figures skipped")
    for p in written:
        print(p.relative_to(OUT.parents[1]))


if __name__ == "__main__":
    main()
