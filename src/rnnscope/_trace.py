"""Gate traces: a numpy forward pass of one recurrent layer that records every gate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ._activations import get_activation
from ._cells import run_cell
from ._errors import InputError, LayerError
from ._frameworks import find_framework
from ._model import RNNWeights

__all__ = ["Trace", "run_trace", "to_numpy"]

TRACE_NAMES = {
    "LSTM": ("input", "forget", "cell", "output", "c", "h"),
    "GRU": ("update", "reset", "new", "h"),
    "SimpleRNN": ("h",),
}
MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def to_numpy(x: Any, *, what: str = "x") -> np.ndarray:
    """A numpy array from numpy data or a tensor: a framework's own tensors (torch, Keras
    variables) through its framework object, other tensors (TensorFlow, JAX) by their
    ``numpy()`` method or the array protocol."""
    if isinstance(x, np.ndarray):
        return x
    fw = find_framework(x)
    if fw is not None:
        return fw.to_numpy(x)
    as_numpy = getattr(x, "numpy", None)
    if callable(as_numpy):  # tf.Tensor
        return np.asarray(as_numpy())
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what}: expected an array or tensor, got {type(x).__name__}") from err


@dataclass(frozen=True)
class Trace:
    """Per-timestep gate activations and states of one recurrent layer.

    :meth:`get` returns ``(batch, time, units)`` (``h``: ``(batch, time, hidden)``), with time in
    input order for both directions. ``time_major`` holds the same arrays as the cells wrote them,
    ``(time, batch, size)`` in input order, and is what ``get`` transposes.

    Example:
        >>> t = rnnscope.trace(model, x, layer="lstm")
        >>> t.get("forget").mean(axis=(0, 2)).shape  # mean forget gate per timestep
        (5,)
    """

    layer: str
    cell: str
    directions: tuple[str, ...]
    time_major: Mapping[tuple[str, str], np.ndarray] = field(repr=False)
    merge_mode: str | None = None
    go_backwards: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_major", MappingProxyType(dict(self.time_major)))

    @property
    def names(self) -> tuple[str, ...]:
        """The recorded quantities, e.g. ``("input", "forget", "cell", "output", "c", "h")``."""
        return TRACE_NAMES[self.cell]

    def get(self, name: str, direction: str = "forward") -> np.ndarray:
        """One recorded quantity of one direction, ``(batch, time, size)``, time in input order."""
        if direction not in self.directions:
            raise LayerError(
                f"trace of '{self.layer}': direction must be one of "
                f"{', '.join(self.directions)}; got {direction!r}",
                layer=self.layer,
                argument="direction",
            )
        if name not in self.names:
            raise LayerError(
                f"trace of '{self.layer}' ({self.cell}) has no {name!r}; "
                f"it has: {', '.join(self.names)}",
                layer=self.layer,
                argument="name",
            )
        return np.ascontiguousarray(self.time_major[(name, direction)].transpose(1, 0, 2))

    def output(self, merge_mode: str | None = "layer", sequences: bool = True) -> Any:
        """The layer's output as its framework returns it.

        Args:
            merge_mode: how a bidirectional layer joins its directions: ``"concat"``, ``"sum"``,
                ``"mul"``, ``"ave"`` or None (a list of both); ``"layer"`` uses the layer's own.
            sequences: True for every timestep (``return_sequences=True``), False for the last
                step each direction processed.
        """
        outs = []
        for d in self.directions:
            h = self.get("h", d)
            backwards = d == "backward" or self.go_backwards
            if sequences:
                outs.append(np.ascontiguousarray(h[:, ::-1]) if self.go_backwards else h)
            else:
                outs.append(h[:, 0] if backwards else h[:, -1])
        if len(outs) == 1:
            return outs[0]
        mode = self.merge_mode if merge_mode == "layer" else merge_mode
        if mode not in MERGE_MODES:
            raise LayerError(
                f"merge_mode must be one of {MERGE_MODES}; got {mode!r}",
                layer=self.layer,
                argument="merge_mode",
            )
        if mode == "concat":
            return np.concatenate(outs, axis=-1)
        if mode == "sum":
            return outs[0] + outs[1]
        if mode == "mul":
            return outs[0] * outs[1]
        if mode == "ave":
            return (outs[0] + outs[1]) / 2
        return outs


def _initial_states(
    w: RNNWeights, initial_state: Any, batch: int, dtype: np.dtype
) -> dict[str, list[np.ndarray]]:
    sizes = [w.hidden, w.units] if w.cell == "LSTM" else [w.units]
    per_dir: dict[str, Any] = {}  # directions without states start from zeros, below
    if initial_state is None:
        pass
    elif isinstance(initial_state, Mapping):
        unknown = [k for k in initial_state if k not in w.directions]
        if unknown:
            raise InputError(
                f"initial_state for layer '{w.name}': unknown direction(s) {unknown}; "
                f"expected keys among {list(w.directions)}",
                layer=w.name,
                argument="initial_state",
            )
        per_dir = {d: initial_state[d] for d in w.directions if d in initial_state}
        for d, states_d in per_dir.items():
            n_given = len(states_d) if isinstance(states_d, (list, tuple)) else 1
            if n_given != len(sizes):
                raise InputError(
                    f"initial_state['{d}'] for layer '{w.name}' ({w.cell}): expected "
                    f"{len(sizes)} array(s) ({'h, c' if w.cell == 'LSTM' else 'h'}), got {n_given}",
                    layer=w.name,
                    argument="initial_state",
                )
            if not isinstance(states_d, (list, tuple)):
                per_dir[d] = [states_d]
    else:
        flat = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(flat) != len(sizes) * len(w.directions):
            raise InputError(
                f"initial_state for layer '{w.name}' ({w.cell}, directions {w.directions}): "
                f"expected "
                f"{len(sizes) * len(w.directions)} arrays in Keras order, got {len(flat)}",
                layer=w.name,
                argument="initial_state",
            )
        n = len(sizes)
        per_dir = {d: flat[k * n : (k + 1) * n] for k, d in enumerate(w.directions)}
    out: dict[str, list[np.ndarray]] = {}
    for d in w.directions:
        given: Sequence[Any] | None = per_dir.get(d)
        states = [np.zeros((batch, s), dtype) for s in sizes] if given is None else list(given)
        arrays = [to_numpy(s, what="initial_state").astype(dtype) for s in states]
        for a, s in zip(arrays, sizes, strict=True):
            if a.shape != (batch, s):
                raise InputError(
                    f"initial_state for layer '{w.name}' ({d}): expected shape {(batch, s)}, "
                    f"got {a.shape}",
                    layer=w.name,
                    argument="initial_state",
                )
        out[d] = arrays
    return out


def run_trace(w: RNNWeights, x: Any, initial_state: Any = None) -> Trace:
    """Trace ``w`` over ``x`` of shape ``(batch, time, input_dim)``."""
    if isinstance(x, (str, bytes)):
        raise InputError(
            f"x for layer '{w.name}': expected an array, got {type(x).__name__}",
            layer=w.name,
            argument="x",
        )
    xa = to_numpy(x)
    if xa.ndim == 3 and xa.shape[1] == 0:
        raise InputError(
            f"x for layer '{w.name}' has no timesteps (shape {xa.shape})",
            layer=w.name,
            argument="x",
        )
    if xa.ndim != 3 or xa.shape[2] != w.input_dim:
        raise InputError(
            f"x for layer '{w.name}': expected shape (batch, time, {w.input_dim}), got {xa.shape}",
            layer=w.name,
            argument="x",
        )
    dtype = np.result_type(w.arrays[("kernel", w.directions[0])].dtype, np.float32)
    xa = np.ascontiguousarray(xa, dtype=dtype)
    act = get_activation(w.activation, w.activation_fns, layer=w.name)
    ract = (
        get_activation(w.recurrent_activation, w.activation_fns, layer=w.name)
        if w.recurrent_activation
        else None
    )
    states = _initial_states(w, initial_state, xa.shape[0], dtype)
    data: dict[tuple[str, str], np.ndarray] = {}
    for d in w.directions:
        params = {p: a.astype(dtype, copy=False) for (p, dd), a in w.arrays.items() if dd == d}
        reverse = (d == "backward") != w.go_backwards
        xs = np.ascontiguousarray(xa[:, ::-1]) if reverse else xa
        rec = run_cell(w.cell, xs, params, states[d], act, ract, w.reset_after)
        for name, arr in rec.items():
            data[(name, d)] = arr[::-1] if reverse else arr  # time-major, back in input order
    return Trace(w.name, w.cell, w.directions, data, w.merge_mode, w.go_backwards)
