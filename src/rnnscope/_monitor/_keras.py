"""The Keras 3 front end: the monitor callback and weight penalties (``rnnscope.keras``)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .._frameworks import KERAS
from ._keras_logic import MonitorLogic
from ._penalties import penalties

__all__ = ["Monitor", "to_numpy", "weight_loss", "weight_penalties"]


def to_numpy(t: Any) -> np.ndarray:
    """A tensor or variable as a numpy array of its own (the framework object's conversion)."""
    return KERAS.to_numpy(t)


class Monitor(MonitorLogic, keras.callbacks.Callback):  # type: ignore[misc]
    __doc__ = MonitorLogic.__doc__

    fw = KERAS

    def _framework(self) -> str:
        return f"keras {keras.__version__} ({keras.backend.backend()})"


def weight_penalties(model: Any) -> list[dict[str, Any]]:
    """Every regularised weight of a Keras 3 model: its L1 and L2 factors and penalty value.

    Returns ``[{"layer", "weight", "l1", "l2", "penalty"}]``; the penalties add up to the
    model's regularisation loss (``sum(model.losses)`` after a forward pass).
    """
    return penalties(model, to_numpy)


def weight_loss(model: Any) -> float:
    """The total regularisation penalty of a Keras 3 model's weights (See RNN ``weight_loss``)."""
    return float(sum(p["penalty"] for p in weight_penalties(model)))
