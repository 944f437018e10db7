"""Gate traces: a numpy forward pass of one recurrent layer that records every gate.

Masked (padded) steps follow the frameworks' shared rule: a masked step changes no state, so
each sample's real steps are gathered in processing order (forward: input order; backward:
reversed, within the sample's own steps), run through the cell, and scattered back. Keras's
carried-over state and torch's packed sequences (reversed within each length) both reduce to
this. At a masked step ``h`` and ``c`` hold the carried state and the gates hold NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ._activations import get_activation
from ._cells import run_cell
from ._errors import InputError, LayerError
from ._frameworks import find_framework
from ._frameworks._base import MaskRule
from ._layouts import CONVLSTM_KINDS
from ._model import RNNWeights

__all__ = [
    "MASKED_OUTPUTS",
    "MaskRule",
    "Trace",
    "as_mask",
    "is_packed",
    "run_trace",
    "to_numpy",
    "trace_masked",
    "unpack_sequence",
]

TRACE_NAMES = {
    "LSTM": ("input", "forget", "cell", "output", "c", "h"),
    "GRU": ("update", "reset", "new", "h"),
    "SimpleRNN": ("h",),
    **{k: ("input", "forget", "cell", "output", "c", "h") for k in CONVLSTM_KINDS},
}
MERGE_MODES = ("concat", "sum", "mul", "ave", None)
MASKED_OUTPUTS = ("carry", "state", "zeros")
"""What a layer outputs at a masked step: the last real step's output, zeros before the first
(Keras's default on TensorFlow and torch); the carried state ``h``, the initial state before the
first real step (Keras on JAX, unless unrolled); or zeros (Keras inside ``Bidirectional`` and
``zero_output_for_mask``, torch's ``pad_packed_sequence``)."""


def is_packed(x: Any) -> bool:
    """True for a torch ``PackedSequence`` (recognised without importing torch)."""
    return type(x).__name__ == "PackedSequence" and hasattr(x, "batch_sizes")


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
    mask: np.ndarray | None = field(default=None, repr=False)
    masked_output: str = "carry"

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_major", MappingProxyType(dict(self.time_major)))
        if self.mask is not None:
            m = np.array(self.mask, dtype=bool)
            m.flags.writeable = False
            object.__setattr__(self, "mask", m)

    @property
    def names(self) -> tuple[str, ...]:
        """The recorded quantities, e.g. ``("input", "forget", "cell", "output", "c", "h")``."""
        return TRACE_NAMES[self.cell]

    def get(self, name: str, direction: str = "forward") -> np.ndarray:
        """One recorded quantity of one direction, ``(batch, time, size)``, time in input order.

        With a mask, a ``numpy.ma.MaskedArray`` whose masked steps numpy's statistics leave out
        (``.mean()``, ``.std()``, ``numpy.ma`` functions); under the mask ``h`` and ``c`` hold the
        state carried over the step and the gates NaN.
        """
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
        data = np.ascontiguousarray(self.time_major[(name, direction)].swapaxes(0, 1))
        if self.mask is None:
            return data
        return np.ma.MaskedArray(data, mask=np.broadcast_to(~self.mask[:, :, None], data.shape))

    def _h(self, direction: str) -> np.ndarray:
        """``h`` as the layer outputs it: masked steps filled by ``masked_output``."""
        h = np.ascontiguousarray(self.time_major[("h", direction)].swapaxes(0, 1))
        if self.mask is None:
            return h
        if self.masked_output == "state":
            return h  # the carried state, as recorded
        masked = ~self.mask
        if self.masked_output == "carry":
            reverse = (direction == "backward") != self.go_backwards
            seen = np.cumsum(self.mask[:, ::-1] if reverse else self.mask, axis=1)
            masked = masked & ((seen[:, ::-1] if reverse else seen) == 0)  # before any real step
        h[masked] = 0
        return h

    def output(self, merge_mode: str | None = "layer", sequences: bool = True) -> Any:
        """The layer's output as its framework returns it.

        Args:
            merge_mode: how a bidirectional layer joins its directions: ``"concat"``, ``"sum"``,
                ``"mul"``, ``"ave"`` or None (a list of both); ``"layer"`` uses the layer's own.
            sequences: True for every timestep (``return_sequences=True``), False for the last
                step each direction processed (with a mask: its last real step's state).
        """
        outs = []
        for d in self.directions:
            backwards = d == "backward" or self.go_backwards
            if sequences:
                h = self._h(d)
                outs.append(np.ascontiguousarray(h[:, ::-1]) if self.go_backwards else h)
            else:  # the state after the last step processed (carried over masked steps)
                h = self.time_major[("h", d)]
                outs.append(np.array(h[0] if backwards else h[-1]))
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


def as_mask(mask: Any, lengths: Any, batch: int, steps: int, layer: str) -> np.ndarray | None:
    """A ``(batch, time)`` boolean mask (True: a real step) from ``mask=`` or ``lengths=``.

    ``lengths`` means right padding: sample ``i`` has real steps ``0 .. lengths[i] - 1``.
    """
    if mask is not None and lengths is not None:
        raise InputError(
            f"trace of '{layer}': give mask= or lengths=, not both", layer=layer, argument="mask"
        )
    if lengths is not None:
        n = to_numpy(lengths, what="lengths")
        if n.shape != (batch,) or not (np.issubdtype(n.dtype, np.integer) or n.dtype == bool):
            raise InputError(
                f"lengths for layer '{layer}': expected {batch} integers (one per sample), got "
                f"shape {n.shape} of {n.dtype}",
                layer=layer,
                argument="lengths",
            )
        if n.size and (n.min() < 0 or n.max() > steps):
            raise InputError(
                f"lengths for layer '{layer}': each must be within 0..{steps} (the input has "
                f"{steps} timesteps); got {n.min()}..{n.max()}",
                layer=layer,
                argument="lengths",
            )
        return np.arange(steps)[None, :] < n[:, None]
    if mask is None:
        return None
    m = to_numpy(mask, what="mask")
    if m.shape != (batch, steps):
        raise InputError(
            f"mask for layer '{layer}': expected shape (batch, time) = {(batch, steps)}, got "
            f"{m.shape}",
            layer=layer,
            argument="mask",
        )
    if m.dtype != bool and not (np.issubdtype(m.dtype, np.number) and np.isin(m, (0, 1)).all()):
        raise InputError(
            f"mask for layer '{layer}': expected booleans (True: a real step) or 0/1, got "
            f"dtype {m.dtype}",
            layer=layer,
            argument="mask",
        )
    return np.asarray(m, dtype=bool)


def unpack_sequence(packed: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(padded, lengths)`` of a torch ``PackedSequence``: ``(batch, time, features)``, samples
    in the order they were given to ``pack_padded_sequence`` (sorted or not)."""
    data = to_numpy(packed.data, what="x.data")
    sizes = to_numpy(packed.batch_sizes, what="x.batch_sizes").astype(np.int64)
    order = packed.sorted_indices
    batch = int(sizes[0]) if sizes.size else 0
    lengths_sorted = (sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1)
    padded = np.zeros((batch, sizes.size, *data.shape[1:]), data.dtype)
    start = 0
    for t, n in enumerate(sizes):
        padded[:n, t] = data[start : start + n]
        start += n
    if order is not None:  # sorted position j holds original sample order[j]
        idx = to_numpy(order, what="x.sorted_indices").astype(np.int64)
        out, lengths = np.empty_like(padded), np.empty_like(lengths_sorted)
        out[idx], lengths[idx] = padded, lengths_sorted
        return out, lengths
    return padded, lengths_sorted


def _compact(mask: np.ndarray, reverse: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Where each sample's real steps are, in processing order, and where each step's state
    comes from.

    Returns ``(take, source, n)``: ``take[i, k]`` is the input position of sample ``i``'s
    ``k``-th real step (``k < n``, the most real steps of any sample); ``source[t, i]`` is
    ``1 +`` the index of the last real step processed at or before position ``t`` (0: the
    initial state).
    """
    m = mask[:, ::-1] if reverse else mask
    steps = m.shape[1]
    order = np.argsort(~m, axis=1, kind="stable")  # real steps first, in processing order
    take = steps - 1 - order if reverse else order
    count = np.cumsum(m, axis=1)  # real steps processed so far
    source = count[:, ::-1] if reverse else count
    return take, np.ascontiguousarray(source.T), int(count[:, -1].max(initial=0))


def _run_masked(
    cell: str,
    xa: np.ndarray,
    mask: np.ndarray,
    reverse: bool,
    params: dict[str, np.ndarray],
    states: list[np.ndarray],
    run: Any,
) -> dict[str, np.ndarray]:
    """One direction over the real steps only; time-major arrays in input order."""
    take, source, n = _compact(mask, reverse)
    carried = {"h": states[0], "c": states[1] if len(states) > 1 else None}
    m = mask[:, ::-1] if reverse else mask
    if n == m.shape[1] and bool(np.all(m[:, :-1] >= m[:, 1:])):
        return _run_prefix(cell, xa, mask, reverse, source, params, states, carried, run)
    take = take[:, : max(n, 1)]
    xs = np.take_along_axis(xa, take[:, :, None], axis=1)
    xs[~np.take_along_axis(mask, take, axis=1)] = 0  # beyond a sample's real steps
    rec = run(cell, xs, params, states)
    out: dict[str, np.ndarray] = {}
    gate_rows = ~mask.T[:, :, None]
    for name, arr in rec.items():
        first = carried.get(name)
        start = np.full_like(arr[:1], np.nan) if first is None else first[None].astype(arr.dtype)
        ext = np.concatenate([start, arr], axis=0)  # index 0: before any real step
        full = np.take_along_axis(ext, source[:, :, None], axis=0)
        if first is None:
            np.copyto(full, np.nan, where=gate_rows)
        out[name] = full
    return out


def _run_prefix(
    cell: str,
    xa: np.ndarray,
    mask: np.ndarray,
    reverse: bool,
    source: np.ndarray,
    params: dict[str, np.ndarray],
    states: list[np.ndarray],
    carried: dict[str, np.ndarray | None],
    run: Any,
) -> dict[str, np.ndarray]:
    """The common case: every sample's real steps come first in processing order (right
    padding read forward, left padding read backward) and one sample fills the batch. The cell
    runs as without a mask; only the masked entries are rewritten afterwards."""
    xs = np.ascontiguousarray(xa[:, ::-1]) if reverse else xa
    rec = run(cell, xs, params, states)
    t_idx, i_idx = np.nonzero(~mask.T)  # masked steps, input order
    src = source[t_idx, i_idx]
    steps = mask.shape[1]
    out: dict[str, np.ndarray] = {}
    for name, arr in rec.items():
        full = arr[::-1] if reverse else arr  # time-major, input order
        first = carried.get(name)
        if first is None:
            full[t_idx, i_idx] = np.nan
        else:  # the state after real step src - 1 (processing order), or the initial state
            at = src - 1
            pos = steps - 1 - at if reverse else at
            values = full[np.maximum(pos, 0) if not reverse else np.minimum(pos, steps - 1), i_idx]
            values[at < 0] = first[i_idx[at < 0]]
            full[t_idx, i_idx] = values
        out[name] = full
    return out


def run_trace(
    w: RNNWeights,
    x: Any,
    initial_state: Any = None,
    mask: np.ndarray | None = None,
    masked_output: str = "carry",
) -> Trace:
    """Trace ``w`` over ``x`` of shape ``(batch, time, input_dim)``; ``mask`` from
    :func:`as_mask` (True: a real step)."""
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
    if mask is not None and mask.shape != xa.shape[:2]:
        raise InputError(
            f"mask for layer '{w.name}': expected shape {xa.shape[:2]}, got {mask.shape}",
            layer=w.name,
            argument="mask",
        )

    def run(cell: str, xs: np.ndarray, params: Any, st: list[np.ndarray]) -> Any:
        return run_cell(cell, xs, params, st, act, ract, w.reset_after)

    for d in w.directions:
        params = {p: a.astype(dtype, copy=False) for (p, dd), a in w.arrays.items() if dd == d}
        reverse = (d == "backward") != w.go_backwards
        if mask is not None:
            rec = _run_masked(w.cell, xa, mask, reverse, params, states[d], run)
            data.update({(name, d): arr for name, arr in rec.items()})
            continue
        xs = np.ascontiguousarray(xa[:, ::-1]) if reverse else xa
        rec = run(w.cell, xs, params, states[d])
        for name, arr in rec.items():
            data[(name, d)] = arr[::-1] if reverse else arr  # time-major, back in input order
    if masked_output not in MASKED_OUTPUTS:
        raise InputError(
            f"masked_output must be one of {MASKED_OUTPUTS}; got {masked_output!r}",
            layer=w.name,
            argument="masked_output",
        )
    return Trace(
        w.name, w.cell, w.directions, data, w.merge_mode, w.go_backwards, mask, masked_output
    )


def _default_masked_output(w: RNNWeights) -> str:
    if w.source == "torch" or w.bidirectional:
        return "zeros"  # pad_packed_sequence; Keras's Bidirectional sets zero_output_for_mask
    return "carry"


def trace_masked(
    w: RNNWeights,
    x: Any,
    initial_state: Any,
    mask: Any,
    lengths: Any,
    rule: MaskRule | None,
) -> Trace:
    """:func:`run_trace` after working out the mask: from ``mask=``/``lengths=``, from a
    ``PackedSequence`` ``x``, or refused when the layer's model would mask and none was given."""
    masked_output = rule.masked_output if rule is not None else _default_masked_output(w)
    if is_packed(x):
        if mask is not None or lengths is not None:
            raise InputError(
                f"trace of '{w.name}': x is a PackedSequence, which carries its own lengths; "
                "do not pass mask= or lengths= as well",
                layer=w.name,
                argument="mask",
            )
        x, lengths = unpack_sequence(x)
        masked_output = "zeros"  # as pad_packed_sequence pads
    if mask is None and lengths is None and np.ma.isMaskedArray(x):  # e.g. from activations
        x, mask = np.ma.getdata(x), ~np.ma.getmaskarray(x).all(axis=-1)
    if mask is False:
        return run_trace(w, x, initial_state)
    if mask is None and lengths is None and rule is not None and rule.hidden:
        warnings.warn(
            f"layer '{w.name}' may receive a mask inside {rule.model} ({rule.hidden}), which "
            "rnnscope cannot see there: the trace runs every step. If steps are masked, pass "
            f"mask= (rnnscope.masks(model, model_input)['{w.name}']), or mask=False to silence "
            "this",
            RuntimeWarning,
            stacklevel=3,
        )
    if mask is None and lengths is None and rule is not None and rule.producers:
        raise InputError(
            f"layer '{w.name}' receives a mask in {rule.model} (from "
            f"{', '.join(rule.producers)}): its masked steps keep the previous state, so a trace "
            "without the mask would be wrong there. Pass mask= (the (batch, time) mask the "
            f"layer receives: rnnscope.masks(model, model_input)['{w.name}']) or lengths=; or "
            "mask=False to trace every step as given",
            layer=w.name,
            argument="mask",
        )
    xa = to_numpy(x) if not isinstance(x, (str, bytes)) else x
    if not isinstance(xa, np.ndarray) or xa.ndim != 3:
        return run_trace(w, xa, initial_state)  # its own message for a bad x
    m = as_mask(mask, lengths, xa.shape[0], xa.shape[1], w.name)
    return run_trace(w, xa, initial_state, m, masked_output)
