"""Keras 3 training monitor and weight penalties.

``Monitor`` is a ``keras.callbacks.Callback`` recording per-gate weight and gradient statistics
every ``every`` batches into SQLite and, optionally, TensorBoard. ``weight_penalties`` and
``weight_loss`` give each regularised weight's L1/L2 penalty, as See RNN's
``get_weight_penalties`` and ``weight_loss`` did.

Example:
    >>> mon = rnnscope.keras.Monitor("run.db", every=50)
    >>> _ = model.fit(x, y, epochs=3, callbacks=[mon], verbose=0)
"""

from __future__ import annotations

from ._monitor._keras import Monitor, weight_loss, weight_penalties

__all__ = ["Monitor", "weight_loss", "weight_penalties"]
