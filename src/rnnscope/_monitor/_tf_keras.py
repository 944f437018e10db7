"""The tf-keras (legacy Keras 2) front end: the monitor callback and weight penalties
(``rnnscope.tf_keras``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tf_keras

from .._frameworks import TF_KERAS
from ._keras_logic import MonitorLogic
from ._penalties import penalties

__all__ = ["Monitor", "to_numpy", "weight_loss", "weight_penalties"]


def to_numpy(t: Any) -> np.ndarray:
    """A tensor or variable as a numpy array of its own (the framework object's conversion)."""
    return TF_KERAS.to_numpy(t)


class Monitor(MonitorLogic, tf_keras.callbacks.Callback):  # type: ignore[misc]
    __doc__ = MonitorLogic.__doc__

    fw = TF_KERAS

    def _framework(self) -> str:
        return f"tf_keras {tf_keras.__version__}"


def weight_penalties(model: Any) -> list[dict[str, Any]]:
    """Every regularised weight of a tf-keras model: L1 and L2 factors and penalty value."""
    return penalties(model, to_numpy)


def weight_loss(model: Any) -> float:
    """The total regularisation penalty of a tf-keras model's weights."""
    return float(sum(p["penalty"] for p in weight_penalties(model)))
