"""Framework adapters: each turns a live model or layer into :class:`LayerRef` records.

An adapter is picked lazily: only when its framework is already imported (present in
``sys.modules``) and the object's class comes from that framework. Nothing here imports a
framework at module import time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .._errors import UnsupportedError
from .._model import LayerInfo, LayerWeights, RNNWeights

__all__ = ["Adapter", "LayerRef", "ValueFn", "find_adapter", "framework_of"]


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


class Adapter(Protocol):
    """What every adapter provides."""

    framework: str

    def can_handle(self, obj: Any) -> bool:
        """True if ``obj`` is a model or layer of this adapter's framework."""

    def layer_refs(self, obj: Any) -> list[LayerRef]:
        """Every layer with weights, in model order."""

    def source_name(self, obj: Any) -> str:
        """A name for ``obj`` to use in messages."""


def framework_of(obj: Any) -> str | None:
    """The top-level module of the first framework class in ``type(obj)``'s MRO."""
    for klass in type(obj).__mro__:
        root = klass.__module__.split(".", 1)[0]
        if root in ("keras", "tf_keras", "torch"):
            return root
    return None


def find_adapter(obj: Any) -> Adapter:
    """The adapter for a live framework object, or :class:`UnsupportedError`."""
    root = framework_of(obj)
    if root is not None and root in sys.modules:
        if root == "torch":
            from ._torch import TorchAdapter

            return TorchAdapter()
        from ._keras import KerasAdapter

        return KerasAdapter(root)
    raise UnsupportedError(
        f"cannot read weights from an object of type {type(obj).__module__}.{type(obj).__name__}; "
        "expected a Keras 3, tf-keras or torch model or layer, a checkpoint path, "
        "or an rnnscope RNNWeights/LayerWeights"
    )
