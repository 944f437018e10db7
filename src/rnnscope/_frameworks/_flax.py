"""The flax framework object: ``flax.nnx`` modules (RNN cells, ``nnx.RNN``, ``Bidirectional``
and models containing them), their ``nnx.Variable`` parameters.

Only ``flax.nnx`` is read; Linen modules hold no weights of their own (their parameters are a
separate pytree) and are not handled.
"""

from __future__ import annotations

import importlib
from functools import cached_property
from typing import Any

import numpy as np

from .._refs import LayerRef
from ._base import Framework
from ._flax_capture import FlaxCapture
from ._flax_layers import FlaxLayers

__all__ = ["FlaxFramework"]


class FlaxFramework(Framework):
    """flax: ``flax.nnx`` modules and variables."""

    name = "flax"

    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A fresh numpy copy of a jax array or an ``nnx.Variable``'s value; bfloat16 and
        float16, which statistics need wider, become float32 (exactly)."""
        nnx = importlib.import_module("flax.nnx")
        if isinstance(tensor, nnx.Variable):
            tensor = tensor.get_value()
        a = np.array(importlib.import_module("jax").device_get(tensor), copy=True)
        if a.dtype.kind not in "fiub" or a.dtype == np.float16:
            a = a.astype(np.float32)
        return a

    def source_name(self, obj: Any) -> str:
        return f"flax module {type(obj).__name__}"

    def layer_refs(self, obj: Any) -> list[LayerRef]:
        return FlaxLayers(self.to_numpy).layer_refs(obj)

    @cached_property
    def capture(self) -> FlaxCapture:
        return FlaxCapture(self.to_numpy)

    def process_index(self) -> tuple[bool, int]:
        """Under multi-process jax only process 0 writes."""
        index = int(importlib.import_module("jax").process_index())
        return index == 0, index
