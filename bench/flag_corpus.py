"""A labelled corpus of healthy and sick recurrent models, and how well rnnscope's flags sort them.

    python bench/flag_corpus.py [--split small|tune|heldout] [--out DIR]

HEALTHY models: fresh initialisations and models trained on small real tasks (a sine continuation,
the adding problem, a sign classification), for LSTM, GRU and SimpleRNN in Keras 3 and torch.
SICK models with a known fault: NaN or Inf injected, recurrent weights blown up, dead units
(incoming weights zeroed), saturated units (candidate bias blown up), a zeroed gate block, a
magnitude-pruned kernel, a run trained with a learning rate far too high, and a run trained until
it diverged. Each is saved as a real checkpoint file (torch: ``.pt`` and ``.safetensors``; Keras:
``.keras`` and ``.weights.h5``), read back by ``rnnscope.stats`` and judged by its flags:

- a healthy model passes when it raises no warning and no error;
- a sick model passes when it raises a warning or error of the rule its fault should raise.

Three splits, never mixed:

- ``small`` (``tests/test_flag_corpus.py`` runs it in CI): 4 and 8 units, the sine task, few steps;
- ``tune`` (``--large`` is the same): every cell on the sine, adding and sign tasks at 4 and 32
  units, data seed 0 — the thresholds were chosen looking at this split only;
- ``heldout``: other sizes (6 and 24 units), other data seed (1), other model seeds (+1000), and
  a task the tuning split does not have (``recall``: the value of step 2 at the end) — judged
  once the thresholds were fixed, to show what the tuning did not see.

The files go to ``--out`` (a temporary folder by default), never into the repository.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

CELLS = ("LSTM", "GRU", "SimpleRNN")
CANDIDATE = {"LSTM": 2, "GRU": 2, "SimpleRNN": 0}  # the tanh block, in Keras's and torch's order
GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
T = 8  # timesteps of every task

# the rules that a fault should raise (as a warning or an error)
EXPECT = {
    "nan": {"nonfinite"},
    "inf": {"nonfinite"},
    "exploding": {"recurrent_norm", "large_weights"},
    "dead": {"dead_units"},
    "saturated": {"saturated_units"},
    "zeroed_block": {"near_zero"},
    "pruned": {"near_zero"},
    "lr_too_high": {"large_weights", "recurrent_norm", "saturated_units", "nonfinite"},
    "diverged": {"nonfinite", "large_weights"},
}
SPLITS = ("small", "tune", "heldout")


@dataclass
class Case:
    """One labelled checkpoint: ``fault`` is ``""`` for a healthy model."""

    name: str
    path: Path
    fault: str
    note: str = ""
    loss: float = math.nan  # the last training loss over the target's variance
    flags: list[Any] = field(default_factory=list)
    ratios: tuple[float, float] = (math.nan, math.nan)  # sigma/sigma_ref, J/J_ref (ratios())

    @property
    def passed(self) -> bool:
        """Healthy: no warning or error. Sick: a warning or error of an expected rule."""
        serious = [f for f in self.flags if f.severity in ("error", "warning")]
        if not self.fault:
            return not serious
        return any(f.rule in EXPECT[self.fault] for f in serious)


# ---------------------------------------------------------------- tasks (numpy, seeded)


def task(name: str, n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a small real task: ``x`` is ``(n, T, features)`` float32."""
    rng = np.random.default_rng(seed)
    if name == "sine":  # continue a sine wave of random frequency and phase
        w = rng.uniform(0.3, 1.0, (n, 1))
        p = rng.uniform(0, 2 * np.pi, (n, 1))
        t = np.arange(T + 1)[None, :]
        s = np.sin(w * t + p)
        return s[:, :T, None].astype("float32"), s[:, T:].astype("float32")
    if name == "adding":  # sum of the two marked values
        v = rng.uniform(0, 1, (n, T))
        marks = np.zeros((n, T))
        for i in range(n):
            marks[i, rng.choice(T, 2, replace=False)] = 1
        x = np.stack([v, marks], axis=-1)
        return x.astype("float32"), (v * marks).sum(1, keepdims=True).astype("float32")
    if name == "sign":  # is the sum of the sequence positive (a logit target, trained with MSE)
        x = rng.normal(size=(n, T, 1))
        return x.astype("float32"), np.sign(x.sum((1, 2)))[:, None].astype("float32")
    if name == "recall":  # the first channel's value at step 2, asked for at the end
        x = rng.normal(size=(n, T, 2))
        return x.astype("float32"), x[:, 2, :1].astype("float32")
    raise ValueError(f"task: expected sine, adding, sign or recall; got {name!r}")


# ---------------------------------------------------------------- torch


def _torch_net(cell: str, features: int, units: int, seed: int) -> Any:
    import torch

    torch.set_num_threads(1)  # tiny models: threads only contend
    torch.manual_seed(seed)
    rnn_cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "SimpleRNN": torch.nn.RNN}[cell]

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = rnn_cls(features, units, batch_first=True)
            self.head = torch.nn.Linear(units, 1)

        def forward(self, x: Any) -> Any:
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    return Net()


def torch_train(net: Any, x: np.ndarray, y: np.ndarray, steps: int, lr: float) -> float:
    """Full-batch Adam; returns the last loss over the target's variance (NaN once it diverged)."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss = torch.tensor(math.nan)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(xt), yt)
        if not torch.isfinite(loss):
            break
        loss.backward()
        opt.step()
    return float(loss.detach()) / float(y.var())


def _torch_edit(net: Any, fault: str, cell: str, rng: np.random.Generator) -> None:
    """Plant ``fault`` in the torch model's recurrent layer (rows are gate-major: (G*h, in))."""
    import torch

    rnn = net.rnn
    h = rnn.hidden_size
    c = CANDIDATE[cell]
    with torch.no_grad():
        wi, wh, bi, bh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
        if fault in ("nan", "inf"):
            wh.view(-1)[rng.choice(wh.numel(), 2, replace=False)] = float(fault)
        elif fault == "exploding":
            gated = 6 if cell != "SimpleRNN" else 1  # gated cells get 4x the bound: go past it
            wh.mul_(5.0 * gated / float(torch.linalg.matrix_norm(wh, 2)))
        elif fault == "dead":
            for g in range(GATES[cell]):
                wi[g * h : g * h + 2] = 0
                wh[g * h : g * h + 2] = 0
        elif fault == "saturated":
            bi[c * h : c * h + 2] = 30.0
            bh[c * h : c * h + 2] = 0.0
        elif fault == "zeroed_block":
            wh[c * h : (c + 1) * h] = 0
        elif fault == "pruned":
            cut = torch.quantile(wi.abs().flatten(), 0.8)
            wi[wi.abs() < cut] = 0


def torch_case(
    out: Path,
    name: str,
    cell: str,
    units: int,
    task_name: str,
    fault: str,
    train: int,
    fmt: str,
    seed: int = 0,
) -> Case:
    """Build, train, damage and save one torch model (``seed``: the split's data seed; the
    model's is ``len(name) + 1000 * seed``)."""
    import torch

    x, y = task(task_name, seed=seed)
    net = _torch_net(cell, x.shape[-1], units, seed=len(name) + 1000 * seed)
    note, loss_var = "fresh", math.nan
    if fault == "lr_too_high":
        loss_var = torch_train(net, x, y, train, lr=3.0)
        note = f"loss/var {loss_var:.3g} (Adam lr 3)"
    elif fault == "diverged":
        opt = torch.optim.SGD(net.parameters(), lr=1e4)
        steps = 0
        while steps < 50:  # plain SGD with a huge step until the weights overflow
            steps += 1
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            opt.step()
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                break
        note = f"loss {float(loss.detach()):.3g}, step {steps} of SGD lr 1e4"
    elif train:
        loss_var = torch_train(net, x, y, train, lr=0.03)
        note = f"loss/var {loss_var:.3g} after {train} steps"
    _torch_edit(net, fault, cell, np.random.default_rng(0))
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    path = out / f"{name}.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return Case(name, path, fault, note, loss_var)


# ---------------------------------------------------------------- Keras 3


def _keras_net(cell: str, features: int, units: int, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    layer = getattr(keras.layers, cell)(units, name="rnn")
    return keras.Sequential([keras.Input((T, features)), layer, keras.layers.Dense(1, name="head")])


def _keras_edit(model: Any, fault: str, cell: str, rng: np.random.Generator) -> None:
    """Plant ``fault`` in the Keras model's recurrent layer (columns are gate-major)."""
    layer = model.get_layer("rnn")
    k, rk, b = (np.array(w) for w in layer.get_weights())
    u, c = rk.shape[0], CANDIDATE[cell]
    if fault in ("nan", "inf"):
        rk.reshape(-1)[rng.choice(rk.size, 2, replace=False)] = float(fault)
    elif fault == "exploding":
        gated = 6 if cell != "SimpleRNN" else 1
        rk *= 5.0 * gated / np.linalg.norm(rk, 2)
    elif fault == "dead":
        for g in range(GATES[cell]):
            k[:, g * u : g * u + 2] = 0
            rk[:, g * u : g * u + 2] = 0
    elif fault == "saturated":
        flat = b.reshape(-1, GATES[cell] * u)  # GRU reset-after: (2, 3u), input-side row first
        flat[:, c * u : c * u + 2] = 0.0
        flat[0, c * u : c * u + 2] = 30.0
    elif fault == "zeroed_block":
        rk[:, c * u : (c + 1) * u] = 0
    elif fault == "pruned":
        k[np.abs(k) < np.quantile(np.abs(k), 0.8)] = 0
    layer.set_weights([k, rk, b])


def keras_train(model: Any, x: np.ndarray, y: np.ndarray, steps: int, lr: float) -> float:
    """Full-batch Adam through ``train_on_batch``; the last loss over the target's variance."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", jit_compile=False)
    loss = math.nan
    for _ in range(steps):
        loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
        if not math.isfinite(loss):
            break
    return loss / float(y.var())


def keras_diverge(model: Any, x: np.ndarray, y: np.ndarray) -> str:
    """Plain SGD with a huge step (learning rate 1e4) until the weights overflow (at most 50
    steps); what happened, for the case's note."""
    import keras

    model.compile(optimizer=keras.optimizers.SGD(1e4), loss="mse", jit_compile=False)
    loss, steps = math.nan, 0
    while steps < 50:
        steps += 1
        loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
        if not all(np.isfinite(np.asarray(w)).all() for w in model.get_weights()):
            break
    return f"loss {loss:.3g}, step {steps} of SGD lr 1e4"


def keras_case(
    out: Path,
    name: str,
    cell: str,
    units: int,
    task_name: str,
    fault: str,
    train: int,
    fmt: str,
    seed: int = 0,
) -> Case:
    """Build, train, damage and save one Keras 3 model (seeds as :func:`torch_case`)."""
    x, y = task(task_name, seed=seed)
    model = _keras_net(cell, x.shape[-1], units, seed=len(name) + 1000 * seed)
    note, loss_var = "fresh", math.nan
    if fault == "diverged":
        note = keras_diverge(model, x, y)
    elif fault == "lr_too_high":
        loss_var = keras_train(model, x, y, train, lr=3.0)
        note = f"loss/var {loss_var:.3g} (Adam lr 3)"
    elif train:
        loss_var = keras_train(model, x, y, train, lr=0.03)
        note = f"loss/var {loss_var:.3g} after {train} steps"
    _keras_edit(model, fault, cell, np.random.default_rng(0))
    path = out / f"{name}.{fmt}"
    if fmt == "keras":
        model.save(path)
    else:
        model.save_weights(path)
    return Case(name, path, fault, note, loss_var)


# ---------------------------------------------------------------- the corpus


FAULTS = ("nan", "inf", "exploding", "dead", "saturated", "zeroed_block", "pruned")
SIZES = {"small": (4, 8), "tune": (4, 32), "heldout": (6, 24)}
TASKS = {"small": ("sine",), "tune": ("sine", "adding", "sign"), "heldout": ("sine", "recall")}
SEED = {"small": 0, "tune": 0, "heldout": 1}  # data seed; the models' seeds follow (torch_case)


def plan(split: str) -> list[tuple[str, str, int, str, str, int]]:
    """``(framework, cell, units, task, fault, train_steps)`` of every case of ``split``.

    ``tune`` and ``heldout``: every cell trained on every task of the split at both sizes, each
    fault planted in a trained model of the smaller size. ``small`` (the CI test): fresh models
    at 4 and 8 units, trained ones on the sine task (torch at 4 and 8 units, Keras at 4), faults
    planted in fresh models (in Keras one cell per fault, in turn), one run at a learning rate
    far too high and one diverged run per framework and cell (Keras: SimpleRNN only).
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}; got {split!r}")
    large = split != "small"
    sizes, tasks = SIZES[split], TASKS[split]
    out: list[tuple[str, str, int, str, str, int]] = []
    for fw in ("torch", "keras"):
        steps = (300 if fw == "torch" else 100) if large else (80 if fw == "torch" else 40)
        for i, cell in enumerate(CELLS):
            out += [(fw, cell, u, tasks[0], "", 0) for u in sizes]  # fresh
            trained = sizes if large or fw == "torch" else sizes[:1]
            out += [(fw, cell, u, t, "", steps) for u in trained for t in tasks]
            faults = FAULTS if large or fw == "torch" else FAULTS[i::3]
            out += [(fw, cell, sizes[0], tasks[0], f, steps if large else 0) for f in faults]
            if large or fw == "torch" or cell == "SimpleRNN":
                out.append((fw, cell, sizes[0], tasks[0], "lr_too_high", steps // 2))
            if large or fw == "torch" or cell == "SimpleRNN":
                out.append((fw, cell, sizes[0], "adding", "diverged", 0))
    return out


def build(out: Path, split: str = "small") -> list[Case]:
    """Write every checkpoint of ``split`` into ``out``; the labelled cases."""
    out.mkdir(parents=True, exist_ok=True)
    seed = SEED[split] if split in SEED else 0
    cases = []
    for i, (fw, cell, units, t, fault, steps) in enumerate(plan(split)):
        what = fault or ("trained" if steps else "fresh")
        name = f"{fw}_{cell}{units}_{t}_{what}"
        make = torch_case if fw == "torch" else keras_case
        cases.append(make(out, name, cell, units, t, fault, steps, _fmt(i, fw), seed))
    return cases


def _fmt(i: int, fw: str) -> str:
    pair = ("pt", "safetensors") if fw == "torch" else ("keras", "weights.h5")
    return pair[i % 2]


def load(out: Path) -> list[Case]:
    """The cases of a corpus folder written before (labels from the file names)."""
    cases = []
    for path in sorted(out.iterdir()):
        stem = path.name.split(".")[0]
        what = stem.split("_", 3)[3]
        fault = "" if what in ("fresh", "trained") else what
        cases.append(Case(stem, path, fault, "read back"))
    return cases


def ratios(df: Any) -> tuple[float, float]:
    """A model's recurrent kernel against its initialisation's: ``sigma / sigma_ref`` and the
    gate-weighted ``J / J_ref`` (the same for a SimpleRNN) — the two numbers the recurrent
    thresholds were chosen on (NaN without a recurrent kernel)."""
    from rnnscope._flags import gate_reference, gate_weighted, recurrent_reference

    rk = df[df["part"] == "recurrent_kernel"]
    if not len(rk):
        return math.nan, math.nan
    units = int(rk["units"].iloc[0])
    m = int(str(rk["shape"].iloc[0]).split("x")[0])
    n = units * len(rk)
    sigma = float(rk["matrix_spectral_norm"].iloc[0]) / recurrent_reference(m, n, units)
    gates = dict(zip(rk["gate"].astype(str), rk["spectral_norm"].astype(float), strict=True))
    if len(gates) == 1:
        return sigma, sigma
    return sigma, gate_weighted(gates) / gate_reference(m, n, units, list(gates))


def judge(cases: list[Case], **thresholds: float) -> dict[str, int]:
    """Read every case's file with rnnscope, fill its flags (``thresholds``: fields of
    :class:`rnnscope.Thresholds` to change); the counts."""
    import rnnscope
    from rnnscope._flags import Thresholds, flags_for

    t = Thresholds(**{k: v for k, v in thresholds.items() if v is not None})
    for c in cases:
        df = rnnscope.stats(str(c.path))
        c.flags = flags_for(df.to_dict("records"), t)
        c.ratios = ratios(df)
    healthy = [c for c in cases if not c.fault]
    sick = [c for c in cases if c.fault]
    return {
        "healthy_clean": sum(c.passed for c in healthy),
        "healthy": len(healthy),
        "sick_caught": sum(c.passed for c in sick),
        "sick": len(sick),
    }


def _spread(cases: list[Case]) -> list[str]:
    """Per cell family, the largest ratios of healthy models and the smallest of the exploding
    and too-high-learning-rate ones: where the recurrent thresholds can go."""
    lines = []
    for fam, cells in (("SimpleRNN", ("SimpleRNN",)), ("gated", ("LSTM", "GRU"))):
        own = [c for c in cases if any(f"_{cell}" in c.name for cell in cells)]
        col = 0 if fam == "SimpleRNN" else 1
        healthy = [c.ratios[col] for c in own if not c.fault and not math.isnan(c.ratios[col])]
        blown = [c.ratios[col] for c in own if c.fault in ("exploding", "lr_too_high")]
        blown = [v for v in blown if not math.isnan(v)]
        what = "sigma/sigma_ref" if col == 0 else "J/J_ref"
        if healthy and blown:
            lines.append(
                f"{fam}: {what} healthy max {max(healthy):.2f}, exploding or lr too high "
                f"min {min(blown):.2f}"
            )
    return lines


def main() -> None:
    """Build the corpus, judge it, print every case and the two counts."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=SPLITS, default="small", help="which corpus (see above)")
    ap.add_argument("--large", action="store_true", help="the same as --split tune")
    ap.add_argument("--out", help="folder for the checkpoints (default: a temporary one)")
    ap.add_argument("--judge-only", action="store_true", help="judge the files --out holds")
    ap.add_argument("--recurrent-high", type=float, help="Thresholds.recurrent_high to judge by")
    ap.add_argument("--gated-high", type=float, help="Thresholds.gated_high to judge by")
    args = ap.parse_args()
    split = "tune" if args.large else args.split
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        cases = load(out) if args.judge_only else build(out, split)
        counts = judge(cases, recurrent_high=args.recurrent_high, gated_high=args.gated_high)
        for c in cases:
            serious = sorted({f"{f.severity}:{f.rule}" for f in c.flags if f.severity != "note"})
            mark = "ok  " if c.passed else "MISS"
            r = f"{c.ratios[0]:6.2f} {c.ratios[1]:6.2f}"
            print(f"{mark} {c.path.name:46s} {c.note:34s} {r} {', '.join(serious) or '-'}")
        print("\n".join(_spread(cases)))
        what = f"judged {out}" if args.judge_only else split
        print(
            f"{what}: healthy with no warning or error: {counts['healthy_clean']} of "
            f"{counts['healthy']}; sick raising the right flag: {counts['sick_caught']} of "
            f"{counts['sick']}"
        )


if __name__ == "__main__":
    main()
