"""Activation functions in numpy, under the names the data model uses.

Two hard sigmoids exist: Keras 3 defines ``hard_sigmoid(x) = clip(x / 6 + 1/2, 0, 1)``, Keras 2
(tf-keras) ``clip(0.2 x + 1/2, 0, 1)``. rnnscope calls the second ``hard_sigmoid_keras2``; adapters
and readers of Keras 2 sources translate the name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from ._errors import UnsupportedError

__all__ = ["ACTIVATIONS", "apply_inplace", "get_activation", "sigmoid"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow for large |x|, same value as 1 / (1 + exp(-x)).
    return 0.5 * np.tanh(0.5 * x) + 0.5


def apply_inplace(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> None:
    """Overwrite ``x`` with ``fn(x)``, without temporaries for tanh and sigmoid."""
    if fn is np.tanh:
        np.tanh(x, out=x)
    elif fn is sigmoid:
        x *= 0.5
        np.tanh(x, out=x)
        x *= 0.5
        x += 0.5
    else:
        x[...] = fn(x)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.zeros((), x.dtype), x)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(x.dtype)


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(x / 6 + 0.5, 0, 1)


_FUNCS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "hard_sigmoid_keras2": lambda x: np.clip(0.2 * x + 0.5, 0, 1),
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "linear": lambda x: x,
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "softplus": _softplus,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x * sigmoid(x),
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "exponential": np.exp,
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "gelu": _gelu,
}
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu", None: "linear", "": "linear"}

ACTIVATIONS: tuple[str, ...] = tuple(sorted(_FUNCS))
"""Activation names rnnscope computes in numpy."""


def canonical_name(name: str | None) -> str:
    """The data model's name for an activation called ``name`` by a source."""
    key = _ALIASES.get(name, name)
    return str(key)


def get_activation(
    name: str,
    extra: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    *,
    layer: str = "",
) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy function for activation ``name``.

    ``extra`` holds functions for activations outside the built-in set (adapters supply these for
    custom activations of live models).
    """
    if extra and name in extra:
        return extra[name]
    key = canonical_name(name)
    if key in _FUNCS:
        return _FUNCS[key]
    where = f"layer '{layer}': " if layer else ""
    raise UnsupportedError(
        f"{where}activation {name!r} has no numpy implementation; supported: "
        f"{', '.join(ACTIVATIONS)} (a custom activation of a live model is called through its "
        f"framework)",
        layer=layer or None,
    )
