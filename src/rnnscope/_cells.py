"""Reference recurrent cells in numpy, recording every gate at every timestep.

Each runner takes one direction's canonical arrays and an input already in processing order,
and returns ``{name: (batch, time, size)}`` in that same order. Input projections for all
timesteps are one matrix product; only the recurrent product runs per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["run_cell"]

Fn = Callable[[np.ndarray], np.ndarray]


def _input_projection(x: np.ndarray, p: Mapping[str, np.ndarray]) -> np.ndarray:
    b, t, f = x.shape
    xp = (x.reshape(b * t, f) @ p["kernel"]).reshape(b, t, -1)
    if "bias" in p:
        xp += p["bias"]
    return xp


def _lstm(
    x: np.ndarray, p: Mapping[str, np.ndarray], act: Fn, ract: Fn, state: list[np.ndarray]
) -> dict[str, np.ndarray]:
    xp = _input_projection(x, p)
    if "recurrent_bias" in p:
        xp += p["recurrent_bias"]
    b, t, width = xp.shape
    u = width // 4
    h, c = state
    u_kernel, proj = p["recurrent_kernel"], p.get("projection")
    rec = {k: np.empty((b, t, u), xp.dtype) for k in ("input", "forget", "cell", "output", "c")}
    hs = np.empty((b, t, h.shape[1]), xp.dtype)
    z = np.empty((b, width), xp.dtype)
    for s in range(t):
        np.matmul(h, u_kernel, out=z)
        z += xp[:, s]
        i, f, g, o = ract(z[:, :u]), ract(z[:, u : 2 * u]), act(z[:, 2 * u : 3 * u]), ract(z[:, 3 * u :])
        c = f * c + i * g
        m = o * act(c)
        h = m @ proj if proj is not None else m
        rec["input"][:, s], rec["forget"][:, s], rec["cell"][:, s], rec["output"][:, s] = i, f, g, o
        rec["c"][:, s], hs[:, s] = c, h
    rec["h"] = hs
    return rec


def _gru(
    x: np.ndarray,
    p: Mapping[str, np.ndarray],
    act: Fn,
    ract: Fn,
    state: list[np.ndarray],
    reset_after: bool,
) -> dict[str, np.ndarray]:
    xp = _input_projection(x, p)
    b, t, width = xp.shape
    u = width // 3
    (h,) = state
    u_kernel, rbias = p["recurrent_kernel"], p.get("recurrent_bias")
    rec = {k: np.empty((b, t, u), xp.dtype) for k in ("update", "reset", "new", "h")}
    for s in range(t):
        xs = xp[:, s]
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
        rec["update"][:, s], rec["reset"][:, s], rec["new"][:, s], rec["h"][:, s] = z, r, n, h
    return rec


def _simple(
    x: np.ndarray, p: Mapping[str, np.ndarray], act: Fn, state: list[np.ndarray]
) -> dict[str, np.ndarray]:
    xp = _input_projection(x, p)
    if "recurrent_bias" in p:
        xp += p["recurrent_bias"]
    b, t, u = xp.shape
    (h,) = state
    u_kernel = p["recurrent_kernel"]
    hs = np.empty((b, t, u), xp.dtype)
    for s in range(t):
        h = act(xp[:, s] + h @ u_kernel)
        hs[:, s] = h
    return {"h": hs}


def run_cell(
    cell: str,
    x: np.ndarray,
    params: Mapping[str, np.ndarray],
    state: list[np.ndarray],
    activation: Fn,
    recurrent_activation: Fn | None,
    reset_after: bool | None = None,
) -> dict[str, np.ndarray]:
    """Run one direction of a cell over ``x`` (batch, time, features), in the given time order."""
    if cell == "LSTM":
        assert recurrent_activation is not None
        return _lstm(x, params, activation, recurrent_activation, state)
    if cell == "GRU":
        assert recurrent_activation is not None
        return _gru(x, params, activation, recurrent_activation, state, bool(reset_after))
    return _simple(x, params, activation, state)
