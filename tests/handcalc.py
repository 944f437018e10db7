"""The by-hand reproduction: a recurrent layer's output from its gate blocks, in plain numpy.

Written independently of rnnscope's own cells: one timestep at a time, one gate at a time, from
``RNNWeights.array(part, gate, direction)``, exactly as a person would on paper. Tests use it as a
second oracle beside the frameworks' own outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnscope import RNNWeights

Fn = Callable[[np.ndarray], np.ndarray]


def _act(name: str) -> Fn:
    table: dict[str, Fn] = {
        "tanh": np.tanh,
        "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
        "relu": lambda v: np.maximum(v, 0.0),
        "linear": lambda v: v,
        "hard_sigmoid": lambda v: np.clip(v / 6.0 + 0.5, 0.0, 1.0),
        "hard_sigmoid_keras2": lambda v: np.clip(0.2 * v + 0.5, 0.0, 1.0),
    }
    return table[name]


def _pre(w: RNNWeights, d: str, gate: str, x_t: np.ndarray, h: np.ndarray):
    """Input-side and hidden-side pre-activations of one gate."""
    zero = np.zeros(w.units)
    b = w.array("bias", gate, d) if "bias" in w.parts else zero
    rb = w.array("recurrent_bias", gate, d) if "recurrent_bias" in w.parts else zero
    return x_t @ w.array("kernel", gate, d) + b, h @ w.array("recurrent_kernel", gate, d) + rb


def direction_by_hand(w: RNNWeights, x: np.ndarray, direction: str = "forward") -> np.ndarray:
    """h for every timestep of one direction, time in input order, float64."""
    x = np.asarray(x, np.float64)
    act, ract = _act(w.activation), _act(w.recurrent_activation or "linear")
    batch, steps, _ = x.shape
    h = np.zeros((batch, w.hidden))
    c = np.zeros((batch, w.units))
    reverse = (direction == "backward") != w.go_backwards
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    out = np.zeros((batch, steps, w.hidden))
    for t in order:
        xt = x[:, t]
        if w.cell == "LSTM":
            pre = {g: sum(_pre(w, direction, g, xt, h)) for g in w.gates}
            i, f = ract(pre["input"]), ract(pre["forget"])
            g_, o = act(pre["cell"]), ract(pre["output"])
            c = f * c + i * g_
            m = o * act(c)
            h = m @ w.array("projection", direction=direction) if w.proj_size else m
        elif w.cell == "GRU":
            xz, hz = _pre(w, direction, "update", xt, h)
            xr, hr = _pre(w, direction, "reset", xt, h)
            z, r = ract(xz + hz), ract(xr + hr)
            xn, hn = _pre(w, direction, "new", xt, h)
            if w.reset_after:
                n = act(xn + r * hn)
            else:
                n = act(xn + (r * h) @ w.array("recurrent_kernel", "new", direction))
            h = z * h + (1 - z) * n
        else:
            h = act(sum(_pre(w, direction, "hidden", xt, h)))
        out[:, t] = h
    return out


def output_by_hand(w: RNNWeights, x: np.ndarray) -> np.ndarray:
    """The layer's full output sequence (directions concatenated), time in input order."""
    return np.concatenate([direction_by_hand(w, x, d) for d in w.directions], axis=-1)
