"""The Keras framework objects: ``keras`` (Keras 3, every backend) and ``tf_keras`` (Keras 2).

Both store the canonical layout already; their objects differ in the module they import, how a
tensor becomes numpy, and how the current process is numbered in a distributed run.
"""

from __future__ import annotations

import importlib
import json
import os
from functools import cached_property
from typing import Any

import numpy as np

from .._layouts import canonical_from_keras, keras_from_canonical
from .._model import RNNWeights
from .._refs import LayerRef
from ._base import Framework
from ._keras_capture import KerasCapture
from ._keras_layers import KerasLayers
from ._torch import torch_process_index

__all__ = ["KerasFramework"]


def _tf_config_index() -> tuple[bool, int]:
    """``(writes, index)`` from ``TF_CONFIG``: the chief (or worker 0 without a chief) writes."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("task", {})
    index = int(task.get("index", 0))
    chief = task.get("type", "chief") in ("chief", "master") or (
        task.get("type") == "worker" and index == 0
    )
    return chief, index


class KerasFramework(Framework):
    """Keras 3 (``name="keras"``) or tf-keras (``name="tf_keras"``) models and layers."""

    to_canonical = staticmethod(canonical_from_keras)

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def module(self) -> Any:
        """The framework's top-level module (already imported when this object is in use)."""
        return importlib.import_module(self.name)

    def backend(self) -> str:
        """The backend running the models: Keras 3's own choice; tf-keras always TensorFlow."""
        return str(self.module.backend.backend()) if self.name == "keras" else "tensorflow"

    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A fresh copy: Keras 3 through ``keras.ops.convert_to_numpy`` (any backend's tensors
        and variables), tf-keras through the tensor's ``numpy()``."""
        if self.name == "keras":
            return np.array(self.module.ops.convert_to_numpy(tensor), copy=True)
        return np.array(tensor.numpy() if hasattr(tensor, "numpy") else tensor, copy=True)

    def weight_name(self, variable: Any) -> str:
        """A variable's full name: Keras 3's path (``lstm/lstm_cell/kernel``), tf-keras's name
        (``lstm/lstm_cell/kernel:0``)."""
        if self.name == "keras":
            return str(getattr(variable, "path", variable.name))
        return str(variable.name)

    def from_canonical(self, rec: RNNWeights) -> list[np.ndarray]:
        """Per direction: kernel, recurrent kernel and bias as a Keras layer stores them; two
        biases become the rows of one ``(2, gates*units)`` (a GRU with ``reset_after``)."""
        return [
            a
            for d in rec.directions
            for a in keras_from_canonical(
                {p: rec.array(p, direction=d) for p in rec.parts if p != "projection"}
            )
        ]

    def source_name(self, obj: Any) -> str:
        return f"{type(obj).__name__} '{getattr(obj, 'name', '?')}'"

    def layer_refs(self, obj: Any) -> list[LayerRef]:
        return KerasLayers(self.name, self.to_numpy).layer_refs(obj)

    @cached_property
    def capture(self) -> KerasCapture:
        return KerasCapture(self.name, self.to_numpy)

    def process_index(self) -> tuple[bool, int]:
        """JAX: ``jax.process_index()``; torch: the ``torch.distributed`` rank; TensorFlow
        (and tf-keras): the task in ``TF_CONFIG``. Index 0 (the chief) writes."""
        backend = self.backend()
        if backend == "jax":
            index = int(importlib.import_module("jax").process_index())
            return index == 0, index
        if backend == "torch":
            return torch_process_index()
        return _tf_config_index()
