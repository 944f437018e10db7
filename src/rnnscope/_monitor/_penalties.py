"""The weight penalties of a Keras model (Keras 3 or tf-keras): each regularised weight's L1
and L2 factors and penalty value, as See RNN's ``get_weight_penalties`` gave them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["penalties"]

_REGULARISED = (
    ("kernel_regularizer", "kernel"),
    ("recurrent_regularizer", "recurrent_kernel"),
    ("bias_regularizer", "bias"),
    ("embeddings_regularizer", "embeddings"),
    ("depthwise_regularizer", "depthwise_kernel"),
    ("pointwise_regularizer", "pointwise_kernel"),
)


def _walk(layer: Any, path: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield path, layer
    for sub in getattr(layer, "layers", []) or []:
        yield from _walk(sub, f"{path}/{sub.name}" if path else sub.name, seen)
    for attr in ("forward_layer", "backward_layer", "cell", "layer"):
        sub = getattr(layer, attr, None)
        if sub is not None and hasattr(sub, "weights"):
            inner = path if attr == "cell" else (f"{path}/{attr}" if path else attr)
            yield from _walk(sub, inner, seen)


def penalties(model: Any, to_numpy: Any) -> list[dict[str, Any]]:
    """Every regularised weight of a Keras model: its L1 and L2 factors and penalty value.

    Returns ``[{"layer", "weight", "l1", "l2", "penalty"}]``; the penalties add up to the
    model's regularisation loss (``sum(model.losses)`` after a forward pass).
    """
    out = []
    for path, layer in _walk(model, "", set()):
        for reg_attr, weight_attr in _REGULARISED:
            reg = getattr(layer, reg_attr, None)
            weight = getattr(layer, weight_attr, None)
            if reg is None or weight is None:
                continue
            config = reg.get_config() if hasattr(reg, "get_config") else {}
            value = float(to_numpy(reg(weight)))
            out.append(
                {
                    "layer": path or layer.name,
                    "weight": weight_attr,
                    "l1": float(config.get("l1", 0.0)),
                    "l2": float(config.get("l2", 0.0)),
                    "penalty": value,
                }
            )
    return out
