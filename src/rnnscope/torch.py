"""Training monitor for PyTorch: per-gate weight and gradient statistics during training.

``Monitor`` records, every ``every`` steps, per (layer, part, gate, direction): weight norm,
mean, std, abs max, near-zero fraction, NaN/Inf counts, gradient norm and update ratio, into
SQLite (read it back with :func:`rnnscope.history`) and, optionally, TensorBoard.

Example:
    >>> mon = rnnscope.torch.Monitor(model, "run.db", every=50)
    >>> for x, y in data:
    ...     loss_fn(model(x), y).backward()
    ...     mon.step()          # after backward(): gradients are there
    ...     opt.step(); opt.zero_grad()
    >>> mon.close()
    >>> sorted(set(rnnscope.history("run.db").step))  # every 50th step, and the last at close()
    [0, 2]
"""

from __future__ import annotations

from ._monitor._torch import Monitor

__all__ = ["Monitor"]
