"""See RNN's ways of naming layers and weights (``_id``), on Keras and torch models.

A model's *layers* are what See RNN indexes: ``model.layers`` for Keras 3 and tf-keras (input
layers included, as Keras lists them), and rnnscope's layers with weights for torch (a stacked
``nn.LSTM`` gives one per layer: ``lstm.l0``, ``lstm.l1``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._api import resolve
from ..._errors import InputError, LayerError
from ..._frameworks import TORCH, find_framework, type_name
from ..._refs import LayerRef

__all__ = [
    "Ids",
    "full_names",
    "is_input",
    "model_layers",
    "parse_ids",
    "pick_layers",
]


@dataclass
class Ids:
    """An ``_id`` split into names and indices, as See RNN reads it."""

    names: list[str] | None
    idxs: list[Any] | None
    one: bool


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def parse_ids(_id: Any, layer: Any = None) -> Ids:
    """Names (``str``) and indices (``int`` or ``(layer_idx, weight_idx...)``) of ``_id``.

    ``one`` is True when a single layer or id was asked for (``layer=`` counts first).
    """
    if _id is not None and layer is not None and _id != "*":
        warnings.warn("`layer` overrides `_id`", stacklevel=3)
    ids = None if _id is None else (list(_id) if isinstance(_id, list) else [_id])
    names: list[str] = []
    idxs: list[Any] = []
    for i in ids or []:
        if isinstance(i, str):
            names.append(i)
        elif _is_int(i):
            idxs.append(int(i))
        elif (
            isinstance(i, tuple)
            and i
            and all(_is_int(x) or isinstance(x, (tuple, list)) for x in i)
        ):
            idxs.append(i)
        else:
            raise InputError(
                f"_id: each entry must be a layer name (str), a layer index (int) or a "
                f"(layer_index, weight_index) tuple; got {i!r} ({type(i).__name__})"
            )
    chosen = layer if layer is not None else ids
    n = len(chosen) if isinstance(chosen, list) else (0 if chosen is None else 1)
    return Ids(names or None, idxs or None, n == 1)


@dataclass(frozen=True)
class Layer:
    """One entry of a model's layer list: its name, the framework object, rnnscope's ref."""

    name: str
    obj: Any
    ref: LayerRef | None = None


def is_input(obj: Any) -> bool:
    return any("InputLayer" == k.__name__ for k in type(obj).__mro__)


def model_layers(model: Any) -> list[Layer]:
    """The layers See RNN would index: ``model.layers`` (Keras) or rnnscope's torch layers."""
    fw = find_framework(model)
    if fw is None:
        raise InputError(
            f"model: expected a Keras 3, tf-keras or torch model; got {type_name(model)}"
        )
    if fw is TORCH:
        return [Layer(r.info.name, r.obj, r) for r in resolve(model).refs]
    if not hasattr(model, "layers"):
        raise InputError(
            f"model: expected a Keras model (with .layers); got {type(model).__name__}"
        )
    return [Layer(lay.name, lay) for lay in model.layers]


def _by_index(layers: list[Layer], i: int) -> Layer:
    if not -len(layers) <= i < len(layers):
        raise LayerError(
            f"_id {i} is out of range: the model has {len(layers)} layers: "
            f"{', '.join(lay.name for lay in layers)}"
        )
    return layers[i]


def _by_names(layers: list[Layer], names: list[str]) -> list[Layer]:
    """Each name's earliest substring match, in model order (warning when several match)."""
    for n in names:
        hits = [lay.name for lay in layers if n in lay.name]
        if not hits:
            raise LayerError(
                f"no layer name contains '{n}'; layers: {', '.join(lay.name for lay in layers)}"
            )
        if len(hits) > 1:
            warnings.warn(
                f"layer name '{n}' matches {len(hits)} layers ({', '.join(hits)}); "
                f"taking the earliest, '{hits[0]}'",
                stacklevel=4,
            )
    left = list(names)
    found: list[Layer] = []
    for lay in layers:
        for n in left:
            if n in lay.name:
                found.append(lay)
                left.remove(n)
                break
    return found


def pick_layers(model: Any, _id: Any) -> tuple[list[Layer], bool]:
    """The layers ``_id`` names (indices first, then names in model order) and ``one``."""
    ids = parse_ids(_id)
    layers = model_layers(model)
    picked = [_by_index(layers, i[0] if isinstance(i, tuple) else i) for i in ids.idxs or []]
    if ids.names:
        picked += _by_names(layers, ids.names)
    if not picked:
        raise LayerError(f"_id {_id!r} names no layer")
    return picked, ids.one


def full_names(model: Any, _id: Any) -> tuple[list[str], bool]:
    picked, one = pick_layers(model, _id)
    return [lay.name for lay in picked], one
