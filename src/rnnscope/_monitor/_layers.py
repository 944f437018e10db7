"""Which layers a monitor watches: the ones asked for, or every layer with weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._api import LayerKey, resolve, select
from .._refs import LayerRef

__all__ = ["chosen_refs", "key_list"]


def chosen_refs(model: Any, layers: LayerKey | Sequence[LayerKey]) -> list[LayerRef]:
    """The watched layers: the given ones, or every layer with weights."""
    src = resolve(model)
    if layers is None:
        return [r for r in src.refs if r.build is not None]
    return [select(src.refs, k, src.name, recurrent=False) for k in key_list(layers)]


def key_list(layers: str | int | Sequence[LayerKey]) -> list[LayerKey]:
    """One layer key or several, as a list."""
    return [layers] if isinstance(layers, (str, int)) else list(layers)
