"""tf-keras (legacy Keras 2) training monitor and weight penalties: ``rnnscope.keras``'s
``Monitor``, ``weight_penalties`` and ``weight_loss`` for ``tf_keras`` models.

Example:
    >>> mon = rnnscope.tf_keras.Monitor("run.db", every=50)
    >>> _ = model.fit(x, y, epochs=3, callbacks=[mon], verbose=0)
"""

from __future__ import annotations

from ._monitor._tf_keras import Monitor, weight_loss, weight_penalties

__all__ = ["Monitor", "weight_loss", "weight_penalties"]
