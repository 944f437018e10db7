"""The framework-neutral data model: one record per layer, numpy arrays only.

Every adapter (Keras 3, tf-keras, torch, files) converts its layer into these records. The
canonical convention, whatever the source:

* ``kernel``            ``(input_dim, n_gates * units)``, used as ``x_t @ kernel``
* ``recurrent_kernel``  ``(hidden, n_gates * units)``, used as ``h_{t-1} @ recurrent_kernel``
* ``bias``              ``(n_gates * units,)``, added on the input side
* ``recurrent_bias``    ``(n_gates * units,)``, added on the hidden side (where the source has one)
* ``projection``        ``(units, proj_size)``, used as ``h = (o * tanh(c)) @ projection``

Gates are concatenated in the Keras order: LSTM (input, forget, cell, output), GRU (update, reset,
new), SimpleRNN (hidden).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ._enums import Direction
from ._errors import LayerError, UnsupportedError

__all__ = [
    "CELL_BY_GATES",
    "GATES",
    "PARTS",
    "Block",
    "LayerInfo",
    "LayerWeights",
    "RNNWeights",
]

GATES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "LSTM": ("input", "forget", "cell", "output"),
        "GRU": ("update", "reset", "new"),
        "SimpleRNN": ("hidden",),
    }
)
"""Gate names of each cell, in the canonical (Keras) order."""

CELL_BY_GATES: Mapping[int, str] = MappingProxyType({len(g): c for c, g in GATES.items()})
"""The cell with a given number of gate blocks: 4 LSTM, 3 GRU, 1 SimpleRNN."""

PARTS: tuple[str, ...] = ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "projection")
"""Every part a recurrent layer can have, in display order."""

DIRECTIONS: tuple[str, ...] = (Direction.FORWARD.value, Direction.BACKWARD.value)
"""The directions of a bidirectional layer, in order (plain strings: records hold strings)."""

NumpyFn = Callable[[np.ndarray], np.ndarray]
Block = tuple[str, str, str, np.ndarray]
"""One block of a record: ``(direction, part, gate, array)``, ``""`` where there is none."""


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only array the record can own: a read-only input is adopted as it is (readers and
    adapters hand over fresh read-only arrays), a writeable one is copied, so that nobody else
    holding it can change the record."""
    if a.dtype.kind not in "fiub":
        raise UnsupportedError(f"weights must be real numbers; got an array of {a.dtype}")
    if not a.flags.writeable:
        return a
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def readonly(a: np.ndarray) -> np.ndarray:
    """Mark a fresh array (one nobody else holds) read-only, so a record adopts it uncopied."""
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class LayerInfo:
    """One layer with weights, as listed by :func:`rnnscope.layers`.

    Attributes:
        name: the layer's name (the path inside a container; ``.l0`` etc. for stacked torch layers).
        kind: the source's class name, e.g. ``"LSTM"``, ``"Bidirectional"``, ``"Linear"``.
        shapes: each weight's name and shape as the source stores it.
        recurrent: True if :func:`rnnscope.rnn_weights` can read this layer.
    """

    name: str
    kind: str
    shapes: Mapping[str, tuple[int, ...]]
    recurrent: bool

    @property
    def n_params(self) -> int:
        """Number of scalar weights in the layer."""
        return int(sum(int(np.prod(s)) for s in self.shapes.values()))


@dataclass(frozen=True)
class LayerWeights:
    """The named weights of a non-recurrent layer (Dense, Conv, Embedding, ...).

    Example:
        >>> import numpy as np
        >>> w = LayerWeights("dense", "Dense", {"kernel": np.ones((3, 2))})
        >>> w.array("kernel").shape
        (3, 2)
    """

    name: str
    kind: str
    weights: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        frozen = {str(k): _frozen(np.asarray(v)) for k, v in self.weights.items()}
        object.__setattr__(self, "weights", MappingProxyType(frozen))

    @property
    def names(self) -> tuple[str, ...]:
        """The weight names, in the source's order."""
        return tuple(self.weights)

    def array(self, name: str) -> np.ndarray:
        """A copy of the weight called ``name``."""
        if name not in self.weights:
            raise LayerError(
                f"layer '{self.name}' ({self.kind}) has no weight '{name}'; "
                f"it has: {', '.join(self.names) or 'none'}"
            )
        return self.weights[name].copy()

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """Iterate over ``(name, read-only array)`` pairs (no copies)."""
        yield from self.weights.items()

    def blocks(self) -> Iterator[Block]:
        """Iterate over ``(direction, part, gate, array)`` as :meth:`RNNWeights.blocks` does:
        each weight is one block, its name the part, direction and gate ``""``."""
        for name, a in self.weights.items():
            yield "", name, "", a


@dataclass(frozen=True)
class RNNWeights:
    """One recurrent layer's weights, split by part, gate and direction.

    Build one with :func:`rnnscope.rnn_weights`. Arrays are stored once in the canonical layout
    (see the module docstring) and :meth:`array` returns copies, so nothing a caller does to them
    reaches the model.

    Example:
        >>> import numpy as np, rnnscope
        >>> w = rnnscope.RNNWeights.from_arrays(
        ...     "lstm", "LSTM", {"kernel": np.zeros((3, 8)), "recurrent_kernel": np.zeros((2, 8))})
        >>> w.array("kernel", gate="forget").shape
        (3, 2)
    """

    name: str
    cell: str
    units: int
    input_dim: int
    directions: tuple[str, ...]
    arrays: Mapping[tuple[str, str], np.ndarray] = field(repr=False)
    kind: str = ""
    activation: str = "tanh"
    recurrent_activation: str | None = "sigmoid"
    reset_after: bool | None = None
    proj_size: int | None = None
    merge_mode: str | None = None
    go_backwards: bool = False
    source: str = ""
    activation_fns: Mapping[str, NumpyFn] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cell not in GATES:
            raise UnsupportedError(
                f"layer '{self.name}': cell must be one of {', '.join(GATES)}; got {self.cell!r}"
            )
        if self.cell == "SimpleRNN":
            object.__setattr__(self, "recurrent_activation", None)
        if self.cell != "GRU":
            object.__setattr__(self, "reset_after", None)
        elif self.reset_after is None:  # the default of Keras 3 and the only form torch has
            object.__setattr__(self, "reset_after", True)
        if not self.kind:
            object.__setattr__(self, "kind", self.cell)
        frozen = {(p, d): _frozen(np.asarray(a)) for (p, d), a in self.arrays.items()}
        object.__setattr__(self, "arrays", MappingProxyType(frozen))
        object.__setattr__(self, "activation_fns", MappingProxyType(dict(self.activation_fns)))
        self._check_shapes()

    @classmethod
    def from_arrays(
        cls,
        name: str,
        cell: str,
        forward: Mapping[str, np.ndarray],
        backward: Mapping[str, np.ndarray] | None = None,
        **settings: object,
    ) -> RNNWeights:
        """Build a record from canonical arrays given per direction.

        ``units`` and ``input_dim`` are read off the kernel; ``settings`` are the remaining fields
        (``activation``, ``proj_size``, ...).
        """
        arrays = {(p, "forward"): a for p, a in forward.items()}
        if backward is not None:
            arrays.update({(p, "backward"): a for p, a in backward.items()})
        return cls.from_parts(name, cell, arrays, **settings)

    @classmethod
    def from_parts(
        cls, name: str, cell: str, arrays: Mapping[tuple[str, str], np.ndarray], **settings: object
    ) -> RNNWeights:
        """Build a record from canonical arrays keyed by ``(part, direction)``.

        ``units``, ``input_dim`` and ``directions`` are read off the arrays; a bidirectional
        layer's ``merge_mode`` defaults to ``"concat"``.
        """
        if ("kernel", "forward") not in arrays:
            raise UnsupportedError(f"layer '{name}': missing kernel (forward)")
        kernel = np.asarray(arrays[("kernel", "forward")])
        n = len(GATES[cell]) if cell in GATES else 1
        directions: tuple[str, ...] = ("forward",)
        if any(d == "backward" for _, d in arrays):
            directions = DIRECTIONS
            settings.setdefault("merge_mode", "concat")
        return cls(
            name=name,
            cell=cell,
            units=kernel.shape[1] // n,
            input_dim=kernel.shape[0],
            directions=directions,
            arrays=arrays,
            **settings,  # type: ignore[arg-type]
        )

    # -- derived facts -------------------------------------------------------------------------
    @property
    def gates(self) -> tuple[str, ...]:
        """Gate names in canonical order."""
        return GATES[self.cell]

    @property
    def n_gates(self) -> int:
        """Number of gates (4 LSTM, 3 GRU, 1 SimpleRNN)."""
        return len(self.gates)

    @property
    def hidden(self) -> int:
        """Size of the recurrent state ``h``: ``proj_size`` when set, else ``units``."""
        return self.proj_size or self.units

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts this layer has, in display order."""
        have = {p for p, _ in self.arrays}
        return tuple(p for p in PARTS if p in have)

    @property
    def bidirectional(self) -> bool:
        """True when the layer has a backward direction."""
        return len(self.directions) == 2

    def expected_shape(self, part: str) -> tuple[int, ...]:
        """The canonical shape of ``part`` for this layer."""
        width = self.n_gates * self.units
        return {
            "kernel": (self.input_dim, width),
            "recurrent_kernel": (self.hidden, width),
            "bias": (width,),
            "recurrent_bias": (width,),
            "projection": (self.units, self.proj_size or 0),
        }[part]

    def _check_shapes(self) -> None:
        for (part, direction), a in self.arrays.items():
            if part not in PARTS:
                raise UnsupportedError(
                    f"layer '{self.name}': unknown part {part!r}; parts: {PARTS}"
                )
            if direction not in self.directions:
                raise UnsupportedError(
                    f"layer '{self.name}': array for direction {direction!r}, "
                    f"but the layer's directions are {self.directions}"
                )
            if a.shape != self.expected_shape(part):
                raise UnsupportedError(
                    f"layer '{self.name}' ({self.cell}, units={self.units}): {part} "
                    f"({direction}) should have shape {self.expected_shape(part)}, got {a.shape}"
                )
        for d in self.directions:
            for part in ("kernel", "recurrent_kernel"):
                if (part, d) not in self.arrays:
                    raise UnsupportedError(f"layer '{self.name}': missing {part} ({d})")

    # -- access --------------------------------------------------------------------------------
    def gate_slice(self, gate: str) -> slice:
        """The column slice of ``gate`` in a concatenated kernel or bias."""
        if gate not in self.gates:
            raise LayerError(
                f"layer '{self.name}' is a {self.cell}; gate must be one of "
                f"{', '.join(self.gates)}; got {gate!r}"
            )
        k = self.gates.index(gate)
        return slice(k * self.units, (k + 1) * self.units)

    def array(self, part: str, gate: str | None = None, direction: str = "forward") -> np.ndarray:
        """A copy of one part, optionally one gate's block, of one direction.

        Args:
            part: one of :attr:`parts`.
            gate: one of :attr:`gates`, or None for all gates concatenated.
            direction: ``"forward"`` or ``"backward"`` (bidirectional layers).

        Example:
            >>> w.array("recurrent_kernel", gate="forget", direction="backward")  # doctest: +SKIP
        """
        if direction not in self.directions:
            raise LayerError(
                f"layer '{self.name}': direction must be one of {', '.join(self.directions)}; "
                f"got {direction!r}"
            )
        if (part, direction) not in self.arrays:
            raise LayerError(
                f"layer '{self.name}' ({self.cell}) has no part {part!r}; "
                f"it has: {', '.join(self.parts)}"
            )
        a = self.arrays[(part, direction)]
        if gate is None:
            return a.copy()
        if part == "projection":
            raise LayerError(f"layer '{self.name}': the projection has no gates; use gate=None")
        return a[..., self.gate_slice(gate)].copy()

    def blocks(self) -> Iterator[Block]:
        """Iterate over ``(direction, part, gate, block)``: directions, then parts in display
        order, then gates in canonical order; gate is ``""`` for the projection.

        Blocks are read-only views (no copies); use :meth:`array` for a copy to change. Every
        record kind yields this same order (:meth:`LayerWeights.blocks`).
        """
        for d in self.directions:
            for p in self.parts:
                a = self.arrays[(p, d)]
                if p == "projection":
                    yield d, p, "", a
                    continue
                for g in self.gates:
                    yield d, p, g, a[..., self.gate_slice(g)]

    def items(self) -> Iterator[Block]:
        """The same as :meth:`blocks` (kept for existing callers)."""
        return self.blocks()

    def n_params(self) -> int:
        """Number of scalar weights in the layer (all parts and directions)."""
        return int(sum(a.size for a in self.arrays.values()))
