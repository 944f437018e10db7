"""Reference recurrent cells in numpy, recording every gate at every timestep.

``run_cell`` takes one direction's canonical arrays and a batch-major input already in processing
order, and returns ``{name: (time, batch, size)}`` (time-major) in that same order. The input
projection for all timesteps is one matrix product; only the recurrent product runs per step.
The standard LSTM (tanh, sigmoid) runs with in-place kernels and one tanh pass per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ._activations import apply_inplace, sigmoid
from ._model import GATES

__all__ = ["run_cell"]

Fn = Callable[[np.ndarray], np.ndarray]
Buffers = dict[str, np.ndarray]

_OUTPUTS = {
    "LSTM": ("input", "forget", "cell", "output", "c", "h"),
    "GRU": ("update", "reset", "new", "h"),
    "SimpleRNN": ("h",),
}


def _input_projection(
    x: np.ndarray, p: Mapping[str, np.ndarray], fold_recurrent_bias: bool = True
) -> np.ndarray:
    """``x @ kernel + bias`` for every timestep at once, time-major: ``(time, batch, width)``.

    The recurrent bias is folded in too, except for the reset-after GRU, which needs it apart.
    """
    b, t, f = x.shape
    xt = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(t * b, f)
    xp = (xt @ p["kernel"]).reshape(t, b, -1)
    if "bias" in p:
        xp += p["bias"]
    if fold_recurrent_bias and "recurrent_bias" in p:
        xp += p["recurrent_bias"]
    return xp


def _lstm_prepare(p: Mapping[str, np.ndarray], fused: bool) -> dict[str, np.ndarray]:
    """Columns reordered to (input, forget, output, cell): the sigmoid gates become one block.

    When ``fused`` (tanh and sigmoid), the sigmoid columns are halved, which is exact in binary
    floating point: sigmoid(z) = (tanh(z / 2) + 1) / 2, so one tanh pass serves all four gates.
    """
    u = p["kernel"].shape[1] // 4

    def reorder(v: np.ndarray) -> np.ndarray:  # slices joined: no fancy-index gather
        out = np.concatenate(
            [v[..., : 2 * u], v[..., 3 * u :], v[..., 2 * u : 3 * u]], axis=-1, dtype=v.dtype
        )
        if fused:
            out[..., : 3 * u] *= 0.5
        return out

    return {k: (v if k == "projection" else reorder(v)) for k, v in p.items()}


def _lstm(
    xp: np.ndarray,
    q: Mapping[str, np.ndarray],
    act: Fn,
    ract: Fn,
    fused: bool,
    state: list[np.ndarray],
    out: Buffers,
) -> None:
    t, b, width = xp.shape
    u = width // 4
    u_kernel, proj = q["recurrent_kernel"], q.get("projection")
    h, c = state
    cs, hs = out["c"], out["h"]
    m = np.empty((b, u), xp.dtype)
    tc = np.empty((b, u), xp.dtype)
    hu = np.empty((b, 4 * u), xp.dtype)  # h @ recurrent_kernel, reused (stays in cache)
    for s in range(t):  # xp becomes the gates record: each step's block is overwritten in place
        np.matmul(h, u_kernel, out=hu)
        z = xp[s]
        z += hu
        if fused:
            np.tanh(z, out=z)
            sig = z[:, : 3 * u]
            sig *= 0.5
            sig += 0.5
        else:
            apply_inplace(ract, z[:, : 3 * u])
            apply_inplace(act, z[:, 3 * u :])
        np.multiply(z[:, u : 2 * u], c, out=cs[s])  # f * c
        np.multiply(z[:, :u], z[:, 3 * u :], out=m)  # i * g
        cs[s] += m
        c = cs[s]
        if act is np.tanh:
            np.tanh(c, out=tc)
        else:
            tc[...] = c
            apply_inplace(act, tc)
        if proj is not None:
            np.multiply(z[:, 2 * u : 3 * u], tc, out=m)  # o * act(c)
            np.matmul(m, proj, out=hs[s])
        else:
            np.multiply(z[:, 2 * u : 3 * u], tc, out=hs[s])
        h = hs[s]


def _gru(
    xp: np.ndarray,
    p: Mapping[str, np.ndarray],
    act: Fn,
    ract: Fn,
    reset_after: bool,
    state: list[np.ndarray],
    out: Buffers,
) -> None:
    t, _, width = xp.shape
    u = width // 3
    (h,) = state
    u_kernel, rbias = p["recurrent_kernel"], p.get("recurrent_bias")
    for s in range(t):
        xs = xp[s]
        if reset_after:
            hr = h @ u_kernel
            if rbias is not None:
                hr += rbias
            z = ract(xs[:, :u] + hr[:, :u])
            r = ract(xs[:, u : 2 * u] + hr[:, u : 2 * u])
            n = act(xs[:, 2 * u :] + r * hr[:, 2 * u :])
        else:
            hr = h @ u_kernel[:, : 2 * u]
            z = ract(xs[:, :u] + hr[:, :u])
            r = ract(xs[:, u : 2 * u] + hr[:, u:])
            n = act(xs[:, 2 * u :] + (r * h) @ u_kernel[:, 2 * u :])
        h = z * h + (1 - z) * n
        out["update"][s], out["reset"][s], out["new"][s], out["h"][s] = z, r, n, h


def _simple(
    xp: np.ndarray, p: Mapping[str, np.ndarray], act: Fn, state: list[np.ndarray], out: Buffers
) -> None:
    (h,) = state
    u_kernel, hs = p["recurrent_kernel"], out["h"]
    for s in range(xp.shape[0]):
        np.matmul(h, u_kernel, out=hs[s])
        hs[s] += xp[s]
        apply_inplace(act, hs[s])
        h = hs[s]


def run_cell(
    cell: str,
    x: np.ndarray,
    params: Mapping[str, np.ndarray],
    state: list[np.ndarray],
    activation: Fn,
    recurrent_activation: Fn | None,
    reset_after: bool | None = None,
) -> dict[str, np.ndarray]:
    """Run one direction of a cell over ``x`` (batch, time, features), in the given time order.

    Returns time-major arrays ``(time, batch, size)``.
    """
    batch, steps, _ = x.shape
    ract = recurrent_activation or activation
    fused = cell == "LSTM" and activation is np.tanh and ract is sigmoid
    p = _lstm_prepare(params, fused) if cell == "LSTM" else params
    xp = _input_projection(x, p, fold_recurrent_bias=not (cell == "GRU" and reset_after))
    width, hidden = xp.shape[2], state[0].shape[1]
    u = width // len(GATES[cell])
    h = np.empty((steps, batch, hidden), xp.dtype)
    if cell == "LSTM":
        gates = xp  # the input projection, turned into the gates in place, step by step
        c = np.empty((steps, batch, u), xp.dtype)  # gate columns (input, forget, output, cell)
        _lstm(xp, p, activation, ract, fused, state, {"c": c, "h": h})
        block = {n: k for k, n in enumerate(("input", "forget", "output", "cell"))}
        views = {n: gates[:, :, block[n] * u : (block[n] + 1) * u] for n in GATES["LSTM"]}
        return {**views, "c": c, "h": h}
    bufs = {k: np.empty((steps, batch, u), xp.dtype) for k in _OUTPUTS[cell][:-1]}
    bufs["h"] = h
    if cell == "GRU":
        _gru(xp, p, activation, ract, bool(reset_after), state, bufs)
    else:
        _simple(xp, p, activation, state, bufs)
    return bufs
