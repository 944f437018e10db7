"""Keras 3 training monitor and weight penalties.

``Monitor`` is a ``keras.callbacks.Callback`` recording per-gate weight and gradient statistics
every ``every`` batches into SQLite and, optionally, TensorBoard. ``weight_penalties`` and
``weight_loss`` give each regularised weight's L1/L2 penalty, as See RNN's
``get_weight_penalties`` and ``weight_loss`` did.

Example:
    >>> mon = rnnscope.keras.Monitor("run.db", every=50)  # doctest: +SKIP
    >>> model.fit(x, y, epochs=3, callbacks=[mon])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from ._keras_monitor import MonitorLogic, penalties

__all__ = ["Monitor", "weight_loss", "weight_penalties"]


class Monitor(MonitorLogic, keras.callbacks.Callback):  # type: ignore[misc]
    __doc__ = MonitorLogic.__doc__

    def _backend(self) -> str:
        return str(keras.backend.backend())

    def _framework(self) -> str:
        return f"keras {keras.__version__} ({keras.backend.backend()})"

    def _numpy(self, t: Any) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(t))


def weight_penalties(model: Any) -> list[dict[str, Any]]:
    """Every regularised weight of a Keras 3 model: its L1 and L2 factors and penalty value.

    Returns ``[{"layer", "weight", "l1", "l2", "penalty"}]``; the penalties add up to the
    model's regularisation loss (``sum(model.losses)`` after a forward pass).
    """
    return penalties(model, lambda t: keras.ops.convert_to_numpy(t))


def weight_loss(model: Any) -> float:
    """The total regularisation penalty of a Keras 3 model's weights (See RNN ``weight_loss``)."""
    return float(sum(p["penalty"] for p in weight_penalties(model)))
