"""A real (small) training run whose checkpoints the README compares.

    python docs/training_example.py   # needs torch; writes src/rnnscope/data/run/*.safetensors

A torch LSTM(32) learns to recall channel 0 of timestep 12 at the end of 20 timesteps (a
shorter-range version of the bundled demo LSTM's task), with Adam at 0.01 for 16 epochs. The
initial weights and those after epochs 1, 2, 4, 8 and 16 are saved as .safetensors, the format
most checkpoints on disk come in, and bundled with rnnscope; then ``rnnscope compare`` and
``rnnscope report`` read them without torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "src" / "rnnscope" / "data" / "run"
T, F, UNITS = 20, 4, 32
RECALL = 12  # the step whose channel 0 is the target, 8 steps before the end


class Recall(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(F, UNITS, batch_first=True)
        self.head = torch.nn.Linear(UNITS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


def data(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = rng.normal(size=(n, T, F)).astype("float32")
    return torch.from_numpy(x), torch.from_numpy(x[:, RECALL, :1].copy())


def main() -> None:
    OUT.mkdir(exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Recall()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = data(4096, rng)
    xt, yt = data(512, rng)
    save_file(model.state_dict(), str(OUT / "epoch0.safetensors"))
    for epoch in range(1, 17):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[i : i + 64]), y[i : i + 64])
            loss.backward()
            opt.step()
        with torch.no_grad():
            test = torch.nn.functional.mse_loss(model(xt), yt).item()
        print(f"epoch {epoch}: test mse {test:.4f} (target variance {yt.var().item():.3f})")
        if epoch in (1, 2, 4, 8, 16):
            save_file(model.state_dict(), str(OUT / f"epoch{epoch}.safetensors"))


if __name__ == "__main__":
    main()
