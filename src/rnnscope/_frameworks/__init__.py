"""One object per framework, and :func:`framework_for`, which picks the one an object belongs to.

Each framework object (``KERAS``, ``TF_KERAS``, ``TORCH``, ``FLAX``) owns what rnnscope knows
about its framework: ``handles``, ``to_numpy``, ``layer_refs``, activation and gradient capture,
``process_index`` and its layout conversions. A framework is only ever considered when it is
already imported (in ``sys.modules``): nothing here imports one. Adding a framework is one new
module with a :class:`Framework` subclass, and one line here that registers its object.
"""

from __future__ import annotations

from typing import Any

from .._errors import UnsupportedError
from ._base import FRAMEWORKS, Capture, Framework, register, type_name
from ._flax import FlaxFramework
from ._keras import KerasFramework
from ._torch import TorchFramework

__all__ = [
    "FLAX",
    "FRAMEWORKS",
    "KERAS",
    "TF_KERAS",
    "TORCH",
    "Capture",
    "FlaxFramework",
    "Framework",
    "KerasFramework",
    "TorchFramework",
    "find_framework",
    "framework_for",
    "type_name",
]

KERAS = KerasFramework("keras")
TF_KERAS = KerasFramework("tf_keras")
TORCH = TorchFramework()
FLAX = FlaxFramework()
register(KERAS, TF_KERAS, TORCH, FLAX)

_BY_TYPE: dict[type, Framework | None] = {}


def find_framework(obj: Any) -> Framework | None:
    """The framework ``obj`` belongs to, or None; remembered per ``type(obj)``.

    Example:
        >>> find_framework("model.keras") is None
        True
    """
    klass = type(obj)
    if klass not in _BY_TYPE:
        _BY_TYPE[klass] = next((f for f in FRAMEWORKS.values() if f.handles(obj)), None)
    return _BY_TYPE[klass]


def framework_for(obj: Any) -> Framework:
    """The framework object of a live model, layer or tensor.

    Raises:
        UnsupportedError: no imported framework handles ``obj``; the message names its type.
    """
    fw = find_framework(obj)
    if fw is None:
        raise UnsupportedError(
            f"no framework handles an object of type {type_name(obj)}; "
            "expected a Keras 3, tf-keras, torch or flax.nnx model, layer or tensor"
        )
    return fw
