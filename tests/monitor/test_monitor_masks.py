"""The monitor's per-timestep output-gradient norms leave masked steps out: a Keras mask
(``Masking``), a held torch ``PackedSequence``, and ``mask=``/``lengths=`` given to the monitor.

Oracle: the framework's own gradient of the loss with respect to the layer's output (Keras's
backend autodiff of the layers after it, torch autograd), then the norm per timestep written in
numpy over the real steps only.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

pd = pytest.importorskip("pandas")

T = 6


def _expected(g: np.ndarray, real: np.ndarray) -> dict[int, float]:
    """{timestep: norm over the samples whose step is real}; timesteps with none left out."""
    out = {}
    for t in range(g.shape[1]):
        rows = g[real[:, t], t]
        if rows.size:
            out[t] = float(np.sqrt((rows.astype(np.float64) ** 2).sum()))
    return out


def _recorded(db) -> dict[int, float]:
    ts = rnnscope.history(db, "timestep_grads")
    ts = ts[ts.step == 0]
    return dict(zip(ts["timestep"].astype(int), ts["grad_norm"], strict=True))


def _padded(seed: int, features: int = 3):
    x = np.random.default_rng(seed).normal(size=(4, T, features)).astype("float32")
    real = np.ones((4, T), bool)
    real[0, 4:] = real[1, :2] = real[2, 3] = False  # right padding, left padding, a hole
    real[:, 5] = False  # a timestep padded in every sample: no norm at all
    x[~real] = 0.0
    return x, real


@pytest.mark.keras_backend
def test_keras_masking_leaves_padded_steps_out(tmp_path):
    keras = pytest.importorskip("keras")
    from rnnscope.keras import Monitor
    from tests.oracles import autodiff

    keras.utils.set_random_seed(0)
    x, real = _padded(1)
    y = np.random.default_rng(2).normal(size=(4, 1)).astype("float32")
    inp = keras.Input((T, 3))
    masked = keras.layers.Masking(0.0, name="masking")(inp)
    h = keras.layers.LSTM(4, return_sequences=True, name="lstm")(masked)
    top = keras.layers.LSTM(3, name="top")
    head = keras.layers.Dense(1, name="head")
    model = keras.Model(inp, head(top(h)))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")  # weights stay put
    db = tmp_path / "run.db"
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[Monitor(db, every=1, data=(x, y), timestep_layers="lstm")],
    )
    lstm_out = rnnscope.activations(model, x, "lstm")["lstm"]
    m = keras.ops.convert_to_tensor(real)
    yt = keras.ops.convert_to_tensor(y)

    def rest(hh):
        return keras.ops.mean(keras.ops.square(head(top(hh, mask=m)) - yt))

    g = autodiff.keras_grad_of_input(keras, rest, np.ma.getdata(lstm_out).astype("float32"))
    want = _expected(g, real)
    got = _recorded(db)
    assert sorted(got) == sorted(want) == [0, 1, 2, 3, 4]  # step 5 is padding everywhere
    for t, v in want.items():
        assert got[t] == pytest.approx(v, rel=1e-4, abs=1e-7), t


class _Net:
    """An LSTM and a head on the mean over time (every step reaches the loss)."""

    def __new__(cls, packed: bool):
        import torch

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = torch.nn.LSTM(3, 4, batch_first=True)
                self.head = torch.nn.Linear(4, 1)

            def forward(self, x):
                out = self.lstm(x)[0]
                if packed:
                    out = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0]
                return self.head(out.mean(dim=1))

        torch.manual_seed(0)
        return Net()


def test_torch_lengths_and_mask_leave_padded_steps_out(tmp_path):
    torch = pytest.importorskip("torch")
    from rnnscope.torch import Monitor

    x, real = _padded(3)
    lengths = np.array([4, 5, 2, 3])
    right = np.arange(T)[None, :] < lengths[:, None]
    net, xt = _Net(packed=False), torch.from_numpy(x)
    y, loss = torch.randn(4, 1), torch.nn.MSELoss()
    out = net.lstm(xt)[0]
    (g,) = torch.autograd.grad(loss(net.head(out.mean(dim=1)), y), out)
    g = g.numpy()
    for kw, r in (({"lengths": lengths}, right), ({"mask": real}, real)):
        db = tmp_path / f"{next(iter(kw))}.db"
        with Monitor(
            net, db, every=1, held=(xt, y), loss=loss, timestep_layers="lstm", **kw
        ) as mon:
            mon.step()
        want = _expected(g, r)
        got = _recorded(db)
        assert sorted(got) == sorted(want)
        for t, v in want.items():
            assert got[t] == pytest.approx(v, rel=1e-5), (kw, t)
    with pytest.raises(rnnscope.InputError, match=r"lengths for layer 'held batch'.*0\.\.6"):
        Monitor(net, tmp_path / "x.db", held=(xt, y), loss=loss, lengths=np.array([1, 2, 3, 9]))


def test_torch_packed_held_batch_leaves_padding_out(tmp_path):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from rnnscope.torch import Monitor

    x, _ = _padded(4)
    lengths = torch.tensor([4, 6, 2, 3])
    packed = pack_padded_sequence(
        torch.from_numpy(x), lengths, batch_first=True, enforce_sorted=False
    )
    net, y, loss = _Net(packed=True), torch.randn(4, 1), torch.nn.MSELoss()
    out = net.lstm(packed)[0]
    padded = pad_packed_sequence(out, batch_first=True)[0]
    (gd,) = torch.autograd.grad(loss(net.head(padded.mean(dim=1)), y), out.data)
    g = pad_packed_sequence(out._replace(data=gd), batch_first=True)[0].numpy()
    real = np.arange(T)[None, :] < lengths.numpy()[:, None]
    db = tmp_path / "run.db"
    with Monitor(net, db, every=1, held=(packed, y), loss=loss, timestep_layers="lstm") as mon:
        mon.step()
    want, got = _expected(g, real), _recorded(db)
    assert sorted(got) == sorted(want) == list(range(T))
    for t, v in want.items():
        assert got[t] == pytest.approx(v, rel=1e-5), t
