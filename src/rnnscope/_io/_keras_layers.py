"""Turn the raw variables of a Keras file's layers into rnnscope records.

With a model config, a layer's kind and settings come from it. Without one (weights-only files),
the cell is inferred from the shapes: the kernel is ``(in, g * units)`` and the recurrent kernel
``(units, g * units)`` with g = 4 (LSTM), 3 (GRU) or 1 (SimpleRNN); a ``(2, 3 * units)`` bias means
a reset-after GRU and a bias twice the kernel's width a CuDNN layer. Each inference is noted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .._errors import FormatError
from .._layouts import (
    CONVLSTM_KINDS,
    canonical_from_cudnn,
    canonical_from_keras,
    convlstm_gate_blocks,
)
from .._model import CELL_BY_GATES, GATES, LayerInfo, LayerWeights, RNNWeights
from .._refs import LayerRef
from ._keras_config import LayerSpec, RNNSpec, rnn_spec, stacked_cell_spec

if TYPE_CHECKING:
    from ._keras_tree import RawLayer

__all__ = ["build_refs"]

Reader = Callable[[list[str]], list[np.ndarray]]
_ROLES = ("kernel", "recurrent_kernel", "bias")
_GENERIC_NAMES = {
    "Dense": ("kernel", "bias"),
    "Conv1D": ("kernel", "bias"),
    "Conv2D": ("kernel", "bias"),
    "Embedding": ("embeddings",),
    "LayerNormalization": ("gamma", "beta"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def _roles(raw: RawLayer, direction: str) -> dict[str, str]:
    """kernel / recurrent_kernel / bias -> dataset path for one direction."""
    pairs = raw.variables.get(direction, [])
    if pairs and all(n.isdigit() for n, _ in pairs):  # Keras 3 tree: positions
        return {role: p for role, (_, p) in zip(_ROLES, pairs, strict=False)}
    return {n: p for n, p in pairs if n in _ROLES}


def _infer(raw: RawLayer, shapes: dict[str, tuple[int, ...]]) -> tuple[RNNSpec | None, str]:
    directions = [d for d in raw.variables if d]
    roles = _roles(raw, directions[0] if directions else "")
    if "kernel" not in roles or "recurrent_kernel" not in roles:
        return None, ""
    k, r = shapes[roles["kernel"]], shapes[roles["recurrent_kernel"]]
    if len(k) != 2 or len(r) != 2 or k[1] != r[1] or r[0] == 0 or r[1] % r[0]:
        return None, ""
    g = r[1] // r[0]
    if g not in CELL_BY_GATES:
        return None, ""
    cell = CELL_BY_GATES[g]
    b = shapes.get(roles.get("bias", ""), None)
    cudnn = b == (2 * k[1],) and cell != "SimpleRNN"
    reset_after = None
    if cell == "GRU":
        reset_after = cudnn or b is None or len(b) == 2
    bidir = set(directions) == {"forward", "backward"}
    kind = ("Bidirectional" if bidir else "") or (f"CuDNN{cell}" if cudnn else cell)
    if raw.cell_index is not None:
        kind = "StackedRNNCells"
    spec = RNNSpec(
        cell,
        kind,
        cudnn,
        bidir,
        "tanh",
        None if cell == "SimpleRNN" else "sigmoid",
        reset_after,
        "concat" if bidir else None,
        False,
    )
    why = (
        f"layer '{raw.path}': no config in the file; {kind} ({cell} cell) inferred from shapes "
        f"(kernel {k}, recurrent kernel {r}, bias {b}); activations assumed tanh/sigmoid, "
        "go_backwards assumed False"
    )
    if cell == "GRU" and b is None:
        why += "; reset_after assumed True (no bias to tell)"
    if bidir:
        why += "; merge mode assumed concat"
    return spec, why


def _info(
    raw: RawLayer, kind: str, shapes: dict[str, tuple[int, ...]], names: list[str], recurrent: bool
) -> LayerInfo:
    flat = [(d, n, p) for d, vs in raw.variables.items() for n, p in vs]
    keys = [f"{d}/{n}" if d else n for (d, _, _), n in zip(flat, names, strict=True)]
    return LayerInfo(
        raw.path, kind, {k: shapes[p] for k, (_, _, p) in zip(keys, flat, strict=True)}, recurrent
    )


def _generic(
    raw: RawLayer, kind: str, shapes: dict[str, tuple[int, ...]], read: Reader
) -> LayerRef:
    pairs = [(n, p) for vs in raw.variables.values() for n, p in vs]
    names = [n for n, _ in pairs]
    if all(n.isdigit() for n in names):
        table = _GENERIC_NAMES.get(kind, ())
        # Keras creates these in order and leaves out the optional ones last (use_bias=False)
        names = (
            list(table[: len(names)]) if len(names) <= len(table) else [f"var{n}" for n in names]
        )
    info = _info(raw, kind, shapes, names, False)
    paths = [p for _, p in pairs]
    # the listing's keys (``forward/...``, ``backward/...`` for two directions) where they are
    # unique, so both directions' weights are kept
    keys = list(info.shapes) if len(info.shapes) == len(paths) else names

    def extract() -> LayerWeights:
        return LayerWeights(raw.path, kind, dict(zip(keys, read(paths), strict=True)))

    return LayerRef(info, extract)


def _check(
    raw: RawLayer,
    spec: RNNSpec,
    roles: dict[str, dict[str, str]],
    shapes: dict[str, tuple[int, ...]],
    path: str,
) -> None:
    for d, rl in roles.items():
        missing = [r for r in ("kernel", "recurrent_kernel") if r not in rl]
        if missing:
            raise FormatError(
                f"'{path}': {spec.kind} layer '{raw.path}' ({d or 'forward'}) has no "
                f"{' or '.join(missing)}; found: {', '.join(rl) or 'nothing'}",
                path=path,
                layer=raw.path,
            )
        k, r = shapes[rl["kernel"]], shapes[rl["recurrent_kernel"]]
        n = len(GATES[spec.cell])
        if len(r) == 2 and r[0] < 1:
            raise FormatError(
                f"'{path}': {spec.kind} layer '{raw.path}': units must be >= 1; the recurrent "
                f"kernel {r} declares {r[0]}",
                path=path,
                layer=raw.path,
            )
        if len(k) != 2 or len(r) != 2 or r[1] != n * r[0] or k[1] != r[1]:
            raise FormatError(
                f"'{path}': {spec.kind} layer '{raw.path}': expected kernel "
                f"(in, {n}*units) and recurrent kernel (units, {n}*units); found "
                f"{k} and {r}",
                path=path,
                layer=raw.path,
            )


def _rnn(
    raw: RawLayer, spec: RNNSpec, shapes: dict[str, tuple[int, ...]], read: Reader, path: str
) -> LayerRef:
    dirs = ["forward", "backward"] if spec.bidirectional else [""]
    if spec.bidirectional and set(raw.variables) != {"forward", "backward"}:
        raise FormatError(
            f"'{path}': Bidirectional layer '{raw.path}' should have forward and "
            f"backward weights; found {sorted(raw.variables)}",
            path=path,
            layer=raw.path,
        )
    roles = {d: _roles(raw, d) for d in dirs}
    _check(raw, spec, roles, shapes, path)
    info = LayerInfo(
        raw.path,
        spec.kind,
        {f"{d}/{r}" if d else r: shapes[p] for d in dirs for r, p in roles[d].items()},
        True,
    )

    def extract() -> RNNWeights:
        arrays: dict[tuple[str, str], np.ndarray] = {}
        for d in dirs:
            rl = roles[d]
            got = dict(zip(rl, read(list(rl.values())), strict=True))
            if spec.cudnn:
                parts = canonical_from_cudnn(
                    spec.cell, got["kernel"], got["recurrent_kernel"], got["bias"], name=raw.path
                )
            else:
                parts = canonical_from_keras(
                    spec.cell,
                    got["kernel"],
                    got["recurrent_kernel"],
                    got.get("bias"),
                    name=raw.path,
                )
            arrays.update({(p, d or "forward"): a for p, a in parts.items()})
        return RNNWeights.from_parts(
            raw.path,
            spec.cell,
            arrays,
            kind=spec.kind,
            activation=spec.activation,
            recurrent_activation=spec.recurrent_activation,
            reset_after=spec.reset_after,
            merge_mode=spec.merge_mode,
            go_backwards=spec.go_backwards,
            source=f"file:{path}",
        )

    return LayerRef(info, extract)


def _stacked_inside(spec: LayerSpec) -> bool:
    """True for a Bidirectional around an RNN over StackedRNNCells."""
    inner = spec.config.get("layer")
    cell = ((inner or {}).get("config") or {}).get("cell") if isinstance(inner, dict) else None
    return isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells"


def build_refs(
    raws: list[RawLayer],
    spec: LayerSpec | None,
    shapes: dict[str, tuple[int, ...]],
    keras2: bool,
    read: Reader,
    notes: list[str],
    path: str,
) -> list[LayerRef]:
    """One :class:`LayerRef` per layer with weights, in order."""
    refs = []
    for raw in raws:
        layer_spec = spec.find(raw.path) if spec is not None else None
        if raw.cell_index is not None and spec is not None:  # one cell of a StackedRNNCells
            holder = spec.find(raw.path.rsplit("/", 1)[0])
            rs = stacked_cell_spec(holder, raw.cell_index, keras2) if holder else None
            kind = "StackedRNNCells"
            if rs is None:
                notes.append(f"layer '{raw.path}': a stacked cell rnnscope does not read")
            refs.append(
                _rnn(raw, rs, shapes, read, path) if rs else _generic(raw, kind, shapes, read)
            )
            continue
        if layer_spec is not None:
            rs = rnn_spec(layer_spec, keras2)
            kind = layer_spec.class_name
            if rs is None and kind == "Bidirectional" and _stacked_inside(layer_spec):
                kind = "Bidirectional (stacked cells: not split into gates)"
            elif rs is None and kind == "Bidirectional":
                kind = "Bidirectional (directions differ)"
                notes.append(
                    f"layer '{raw.path}': its forward and backward layers differ; "
                    "listed with its named weights only"
                )
        else:
            rs, why = _infer(raw, shapes)
            kind = rs.kind if rs else (raw.class_hint or "Layer")
            if why:
                notes.append(why)
        if rs is None and kind in CONVLSTM_KINDS:
            refs.append(_convlstm(raw, kind, shapes, read, path))
            continue
        refs.append(_rnn(raw, rs, shapes, read, path) if rs else _generic(raw, kind, shapes, read))
    return refs


def _convlstm(
    raw: RawLayer, kind: str, shapes: dict[str, tuple[int, ...]], read: Reader, path: str
) -> LayerRef:
    """A ConvLSTM layer as named per-gate blocks, as a live one is listed."""
    roles = _roles(raw, "")
    if "kernel" not in roles or "recurrent_kernel" not in roles:
        raise FormatError(
            f"'{path}': {kind} layer '{raw.path}' has no kernel or recurrent kernel; found: "
            f"{', '.join(roles) or 'nothing'}",
            path=path,
            layer=raw.path,
        )
    info = LayerInfo(raw.path, kind, {r: shapes[p] for r, p in roles.items()}, False)

    def extract() -> LayerWeights:
        parts = dict(zip(roles, read(list(roles.values())), strict=True))
        return LayerWeights(raw.path, kind, convlstm_gate_blocks(parts, name=raw.path))

    return LayerRef(info, extract)
