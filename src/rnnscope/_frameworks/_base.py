"""What every framework object provides, and the capture helpers they share (numpy only).

A framework object owns everything rnnscope knows about one framework: which objects are its
own, how its tensors become numpy arrays, its layers, activation and gradient capture, the index
of the current process, and its layout conversions. Nothing here imports a framework.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .._model import LayerWeights, RNNWeights
from .._refs import LayerRef

__all__ = [
    "FRAMEWORKS",
    "Capture",
    "Framework",
    "MaskRule",
    "owner_root",
    "records_from",
    "register",
    "results",
    "type_name",
    "unique_variables",
]

FRAMEWORKS: dict[str, Framework] = {}
"""Every framework object by name, which is also its top-level module; ``register`` fills it."""


def type_name(obj: Any) -> str:
    """``module.Class`` of ``obj``'s type, as messages name it."""
    return f"{type(obj).__module__}.{type(obj).__name__}"


def owner_root(klass: type) -> str | None:
    """The top-level module of the first framework class in ``klass``'s MRO, if imported.

    The first one wins: a Keras 3 layer on the torch backend is also a ``torch.nn.Module``,
    and belongs to Keras.
    """
    for k in klass.__mro__:
        root = (getattr(k, "__module__", None) or "").split(".", 1)[0]
        if root in FRAMEWORKS and root in sys.modules:
            return root
    return None


class Framework(ABC):
    """One framework: subclasses fill in the abstract methods below."""

    name: str = ""

    def handles(self, obj: Any) -> bool:
        """True if ``obj`` (a model, layer, variable or tensor) belongs to this framework."""
        return owner_root(type(obj)) == self.name

    @abstractmethod
    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A fresh numpy copy of one of this framework's tensors or variables."""
        raise NotImplementedError

    @abstractmethod
    def source_name(self, obj: Any) -> str:
        """A name for the model or layer ``obj`` to use in messages."""
        raise NotImplementedError

    @abstractmethod
    def layer_refs(self, obj: Any) -> list[LayerRef]:
        """Every layer with weights of a model or layer, in model order."""
        raise NotImplementedError

    @property
    @abstractmethod
    def capture(self) -> Capture:
        """The framework's capture of activations and gradients."""
        raise NotImplementedError

    @abstractmethod
    def process_index(self) -> tuple[bool, int]:
        """``(writes, index)``: the index of this process in a distributed run, and whether it is
        the one that writes (the chief); ``(True, 0)`` outside distributed runs."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<rnnscope framework {self.name}>"


@dataclass(frozen=True)
class MaskRule:
    """How a live recurrent layer treats masks in its model: what it outputs at a masked step
    (``"carry"`` or ``"zeros"``), and the layers upstream that give it a mask (empty: none
    rnnscope can see)."""

    masked_output: str = "carry"
    producers: tuple[str, ...] = ()
    model: str = ""
    hidden: str = ""  # a mask rnnscope suspects but cannot locate (why, for a warning)


class Capture(Protocol):
    """Activations and gradients of one framework's models, from one forward (and backward)
    pass; everything done to the model is undone in ``finally`` blocks."""

    def has_output(self, ref: LayerRef) -> bool:
        """True if the layer's output can be captured."""

    def mask_rule(self, model: Any, ref: LayerRef) -> MaskRule:
        """What the layer outputs at masked steps, and the layers that give it a mask."""

    def masks(
        self, model: Any, x: Any, refs: Sequence[LayerRef]
    ) -> Iterator[tuple[str, np.ndarray | None]]:
        """``(layer name, (batch, time) mask it receives or None)`` from one forward pass."""

    def activations(
        self, model: Any, x: Any, refs: Sequence[LayerRef], training: bool
    ) -> Iterator[tuple[str, np.ndarray]]:
        """``(layer name, output)`` of each ref from one forward pass."""

    def gradients(
        self,
        model: Any,
        x: Any,
        y: Any,
        refs: Sequence[LayerRef],
        weights: bool,
        loss: Any,
        sw: Any,
        training: bool,
    ) -> Iterator[tuple[str, Any]]:
        """``(layer name, gradient)`` of each ref: output gradients, or weight records."""


def register(*frameworks: Framework) -> None:
    """Make ``frameworks`` known to :func:`owner_root` and ``framework_for``."""
    FRAMEWORKS.update({f.name: f for f in frameworks})


# -- capture helpers ---------------------------------------------------------------------------
def unique_variables(refs: Sequence[LayerRef]) -> list[Any]:
    """The framework variables behind ``refs``, each once, in order."""
    return list({id(v): v for r in refs for v in r.variables}.values())


def records_from(ref: LayerRef, values: dict[int, Any]) -> RNNWeights | LayerWeights:
    """The record of ``ref`` built from per-variable arrays keyed by ``id(variable)``."""
    assert ref.build is not None
    return ref.build(lambda v: values[id(v)])


def results(
    refs: Sequence[LayerRef], variables: Sequence[Any], arrays: Sequence[Any], weights: bool
) -> Iterator[tuple[str, Any]]:
    """``(layer name, result)`` pairs: output-gradient arrays in ``refs`` order, or weight
    records built from per-variable gradient arrays (``arrays`` aligned with ``variables``)."""
    if not weights:
        yield from ((r.info.name, a) for r, a in zip(refs, arrays, strict=True))
        return
    values = {id(v): a for v, a in zip(variables, arrays, strict=True)}
    for r in refs:
        yield r.info.name, records_from(r, values)
