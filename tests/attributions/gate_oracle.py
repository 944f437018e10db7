"""An independent oracle of gate attributions, written by hand in torch (float64).

The layers run from raw parameters in torch's documented layout (``weight_ih`` rows: LSTM
``i, f, g, o``; GRU ``r, z, n``); the chosen layer's gate activations are leaf tensors, its
states are rebuilt from them by the cell's equations, and integrated gradients are summed with
torch autograd at Gauss-Legendre nodes from numpy. Nothing here calls rnnscope.
"""

from __future__ import annotations

import numpy as np
import torch


def _t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def layer_params(w_ih, w_hh, b_ih, b_hh, reset_after=True):
    """One direction's parameters in torch's layout (numpy or tensors)."""
    return {
        "w_ih": _t(w_ih),
        "w_hh": _t(w_hh),
        "b_ih": _t(b_ih),
        "b_hh": _t(b_hh),
        "reset_after": reset_after,
    }


def _steps(t, reverse):
    return range(t - 1, -1, -1) if reverse else range(t)


def run(x, p, cell, reverse):
    """``(h sequence (b, T, U) in input order, gates (b, T, gate, U))`` of one direction; gates
    LSTM ``(i, f, g, o)``, GRU ``(z, r)``."""
    b, t, _ = x.shape
    u = p["w_hh"].shape[1]
    h = c = torch.zeros(b, u, dtype=torch.float64)
    hs, gs = [None] * t, [None] * t
    for s in _steps(t, reverse):
        xi = x[:, s] @ p["w_ih"].T + p["b_ih"]
        if cell == "LSTM":
            pre = xi + h @ p["w_hh"].T + p["b_hh"]
            i, f = torch.sigmoid(pre[:, :u]), torch.sigmoid(pre[:, u : 2 * u])
            g, o = torch.tanh(pre[:, 2 * u : 3 * u]), torch.sigmoid(pre[:, 3 * u :])
            c = f * c + i * g
            h = o * torch.tanh(c)
            gs[s] = torch.stack([i, f, g, o], 1)
        else:
            hh = h @ p["w_hh"].T + p["b_hh"]
            r = torch.sigmoid(xi[:, :u] + hh[:, :u])
            z = torch.sigmoid(xi[:, u : 2 * u] + hh[:, u : 2 * u])
            n = torch.tanh(xi[:, 2 * u :] + _candidate_recurrent(h, r, p, u))
            h = (1 - z) * n + z * h
            gs[s] = torch.stack([z, r], 1)
        hs[s] = h
    return torch.stack(hs, 1), torch.stack(gs, 1)


def _candidate_recurrent(h, r, p, u):
    w, b = p["w_hh"][2 * u :], p["b_hh"][2 * u :]
    if p["reset_after"]:
        return r * (h @ w.T + b)
    return (r * h) @ w.T  # Keras reset_after=False: no recurrent bias on the candidate


def from_gates(g, x, p, cell, reverse):
    """``h`` (b, T, U) rebuilt from gate activations ``g`` (b, T, gate, U) and the input."""
    b, t, _, u = g.shape
    h = c = torch.zeros(b, u, dtype=torch.float64)
    hs = [None] * t
    for s in _steps(t, reverse):
        if cell == "LSTM":
            i, f, gg, o = g[:, s, 0], g[:, s, 1], g[:, s, 2], g[:, s, 3]
            c = f * c + i * gg
            h = o * torch.tanh(c)
        else:
            z, r = g[:, s, 0], g[:, s, 1]
            xn = x[:, s] @ p["w_ih"][2 * u :].T + p["b_ih"][2 * u :]
            n = torch.tanh(xn + _candidate_recurrent(h, r, p, u))
            h = (1 - z) * n + z * h
        hs[s] = h
    return torch.stack(hs, 1)


def forward(x, layers, cell, chosen=None, gates=None):
    """The stack's output ``(b, T, dirs * U)``; layer ``chosen`` rebuilt from ``gates``
    (``(b, dir, T, gate, U)``). Returns (output, gates of the chosen layer as run)."""
    h, seen = _t(x), None
    for k, dirs in enumerate(layers):
        outs, gs = [], []
        for d, p in enumerate(dirs):
            seq, g = run(h, p, cell, reverse=d == 1)
            if k == chosen and gates is not None:
                seq = from_gates(gates[:, d], h, p, cell, reverse=d == 1)
            outs.append(seq)
            gs.append(g)
        if k == chosen:
            seen = torch.stack(gs, 1)
        h = torch.cat(outs, -1)
    return h, seen


def integrated_gradients(f, g, g0, n_steps):
    """``(attributions, f(g), f(g0))`` of ``f`` (rows -> one value per row), Gauss-Legendre."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    alphas, steps = 0.5 * (nodes + 1), 0.5 * weights
    total = torch.zeros_like(g)
    for a, w in zip(alphas, steps, strict=True):
        point = (g0 + float(a) * (g - g0)).detach().requires_grad_()
        (grad,) = torch.autograd.grad(f(point).sum(), point)
        total += float(w) * grad
    with torch.no_grad():
        return (total * (g - g0)).numpy(), f(g).numpy(), f(g0).numpy()
