"""Oracles that never touch rnnscope: recurrent cells in float64 numpy over each framework's RAW
weights, sliced by that framework's documented layout, and the same slicing for gradients.

The layouts, written out here and nowhere else in the tests:

* torch ``nn.LSTM``: ``weight_ih (4h, in)``, ``weight_hh (4h, h or proj)``, ``bias_ih``,
  ``bias_hh (4h,)``, rows in blocks ``i, f, g, o``; ``weight_hr (proj, h)`` with
  ``h = (o * tanh c) @ weight_hr.T``.
* torch ``nn.GRU``: rows in blocks ``r, z, n``; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
  ``h = (1 - z) * n + z * h_prev``.
* torch ``nn.RNN``: one block; ``h = act(W_ih x + b_ih + W_hh h + b_hh)``.
* Keras (3 and 2) LSTM: ``kernel (in, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)``, columns
  ``i, f, c, o``.
* Keras GRU: columns ``z, r, h``; ``reset_after=True`` has ``bias (2, 3u)`` = input row, recurrent
  row and ``hh = act(x W_h + b_h + r * (h U_h + rb_h))``; ``reset_after=False`` has ``bias (3u,)``
  and ``hh = act(x W_h + b_h + (r * h) U_h)``. ``h = z * h_prev + (1 - z) * hh``.
* tf-keras CuDNNLSTM / CuDNNGRU: Keras gate order, each kernel block holds cuDNN's ``(u, in)``
  matrix row-major in an ``(in, u)`` slot, each recurrent block is the transpose of the matrix used
  as ``h @ U``; the bias is ``[input-side blocks, recurrent-side blocks]``. GRU: reset-after form.

Everything returns ``{name: (batch, time, size)}`` in the order the cell processed the input;
names are rnnscope's public gate names (``input, forget, cell, output, c, h`` / ``update, reset,
new, h`` / ``h``), the only thing shared with the code under test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Fn = Callable[[np.ndarray], np.ndarray]
Gates = dict[str, np.ndarray]

TORCH_ROWS = {"LSTM": ("input", "forget", "cell", "output"), "GRU": ("reset", "update", "new")}
TORCH_ROWS["RNN"] = ("hidden",)
KERAS_COLUMNS = {"LSTM": ("input", "forget", "cell", "output"), "GRU": ("update", "reset", "new")}
KERAS_COLUMNS["SimpleRNN"] = ("hidden",)


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


ACT: dict[str, Fn] = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "relu": lambda v: np.maximum(v, 0.0),
    "linear": lambda v: v,
    "hard_sigmoid_keras3": lambda v: np.clip(v / 6.0 + 0.5, 0.0, 1.0),
    "hard_sigmoid_keras2": lambda v: np.clip(0.2 * v + 0.5, 0.0, 1.0),
}


def _blocks(a: np.ndarray, n: int, axis: int) -> list[np.ndarray]:
    size = a.shape[axis] // n
    return [np.take(a, np.arange(k * size, (k + 1) * size), axis=axis) for k in range(n)]


def _f64(*arrays: np.ndarray | None) -> list[np.ndarray | None]:
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


def _stack(steps: list[Gates]) -> Gates:
    return {k: np.stack([s[k] for s in steps], axis=1) for k in steps[0]}


# ----------------------------------------------------------------------------------- torch
def torch_lstm(x, weight_ih, weight_hh, bias_ih=None, bias_hh=None, weight_hr=None) -> Gates:
    x, w_ih, w_hh, b_ih, b_hh, w_hr = _f64(x, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)
    hid = w_ih.shape[0] // 4
    wi, wf, wg, wo = _blocks(w_ih, 4, 0)
    ui, uf, ug, uo = _blocks(w_hh, 4, 0)
    b = np.zeros(4 * hid) if b_ih is None else b_ih + b_hh
    bi, bf, bg, bo = _blocks(b, 4, 0)
    h = np.zeros((x.shape[0], w_hh.shape[1]))
    c = np.zeros((x.shape[0], hid))
    steps = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        i = sigmoid(xt @ wi.T + h @ ui.T + bi)
        f = sigmoid(xt @ wf.T + h @ uf.T + bf)
        g = np.tanh(xt @ wg.T + h @ ug.T + bg)
        o = sigmoid(xt @ wo.T + h @ uo.T + bo)
        c = f * c + i * g
        h = o * np.tanh(c)
        if w_hr is not None:
            h = h @ w_hr.T
        steps.append({"input": i, "forget": f, "cell": g, "output": o, "c": c, "h": h})
    return _stack(steps)


def torch_gru(x, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> Gates:
    x, w_ih, w_hh, b_ih, b_hh = _f64(x, weight_ih, weight_hh, bias_ih, bias_hh)
    hid = w_ih.shape[0] // 3
    wr, wz, wn = _blocks(w_ih, 3, 0)
    ur, uz, un = _blocks(w_hh, 3, 0)
    bir, biz, bin_ = _blocks(np.zeros(3 * hid) if b_ih is None else b_ih, 3, 0)
    bhr, bhz, bhn = _blocks(np.zeros(3 * hid) if b_hh is None else b_hh, 3, 0)
    h = np.zeros((x.shape[0], hid))
    steps = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        r = sigmoid(xt @ wr.T + bir + h @ ur.T + bhr)
        z = sigmoid(xt @ wz.T + biz + h @ uz.T + bhz)
        n = np.tanh(xt @ wn.T + bin_ + r * (h @ un.T + bhn))
        h = (1 - z) * n + z * h
        steps.append({"update": z, "reset": r, "new": n, "h": h})
    return _stack(steps)


def torch_rnn(x, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh") -> Gates:
    x, w_ih, w_hh, b_ih, b_hh = _f64(x, weight_ih, weight_hh, bias_ih, bias_hh)
    act = ACT[nonlinearity]
    b = np.zeros(w_ih.shape[0]) if b_ih is None else b_ih + b_hh
    h = np.zeros((x.shape[0], w_ih.shape[0]))
    steps = []
    for t in range(x.shape[1]):
        h = act(x[:, t] @ w_ih.T + h @ w_hh.T + b)
        steps.append({"h": h})
    return _stack(steps)


def torch_raw_blocks(kind: str, raw: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """``{(part, gate): block}`` in rnnscope's canonical orientation from one direction's torch
    tensors ``weight_ih, weight_hh, bias_ih, bias_hh, weight_hr`` (suffixes stripped)."""
    names = TORCH_ROWS[kind]
    out: dict[tuple[str, str], np.ndarray] = {}
    parts = {"weight_ih": "kernel", "weight_hh": "recurrent_kernel"}
    parts |= {"bias_ih": "bias", "bias_hh": "recurrent_bias"}
    for key, part in parts.items():
        if key not in raw:
            continue
        for gate, block in zip(names, _blocks(np.asarray(raw[key]), len(names), 0), strict=True):
            out[(part, gate)] = block.T  # x @ kernel: the transpose of torch's rows
    if "weight_hr" in raw:
        out[("projection", "")] = np.asarray(raw["weight_hr"]).T
    return out


# ----------------------------------------------------------------------------------- Keras
def keras_lstm(x, kernel, rk, bias=None, act="tanh", ract="sigmoid") -> Gates:
    x, kernel, rk, bias = _f64(x, kernel, rk, bias)
    a, ra = ACT[act], ACT[ract]
    u = rk.shape[0]
    b = np.zeros(4 * u) if bias is None else bias
    ki, kf, kc, ko = _blocks(kernel, 4, 1)
    ri, rf, rc, ro = _blocks(rk, 4, 1)
    bi, bf, bc, bo = _blocks(b, 4, 0)
    h = np.zeros((x.shape[0], u))
    c = np.zeros((x.shape[0], u))
    steps = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        i = ra(xt @ ki + h @ ri + bi)
        f = ra(xt @ kf + h @ rf + bf)
        g = a(xt @ kc + h @ rc + bc)
        o = ra(xt @ ko + h @ ro + bo)
        c = f * c + i * g
        h = o * a(c)
        steps.append({"input": i, "forget": f, "cell": g, "output": o, "c": c, "h": h})
    return _stack(steps)


def keras_gru(x, kernel, rk, bias=None, reset_after=True, act="tanh", ract="sigmoid") -> Gates:
    x, kernel, rk, bias = _f64(x, kernel, rk, bias)
    a, ra = ACT[act], ACT[ract]
    u = rk.shape[0]
    if bias is None:
        b_in, b_rec = np.zeros(3 * u), np.zeros(3 * u)
    elif bias.ndim == 2:  # reset_after: [input-side row; recurrent-side row]
        b_in, b_rec = bias[0], bias[1]
    else:
        b_in, b_rec = bias, np.zeros(3 * u)
    kz, kr, kh = _blocks(kernel, 3, 1)
    rz, rr, rh = _blocks(rk, 3, 1)
    bz, br, bh = _blocks(b_in, 3, 0)
    cz, cr, ch = _blocks(b_rec, 3, 0)
    h = np.zeros((x.shape[0], u))
    steps = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        z = ra(xt @ kz + bz + h @ rz + cz)
        r = ra(xt @ kr + br + h @ rr + cr)
        if reset_after:
            hh = a(xt @ kh + bh + r * (h @ rh + ch))
        else:
            hh = a(xt @ kh + bh + (r * h) @ rh)
        h = z * h + (1 - z) * hh
        steps.append({"update": z, "reset": r, "new": hh, "h": h})
    return _stack(steps)


def keras_simple(x, kernel, rk, bias=None, act="tanh") -> Gates:
    x, kernel, rk, bias = _f64(x, kernel, rk, bias)
    b = np.zeros(rk.shape[0]) if bias is None else bias
    h = np.zeros((x.shape[0], rk.shape[0]))
    steps = []
    for t in range(x.shape[1]):
        h = ACT[act](x[:, t] @ kernel + h @ rk + b)
        steps.append({"h": h})
    return _stack(steps)


def keras_raw_blocks(
    cell: str, kernel: np.ndarray, rk: np.ndarray, bias: np.ndarray | None
) -> dict[tuple[str, str], np.ndarray]:
    """``{(part, gate): block}`` from a Keras cell's kernel, recurrent kernel and bias."""
    names = KERAS_COLUMNS[cell]
    n = len(names)
    out: dict[tuple[str, str], np.ndarray] = {}
    for part, a in (("kernel", kernel), ("recurrent_kernel", rk)):
        for gate, block in zip(names, _blocks(np.asarray(a), n, 1), strict=True):
            out[(part, gate)] = block
    if bias is not None:
        bias = np.asarray(bias)
        rows = (
            [("bias", bias[0]), ("recurrent_bias", bias[1])] if bias.ndim == 2 else [("bias", bias)]
        )
        for part, row in rows:
            for gate, block in zip(names, _blocks(row, n, 0), strict=True):
                out[(part, gate)] = block
    return out


def cudnn_to_keras(cell: str, kernel, rk, bias) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A CuDNN layer's arrays as a CPU Keras cell's ``kernel, recurrent_kernel, bias``.

    LSTM: the two bias halves add up; GRU: they become the ``(2, 3u)`` reset-after bias.
    """
    kernel, rk, bias = (np.asarray(a) for a in (kernel, rk, bias))
    n = 4 if cell == "LSTM" else 3
    n_in, width = kernel.shape
    u = width // n
    ks = [blk.reshape(-1).reshape(u, n_in).T for blk in _blocks(kernel, n, 1)]
    rs = [blk.T for blk in _blocks(rk, n, 1)]
    b_in, b_rec = bias[:width], bias[width:]
    b = b_in + b_rec if cell == "LSTM" else np.stack([b_in, b_rec])
    return np.hstack(ks), np.hstack(rs), b


def flip(g: Gates) -> Gates:
    """Reverse the time axis of every array."""
    return {k: v[:, ::-1] for k, v in g.items()}
