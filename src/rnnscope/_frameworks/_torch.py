"""The torch framework object: ``torch.nn.Module`` models and layers, torch tensors."""

from __future__ import annotations

import importlib
from functools import cached_property
from typing import Any

import numpy as np

from .._refs import LayerRef
from ._base import Framework
from ._torch_capture import TorchCapture
from ._torch_layers import TorchLayers

__all__ = ["TorchFramework", "torch_process_index"]


def torch_process_index() -> tuple[bool, int]:
    """``(writes, rank)``: under ``torch.distributed`` only rank 0 writes."""
    dist = importlib.import_module("torch").distributed
    if dist.is_available() and dist.is_initialized():
        rank = int(dist.get_rank())
        return rank == 0, rank
    return True, 0


class TorchFramework(Framework):
    """torch: modules (stacked, bidirectional, projected RNNs, cells, anything containing them)."""

    name = "torch"

    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A fresh copy on the CPU; bfloat16, which numpy lacks, widened to float32 (exactly)."""
        t = tensor.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return np.array(t.numpy(), copy=True)

    def source_name(self, obj: Any) -> str:
        return f"torch module {type(obj).__name__}"

    def layer_refs(self, obj: Any) -> list[LayerRef]:
        return TorchLayers(self.to_numpy).layer_refs(obj)

    @cached_property
    def capture(self) -> TorchCapture:
        return TorchCapture(self.to_numpy)

    def process_index(self) -> tuple[bool, int]:
        """Under ``torch.distributed`` only rank 0 writes."""
        return torch_process_index()
