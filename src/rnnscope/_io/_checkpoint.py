"""The :class:`Checkpoint` record: a model read from a file, its layers listed, arrays on demand.

Every reader's ``open`` returns one; :func:`rnnscope.load` hands it to the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._model import LayerInfo, LayerWeights, RNNWeights
from .._refs import LayerRef
from .._select import pick, pick_rnn

__all__ = ["Checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    """A model read from a file: its layers in order, each with kind, configuration and weights.

    Build one with :func:`rnnscope.load`. Every rnnscope function that takes a model also takes a
    Checkpoint or a path.

    Attributes:
        path: the file.
        format: one of ``FORMATS``.
        notes: what was inferred rather than read (cell kinds from shapes, assumed activations).
        framework: who wrote it, e.g. ``"keras 3.15.1"``, ``"tf_keras 2.21.0"``, ``"torch"``.
        given: for a file read through a filesystem object the caller gave, the token that keeps
            that filesystem in use for :attr:`path` while this checkpoint lives (else None).
    """

    path: str
    format: str
    refs: tuple[LayerRef, ...] = field(repr=False)
    notes: tuple[str, ...] = ()
    framework: str = ""
    given: Any = field(default=None, repr=False, compare=False)  # a filesystem object's token

    def layer_refs(self) -> list[LayerRef]:
        """The layers as :class:`LayerRef` records (used by the public functions)."""
        return list(self.refs)

    def layers(self) -> list[LayerInfo]:
        """Every layer with weights: name, kind, shapes as stored in the file."""
        return [r.info for r in self.refs]

    def rnn_weights(self, layer: str | int | None = None) -> RNNWeights:
        """Same as ``rnnscope.rnn_weights(self, layer)``."""
        return pick_rnn(self.layer_refs(), layer, self._source, self.path)

    def weights(self, layer: str | int | None = None) -> RNNWeights | LayerWeights:
        """Same as ``rnnscope.weights(self, layer)``."""
        return pick(self.layer_refs(), layer, self._source, self.path)

    @property
    def _source(self) -> str:
        return f"file '{self.path}'"
