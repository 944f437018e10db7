"""``LayerRef``: one layer of a source (live model, file or record), beside the data model.

Framework objects, file readers, capture and the monitor all hand layers around as refs; this
module imports only the data model, so each of them can use it without importing the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._model import LayerInfo, LayerWeights, RNNWeights

__all__ = ["LayerRef", "ValueFn"]


ValueFn = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class LayerRef:
    """A layer found in a source: its listing and a function that extracts its weights.

    Live layers also carry the framework object (``obj``), the framework variables behind the
    record (``variables``), and ``build``, which makes the record from any per-variable values:
    ``build(read_variable)`` is the weights, ``build(lambda v: grads[id(v)])`` their gradients in
    the same layout.
    """

    info: LayerInfo
    extract: Callable[[], RNNWeights | LayerWeights]
    obj: Any = None
    variables: tuple[Any, ...] = ()
    build: Callable[[ValueFn], RNNWeights | LayerWeights] | None = None
