"""torch ``state_dict`` key patterns -> layers, shared by the safetensors and .pt readers.

``<prefix>.weight_ih_l{k}[_reverse]`` (with ``weight_hh``, ``bias_ih``, ``bias_hh``,
``weight_hr``) belong to a stacked ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``; layer ``k`` becomes
``<prefix>.l{k}``. ``<prefix>.weight_ih`` without a layer number is a single-step cell. The cell is
told by the gate multiple: ``weight_hh`` is ``(g * hidden, hidden or proj_size)`` with g = 4, 3, 1.
Every other tensor belongs to a generic layer named by its module prefix.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from .._errors import FormatError
from .._layouts import TORCH_ROLES, TORCH_STACKED_KEY, canonical_from_torch
from .._model import CELL_BY_GATES, LayerInfo, LayerWeights, RNNWeights
from .._refs import LayerRef

__all__ = ["build_torch_refs"]

Reader = Callable[[list[str]], list[np.ndarray]]
_CELL = re.compile(rf"^(?:(?P<prefix>.+)\.)?(?P<w>{'|'.join(TORCH_ROLES[:4])})$")
_KINDS = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}


def _cell_of(
    name: str, keys: dict[str, str], shapes: dict[str, tuple[int, ...]], path: str
) -> tuple[str, int, int | None]:
    """(cell, hidden, proj_size) of one direction's keys, from the shapes."""
    if "weight_ih" not in keys or "weight_hh" not in keys:
        raise FormatError(
            f"'{path}': recurrent layer '{name}' lacks weight_ih or weight_hh; "
            f"found: {', '.join(sorted(keys))}",
            path=path,
            layer=name,
        )
    ih, hh = shapes[keys["weight_ih"]], shapes[keys["weight_hh"]]
    hr = shapes.get(keys.get("weight_hr", ""))
    hidden = hr[1] if hr else (hh[1] if len(hh) == 2 else 0)
    if len(ih) != 2 or len(hh) != 2 or hidden <= 0 or hh[0] % hidden or ih[0] != hh[0]:
        raise FormatError(
            f"'{path}': recurrent layer '{name}': weight_ih {ih} and weight_hh {hh} "
            "are not (g*hidden, in) and (g*hidden, hidden) for g in 1, 3, 4",
            path=path,
            layer=name,
        )
    g = hh[0] // hidden
    if g not in CELL_BY_GATES or (hr and (len(hr) != 2 or hh[1] != hr[0])):
        raise FormatError(
            f"'{path}': recurrent layer '{name}': {g} gate blocks in weight_hh {hh}; "
            "expected 4 (LSTM), 3 (GRU) or 1 (RNN)",
            path=path,
            layer=name,
        )
    return CELL_BY_GATES[g], hidden, (hr[0] if hr else None)


def _rnn_ref(
    name: str,
    by_dir: dict[str, dict[str, str]],
    shapes: dict[str, tuple[int, ...]],
    read: Reader,
    notes: list[str],
    path: str,
) -> LayerRef:
    dirs = [d for d in ("forward", "backward") if d in by_dir]
    if dirs[0] != "forward":
        raise FormatError(
            f"'{path}': recurrent layer '{name}' has _reverse weights only",
            path=path,
            layer=name,
        )
    cell, hidden, proj = _cell_of(name, by_dir["forward"], shapes, path)
    fw = by_dir["forward"]
    note = (
        f"layer '{name}': {_KINDS[cell]} inferred from torch key shapes (weight_hh "
        f"{shapes[fw['weight_hh']]} = {shapes[fw['weight_hh']][0] // hidden} "
        f"gate blocks of {hidden} units)"
    )
    if cell == "SimpleRNN":
        note += "; nonlinearity assumed tanh (a state dict does not record relu)"
    notes.append(note)
    info = LayerInfo(  # keys as the live module names them: weight_ih_l0, not enc.weight_ih_l0
        name,
        _KINDS[cell],
        {k.rsplit(".", 1)[-1]: shapes[k] for d in dirs for k in by_dir[d].values()},
        True,
    )

    def extract() -> RNNWeights:
        arrays: dict[tuple[str, str], np.ndarray] = {}
        for d in dirs:
            keys = by_dir[d]
            got = dict(zip(keys, read(list(keys.values())), strict=True))
            parts = canonical_from_torch(
                cell,
                got["weight_ih"],
                got["weight_hh"],
                got.get("bias_ih"),
                got.get("bias_hh"),
                got.get("weight_hr"),
            )
            arrays.update({(p, d): a for p, a in parts.items()})
        return RNNWeights.from_parts(
            name,
            cell,
            arrays,
            kind=_KINDS[cell],
            activation="tanh",
            recurrent_activation="sigmoid",
            reset_after=True,
            proj_size=proj,
            source=f"file:{path}",
        )

    return LayerRef(info, extract)


def build_torch_refs(
    entries: list[tuple[str, tuple[int, ...]]], read: Reader, notes: list[str], path: str
) -> list[LayerRef]:
    """Layers of a state dict given as ``(key, shape)`` pairs in file order."""
    shapes = dict(entries)
    groups: dict[str, dict[str, dict[str, str]]] = {}  # layer name -> direction -> role -> key
    generic: dict[str, dict[str, str]] = {}
    order: dict[tuple[str, str], None] = {}  # (kind, name), in order of first appearance

    for key, _ in entries:
        m = TORCH_STACKED_KEY.match(key)
        if m:
            prefix = m["prefix"] or ""
            name = f"{prefix}.l{m['k']}" if prefix else f"l{m['k']}"
            kind = "rnn"
        elif (m := _CELL.match(key)) is not None and (
            f"{m['prefix']}.weight_hh" if m["prefix"] else "weight_hh"
        ) in shapes:
            name, kind = m["prefix"] or "cell", "rnn"
        else:
            prefix, _, leaf = key.rpartition(".")
            generic.setdefault(prefix or leaf, {})[leaf if prefix else key] = key
            order.setdefault(("generic", prefix or leaf))
            continue
        direction = "backward" if m.groupdict().get("rev") else "forward"
        groups.setdefault(name, {}).setdefault(direction, {})[m["w"]] = key
        order.setdefault(("rnn", name))

    refs: list[LayerRef] = []
    for kind, name in order:
        if kind == "rnn":
            refs.append(_rnn_ref(name, groups[name], shapes, read, notes, path))
            continue
        tensors = generic[name]

        def extract(name: str = name, tensors: dict[str, str] = tensors) -> LayerWeights:
            arrays = read(list(tensors.values()))
            return LayerWeights(name, "tensors", dict(zip(tensors, arrays, strict=True)))

        info = LayerInfo(name, "tensors", {k: shapes[v] for k, v in tensors.items()}, False)
        refs.append(LayerRef(info, extract))
    return refs
