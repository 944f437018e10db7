"""The tf-keras (legacy Keras 2) front end: the monitor callback and weight penalties
(``rnnscope.tf_keras``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tf_keras

from ._keras_logic import MonitorLogic
from ._penalties import penalties

__all__ = ["Monitor", "to_numpy", "weight_loss", "weight_penalties"]


def to_numpy(t: Any) -> np.ndarray:
    """A TensorFlow tensor or variable (or a plain number) as a numpy array."""
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


class Monitor(MonitorLogic, tf_keras.callbacks.Callback):  # type: ignore[misc]
    __doc__ = MonitorLogic.__doc__

    def _backend(self) -> str:
        return "tensorflow"

    def _framework(self) -> str:
        return f"tf_keras {tf_keras.__version__}"

    def _numpy(self, t: Any) -> np.ndarray:
        return to_numpy(t)


def weight_penalties(model: Any) -> list[dict[str, Any]]:
    """Every regularised weight of a tf-keras model: L1 and L2 factors and penalty value."""
    return penalties(model, to_numpy)


def weight_loss(model: Any) -> float:
    """The total regularisation penalty of a tf-keras model's weights."""
    return float(sum(p["penalty"] for p in weight_penalties(model)))
