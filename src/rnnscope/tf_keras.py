"""tf-keras (legacy Keras 2) training monitor and weight penalties: ``rnnscope.keras``'s
``Monitor``, ``weight_penalties`` and ``weight_loss`` for ``tf_keras`` models.

Example:
    >>> mon = rnnscope.tf_keras.Monitor("run.db", every=50)  # doctest: +SKIP
    >>> model.fit(x, y, epochs=3, callbacks=[mon])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tf_keras

from ._keras_monitor import MonitorLogic, penalties

__all__ = ["Monitor", "weight_loss", "weight_penalties"]


class Monitor(MonitorLogic, tf_keras.callbacks.Callback):  # type: ignore[misc]
    __doc__ = MonitorLogic.__doc__

    def _backend(self) -> str:
        return "tensorflow"

    def _framework(self) -> str:
        return f"tf_keras {tf_keras.__version__}"

    def _numpy(self, t: Any) -> np.ndarray:
        return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def weight_penalties(model: Any) -> list[dict[str, Any]]:
    """Every regularised weight of a tf-keras model: L1 and L2 factors and penalty value."""
    return penalties(model, lambda t: t.numpy() if hasattr(t, "numpy") else t)


def weight_loss(model: Any) -> float:
    """The total regularisation penalty of a tf-keras model's weights."""
    return float(sum(p["penalty"] for p in weight_penalties(model)))
