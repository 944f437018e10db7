"""Train the two small models bundled with rnnscope and write them to src/rnnscope/data/.

* ``demo_lstm.keras``: Keras 3 LSTM(16) -> Dense(1), trained to recall the value of channel 0 at
  timestep 2 of a noisy 20-step sequence (the forget gate has to hold a memory).
* ``demo_bigru.safetensors``: torch bidirectional GRU(8) -> Linear(1), trained to tell whether the
  running sum of channel 1 ends positive.
* ``demo_inputs.npz``: sample sequences for each.

Run from the repository root with Keras 3 (TensorFlow backend) and torch installed:
    python scripts/make_demo_data.py
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src" / "rnnscope" / "data"
T, F = 20, 4


def recall_task(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, T, F)).astype("float32")
    return x, x[:, 2, :1].copy()


def sum_task(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, T, F)).astype("float32")
    return x, (x[:, :, 1].sum(axis=1, keepdims=True) > 0).astype("float32")


def train_lstm(rng: np.random.Generator) -> np.ndarray:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.LSTM(16, name="lstm"),
            keras.layers.Dense(1, name="head"),
        ],
        name="recall",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x, y = recall_task(4096, rng)
    model.fit(x, y, epochs=25, batch_size=128, verbose=0)
    xt, yt = recall_task(512, rng)
    print(
        f"LSTM recall task: test mse {model.evaluate(xt, yt, verbose=0):.4f} "
        f"(variance {yt.var():.3f})"
    )
    fresh = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.LSTM(16, name="lstm"),
            keras.layers.Dense(1, name="head"),
        ],
        name="recall",
    )
    fresh.set_weights(model.get_weights())  # saved without optimizer state: a few KB
    fresh.save(OUT / "demo_lstm.keras")
    return xt[:4]


def train_bigru(rng: np.random.Generator) -> np.ndarray:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.GRU(F, 8, batch_first=True, bidirectional=True)
            self.head = torch.nn.Linear(16, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = (torch.from_numpy(a) for a in sum_task(4096, rng))
    for _ in range(20):
        for i in range(0, len(x), 128):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(x[i : i + 128]), y[i : i + 128]
            )
            loss.backward()
            opt.step()
    xt, yt = sum_task(512, rng)
    with torch.no_grad():
        acc = ((net(torch.from_numpy(xt)) > 0).float().numpy() == yt).mean()
    print(f"BiGRU sum-sign task: test accuracy {acc:.3f}")
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, OUT / "demo_bigru.safetensors"
    )
    return xt[:4]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x_lstm = train_lstm(rng)
    x_gru = train_bigru(rng)
    np.savez(OUT / "demo_inputs.npz", lstm=x_lstm, bigru=x_gru)
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
