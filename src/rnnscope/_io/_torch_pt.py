"""torch ``.pt`` / ``.pth`` files: ``torch.load(weights_only=True)``, never a full unpickle.

``weights_only`` refuses any pickle that would build objects other than tensors and plain
containers, so a file crafted to run code is a FormatError, not an execution.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import FormatError, MissingDependencyError
from .._model import readonly
from ._torch_keys import build_torch_refs

if TYPE_CHECKING:
    from . import Checkpoint

__all__ = ["read_torch"]

_WRAPPERS = ("state_dict", "model_state_dict", "model", "module", "net")


def _is_state_dict(obj: Any, torch: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def read_torch(path: str) -> Checkpoint:
    """Open a torch checkpoint and list its layers."""
    import importlib.util

    from . import Checkpoint

    if importlib.util.find_spec("torch") is None:
        raise MissingDependencyError(
            f"reading '{path}' (a torch checkpoint) needs torch, which is not installed; install "
            "it with: pip install 'rnnscope[torch]' (or save the state dict as .safetensors, "
            "which rnnscope reads without torch)"
        )
    import pickle

    import torch

    mmap = zipfile.is_zipfile(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # torch colours its advice
        first = plain.splitlines()[0] if plain else type(err).__name__
        raise FormatError(
            f"'{path}': refused to unpickle: the file holds objects other than tensors, and "
            f"rnnscope only loads with weights_only=True ({first})"
        ) from err
    notes: list[str] = []
    state = obj
    if not _is_state_dict(state, torch):
        inner = next(
            (
                k
                for k in _WRAPPERS
                if isinstance(obj, Mapping) and _is_state_dict(obj.get(k), torch)
            ),
            None,
        )
        if inner is None:
            keys = list(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
            raise FormatError(
                f"'{path}': expected a state dict (tensor names -> tensors) or a "
                f"checkpoint holding one under {', '.join(_WRAPPERS)}; found {keys}"
            )
        state = obj[inner]
        notes.append(f"weights read from the checkpoint's '{inner}' entry")
    entries = [(k, tuple(int(s) for s in v.shape)) for k, v in state.items()]

    def read(keys: list[str]) -> list[np.ndarray]:
        out = []
        for k in keys:
            t = state[k].detach()
            t = t.float() if t.dtype == torch.bfloat16 else t
            out.append(readonly(np.array(t.numpy(), copy=True)))
        return out

    refs = build_torch_refs(entries, read, notes, path)
    return Checkpoint(path, "torch", tuple(refs), tuple(notes), f"torch {torch.__version__}")
